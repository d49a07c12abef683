"""The upload API, mounted at /api/v1/: the JSON API (``portal.views.uploads``) and tus 1.0
(``portal.views.tus``); see docs/api.md."""

from django.urls import path, re_path

from portal.views import tus, uploads

urlpatterns = [
    path("uploads/sessions", uploads.session_list, name="upload-sessions"),
    path("uploads/sessions/<str:session_id>", uploads.session_detail, name="upload-session"),
    path(
        "uploads/sessions/<str:session_id>/parts/<int:part_number>",
        uploads.session_part,
        name="upload-part",
    ),
    path(
        "uploads/sessions/<str:session_id>/finalize",
        uploads.session_finalize,
        name="upload-finalize",
    ),
    path("tus", tus.collection),
    path("tus/", tus.collection, name="tus-uploads"),
    path("tus/<str:upload_id>", tus.upload, name="tus-upload"),
    # [\s\S], not ".": a path with an encoded newline (%0A) must get the JSON 404 too.
    re_path(r"^[\s\S]*$", uploads.unknown_endpoint),
]
