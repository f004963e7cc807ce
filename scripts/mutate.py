#!/usr/bin/env python
"""``make mutate``: break the implementation on purpose, one way at a time, and see whether the
tests notice.

Each mutation of ``tests/mutations.toml`` is an exact piece of code (the *anchor*) and what to
put instead. For every mutation the tool

1. copies the checkout as it was when the tool started (tracked files and untracked, not
   ignored ones: ``HEAD`` plus the working-tree changes) into a private temp dir (``mkdtemp``:
   runs in parallel never share one);
2. finds the anchor — it must occur exactly once in the files the mutation names (globs), or
   the mutation is reported ``STALE`` and the run fails: a mutation never silently stops
   applying when the code moves or changes;
3. runs pytest *from the copy* with the repository's ``.venv`` (no reinstall): ``PYTHONPATH``
   puts the copy first, so the copy's package shadows the editable install of the original
   checkout, in pytest and in every subprocess the tests start (sandbox, engine, ``airflow``).
   A guard plugin (``-p``) stops the session if any ``airflow_provider_bolna`` or ``tests``
   module was imported from anywhere else, and the ``canary`` mutation (an obvious break) must
   be caught, which proves the copy is what is tested;
4. reports the mutation ``CAUGHT`` (pytest failed: exit 1, or 2 for a collection error) or
   ``MISSED`` (every selected test passed), with the first failing test and the time.

The test selection is always inside ``make test``'s (``-m "not chaos and not e2e"``): a
mutation counts as caught only by the default suite. Each mutation names the tests that
should catch it (``tests = [...]``, for speed); ``--full`` runs the whole ``make test``
selection for every mutation instead. A baseline run of the same selection on the unmutated
copy comes first: a selection that fails without any mutation proves nothing (``--no-baseline``
skips it).

Exit status: 0 when every mutation run was caught, 1 when one was missed, stale, timed out or
errored (or the baseline failed), 2 on bad usage.

Examples::

    make mutate                                   # all mutations, their own test selections
    make mutate MUTATE_ARGS="--only canary --only gone-limit-off-by-one"
    .venv/bin/python scripts/mutate.py --check    # anchors only: does every mutation still apply?
    .venv/bin/python scripts/mutate.py --full --jobs 2 --report .mutate/full.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO / "tests" / "mutations.toml"
#: The marker expression of ``make test``: a mutation is judged by the default suite only.
MAKE_TEST_MARKERS = "not chaos and not e2e"
PACKAGES = ("airflow_provider_bolna", "tests")
GUARD_MODULE = "_mutate_guard"
#: pytest's exit status when the guard finds code imported from outside the copy.
GUARD_EXIT = 97

GUARD_SOURCE = f'''"""pytest plugin written by scripts/mutate.py: every project module comes from this copy."""
import os
import sys

import pytest

ROOT = os.path.realpath(os.environ["BOLNA_MUTATE_ROOT"])
PACKAGES = {PACKAGES!r}


def _strays():
    strays = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES:
            continue
        path = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", []) or []), None)
        if path and not os.path.realpath(path).startswith(ROOT + os.sep):
            strays.append(f"{{name}} from {{path}}")
    return strays


def _check(when):
    strays = _strays()
    if strays:
        pytest.exit(f"mutate guard ({{when}}): imported from outside the copy {{ROOT}}: {{strays[:5]}}",
                    returncode={GUARD_EXIT})


def pytest_configure(config):
    import airflow_provider_bolna  # noqa: F401 - the package under test must resolve to the copy
    _check("configure")


def pytest_collection_finish(session):
    _check("collection")


def pytest_sessionfinish(session, exitstatus):
    _check("end of session")
'''


class MutationError(Exception):
    """A mutation that cannot be applied (anchor missing, ambiguous, bad spec)."""


@dataclass
class Mutation:
    """One deliberate defect.

    :param id: short name (``--only``).
    :param description: what the defect is, in words.
    :param files: globs (relative to the repo) searched for the anchor.
    :param anchor: exact text that must occur exactly once in those files.
    :param replacement: what the anchor becomes.
    :param tests: pytest paths / node ids of the per-mutation selection.
    :param keyword: optional ``-k`` expression narrowing the selection.
    :param needs: what a test needs to catch it that is not there yet (documentation only).
    """

    id: str
    description: str
    files: list[str]
    anchor: str
    replacement: str
    tests: list[str] = field(default_factory=list)
    keyword: str | None = None
    needs: str | None = None

    def locate(self, root: Path) -> tuple[Path, int]:
        """The one file holding the anchor and its offset; :class:`MutationError` otherwise."""
        if not self.anchor.strip():
            raise MutationError(f"{self.id}: empty anchor")
        hits: list[tuple[Path, int]] = []
        for path in _glob(root, self.files):
            text = path.read_text(encoding="utf-8")
            start = 0
            while (at := text.find(self.anchor, start)) != -1:
                hits.append((path, at))
                start = at + 1
        if not hits:
            raise MutationError(
                f"{self.id}: anchor not found in {self.files} (the code changed: update the "
                f"mutation)\n--- anchor ---\n{self.anchor}"
            )
        if len(hits) > 1:
            where = ", ".join(f"{p.relative_to(root)}@{at}" for p, at in hits)
            raise MutationError(f"{self.id}: anchor found {len(hits)} times ({where}); make it longer")
        return hits[0]

    def apply(self, root: Path) -> Path:
        """Apply the mutation to the tree at ``root``; return the file changed."""
        path, at = self.locate(root)
        text = path.read_text(encoding="utf-8")
        mutated = text[:at] + self.replacement + text[at + len(self.anchor) :]
        if mutated == text:
            raise MutationError(f"{self.id}: the replacement equals the anchor")
        path.write_text(mutated, encoding="utf-8")
        return path


def _glob(root: Path, patterns: list[str]) -> list[Path]:
    found: dict[Path, None] = {}
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                found[path] = None
    return list(found)


def load_mutations(spec: Path) -> list[Mutation]:
    """Read ``[[mutation]]`` tables from ``spec``; refuse unknown keys and duplicate ids."""
    data = tomllib.loads(spec.read_text(encoding="utf-8"))
    known = set(Mutation.__dataclass_fields__)
    mutations: list[Mutation] = []
    for i, raw in enumerate(data.get("mutation", [])):
        unknown = set(raw) - known
        if unknown:
            raise MutationError(f"{spec}: mutation #{i + 1} has unknown key(s) {sorted(unknown)}")
        missing = {"id", "description", "files", "anchor", "replacement"} - set(raw)
        if missing:
            raise MutationError(f"{spec}: mutation #{i + 1} lacks {sorted(missing)}")
        mutations.append(Mutation(**raw))
    ids = [m.id for m in mutations]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise MutationError(f"{spec}: duplicate mutation id(s) {dupes}")
    return mutations


# ---------------------------------------------------------------------- copies


def source_files(repo: Path) -> list[str]:
    """Tracked files plus untracked, not ignored ones (what ``HEAD`` + the working tree hold)."""
    out = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name and (repo / name).is_file()})


def snapshot(repo: Path, parent: Path) -> Path:
    """Copy the checkout once (``HEAD`` + working tree): every run starts from this, so edits
    made while ``make mutate`` runs do not leak into it."""
    base = parent / "snapshot"
    for name in source_files(repo):
        target = base / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    return base


def make_copy(base: Path, parent: Path, label: str) -> Path:
    """A fresh copy of the snapshot ``base`` in a private dir of ``parent``, with the guard plugin."""
    root = Path(tempfile.mkdtemp(prefix=f"{_slug(label)}-", dir=parent)) / "repo"
    shutil.copytree(base, root, symlinks=True)
    (root / f"{GUARD_MODULE}.py").write_text(GUARD_SOURCE, encoding="utf-8")
    return root


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:40] or "m"


def copy_env(root: Path, repo: Path) -> dict[str, str]:
    """The environment of a run in ``root``: the copy first on ``sys.path`` everywhere."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    env["BOLNA_MUTATE_ROOT"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # tests/conftest.py finds the shared API docs beside the checkout: point at the original's
    shared = repo.parent / "shared"
    if "BOLNA_SHARED_DIR" not in env and shared.is_dir():
        env["BOLNA_SHARED_DIR"] = str(shared)
    env.pop("BOLNA_CHAOS_RESULTS", None)
    return env


