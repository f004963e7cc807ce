#!/usr/bin/env bash
# Create the project virtualenv and install the provider with its test extras.
# Uses uv when it can (fast), plain pip otherwise.
set -euo pipefail
PYTHON="${1:-python3.11}"
VENV="${2:-.venv}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! command -v uv >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 || true
fi
if command -v uv >/dev/null 2>&1; then
  [ -x "$VENV/bin/python" ] || uv venv -q --python "$PYTHON" "$VENV"
  VIRTUAL_ENV="$VENV" uv pip install -q -e '.[test]'
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
fi
echo "virtualenv ready: $VENV ($("$VENV/bin/python" -c 'import airflow; print("apache-airflow", airflow.__version__)'))"
