"""Weak pins in cleanup (issue #31, fifth round): data that lets a wrong step pass too."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import UploadSession
from portal.services import chunks, cleanup
from tests.seed import PART_BYTES, make_session


@pytest.mark.django_db
def test_a_part_sliding_the_ttl_between_candidate_query_and_lock_keeps_its_session_open(
    portal_storage, user, monkeypatch
):
    """The existing interleaving test only changes statuses; here the session stays open
    and a part slides its TTL after the stale step read its candidates. A step that
    re-checks the status but not ``expires_at`` on the locked row would fail an upload the
    client is actively feeding."""
    from portal.services.cleanup import stale

    past = timezone.now() - timedelta(minutes=1)
    fed = make_session(user, total_parts=3, received=[1], expires_at=past)
    idle = make_session(user, total_parts=3, received=[1], expires_at=past)
    real_batches = stale.leaving_batches
    interleaved = []

    def batches_with_a_part_arriving(queryset, run):
        for ids in real_batches(queryset, run):
            if not interleaved:
                assert {fed.pk, idle.pk} <= set(ids)
                # The client's request found the session still live (its TTL not yet
                # read as past), and its part slides the TTL.
                UploadSession.objects.filter(pk=fed.pk).update(
                    expires_at=timezone.now() + timedelta(minutes=5)
                )
                part = io.BytesIO(PART_BYTES)
                chunks.receive_part(user, fed.pk, 2, part, str(len(PART_BYTES)))
                interleaved.append(ids)
            yield ids

    monkeypatch.setattr(stale, "leaving_batches", batches_with_a_part_arriving)

    result = cleanup.cleanup_stale_sessions()

    assert interleaved, "the hook never ran"
    assert result.counts == {"sessions_expired": 1, "files_failed": 1}
    statuses = dict(UploadSession.objects.values_list("pk", "status"))
    assert statuses[idle.pk] == UploadSession.Status.FAILED
    assert statuses[fed.pk] in UploadSession.OPEN_STATUSES
    fed.refresh_from_db()
    assert fed.expires_at > timezone.now()
    assert fed.failure_reason == ""
