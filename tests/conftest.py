"""Pytest configuration shared by all tests. Helpers live in ``tests.support``; the PostgreSQL
fixtures in ``tests.pg`` (imported by the modules that use them)."""

import os

# The compatibility matrix needs the peer instrumentations, which live in .venv-peers only
# (`make peers`, run by `make test`): the main suite never collects it.
collect_ignore = [] if os.environ.get("LLMCOST_PEERS") == "1" else ["peers"]
