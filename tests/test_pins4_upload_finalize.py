"""Pins for the upload area, fourth round (issue #31): a storage outage met by the API's
own assembly does not count as an attempt."""

from django.utils import timezone

from portal.models import UploadPart, UploadSession
from tests.api_helpers import Api, error_code, make_token
from tests.conftest import apply_storage


def test_an_outage_during_the_requests_assembly_is_not_counted_and_is_claimable_at_once(
    client, user, settings, data_dir
):
    """A 503 from storage mid-assembly hands the lease back without using up one of the
    session's attempts (an outage is retried as long as it lasts, not failed after ten)."""
    apply_storage(settings, "local", data_dir)
    api = Api(client, make_token(user))
    data = b"z" * 25
    session = api.start(data, 10)
    api.upload(session["id"], data, 10)
    part = data_dir / "temp" / UploadPart.objects.get(part_number=2).temp_key
    part.unlink()
    part.mkdir()

    response = api.finalize(session["id"])

    assert (response.status_code, error_code(response)) == (503, "storage_unavailable")
    row = UploadSession.objects.get()
    assert (row.status, row.assembly_attempts) == ("finalizing", 0)
    assert row.assembly_lease_until <= timezone.now()
