# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# pytest arguments for `make test` (CI passes the same target)
PYTEST_ARGS ?=

.PHONY: venv lint test test-fast test-matrix test-matrix-full demo sandbox bench-deps bench bench-quick chaos e2e e2e-celery postgres clean dist mutate

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@bash scripts/bootstrap-venv.sh "$(PYTHON)" "$(VENV)"
	@touch $@

## ruff: lint rules and formatting (both must be clean; `ruff format .` fixes the second).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## The default test suite: lint, then unit, sandbox, operators, provisioning (SQLite, and
## PostgreSQL when BOLNA_TEST_POSTGRES_URI is set). The chaos and e2e suites run apart (CI runs all three).
test: venv lint
	$(BIN)/pytest -m "not chaos and not e2e and not e2e_celery" $(PYTEST_ARGS)

## Quick loop while coding: no slow suites.
test-fast: venv
	$(BIN)/pytest -m "not slow and not chaos and not e2e and not e2e_celery" -x $(PYTEST_ARGS)

## The compatibility matrix (noxfile.py): the CI (Airflow, Python) pairs, each in a fresh uv venv
## running the unit, operators and provisioning suites, MATRIX_JOBS (3) pairs at a time
## (scripts/test_matrix.py). One pair, or pytest arguments after --:
##   make test-matrix NOX_ARGS="-s \"tests(airflow='3.1', python='3.12')\" -- tests/unit -x"
NOX         ?= uv tool run --from nox==2026.10.20 nox
NOX_ARGS    ?=
MATRIX_JOBS ?= 3
test-matrix:
	NOX="$(NOX)" MATRIX_JOBS=$(MATRIX_JOBS) python3 scripts/test_matrix.py $(NOX_ARGS)

## Every supported (Airflow, Python) pair (18 of them).
test-matrix-full:
	NOX="$(NOX)" MATRIX_JOBS=$(MATRIX_JOBS) python3 scripts/test_matrix.py -t full $(NOX_ARGS)

## Seed 1,000 customers in SQLite, start the sandbox, run the bulk DAG twice, print the summary.
demo: venv
	$(PY) scripts/demo.py

## A sandbox in the foreground on :8765 (Ctrl-C to stop).
sandbox: venv
	$(BIN)/bolna-sandbox --port 8765 --db .demo/sandbox.db

bench-deps: venv
	@VIRTUAL_ENV=$(VENV) uv pip install -q -e '.[test,bench]' 2>/dev/null || $(PY) -m pip install -q -e '.[test,bench]'

bench: bench-deps
	$(PY) -m bench.run

bench-quick: bench-deps
	$(PY) -m bench.run --quick

## Faults, crashes, secret scan, fuzzing (see tests/chaos/RESULTS.md).
chaos: venv
	$(BIN)/pytest -m "chaos and not e2e" $(PYTEST_ARGS)

## Real Airflow services + headless Chromium (needs PostgreSQL: started here if missing).
e2e: venv
	bash scripts/e2e-setup.sh $(PY)
	eval "$$(bash scripts/postgres-up.sh)" && BOLNA_REQUIRE_E2E=1 $(BIN)/pytest -m e2e $(PYTEST_ARGS)

## CeleryExecutor (Redis from Debian, two workers of two slots) on PostgreSQL: 3,000 customers
## against a sandbox limited to 1,000 requests/min, then a worker killed mid-run (docs/e2e.md).
e2e-celery: venv
	bash scripts/e2e-celery-setup.sh $(PY)
	eval "$$(bash scripts/postgres-up.sh)" && BOLNA_REQUIRE_E2E=1 $(BIN)/pytest -m e2e_celery tests/e2e_celery $(PYTEST_ARGS)

## Start a throw-away PostgreSQL on 127.0.0.1:5433 (prints the URI to export).
postgres:
	@bash scripts/postgres-up.sh

clean:
	rm -rf $(VENV) .nox .demo .airflow .pytest_cache build *.egg-info

## The wheel and the sdist in dist/, checked with twine.
dist: venv
	@VIRTUAL_ENV=$(VENV) uv pip install -q -e '.[test,dist]' 2>/dev/null || $(PY) -m pip install -q -e '.[test,dist]'
	rm -rf dist build
	$(PY) -m build --sdist --wheel --outdir dist .
	$(PY) -m twine check --strict dist/*

## Break the code on purpose (tests/mutations.toml), one mutation at a time in a copy: each
## must be caught by the default suite. MUTATE_ARGS="--only ID --full --jobs 2 ..." (see --help).
mutate: venv
	$(PY) scripts/mutate.py $(MUTATE_ARGS)
