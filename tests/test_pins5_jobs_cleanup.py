"""Weak pins in cleanup (issue #31, fifth round): data that lets a wrong step pass too."""

import io
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import UploadSession
from portal.services import chunks, cleanup
from portal.services.cleanup import stale
from tests.commands import run_command
from tests.log_helpers import events_named
from tests.seed import PART_BYTES, make_session


def feed_after_candidates_are_read(monkeypatch, user, session):
    """Once the stale step has read its candidates and before it locks them, a part of
    ``session`` arrives and slides its TTL; the list of batches the hook saw."""
    real_batches = stale.leaving_batches
    seen = []

    def batches_with_a_part_arriving(queryset, run):
        for ids in real_batches(queryset, run):
            if not seen:
                assert session.pk in ids
                # The client's request found the session still live, and its part
                # slides the TTL.
                UploadSession.objects.filter(pk=session.pk).update(
                    expires_at=timezone.now() + timedelta(minutes=5)
                )
                part = io.BytesIO(PART_BYTES)
                chunks.receive_part(user, session.pk, 2, part, str(len(PART_BYTES)))
            seen.append(ids)
            yield ids

    monkeypatch.setattr(stale, "leaving_batches", batches_with_a_part_arriving)
    return seen


@pytest.mark.django_db
def test_a_part_sliding_the_ttl_between_candidate_query_and_lock_keeps_its_session_open(
    portal_storage, user, monkeypatch
):
    """The existing interleaving test only changes statuses; here the session stays open
    and a part slides its TTL after the stale step read its candidates. A step that
    re-checks the status but not ``expires_at`` on the locked row would fail an upload the
    client is actively feeding."""
    past = timezone.now() - timedelta(minutes=1)
    fed = make_session(user, total_parts=3, received=[1], expires_at=past)
    idle = make_session(user, total_parts=3, received=[1], expires_at=past)
    seen = feed_after_candidates_are_read(monkeypatch, user, fed)

    result = cleanup.cleanup_stale_sessions()

    assert seen and idle.pk in seen[0], "the hook never ran"
    assert result.counts == {"sessions_expired": 1, "files_failed": 1}
    statuses = dict(UploadSession.objects.values_list("pk", "status"))
    assert statuses[idle.pk] == UploadSession.Status.FAILED
    assert statuses[fed.pk] in UploadSession.OPEN_STATUSES
    fed.refresh_from_db()
    assert fed.expires_at > timezone.now()
    assert fed.failure_reason == ""


@pytest.mark.django_db
def test_a_batch_whose_candidates_were_all_rescued_logs_no_expiry(
    portal_storage, user, monkeypatch, caplog
):
    """A batch that expired nothing (its one candidate got a part meanwhile) must not log
    "expired 0 upload sessions": operators count ``session.expired`` lines and their
    ``count``, and an empty one reads as a cleanup that expired something."""
    past = timezone.now() - timedelta(minutes=1)
    fed = make_session(user, total_parts=3, received=[1], expires_at=past)
    seen = feed_after_candidates_are_read(monkeypatch, user, fed)
    caplog.set_level(logging.DEBUG, logger="portal.services.cleanup")

    result = cleanup.cleanup_stale_sessions()

    assert seen == [[fed.pk]], "the hook never ran"
    assert result.counts == {"sessions_expired": 0, "files_failed": 0}
    assert events_named(caplog, "session.expired") == []
    fed.refresh_from_db()
    assert fed.status in UploadSession.OPEN_STATUSES


@pytest.mark.django_db
def test_the_finished_line_of_a_dry_run_says_so_and_a_real_run_does_not(portal_storage, caplog):
    """An operator scanning the text log sees "cleanup finished (dry run)" for a rehearsal
    that deleted nothing; a real run's line must not carry the marker, nor a rehearsal's
    lack it (the ``dry_run`` field alone is easy to miss in a text log)."""
    caplog.set_level(logging.INFO, logger="portal")
    messages = {}
    for args in (("--dry-run",), ()):
        caplog.clear()
        assert run_command("portal_cleanup", *args).code == 0
        (finished,) = events_named(caplog, "cleanup.finished")
        messages[args] = (finished.getMessage(), finished.dry_run)
    assert messages == {
        ("--dry-run",): ("cleanup finished (dry run)", True),
        (): ("cleanup finished", False),
    }
