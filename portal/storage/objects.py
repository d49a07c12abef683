"""What the storage adapter returns: a stored object, a bulk deletion, a listed object."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


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
