"""Reading stored objects back in tests, through Django's Storage API (either backend)."""

from portal import storage

CHUNK = 1024 * 1024


def iter_final(key, chunk_size=CHUNK):
    """A final object's bytes in chunks; ``FileNotFoundError`` (local) if it is gone."""
    with storage.final_storage().open(key, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk


def final_exists(key):
    return storage.final_storage().exists(key)


def temp_exists(key):
    return storage.temp_storage().exists(key)
