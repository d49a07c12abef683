"""Both storages on local disk: every part written into its range of its session's one file
(``local_in_place``), the final file a link to it or, where the kernel refuses the link, a
copy (``local_assembly``)."""

import contextlib
import errno
import hashlib
import os

from portal.storage import (
    Backend,
    RangeBusy,
    StoredObject,
    assembly_key,
    assembly_session,
    backend_faults,
    local,
    local_assembly,
    local_in_place,
    local_walk,
    new_temp_key,
    streams,
)


class LocalBackend(Backend):
    assembles_in_place = True
    has_volumes = True

    def write_part(self, key, stream, max_bytes, *, file_hash=None, for_copy=False):
        """A temp object of its own (a tus tail), written as parts in place are."""
        reader = streams.BlockReader(stream, max_bytes)
        with backend_faults(self.temp, reader), local.created_file(self.temp, key) as fd:
            digest = streams.write_blocks(fd, 0, reader, file_hash)
        return StoredObject(key=key, size=reader.size, sha256=digest)

    @contextlib.contextmanager
    def part_range(self, session_id, offset, size):
        """``RangeBusy`` while another upload of the same part holds the range."""
        storage = self.temp
        key = assembly_key(session_id)
        with contextlib.ExitStack() as stack:
            with backend_faults(storage):
                held = stack.enter_context(local_in_place.locked_range(storage, key, offset, size))
            if held is None:
                raise RangeBusy(key)
            yield PartRange(self, *held, key, offset, size)

    def read(self, storage, key, chunk_size):
        with local.open_read(storage, key) as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def delete(self, storage, keys):
        return local.delete_local(storage, keys)

    def list(self, storage):
        return local.list_local(storage)

    def hash_part(self, source, digest):
        """A part's range is taken as it lies: hashed on its way in, never written again."""
        with backend_faults(self.temp):
            local_assembly.hash_in_place(self.temp, source, digest)

    def final_bytes(self, sources):
        """0 for a link, else every byte."""
        with backend_faults(self.final):
            if local_in_place.same_filesystem(self.temp, self.final):
                return 0
        return super().final_bytes(sources)

    def assemble(self, sources, key, *, progress, file_hash=None, hashed=0, room=None, **opts):
        if "session_id" in opts:
            with backend_faults(self.temp):
                sources = local_assembly.into_place(self.temp, opts["session_id"], sources)
        with backend_faults(self.final):
            return local_assembly.assemble(
                self.temp, self.final, key, sources, progress, file_hash, hashed, room
            )

    def final_location(self, key):
        local.check_key(key)
        path = os.path.join(self.final.location, key)
        return {"backend": "local", "bucket": "", "key": key, "path": path}

    def free_bytes(self, storage):
        with backend_faults(storage):
            return local.free_bytes(storage)


class PartRange:
    """A part's range of the assembly file, held by this request."""

    def __init__(self, backend, fd, created, key, offset, size):
        self.storage = backend.temp
        self.fd, self.key, self.offset, self.size = fd, key, offset, size
        self.created = created  # this request made the file

    def write(self, stream, *, max_bytes, file_hash=None, own_hash=True) -> StoredObject:
        """``write_part`` into the range; on failure the range gives its blocks back.
        ``own_hash=False``: only ``file_hash`` sees the bytes, the part's sha256 is ""."""
        with backend_faults(self.storage):
            local_walk.check_own(self.fd, os.path.join(self.storage.location, self.key))
        reader = streams.BlockReader(stream, max_bytes)
        try:
            with backend_faults(self.storage, reader):
                args = (self.fd, self.offset, reader, file_hash)
                digest = streams.write_blocks(*args, own_hash=own_hash)
        except BaseException:
            self.release()
            raise
        return StoredObject(key=self.key, size=reader.size, sha256=digest, offset=self.offset)

    def release(self):
        """Free the range's blocks: what was written there is not recorded."""
        local_in_place.release(self.fd, self.offset, self.size)

    def copy_to_temp(self, size, *, part_number) -> StoredObject:
        """The range's first ``size`` bytes as a temp object of their own (a tus tail)."""
        key = new_temp_key(assembly_session(self.key), part_number)
        with backend_faults(self.storage), local.created_file(self.storage, key) as copy:
            digest = local_assembly.hash_range(hashlib.sha256(), self.fd, self.offset, size)
            if local_assembly.copy_range(self.fd, copy, size, 0, self.offset) != size:
                raise OSError(errno.EIO, "the range is shorter than its bytes", self.key)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def abandon(self):
        """The session is closed: a file this request made goes again, so no object
        outlives its terminal session."""
        if self.created:
            local.unlink_quietly(self.storage, self.key)
