"""What the storage adapter takes and returns: stored, deleted, listed and source objects."""

from dataclasses import dataclass, field
from datetime import datetime

MISMATCH = "no longer matches the sha256 recorded for it"
MISSING = "is missing from temp storage"


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    # The MD5 of the bytes, where S3 will later be asked to copy them (``Source.md5``).
    md5: str = ""
    # Where the bytes start in ``key``: None for an object of its own, the part's offset in
    # its session's file (``local_in_place``), which has nothing of the part's to delete.
    offset: int | None = None


@dataclass
class DeleteResult:
    """Keys that are gone (including ones that were already missing) and those that failed."""

    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0


@dataclass(frozen=True)
class ListedObject:
    key: str
    modified_at: datetime


@dataclass(frozen=True)
class Source:
    """A temp object to assemble, with the size and sha256 recorded when it arrived."""

    key: str
    size: int
    sha256: str
    name: str  # how errors name it ("part 3")
    # The MD5 of the bytes when they arrived: an S3 copy whose ETag (S3's MD5 of the copied
    # bytes) says the same needs no read to check it. Blank: the copy is checked by reading.
    md5: str = ""
    # Where the bytes start in ``key``: None for an object of its own, the part's offset in
    # the session's assembly file for a part written in place.
    offset: int | None = None


class SourceMismatch(Exception):
    """A source object is gone, or its bytes no longer match the size and sha256 recorded."""

    def __init__(self, source: Source, problem: str):
        super().__init__(f"{source.name} {problem}")
        self.source = source


class RangeBusy(Exception):
    """Another request holds the part's range of its session's file: it is writing the part."""
