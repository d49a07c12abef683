"""Mechanical mutants: finds the lines no test pins, where hand-picked catalogs miss them.

``make mutants-mechanical`` (``.venv/bin/python tests/mechanical.py [--sample N] [--seed S]
[--files GLOB ...] [--lines PATH:LINE ...] [--every] [--extra-tests FILE ...]``) first
records which tests run each line (the fast suite under coverage with test contexts, into
``var/mutants/``; ``--reuse`` keeps an earlier record), then draws lines from the same
pool as the random samples (``pool``), makes one mechanical change at each (a comparison,
operator, constant or boolean flipped, a call, keyword, raise or return dropped, an ``if``
negated; ``--every`` tries them all) and runs only the tests that ran that line on a copy of
the tree. A survivor is a line whose change no test notices: pin its behaviour or, when no
behaviour can change (a help text, a closed-anyway file), leave it. Lines run only at import
time (module and class level) and lines no in-process test runs are reported as such
unless ``--extra-tests`` names tests for them. Not part of CI: it takes minutes.
"""

import argparse
import ast
import fnmatch
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.tree import copy_tree  # noqa: E402  (after the path is set)

RECORD = ROOT / "var" / "mutants" / "coverage"
META = ("tests/test_mutant_catalogs.py", "tests/test_architecture.py")
COMPARE = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE,
    ast.GtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
OPERATOR = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
}  # fmt: skip


def pool(root=ROOT):
    """(path, line) of every code line of portal/ and boot/: not blank, not a comment, not
    in a docstring, migrations left out; the samples' draws index this list."""
    files = sorted(
        path
        for path in [*root.glob("portal/**/*.py"), *root.glob("boot/**/*.py")]
        if "migrations" not in path.parts and "__pycache__" not in path.parts
    )
    lines = []
    for path in files:
        text = path.read_text()
        docstrings = _docstring_lines(ast.parse(text))
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#") and number not in docstrings:
                lines.append((str(path.relative_to(root)), number))
    return lines


def _docstring_lines(tree):
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.update(range(first.lineno, first.end_lineno + 1))
    return found


def changes(node):
    """(what, replacement source) for each mechanical change of one node."""
    if isinstance(node, ast.Compare):
        return [_compare(node, index) for index, op in enumerate(node.ops) if type(op) in COMPARE]
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATOR:
        swapped = ast.BinOp(node.left, OPERATOR[type(node.op)](), node.right)
        return [(f"{type(node.op).__name__} swapped", ast.unparse(swapped))]
    if isinstance(node, ast.BoolOp):
        return _bool_op(node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return [("not dropped", ast.unparse(node.operand))]
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.Return) and node.value is not None:
        return [("returns None", "return None")]
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return [("call dropped", "pass")]
    if isinstance(node, (ast.Raise, ast.AugAssign)):
        return [(f"{type(node).__name__} dropped", "pass")]
    if isinstance(node, ast.Call):
        return [_without_keyword(node, kw) for kw in node.keywords if kw.arg]
    return []


def _compare(node, index):
    ops = list(node.ops)
    ops[index] = COMPARE[type(ops[index])]()
    return f"{type(node.ops[index]).__name__} flipped", ast.unparse(
        ast.Compare(node.left, ops, node.comparators)
    )


def _bool_op(node):
    other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    found = [("and/or swapped", ast.unparse(ast.BoolOp(other, node.values)))]
    for index in range(len(node.values)):
        rest = node.values[:index] + node.values[index + 1 :]
        kept = rest[0] if len(rest) == 1 else ast.BoolOp(node.op, rest)
        found.append((f"operand {index} dropped", ast.unparse(kept)))
    return found


def _constant(value):
    if isinstance(value, bool):
        return [("boolean flipped", repr(not value))]
    if isinstance(value, int):
        return [("integer + 1", repr(value + 1))] + ([("integer 0", "0")] if value else [])
    if isinstance(value, float):
        return [("float doubled", repr(value * 2 or 1.0))]
    if isinstance(value, str) and 0 < len(value) < 200:
        return [("string changed", repr("X" + value[1:]))]
    return [("None to 0", "0")] if value is None else []


def _without_keyword(node, keyword):
    kept = [kw for kw in node.keywords if kw is not keyword]
    return f"{keyword.arg}= dropped", ast.unparse(ast.Call(node.func, node.args, kept))


def mutants_at(text, line):
    """(what, line changed, mutated text) for the nodes starting at ``line``, else for the
    nodes of the smallest statement holding it (a ``def`` line: its function)."""
    tree = ast.parse(text)
    found = _mutants(text, tree, lambda node: node.lineno == line)
    holding = [
        n for n in ast.walk(tree) if isinstance(n, ast.stmt) and n.lineno <= line <= n.end_lineno
    ]
    if found or not holding:
        return found
    inner = min(holding, key=lambda node: node.end_lineno - node.lineno)
    return _mutants(text, tree, lambda node: inner.lineno <= node.lineno <= inner.end_lineno)


