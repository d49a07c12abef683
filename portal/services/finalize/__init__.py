"""Finalize: assemble a session's parts into its final object, in bounded request time
(docs/design.md, "How an upload works", step 5)."""

from portal.services.finalize.assembly import PartCorrupt, assemble
from portal.services.finalize.job import run_finalize_job
from portal.services.finalize.request import finalize_session

__all__ = ["PartCorrupt", "assemble", "finalize_session", "run_finalize_job"]
