"""django-storages' S3 storage, with one boto3 client per process shared by every thread.

django-storages builds a boto3 session and resource for each thread that touches a storage,
and each loads its own copy of the S3 service model: about 12 MB a thread. A gthread worker
(4 request threads, assembly threads, two storages: temp and final) built eight or more of
them, and its RSS rose past 200 MB during an upload on S3. boto3 clients are thread-safe,
resources are not: every thread still gets a resource of its own, built around the one
client (no model loaded again). A forked child builds its own client.

Kept out of ``portal.storage`` so that a deployment on local disk never imports boto3.
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
