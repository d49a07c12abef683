"""/ready's storage check on a volume that is full, whatever the storage backend wraps the
kernel's ENOSPC in (docs/configuration.md, "Free space"): a backend that reports a failed
save as an error of its own, raised while handling the ENOSPC (``__context__``) or from it
(``__cause__``), still means "full" (200), never "unavailable" (503, out of rotation).

Real small tmpfs volumes (``tests.volumes``); the wrapping backend is a storage class of
this module, as an operator's third-party storage would be.
"""

import copy
import logging
import time

import pytest
from django.test import Client

from portal.health import executor as probes
from portal.storage.local import LocalStorage
from tests.conftest import apply_storage
from tests.volumes import KIB, fill_up


class SaveFailed(Exception):
    """A storage backend's own error for a save that did not work."""


class ImplicitlyWrapping(LocalStorage):
    """Raises its own error while handling the OS error (``__context__`` only)."""

    def _save(self, name, content):
        try:
            return super()._save(name, content)
        except OSError:
            raise SaveFailed(name)  # noqa: B904 - the implicit chain is the point


class ExplicitlyWrapping(LocalStorage):
    """Raises its own error from the OS error (``__cause__``)."""

    def _save(self, name, content):
        try:
            return super()._save(name, content)
        except OSError as exc:
            raise SaveFailed(name) from exc


class TwiceWrapping(LocalStorage):
    """The OS error two links down the chain: cause, then context."""

    def _save(self, name, content):
        try:
            try:
                return super()._save(name, content)
            except OSError as exc:
                raise SaveFailed(f"{name}: first") from exc
        except SaveFailed:
            raise SaveFailed(f"{name}: second")  # noqa: B904


class LoopingChain(LocalStorage):
    """Fails every save with an error whose chain loops back to itself (no errno)."""

    def _save(self, name, content):
        first, second = SaveFailed(f"{name}: first"), SaveFailed(f"{name}: second")
        first.__context__, second.__context__ = second, first
        raise first


BACKENDS = {
    "context": ImplicitlyWrapping,
    "cause": ExplicitlyWrapping,
    "two links": TwiceWrapping,
}


@pytest.fixture(autouse=True)
def fresh_probe_cache(settings):
    settings.PORTAL_READY_CACHE_SECONDS = 0
    probes.results.clear()
    yield
    probes.results.clear()


def use_backend(settings, cls):
    """Both portal aliases through ``cls``, at the same roots as before."""
    stores = copy.deepcopy(settings.STORAGES)
    for alias in ("portal_temp", "portal_final"):
        stores[alias]["BACKEND"] = f"{cls.__module__}.{cls.__qualname__}"
    settings.STORAGES = stores


@pytest.mark.parametrize("chain", sorted(BACKENDS))
def test_a_full_volume_is_full_however_the_backend_wraps_enospc(
    chain, db, small_volume, data_dir, settings
):
    small_volume(data_dir, 512 * KIB)
    apply_storage(settings, "local", data_dir)
    use_backend(settings, BACKENDS[chain])
    assert Client().get("/ready").status_code == 200  # room left: the backend saves
    probes.results.clear()
    fill_up(data_dir)

    ready = Client().get("/ready")

    assert ready.status_code == 200, ready.content
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "storage:portal_temp": "full",
            "storage:portal_final": "full",
        },
    }


@pytest.mark.parametrize("chain", sorted(BACKENDS))
def test_a_wrapped_error_that_is_not_enospc_is_unavailable(
    chain, db, small_volume, data_dir, settings
):
    """A read-only temp volume (EROFS in the chain): broken, not full."""
    (data_dir / "final").mkdir()
    small_volume(data_dir / "temp", 256 * KIB, "ro")
    apply_storage(settings, "local", data_dir)
    use_backend(settings, BACKENDS[chain])

    ready = Client().get("/ready")

    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": "ok",
        "storage:portal_temp": "unavailable",
        "storage:portal_final": "ok",
    }


def test_an_error_chain_that_loops_is_walked_once(db, data_dir, settings, caplog):
    """The walk down ``__cause__``/``__context__`` stops at an error it saw: the check
    answers "unavailable" at once, with the backend's own error logged."""
    apply_storage(settings, "local", data_dir)
    settings.PORTAL_HEALTH_CHECK_TIMEOUT_SECONDS = 2
    use_backend(settings, LoopingChain)
    started = time.monotonic()

    with caplog.at_level(logging.WARNING, logger="portal.health"):
        ready = Client().get("/ready")

    assert time.monotonic() - started < 1.5
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage:portal_temp"] == "unavailable"
    failed = {r.check: r for r in caplog.records if getattr(r, "event", "") == "ready.check_failed"}
    assert failed["storage:portal_temp"].error_type == "SaveFailed"
