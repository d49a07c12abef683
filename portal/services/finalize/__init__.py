"""Finalize: assemble a session's parts into its final object, in bounded request time.

- ``request``  the API's finalize: start or join the assembly, wait a bounded time
- ``assembly`` the assembly itself (S3: server-side copy; else streaming), exactly once
- ``lease``    who assembles a ``finalizing`` session, and the takeover of dead ones
- ``job``      ``portal_finalize``: take over the assemblies whose process died
"""

from portal.services.finalize.assembly import PartCorrupt, assemble
from portal.services.finalize.job import run_finalize_job
from portal.services.finalize.request import finalize_session

__all__ = ["PartCorrupt", "assemble", "finalize_session", "run_finalize_job"]
