"""The admin's search boxes: an operator pastes an id, a key or a name from a log line or a
bug report and finds that row (and not its neighbour). Each search field is tried on its own
so a field dropped or misspelt shows as a missing row or an error page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import OutboxEvent, UploadSession
from tests.admin_helpers import make_session

pytestmark = pytest.mark.django_db


def found(admin_client, model, query):
    response = admin_client.get(f"/admin/portal/{model}/", {"q": query})
    assert response.status_code == 200, response.content
    return {obj.pk for obj in response.context["cl"].result_list}


def test_upload_parts_are_found_by_their_session_id_and_temp_key(admin_client, admin_user):
    session = make_session(admin_user, parts=[1, 2])
    other = make_session(admin_user, parts=[1])
    parts = {p.part_number: p.pk for p in session.parts.all()}

    assert found(admin_client, "uploadpart", str(session.pk)) == set(parts.values())
    assert found(admin_client, "uploadpart", f"temp/{session.pk}/part-00002") == {parts[2]}
    assert found(admin_client, "uploadpart", f"temp/{other.pk}/") == {other.parts.get().pk}


def test_upload_sessions_are_found_by_id_idempotency_key_and_file_name(admin_client, admin_user):
    session = make_session(admin_user, parts=[])
    other = make_session(admin_user, parts=[])
    session.idempotency_key = "client-key-7f3a"
    session.save(update_fields=["idempotency_key"])
    other.file.original_filename = "holiday-video.mp4"
    other.file.save(update_fields=["original_filename"])

    assert found(admin_client, "uploadsession", str(session.pk)) == {session.pk}
    assert found(admin_client, "uploadsession", "client-key-7f3a") == {session.pk}
    assert found(admin_client, "uploadsession", "holiday-video") == {other.pk}


def test_files_are_found_by_id_name_checksum_and_storage_key(admin_client, admin_user):
    file = make_session(admin_user, parts=[]).file
    other = make_session(admin_user, parts=[]).file
    file.sha256 = "c0ffee" * 10 + "0000"
    file.storage_key = "files/2026/12/aa/stored-object"
    file.save(update_fields=["sha256", "storage_key"])
    other.original_filename = "report-q4.pdf"
    other.save(update_fields=["original_filename"])

    assert found(admin_client, "ingestfile", str(file.pk)) == {file.pk}
    assert found(admin_client, "ingestfile", "report-q4") == {other.pk}
    assert found(admin_client, "ingestfile", "c0ffee" * 10) == {file.pk}
    assert found(admin_client, "ingestfile", "stored-object") == {file.pk}


def test_outbox_events_are_found_by_id_aggregate_and_idempotency_key(admin_client):
    def event(aggregate, key):
        return OutboxEvent.objects.create(
            event_type="file.stored",
            aggregate_id=aggregate,
            payload={},
            idempotency_key=key,
            next_attempt_at=timezone.now() + timedelta(minutes=5),
        )

    first, second = event("aggregate-one", "delivery-key-1"), event("aggregate-two", "dk-2")

    assert found(admin_client, "outboxevent", str(first.pk)) == {first.pk}
    assert found(admin_client, "outboxevent", "aggregate-two") == {second.pk}
    assert found(admin_client, "outboxevent", "delivery-key-1") == {first.pk}


def test_the_admin_refuses_a_short_or_common_password_for_a_new_user(
    admin_client, django_user_model
):
    """AUTH_PASSWORD_VALIDATORS: an operator adding a user in the admin cannot give it a
    password shorter than 8 characters or one from the common-passwords list."""
    refusals = {}
    for password in ("x7#kq", "password123"):
        response = admin_client.post(
            "/admin/auth/user/add/",
            {"username": "newcomer", "password1": password, "password2": password},
        )
        assert response.status_code == 200  # the form again, with its errors
        refusals[password] = response.context["adminform"].form.errors.as_data()
    assert not django_user_model.objects.filter(username="newcomer").exists()
    codes = {p: {e.code for errors in r.values() for e in errors} for p, r in refusals.items()}
    assert codes == {"x7#kq": {"password_too_short"}, "password123": {"password_too_common"}}


def test_the_users_list_counts_only_open_sessions_and_their_bytes(admin_client, admin_user):
    """Quota usage per user: open unexpired sessions and finalizing ones count; an expired,
    a complete and a failed one do not (3 sessions of 30 bytes counted, 3 others not)."""
    for _ in range(2):
        make_session(admin_user, parts=[])  # in progress, an hour to go
    finalizing = make_session(admin_user, parts=[])
    finalizing.status = UploadSession.Status.FINALIZING
    finalizing.expires_at = timezone.now() - timedelta(hours=1)
    finalizing.save()
    expired, complete, failed = (make_session(admin_user, parts=[]) for _ in range(3))
    expired.expires_at = timezone.now() - timedelta(minutes=1)
    expired.save()
    for session, status in ((complete, "complete"), (failed, "failed")):
        session.status = status
        session.save()

    html = admin_client.get("/admin/auth/user/").content.decode()
    assert '<td class="field-open_sessions">3</td>' in html
    assert '<td class="field-pending_bytes">90</td>' in html
