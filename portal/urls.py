"""The upload API, mounted at /api/v1/ (routes added by the upload API work)."""

urlpatterns = []
