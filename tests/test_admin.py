"""The admin lists every portal model for an operator and stays read-mostly."""

import pytest

pytestmark = pytest.mark.django_db

PAGES = [
    "ingestfile",
    "uploadsession",
    "uploadpart",
    "outboxevent",
    "apitoken",
    "jobrun",
]


@pytest.mark.parametrize("model", PAGES)
def test_changelist_renders(admin_client, model):
    response = admin_client.get(f"/admin/portal/{model}/")
    assert response.status_code == 200


@pytest.mark.parametrize("model", ["ingestfile", "uploadsession", "outboxevent", "jobrun"])
def test_no_add_page(admin_client, model):
    assert admin_client.get(f"/admin/portal/{model}/add/").status_code == 403
