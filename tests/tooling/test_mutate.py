"""``scripts/mutate.py`` (``make mutate``): a mutation applies exactly once or fails loudly, the
spec is well-formed, and the copy — not the editable install of this checkout — is what runs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bolna_mutate", REPO / "scripts" / "mutate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


mutate = _load()


def _tree(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(text)
    (tmp_path / "pkg" / "b.py").write_text("x = 1\n")
    return tmp_path


def _mutation(**changes: object) -> object:
    values = {
        "id": "m",
        "description": "d",
        "files": ["pkg/**/*.py"],
        "anchor": "if a > b:",
        "replacement": "if a >= b:",
    }
    values.update(changes)
    return mutate.Mutation(**values)


def test_a_mutation_replaces_its_anchor_once(tmp_path: Path) -> None:
    root = _tree(tmp_path, "def f(a, b):\n    if a > b:\n        return 1\n")
    changed = _mutation().apply(root)
    assert changed == root / "pkg" / "a.py"
    assert changed.read_text() == "def f(a, b):\n    if a >= b:\n        return 1\n"


def test_a_missing_anchor_is_stale_not_skipped(tmp_path: Path) -> None:
    root = _tree(tmp_path, "def f(a, b):\n    if b < a:\n        return 1\n")
    with pytest.raises(mutate.MutationError, match="anchor not found"):
        _mutation().apply(root)


def test_an_ambiguous_anchor_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, "if a > b:\n    pass\nif a > b:\n    pass\n")
    with pytest.raises(mutate.MutationError, match="found 2 times"):
        _mutation().apply(root)
    assert (root / "pkg" / "a.py").read_text().count("if a > b:") == 2  # nothing half-applied


def test_the_spec_refuses_unknown_keys_and_duplicate_ids(tmp_path: Path) -> None:
    entry = '[[mutation]]\nid = "x"\ndescription = "d"\nfiles = ["a"]\nanchor = "a"\nreplacement = "b"\n'
    spec = tmp_path / "m.toml"
    spec.write_text(entry + entry)
    with pytest.raises(mutate.MutationError, match="duplicate"):
        mutate.load_mutations(spec)
    spec.write_text(entry + 'tset = ["typo"]\n')
    with pytest.raises(mutate.MutationError, match="unknown key"):
        mutate.load_mutations(spec)


def test_the_projects_mutations_are_well_formed() -> None:
    """Ids unique, every named test path exists (anchors are checked by `make mutate --check`)."""
    mutations = mutate.load_mutations(mutate.DEFAULT_SPEC)
    assert {
        "canary",
        "blind-repost",
        "mark-pending-removed",
        "fragment-redaction-off",
        "gone-limit-off-by-one",
        "async-ignores-limiter-wait",
    } <= {m.id for m in mutations}
    for m in mutations:
        assert m.tests, f"{m.id}: no test selection"
        for test in m.tests:
            assert (REPO / test.split("::")[0]).exists(), f"{m.id}: {test} does not exist"


def test_the_copy_is_what_gets_imported(tmp_path: Path) -> None:
    base = mutate.snapshot(REPO, tmp_path)
    root = mutate.make_copy(base, tmp_path, "probe")
    env = mutate.copy_env(root, REPO)
    mutate.check_imports(sys.executable, root, env)  # passes: the copy comes first
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    with pytest.raises(RuntimeError, match="not what gets imported"):
        mutate.check_imports(sys.executable, root.parent, env)  # the editable install answers instead


def test_the_guard_stops_a_session_that_imports_the_original(tmp_path: Path) -> None:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / f"{mutate.GUARD_MODULE}.py").write_text(mutate.GUARD_SOURCE)
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    env = {**os.environ, "PYTHONPATH": str(guard_dir), "BOLNA_MUTATE_ROOT": str(tmp_path / "elsewhere")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            mutate.GUARD_MODULE,
            "-p",
            "no:cacheprovider",
            "-q",
            str(tmp_path / "test_nothing.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == mutate.GUARD_EXIT, out.stdout[-2000:] + out.stderr[-2000:]
    assert "imported from outside the copy" in out.stdout + out.stderr
