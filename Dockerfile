# The otel-llmcost images, built from the repository (docker-compose.yml builds both):
#   collector (the default target): `llmcost serve`, OTLP in on 4317 (gRPC) and 4318 (HTTP),
#     /metrics, API, health and web page on 9464; the ledger is LLMCOST_LEDGER_URL (SQLite on the
#     /data volume by default, postgresql://... to share one ledger between replicas).
#   demo: `llmcost demo`, traffic through the real openai/anthropic SDKs against the fake provider,
#     instrumented by otel_llmcost (the in-service package, which only the demo image carries).

FROM python:3.11-slim AS build
WORKDIR /src
COPY collector/ ./collector/
# Wheels for the collector and every dependency, so the runtime stages need no compiler or network.
RUN pip wheel --no-cache-dir --wheel-dir /wheels './collector[postgres]'

FROM build AS demo-build
COPY pyproject.toml README.md ./
COPY otel_llmcost/ ./otel_llmcost/
# The in-service package from this checkout (the demo extra asks for it by name).
RUN pip wheel --no-cache-dir --wheel-dir /wheels . './collector[postgres,demo]'

FROM python:3.11-slim AS base
# Pango: WeasyPrint renders invoice PDFs with it (`llmcost invoice --format pdf`).
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin llmcost \
    && mkdir -p /data /etc/llmcost && chown llmcost /data
ENV PYTHONUNBUFFERED=1
WORKDIR /data

FROM base AS demo
COPY --from=demo-build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'llmcost-collector[postgres,demo]' \
    && rm -rf /wheels
USER llmcost
ENTRYPOINT ["llmcost"]
CMD ["demo", "--send-to", "http://otelcol:4318/v1/traces"]

# Last, so a plain `docker build .` gives the collector.
FROM base AS collector
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'llmcost-collector[postgres]' \
    && rm -rf /wheels
ENV LLMCOST_LEDGER_URL=sqlite:////data/llmcost.db
USER llmcost
VOLUME ["/data"]
EXPOSE 4317 4318 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/readyz', timeout=2)"]
ENTRYPOINT ["llmcost"]
# Listen on all interfaces: inside a container, loopback is unreachable from the other services.
CMD ["serve", "--host", "0.0.0.0", "--http-host", "0.0.0.0"]
