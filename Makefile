# The two commands a newcomer needs: `make run` (demo) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The compatibility matrix's venv: the dev requirements plus the other GenAI instrumentations.
PEERS_VENV  := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: run test lint typecheck unit bench soak system-deps clean peers

$(STAMP): pyproject.toml collector/pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e . -e './collector[postgres,demo]' -r requirements-dev.txt
	touch $(STAMP)

$(PEERS_STAMP): pyproject.toml collector/pyproject.toml requirements-dev.txt requirements-peers.txt requirements-peers-nodeps.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -e . -e './collector[postgres,demo]' -r requirements-dev.txt -r requirements-peers.txt
	$(PEERS_VENV)/bin/python -m pip install -q --no-deps -r requirements-peers-nodeps.txt
	touch $(PEERS_STAMP)

## peers: the compatibility matrix (tests/peers/) over the real peer instrumentations, in .venv-peers
peers: $(PEERS_STAMP)
	@LLMCOST_PEERS=1 $(PEERS_VENV)/bin/python -m pytest -q -p no:randomly tests/peers $(PEERS_PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "the peer matrix collected no tests: failing"; exit 1; fi; exit $$rc

## run: bootstrap .venv and start the demo (collector + fake provider + traffic through the real SDKs)
run: $(STAMP)
	$(BIN)/llmcost demo

## system-deps: Prometheus, Alertmanager, PostgreSQL, Redis, Pango and Chromium from Debian (CI installs them; locally optional)
system-deps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

## test: bootstrap, lint, type-check and run every test, then the peer matrix (in CI, real Prometheus/Alertmanager/PostgreSQL must be present)
test: $(STAMP) $(PEERS_STAMP)
	@if [ "$$CI" = "true" ]; then bash scripts/install-system-deps.sh; fi
	$(MAKE) --no-print-directory lint typecheck
	@$(BIN)/python -m pytest -q -p no:randomly $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc
	$(MAKE) --no-print-directory peers

## bench: run the benchmarks and rewrite BENCHMARKS.md (in .venv-peers: one compares with openai-v2)
bench: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python benchmarks/run.py

## soak: ten minutes at a steady rate (RSS, export and commit latency) into BENCHMARKS.md; not in bench
soak: $(STAMP)
	$(BIN)/python benchmarks/run.py soak

clean:
	rm -rf $(VENV) $(PEERS_VENV) .pytest_cache .mypy_cache .ruff_cache
