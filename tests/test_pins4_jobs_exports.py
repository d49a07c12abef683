"""Pins for the jobs area, fourth round (issue #31): the packages' declared exports."""

import importlib

import pytest


@pytest.mark.parametrize(
    "package", ["portal.services.outbox", "portal.services.finalize", "portal.storage"]
)
def test_every_declared_export_of_the_job_packages_imports(package):
    """``__all__`` is the packages' public interface: each name in it is importable, so a
    ``from ... import *`` (a shell session, a script) does not fail on a stale name."""
    module = importlib.import_module(package)
    namespace = {}
    exec(f"from {package} import *", namespace)
    assert set(module.__all__) <= set(namespace)
