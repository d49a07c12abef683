"""The mutant catalogs stay runnable: ``make mutants`` is not part of CI, so a catalog
whose code has moved would rot unseen. Each edit matches its file exactly once and each
mutant names test files that exist."""

from pathlib import Path

import pytest

from tests import mechanical
from tests.conftest import ROOT
from tests.mutants import ALL_MUTANTS, apply, catalogs

ALL = list(ALL_MUTANTS)


@pytest.mark.parametrize("mutant", ALL, ids=[mutant.name for mutant in ALL])
def test_every_mutant_applies_once_and_names_real_tests(mutant):
    assert apply(ROOT / mutant.path, mutant.edits) is not None, f"{mutant.name} is stale"
    for test in mutant.tests:
        path = test.split("::")[0]
        if path.endswith(".py") or "/" in path:
            assert (ROOT / path).exists(), f"{mutant.name} names {path}"


def test_every_catalog_is_found():
    assert {"mutant_catalog", "mutant_catalog_behaviour", "mutant_sample4"} <= set(catalogs())
    assert len(ALL) == sum(len(mutants) for mutants in catalogs().values()) > 100


def test_names_are_unique():
    names = [mutant.name for mutant in ALL]
    assert len(names) == len(set(names))


def test_a_stale_edit_is_seen(tmp_path):
    source = Path(tmp_path / "module.py")
    source.write_text("x = 1\nx = 1\n")
    assert apply(source, [("x = 1\n", "x = 2\n")]) is None
    assert apply(source, [("y = 1\n", "y = 2\n")]) is None
    assert apply(source, [("x = 1\nx", "x = 2\nx")]) == "x = 2\nx = 1\n"


def test_the_mechanical_pool_is_the_code_lines_only(tmp_path):
    (tmp_path / "portal").mkdir()
    (tmp_path / "portal" / "module.py").write_text(
        '"""Doc\nstring."""\n\n# a comment\nX = 1\n\n\ndef f():\n    """Doc."""\n    return X\n'
    )
    (tmp_path / "portal" / "migrations").mkdir()
    (tmp_path / "portal" / "migrations" / "0001.py").write_text("Y = 2\n")
    assert mechanical.pool(tmp_path) == [
        ("portal/module.py", 5),
        ("portal/module.py", 8),
        ("portal/module.py", 10),
    ]


def test_mechanical_mutants_change_the_line_and_still_parse():
    source = 'def f(a, b):\n    if a < b and a:\n        return g(a, key="k")\n    return None\n'
    at_if = {what: text for what, line, text in mechanical.mutants_at(source, 2)}
    assert at_if["condition negated"].splitlines()[1] == "    if not (a < b and a):"
    assert at_if["Lt flipped"].splitlines()[1] == "    if a <= b and a:"
    assert at_if["operand 1 dropped"].splitlines()[1] == "    if a < b:"
    at_return = {what for what, line, text in mechanical.mutants_at(source, 3)}
    assert {"returns None", "key= dropped", "string changed"} <= at_return
    from_def = mechanical.mutants_at(source, 1)  # a def line: its whole function
    assert {line for what, line, text in from_def} == {2, 3, 4}
