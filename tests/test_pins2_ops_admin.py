"""Pins for the ops area (issue #31, second round): the admin (``portal.admin``) keeps a
token's owner and purpose as they were made, and shows an upload session with its parts."""

import pytest

from portal.models import ApiToken, UploadPart
from portal.services.tokens import create_token
from tests.admin_helpers import make_session

pytestmark = pytest.mark.django_db


def test_a_tokens_owner_and_purpose_cannot_be_changed_only_its_name_and_activity(
    admin_client, admin_user, django_user_model
):
    owner = django_user_model.objects.create_user("uploader", password="pw-uploader-1")
    token, _ = create_token(owner, name="laptop")
    url = f"/admin/portal/apitoken/{token.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields) == {"name", "is_active"}
    response = admin_client.post(
        url,
        {
            "user": str(admin_user.pk),
            "name": "old laptop",
            "purpose": ApiToken.Purpose.MONITORING,
            "key_prefix": "ipt_hijacked",
            # is_active left out: the checkbox unticked
        },
    )
    assert response.status_code == 302, response.content
    prefix = token.key_prefix
    token.refresh_from_db()
    assert (token.user, token.purpose, token.key_prefix) == (owner, "upload", prefix)
    assert (token.name, token.is_active) == ("old laptop", False)


def test_no_token_is_made_in_the_admin(admin_client):
    assert admin_client.get("/admin/portal/apitoken/add/").status_code == 403
    assert admin_client.post("/admin/portal/apitoken/add/", {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_an_upload_sessions_page_lists_its_parts_read_only(admin_client, admin_user):
    session = make_session(admin_user, parts=[1, 3])
    other = make_session(admin_user, parts=[2])
    response = admin_client.get(f"/admin/portal/uploadsession/{session.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    [inline] = response.context["inline_admin_formsets"]
    assert inline.formset.model is UploadPart
    shown = sorted(form.instance.part_number for form in inline.formset.forms)
    assert shown == [1, 3]  # its own parts, no empty row to add one
    for number in (1, 3):
        assert f"temp/{session.pk}/part-{number:05d}" in html
        assert f"{number:02d}" + "ab" * 31 in html
    assert f"temp/{other.pk}/" not in html
    assert not inline.formset.can_delete
    assert not inline.has_add_permission and not inline.has_change_permission


def test_the_sessions_list_shows_when_each_expires(admin_client, admin_user):
    session = make_session(admin_user, parts=[])
    response = admin_client.get("/admin/portal/uploadsession/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "column-expires_at" in html and "field-expires_at" in html
    assert str(session.pk) in html


def test_the_admin_shows_times_in_utc_as_the_logs_and_status_page_do(admin_client, admin_user):
    """An operator lines the admin's times up with log lines and /status, all UTC: a
    session expiring at 23:30 UTC reads 11:30 p.m. on its own day, in any server's zone."""
    from datetime import UTC, datetime

    from portal.models import UploadSession

    session = make_session(admin_user, parts=[])
    expires = datetime(2030, 1, 1, 23, 30, tzinfo=UTC)
    UploadSession.objects.filter(pk=session.pk).update(expires_at=expires)
    html = admin_client.get("/admin/portal/uploadsession/").content.decode()
    assert "Jan. 1, 2030, 11:30 p.m." in html
