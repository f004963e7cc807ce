# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# pytest arguments for `make test` (CI passes the same target)
PYTEST_ARGS ?=

.PHONY: venv test test-fast demo sandbox bench bench-quick chaos e2e postgres clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@bash scripts/bootstrap-venv.sh "$(PYTHON)" "$(VENV)"
	@touch $@

## The whole default test suite (what CI runs): unit, sandbox, integration, PostgreSQL when available.
test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

## Quick loop while coding: no slow suites.
test-fast: venv
	$(BIN)/pytest -m "not slow and not chaos and not e2e" -x $(PYTEST_ARGS)

## Seed 1,000 customers in SQLite, start the sandbox, run the bulk DAG twice, print the summary.
demo: venv
	$(PY) scripts/demo.py

## A sandbox in the foreground on :8765 (Ctrl-C to stop).
sandbox: venv
	$(BIN)/bolna-sandbox --port 8765 --db .demo/sandbox.db

bench: venv
	$(PY) -m bench.run

bench-quick: venv
	$(PY) -m bench.run --quick

chaos: venv
	$(BIN)/pytest -m chaos $(PYTEST_ARGS)

e2e: venv
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

## Start a throw-away PostgreSQL on 127.0.0.1:5433 (prints the URI to export).
postgres:
	@bash scripts/postgres-up.sh

clean:
	rm -rf $(VENV) .demo .airflow .pytest_cache build *.egg-info
