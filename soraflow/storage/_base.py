"""What every store returns and promises."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

# The tag S3 objects carry; local files cannot carry tags.
AI_GENERATED_TAG = ("ai-generated", "true")
# The metadata key holding the object's sha256, so a HEAD alone tells whether it is current.
SHA256_METADATA_KEY = "sha256"
# A ranged read hands its bytes on in pieces of this size: a clip is never whole in memory.
RANGE_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class StoredObject:
    """An object as the store holds it.

    ``uploaded`` is False when the store already held the same bytes and nothing was sent.
    ``sha256`` is None only for objects soraflow did not write (no checksum recorded).
    ``link`` is for people and carries no credential (see ``Storage.link``); a presigned link,
    which does, is only ever made when asked for (``Storage.presign``, ``soraflow link``).
    """

    uri: str
    key: str
    sha256: str | None
    size: int
    uploaded: bool
    link: str | None = None


@runtime_checkable
class Storage(Protocol):
    """Where clips and films land. ``put_file`` never deletes or changes its source file:
    callers keep their local copy until the returned object says it is stored and verified."""

    url: str

    def uri(self, key: str) -> str: ...

    def put_file(
        self,
        local_path: str | Path,
        key: str,
        *,
        content_type: str,
        metadata: dict[str, str],
        sha256: str | None = None,
    ) -> StoredObject: ...

    def exists(self, key: str, sha256: str | None = None) -> StoredObject | None: ...

    def link(self, key: str) -> str:
        """A link to the object for a person, with no credential in it (safe to store, log and
        show in an artifact): a file:// URI, the AWS console page of an S3 object, or the
        object's path-style URL on an S3-compatible endpoint."""
        ...

    def presign(self, key: str, expires_in: int | None = None) -> str | None:
        """A link that grants access by itself. It carries the access key id and, with temporary
        credentials, the session token: made only to be shown at once, never stored."""
        ...

    def get_file(self, key: str, local_path: str | Path) -> StoredObject: ...

    def key_of(self, uri: str) -> str | None:
        """The key of the object ``uri`` names in this store (``uri``'s inverse), or None when
        ``uri`` is not an object of this store. The key is checked as every key is."""
        ...

    def object_size(self, key: str) -> int | None:
        """The object's size in bytes, or None when the store holds no such object."""
        ...

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (both included) of the object, streamed in pieces of at most
        ``RANGE_CHUNK_BYTES``: a ranged GET on S3, a seek on a file; never the whole object in
        memory. The object is opened (and the request answered) before this returns, so a missing
        object or a refused range raises StorageError here, not while the bytes flow. Close the
        iterator when you stop early."""
        ...

    def probe(self, *, write: bool = True) -> None:
        """Raise StorageError, naming what is wrong (never a credential), if this store cannot take
        objects now. ``write``: prove it by writing a small probe object and removing it (a
        request to a remote store); without it, only what is known here (the credentials are
        there, the folder can be made)."""
        ...