def check_imports(python: str, root: Path, env: dict[str, str]) -> None:
    """Fail unless ``python`` imports the package and the tests from ``root``."""
    code = (
        "import airflow_provider_bolna, tests; print(airflow_provider_bolna.__file__); print(tests.__file__)"
    )
    out = subprocess.run(
        [python, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    paths = out.stdout.split()
    real = os.path.realpath(root) + os.sep
    if out.returncode != 0 or len(paths) != 2 or not all(os.path.realpath(p).startswith(real) for p in paths):
        raise RuntimeError(
            f"the copy at {root} is not what gets imported: {out.stdout!r} {out.stderr[-2000:]!r}"
        )


# ---------------------------------------------------------------------- runs


@dataclass
class Outcome:
    """The result of one run (a mutation, or the baseline)."""

    id: str
    verdict: str  # CAUGHT, MISSED, STALE, TIMEOUT, ERROR; PASSED/FAILED for the baseline
    seconds: float = 0.0
    exit_status: int | None = None
    first_failure: str = ""
    counts: str = ""
    selection: str = ""
    log: Path | None = None
    detail: str = ""
    changed: str = ""


def pytest_command(
    python: str, selection: list[str], keyword: str | None, extra: list[str], fail_fast: bool
) -> list[str]:
    cmd = [
        python,
        "-m",
        "pytest",
        "-p",
        GUARD_MODULE,
        "-p",
        "no:cacheprovider",
        "-m",
        MAKE_TEST_MARKERS,
        "-q",
        "-rfE",
        "--color=no",
    ]
    if fail_fast:
        cmd.append("-x")
    if keyword:
        cmd += ["-k", keyword]
    return cmd + extra + selection


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_COUNTS = re.compile(r"^=*\s*((?:\d+ \w+(?:, )?)+) in [\d.]+s", re.MULTILINE)


def run_pytest(
    cmd: list[str], root: Path, env: dict[str, str], log: Path, timeout: float
) -> tuple[int | None, float, str]:
    """Run ``cmd`` in ``root`` (own process group, killed whole on timeout); return status, time, output."""
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            status: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = None
    return status, time.monotonic() - started, log.read_text(errors="replace")


def _summarise(outcome: Outcome, output: str) -> None:
    failures = _FAILED.findall(output)
    outcome.first_failure = failures[0] if failures else ""
    counts = _COUNTS.findall(output)
    outcome.counts = counts[-1] if counts else ""


@dataclass
class Settings:
    python: str
    full: bool
    fail_fast: bool
    timeout: float
    extra: list[str]
    keep: bool
    workdir: Path
    logs: Path
    tests_override: list[str] | None


def selection_of(
    mutation: Mutation | None, settings: Settings, union: list[str] | None = None
) -> tuple[list[str], str | None]:
    if settings.full:
        return [], None
    if settings.tests_override is not None:
        return list(settings.tests_override), None
    if mutation is None:
        return list(union or []), None
    return list(mutation.tests), mutation.keyword


def run_one(
    mutation: Mutation | None, base: Path, settings: Settings, union: list[str] | None = None
) -> Outcome:
    """Copy, mutate (``None``: the baseline), check the imports, run pytest, judge."""
    label = mutation.id if mutation else "baseline"
    selection, keyword = selection_of(mutation, settings, union)
    shown = " ".join(selection) or "(all of make test)"
    if keyword:
        shown += f" -k {shlex.quote(keyword)}"
    outcome = Outcome(label, "ERROR", selection=shown)
    root = make_copy(base, settings.workdir, label)
    try:
        if mutation is not None:
            try:
                changed = mutation.apply(root)
            except MutationError as exc:
                outcome.verdict, outcome.detail = "STALE", str(exc)
                return outcome
            outcome.changed = str(changed.relative_to(root))
        env = copy_env(root, REPO)
        check_imports(settings.python, root, env)
        log = settings.logs / f"{_slug(label)}.log"
        outcome.log = log
        # the baseline runs to the end (to show every failure); mutants stop at the first
        cmd = pytest_command(
            settings.python, selection, keyword, settings.extra, settings.fail_fast and mutation is not None
        )
        status, seconds, output = run_pytest(cmd, root, env, log, settings.timeout)
        outcome.exit_status, outcome.seconds = status, seconds
        _summarise(outcome, output)
        if status is None:
            outcome.verdict = "TIMEOUT"
            outcome.detail = f"killed after {settings.timeout:.0f} s"
        elif status == GUARD_EXIT:
            outcome.verdict, outcome.detail = "ERROR", "imported code from outside the copy (see the log)"
        elif mutation is None:
            outcome.verdict = "PASSED" if status == 0 else "FAILED"
        elif status == 0:
            outcome.verdict = "MISSED"
        elif status in (1, 2):
            outcome.verdict = "CAUGHT"
            if status == 2 and not outcome.first_failure:
                outcome.first_failure = "(collection error)"
        else:
            outcome.verdict, outcome.detail = "ERROR", f"pytest exit status {status} (see the log)"
        return outcome
    except Exception as exc:  # noqa: BLE001 - one broken run must not hide the others' results
        outcome.verdict, outcome.detail = "ERROR", f"{type(exc).__name__}: {exc}"
        return outcome
    finally:
        if not settings.keep:
            shutil.rmtree(root.parent, ignore_errors=True)


# ---------------------------------------------------------------------- report


def describe_checkout(repo: Path) -> str:
    """``<short commit>`` and whether the working tree differs from it."""
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"`{commit}`" + (" + working-tree changes" if dirty else "")


def render(
    outcomes: list[Outcome],
    baseline: Outcome | None,
    settings: Settings,
    mutations: dict[str, Mutation],
    wall: float,
    checkout: str,
) -> str:
    """A markdown report: one row per mutation, then details."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# make mutate — {now}",
        "",
        (
            f"* checkout: {checkout}; "
            f"selection: {'all of `make test`' if settings.full else 'per mutation'} "
            f'(`-m "{MAKE_TEST_MARKERS}"`{", -x" if settings.fail_fast else ""}); wall time {wall:.0f} s'
        ),
    ]
    if baseline is not None:
        lines.append(
            f"* baseline (no mutation, same tests): **{baseline.verdict}** in {baseline.seconds:.0f} s"
            f" ({baseline.counts or 'no counts'})" + (f" — {baseline.detail}" if baseline.detail else "")
        )
    lines += [
        "",
        "| mutation | verdict | caught by (first failure) | s | tests run |",
        "| --- | --- | --- | ---: | --- |",
    ]
    for o in outcomes:
        lines.append(
            f"| `{o.id}` | **{o.verdict}** | {('`' + o.first_failure + '`') if o.first_failure else '–'} | "
            f"{o.seconds:.0f} | {o.selection} |"
        )
    caught = sum(o.verdict == "CAUGHT" for o in outcomes)
    lines += ["", f"{caught} of {len(outcomes)} caught."]
    details = [o for o in outcomes if o.verdict != "CAUGHT"]
    if details:
        lines += ["", "## Not caught", ""]
        for o in details:
            m = mutations.get(o.id)
            lines.append(
                f"* `{o.id}` ({o.verdict}): {m.description if m else ''}"
                + (f" — {o.detail}" if o.detail else "")
                + (f" Needs: {m.needs}" if m and m.needs else "")
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="the mutations (TOML)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ID",
        help="run these mutations only (repeatable; fnmatch patterns)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--check", action="store_true", help="only check that every anchor applies (no tests)"
    )
    parser.add_argument("--full", action="store_true", help="run all of `make test` for every mutation")
    parser.add_argument("--tests", nargs="+", metavar="PATH", help="run these tests for every mutation")
    parser.add_argument("--no-fail-fast", action="store_true", help="do not stop at the first failure (-x)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--jobs", type=int, default=1, help="mutations run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per run before it is killed")
    parser.add_argument("--keep", action="store_true", help="keep the copies (paths in the logs)")
    parser.add_argument(
        "--out", type=Path, default=REPO / ".mutate", help="logs and report (default .mutate/)"
    )
    parser.add_argument("--report", type=Path, help="markdown report path (default <out>/report.md)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with the test dependencies")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    try:
        mutations = load_mutations(args.spec)
    except (MutationError, tomllib.TOMLDecodeError, TypeError) as exc:
        print(f"mutate: {exc}", file=sys.stderr)
        return 2
    chosen = [m for m in mutations if not args.only or any(fnmatch.fnmatch(m.id, p) for p in args.only)]
    if not chosen:
        print(f"mutate: no mutation matches {args.only}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.id:32} {m.description}")
        return 0
    if args.check:
        bad = 0
        for m in chosen:
            try:
                path, at = m.locate(REPO)
                line = path.read_text(encoding="utf-8")[:at].count("\n") + 1
                print(f"ok     {m.id:32} {path.relative_to(REPO)}:{line}")
            except MutationError as exc:
                bad += 1
                print(f"STALE  {exc}")
        return 1 if bad else 0

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    logs = args.out / f"logs-{stamp}-{os.getpid()}"
    logs.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="bolna-mutate-"))
    settings = Settings(
        python=args.python,
        full=args.full,
        fail_fast=not args.no_fail_fast,
        timeout=args.timeout,
        extra=args.pytest_args,
        keep=args.keep,
        workdir=workdir,
        logs=logs,
        tests_override=args.tests,
    )
    started = time.monotonic()
    status = 0
    baseline = None
    try:
        checkout = describe_checkout(REPO)
        base = snapshot(REPO, workdir)
        if not args.no_baseline:
            union = sorted({t for m in chosen for t in m.tests})
            print(
                f"baseline: {' '.join(selection_of(None, settings, union)[0]) or 'all of make test'} ...",
                flush=True,
            )
            baseline = run_one(None, base, settings, union)
            print(
                f"baseline: {baseline.verdict} in {baseline.seconds:.0f} s ({baseline.counts}) {baseline.detail}",
                flush=True,
            )
            if baseline.verdict != "PASSED":
                status = 1
                print(
                    f"mutate: the selection fails without any mutation (log: {baseline.log}); "
                    "verdicts below would mean nothing",
                    file=sys.stderr,
                )
        outcomes: list[Outcome] = []
        if status == 0:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                futures = {pool.submit(run_one, m, base, settings): m for m in chosen}
                for future in concurrent.futures.as_completed(futures):
                    o = future.result()
                    outcomes.append(o)
                    print(
                        f"{o.verdict:8} {o.id:32} {o.seconds:6.0f} s  {o.first_failure or o.detail}",
                        flush=True,
                    )
            order = {m.id: i for i, m in enumerate(chosen)}
            outcomes.sort(key=lambda o: order[o.id])
            if any(o.verdict != "CAUGHT" for o in outcomes):
                status = 1
        report = render(
            outcomes, baseline, settings, {m.id: m for m in mutations}, time.monotonic() - started, checkout
        )
        target = args.report or (args.out / "report.md")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(report, encoding="utf-8")
        print()
        print(report)
        print(f"(report: {target}; logs: {logs})")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
