"""Run the compatibility matrix (``noxfile.py``): its sessions, several at a time.

Each (Airflow, Python) session runs in its own fresh venv with ``nox -s``; its output goes to
``.nox/logs/<session>.log`` and is printed whole when the session ends, then one line per
session with its result and time. The suites mostly wait (the sandbox's latency, back-offs,
``airflow dags test`` subprocesses: about half a core per session), so on 2 cores a few
sessions at once take far less time than one after another. The tests share nothing that
would collide: each session has its own AIRFLOW_HOME, sandboxes on free ports and its own
PostgreSQL schemas.

    python3 scripts/test_matrix.py                      # the CI pairs (make test-matrix)
    python3 scripts/test_matrix.py --jobs 1 -t full     # every supported pair, one at a time
    python3 scripts/test_matrix.py -s "tests(airflow='3.1', python='3.12')" -- tests/unit -x

Arguments before ``--`` select sessions as for ``nox``; after it, they go to pytest.
Environment: ``NOX`` (the nox command), ``MATRIX_JOBS`` (default for ``--jobs``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / ".nox" / "logs"
DEFAULT_NOX = "uv tool run --from nox==2026.10.20 nox"
_print_lock = threading.Lock()


def _sessions(nox: list[str], selection: list[str]) -> list[str]:
    listing = subprocess.run(
        [*nox, *selection, "-l", "--json"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        sys.exit(f"could not list the nox sessions:\n{listing.stdout}{listing.stderr}")
    return [s["session"] for s in json.loads(listing.stdout)]


def _run(nox: list[str], session: str, posargs: list[str]) -> tuple[str, int, float, str]:
    log = LOGS / (re.sub(r"[^\w.=-]+", "_", session).strip("_") + ".log")
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(
            [*nox, "-s", session, *(["--", *posargs] if posargs else [])],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    summaries = re.findall(r"^=+ (.*(?:passed|failed|error).*?) =+$", text, re.MULTILINE)
    with _print_lock:
        print(
            f"\n##### {session}: {'ok' if code == 0 else 'FAILED'} in {seconds:.0f} s ({log.relative_to(ROOT)})"
        )
        print(text, flush=True)
    return session, code, seconds, summaries[-1] if summaries else "no pytest summary"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        type=int,
        default=int(os.environ.get("MATRIX_JOBS", "3")),
        help="sessions at once (default: $MATRIX_JOBS or 3)",
    )
    args, rest = parser.parse_known_args(argv)
    selection, posargs = (
        (rest[: rest.index("--")], rest[rest.index("--") + 1 :]) if "--" in rest else (rest, [])
    )
    nox = shlex.split(os.environ.get("NOX", DEFAULT_NOX))
    sessions = _sessions(nox, selection)
    if not sessions:
        sys.exit("no nox session selected")
    LOGS.mkdir(parents=True, exist_ok=True)
    print(f"{len(sessions)} session(s), {args.jobs} at a time: {', '.join(sessions)}", flush=True)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda s: _run(nox, s, posargs), sessions))
    print(
        f"\n##### matrix: {len(sessions)} session(s) in {time.monotonic() - started:.0f} s, {args.jobs} at a time"
    )
    for session, code, seconds, summary in results:
        print(f"{'ok    ' if code == 0 else 'FAILED'} {session:<40} {seconds:5.0f} s  {summary}")
    return 0 if all(code == 0 for _, code, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
