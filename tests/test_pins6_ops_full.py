"""``/ready`` on a full volume (``portal.health.checks``): "no room" is found however the
backend chained it."""

import errno

from django.core.files.storage import storages
from django.test import Client

from tests.conftest import apply_storage


def test_no_room_raised_while_handling_another_error_is_still_full(
    db, no_probe_cache, data_dir, monkeypatch
):
    """A backend that hits ENOSPC and then fails in its cleanup (``raise`` inside
    ``except``, no ``from``) chains it only as ``__context__``: still "full", still 200."""
    apply_storage(no_probe_cache, "local", data_dir)

    def save(name, content, max_length=None):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("could not remove the partial file")  # noqa: B904

    monkeypatch.setattr(storages["portal_final"], "save", save)
    response = Client().get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "storage:portal_temp": "ok",
        "storage:portal_final": "full",
    }
