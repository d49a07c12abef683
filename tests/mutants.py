"""Mutation testing by hand-picked mutants: does the suite notice a careless change?

``make mutants`` (or ``.venv/bin/python tests/mutants.py [--catalog NAME ...] [--only
WORD ...] [--list]``) copies the tracked tree to a temp directory, then for each mutant
of the catalogs (every ``tests/mutant_*.py`` with a ``MUTANTS`` tuple) applies its edit
to the copy, runs the tests that should notice, and restores the file. A mutant the
tests kill is fine; one that *survives* means a regression of that kind would pass
unnoticed: pin it with a test. Each edit must match the code exactly once; a mutant whose
code has moved is reported ``stale`` (update its text there). Not part of CI: it takes minutes.
"""

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tree import copy_tree  # noqa: E402  (after the path is set)


def catalogs():
    """Each catalog module's name and mutants, the hand-written catalog first."""
    names = sorted(path.stem for path in (ROOT / "tests").glob("mutant_*.py"))
    return {
        name: importlib.import_module(f"tests.{name}").MUTANTS
        for name in sorted(names, key=lambda name: name != "mutant_catalog")
    }


ALL_MUTANTS = tuple(mutant for mutants in catalogs().values() for mutant in mutants)


def apply(path, edits):
    """The mutated text, or None when an edit does not match exactly once (stale)."""
    text = path.read_text()
    for old, new in edits:
        if text.count(old) != 1:
            return None
        text = text.replace(old, new)
    return text


def run_mutant(mutant, tree, env):
    if mutant.needs_postgres and not env.get("DATABASE_URL", "").startswith("postgres"):
        return "skipped", 0.0
    path = tree / mutant.path
    original = path.read_text()
    mutated = apply(path, mutant.edits)
    if mutated is None:
        return "stale", 0.0
    path.write_text(mutated)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", *mutant.tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        path.write_text(original)
    return ("killed" if proc.returncode != 0 else "survived"), time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="run the mutants whose name has one of these")
    parser.add_argument("--catalog", nargs="+", help="only these catalogs (e.g. mutant_sample4)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    chosen = [
        m
        for name, mutants in catalogs().items()
        if not args.catalog or name in args.catalog
        for m in mutants
        if not args.only or any(word in m.name for word in args.only)
    ]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name}  ({mutant.path}; {', '.join(mutant.tests)})")
        return 0
    with tempfile.TemporaryDirectory(prefix="portal-mutants-") as temp:
        tree = Path(temp)
        copy_tree(ROOT, tree)
        # Tests that start gunicorn or moto run them from ROOT/.venv: the copy's ROOT.
        (tree / ".venv").symlink_to(ROOT / ".venv")
        # No bytecode cache: a mutant and its undo of the same size within one second
        # would share a stale .pyc.
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PORTAL_CRASH_TRIALS": "5",
        }
        results = []
        for mutant in chosen:
            outcome, seconds = run_mutant(mutant, tree, env)
            results.append((mutant, outcome))
            print(f"{outcome:8} {seconds:6.1f}s  {mutant.name}", flush=True)
    survived = [m for m, outcome in results if outcome not in ("killed", "skipped")]
    killed = sum(outcome == "killed" for _, outcome in results)
    skipped = len(results) - killed - len(survived)
    print(f"\n{killed} of {len(results)} mutants killed; {len(survived)} survived or stale")
    if skipped:
        print(f"{skipped} need PostgreSQL: run with DATABASE_URL=postgres://...")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
