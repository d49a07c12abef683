"""django-storages' S3 storage, with one boto3 client per process shared by every thread.

Per thread, django-storages loads its own copy of the S3 model (about 12 MB), and a
worker's RSS rose past 200 MB on S3; clients are thread-safe, so each thread gets a
resource around the one client. Kept out of ``portal.storage`` so that local disk never
imports boto3.
"""

import os
import threading

from storages.backends import s3

_BUILDING = threading.Lock()


class S3Storage(s3.S3Storage):
    @property
    def connection(self):
        local = self._connections
        if getattr(local, "pid", None) != os.getpid():
            local.connection = self._resource_around_shared_client()
            local.pid = os.getpid()
        return local.connection

    def _resource_around_shared_client(self):
        with _BUILDING:
            pid, first = getattr(self, "_process_resource", (None, None))
            if pid != os.getpid():
                self._connections.connection = None
                first = super().connection  # built by django-storages, from its settings
                self._process_resource = (os.getpid(), first)
        return type(first)(client=first.meta.client)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_process_resource", None)
        return state
