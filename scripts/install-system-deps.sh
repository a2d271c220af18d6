#!/usr/bin/env bash
# Installs the real Prometheus, promtool, Alertmanager, PostgreSQL and Redis that the integration
# tests use, Pango for the invoice PDFs, and Chromium with chromedriver for the web page's tests.
# Idempotent: does nothing when they are already present.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Redis, the response cache's shared backend (tests/integration/instrumentation/test_cache.py).
command -v redis-server >/dev/null || need+=(redis-server)
# Pango, which WeasyPrint renders invoice PDFs with (`llmcost invoice --format pdf`).
ldconfig -p | grep -q libpangoft2-1.0 || need+=(libpango-1.0-0 libpangoft2-1.0-0)
# Chromium and its WebDriver, for the web page's browser tests (tests/integration/test_web_page.py).
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${need[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
