"""Which assembly ``portal_finalize`` takes over first (``portal.services.finalize.lease``)
and when it gives one up, on the run's database."""

from datetime import timedelta

import time_machine
from django.core.management import call_command
from django.utils import timezone

from portal.models import UploadSession
from portal.services.finalize import MAX_ATTEMPTS, lease
from tests.api_helpers import Api, make_token


def test_the_assembly_whose_lease_ran_out_first_is_taken_over_first(client, user, portal_storage):
    api, start = Api(client, make_token(user)), timezone.now()
    sessions = [api.start(b"x" * 10, 10)["id"] for _ in range(3)]
    for minutes, session in zip((2, 0, 1), sessions, strict=True):
        api.upload(session, b"x" * 10, 10)
        with time_machine.travel(start + timedelta(minutes=minutes)):
            lease.begin(session)

    with time_machine.travel(start + timedelta(hours=1)):
        taken = [lease.claim_expired() for _ in range(4)]

    assert [str(pk) if pk else None for pk in taken] == [*(sessions[i] for i in (1, 2, 0)), None]


def test_portal_finalize_makes_max_attempts_before_it_gives_up(client, user, portal_storage):
    """An assembly whose process died ``MAX_ATTEMPTS - 1`` times is tried once more; one
    that died ``MAX_ATTEMPTS`` times is failed."""
    api = Api(client, make_token(user))
    attempts = {}
    for made in (MAX_ATTEMPTS - 1, MAX_ATTEMPTS):
        session = api.start(b"x" * 10, 10)["id"]
        api.upload(session, b"x" * 10, 10)
        lease.begin(session)
        UploadSession.objects.filter(pk=session).update(
            assembly_attempts=made, assembly_lease_until=timezone.now() - timedelta(seconds=1)
        )
        attempts[session] = made

    call_command("portal_finalize")

    done = dict(UploadSession.objects.values_list("pk", "status"))
    assert {attempts[str(pk)]: status for pk, status in done.items()} == {
        MAX_ATTEMPTS - 1: UploadSession.Status.COMPLETE,
        MAX_ATTEMPTS: UploadSession.Status.FAILED,
    }
