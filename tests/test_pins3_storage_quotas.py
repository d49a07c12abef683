"""Which sessions count against the owner's quotas (``guards.counted``): open ones until
their expiry, and finalizing ones whatever their expiry says (their parts still hold
storage); finished, failed and aborted ones no longer."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from portal.models import UploadSession
from tests.api_helpers import Api, make_token


@pytest.fixture
def api(client, user, portal_storage):
    return Api(client, make_token(user))


def past_expiry(session_id, status):
    UploadSession.objects.filter(pk=session_id).update(
        status=status, expires_at=timezone.now() - timedelta(hours=1)
    )


def test_a_finalizing_session_past_its_expiry_still_counts_against_both_quotas(api, settings):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    settings.PORTAL_MAX_PENDING_BYTES_PER_USER = 1000
    past_expiry(api.start(b"x" * 600, 600)["id"], UploadSession.Status.FINALIZING)

    refused = api.create(filename="next.bin", size_bytes=10)
    assert refused.status_code == 429
    assert refused.json()["error"]["limit"] == "PORTAL_MAX_OPEN_SESSIONS_PER_USER"

    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 2
    refused = api.create(filename="next.bin", size_bytes=401)
    assert refused.json()["error"]["limit"] == "PORTAL_MAX_PENDING_BYTES_PER_USER"
    assert api.create(filename="next.bin", size_bytes=400).status_code == 201


@pytest.mark.parametrize("status", ["complete", "failed", "aborted"])
def test_a_finished_session_counts_no_more(api, settings, status):
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    session = api.start(b"x" * 10, 10)["id"]
    UploadSession.objects.filter(pk=session).update(status=status)
    assert api.create(filename="next.bin", size_bytes=10).status_code == 201


def test_an_open_session_counts_until_the_instant_it_expires(api, settings):
    """At its ``expires_at`` a session is expired (``expires_at > now`` counts)."""
    settings.PORTAL_MAX_OPEN_SESSIONS_PER_USER = 1
    session = UploadSession.objects.get(pk=api.start(b"x" * 10, 10)["id"])
    with time_machine.travel(session.expires_at - timedelta(microseconds=1), tick=False):
        assert api.create(filename="next.bin", size_bytes=10).status_code == 429
    with time_machine.travel(session.expires_at, tick=False):
        assert api.create(filename="next.bin", size_bytes=10).status_code == 201
