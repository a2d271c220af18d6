# The two commands a newcomer needs: `make run` (demo) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench system-deps clean

$(STAMP): pyproject.toml collector/pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e . -e './collector[postgres,demo]' -r requirements-dev.txt
	touch $(STAMP)

## run: bootstrap .venv and start the demo (collector + fake provider + traffic through the real SDKs)
run: $(STAMP)
	$(BIN)/llmcost demo

## system-deps: Prometheus, Alertmanager and PostgreSQL from Debian (CI installs them; locally optional)
system-deps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

## test: bootstrap, lint, type-check and run every test (in CI, real Prometheus/Alertmanager/PostgreSQL must be present)
test: $(STAMP)
	@if [ "$$CI" = "true" ]; then bash scripts/install-system-deps.sh; fi
	$(MAKE) --no-print-directory lint typecheck
	@$(BIN)/python -m pytest -q -p no:randomly $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

## bench: run the benchmarks and rewrite BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
