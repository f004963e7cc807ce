#!/usr/bin/env bash
# Install what the end-to-end suite (tests/e2e, `make e2e`) needs beyond the project's venv:
#   * Debian's `chromium` (the browser Playwright drives; /usr/bin/chromium),
#   * the `playwright` Python package in the project's virtualenv.
# Idempotent: does nothing when both are already there. Never runs `playwright install`
# (it downloads a browser build of its own, which this network does not allow): the tests
# launch Debian's /usr/bin/chromium through `executable_path`.
#
# Usage: bash scripts/e2e-setup.sh [PYTHON]
#   PYTHON defaults to $E2E_PYTHON, then .venv/bin/python, then the `python` on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${1:-${E2E_PYTHON:-}}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="$(command -v python || command -v python3)"; fi
fi

# 1. Debian chromium
if [ ! -x /usr/bin/chromium ]; then
  echo "e2e-setup: installing Debian's chromium..." >&2
  SUDO=()
  if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi

# 2. playwright for Python (the library only; the browser is Debian's)
if ! "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "e2e-setup: installing the playwright Python package into $("$PY" -c 'import sys; print(sys.prefix)')..." >&2
  if "$PY" -m pip --version >/dev/null 2>&1; then
    "$PY" -m pip install -q --disable-pip-version-check "playwright>=1.45"
  elif command -v uv >/dev/null 2>&1; then
    uv pip install -q --python "$PY" "playwright>=1.45"
  else
    echo "e2e-setup: neither pip nor uv available for $PY" >&2
    exit 1
  fi
fi

echo "e2e-setup: ready: $(/usr/bin/chromium --version 2>/dev/null | head -1), playwright $("$PY" -c 'from importlib.metadata import version; print(version("playwright"))')"