def _mutants(text, tree, where):
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    found = []
    for node in ast.walk(tree):
        if not hasattr(node, "end_lineno") or not where(node):
            continue
        target = node.test if isinstance(node, (ast.If, ast.While)) else node
        replacements = changes(node)
        if isinstance(node, (ast.If, ast.While)):
            replacements = [("condition negated", f"not ({ast.unparse(node.test)})")]
        begin = _offset(text, starts, target.lineno, target.col_offset)
        end = _offset(text, starts, target.end_lineno, target.end_col_offset)
        for what, source in replacements:
            mutated = text[:begin] + source + text[end:]
            if source != text[begin:end] and _parses(mutated):
                found.append((what, node.lineno, mutated))
    return found


def _offset(text, starts, line, column):
    """The character offset of ``ast``'s (line, UTF-8 byte column)."""
    line_text = text[starts[line - 1] : starts[line]]
    return starts[line - 1] + len(line_text.encode()[:column].decode())


def _parses(text):
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def record():
    """Run the fast suite under coverage, each line tagged with the tests that ran it."""
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    config = RECORD.parent / "coveragerc"
    config.write_text(f"[run]\nsource = portal,boot\nomit = */migrations/*\ndata_file = {RECORD}\n")
    deselect = [arg for path in META for arg in ("--deselect", path)]
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-m", "not slow and not reliability",
         f"--cov-config={config}", "--cov", "--cov-context=test", "--cov-report=", *deselect],
        cwd=ROOT, check=False,
    )  # fmt: skip


def tests_running(data, path, line):
    """Node ids of the tests that ran ``path:line``; None when only imports ran it."""
    contexts = data.contexts_by_lineno(str(ROOT / path)).get(line, [])
    if contexts and not any(contexts):
        return None
    return sorted({context.rsplit("|", 1)[0] for context in contexts if context})


def run_tests(tree, tests):
    """Bytecode is not cached: a change and its undo of the same size within one second
    would otherwise share a stale ``.pyc``."""
    if not tests:
        return "not run"
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:xdist"]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([*args, *tests], cwd=tree, env=env, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        return "killed"
    return "survived" if proc.returncode in (0, 5) else "killed"


def draw(args):
    lines = [entry for entry in pool() if any(fnmatch.fnmatch(entry[0], g) for g in args.files)]
    if args.lines:
        return [(spec.rsplit(":", 1)[0], int(spec.rsplit(":", 1)[1])) for spec in args.lines]
    rng = random.Random(args.seed)
    return [lines[rng.randrange(len(lines))] for _ in range(args.sample)] if args.sample else lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=100, help="lines drawn (0: every line)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--files", nargs="+", default=["*"], help="globs, e.g. 'portal/storage/*'")
    parser.add_argument("--lines", nargs="+", default=[], help="PATH:LINE instead of a draw")
    parser.add_argument("--every", action="store_true", help="every change at a line, not one")
    parser.add_argument("--extra-tests", nargs="+", default=[], help="run these for every mutant")
    parser.add_argument("--reuse", action="store_true", help="keep the recorded coverage")
    args = parser.parse_args()
    from coverage import CoverageData

    if not (args.reuse and RECORD.exists()):
        record()
    data = CoverageData(basename=str(RECORD))
    data.read()
    with tempfile.TemporaryDirectory(prefix="portal-mechanical-") as temp:
        tree = Path(temp)
        copy_tree(ROOT, tree)
        (tree / ".venv").symlink_to(ROOT / ".venv")
        return report(args, tree, data)


def report(args, tree, data):
    rng = random.Random(args.seed)
    outcomes = []
    for path, line in draw(args):
        source = (tree / path).read_text()
        found = mutants_at(source, line)
        if found and not args.every:
            found = [rng.choice(found)]
        for what, at, mutated in found:
            ran = tests_running(data, path, at)
            tests = [*(ran or []), *args.extra_tests]
            (tree / path).write_text(mutated)
            try:
                outcome = run_tests(tree, tests)
            finally:
                (tree / path).write_text(source)
            if outcome == "not run":
                outcome = "import-time" if ran is None else "uncovered"
            outcomes.append(outcome)
            print(
                json.dumps({"outcome": outcome, "at": f"{path}:{at}", "change": what}), flush=True
            )
    killed = outcomes.count("killed")
    print(f"killed {killed} of {len(outcomes)}; survivors and unrun lines above", flush=True)
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
