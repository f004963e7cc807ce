#!/usr/bin/env bash
# Install what `make e2e-celery` needs beyond the project's venv:
#   * Debian's `redis-server` (the Celery broker; started by the tests on a private port),
#   * the `e2e-celery` extra (apache-airflow-providers-celery, with celery and redis-py) in the venv.
# Idempotent: does nothing when both are there.
#
# Usage: bash scripts/e2e-celery-setup.sh [PYTHON]   (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"

if ! command -v redis-server >/dev/null 2>&1; then
  echo "e2e-celery-setup: installing Debian's redis-server..." >&2
  SUDO=()
  if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >&2
fi

if ! "$PY" -c "import airflow.providers.celery, redis" >/dev/null 2>&1; then
  echo "e2e-celery-setup: installing the e2e-celery extra into $("$PY" -c 'import sys; print(sys.prefix)')..." >&2
  if command -v uv >/dev/null 2>&1; then
    VIRTUAL_ENV="$("$PY" -c 'import sys; print(sys.prefix)')" uv pip install -q -e '.[test,e2e-celery]'
  else
    "$PY" -m pip install -q --disable-pip-version-check -e '.[test,e2e-celery]'
  fi
fi

echo "e2e-celery-setup: ready: $(redis-server --version | cut -d' ' -f1-3), celery provider $("$PY" -c 'from importlib.metadata import version; print(version("apache-airflow-providers-celery"))')"
