"""The mutant catalogs stay runnable: ``make mutants`` is not part of CI, so a catalog
whose code has moved would rot unseen. Each edit matches its file exactly once and each
mutant names test files that exist."""

from pathlib import Path

import pytest

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
