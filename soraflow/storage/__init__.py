"""Where clips and films land: local files (the embedded default) or S3.

``open_storage(url, settings)`` picks the store from the URL alone (``file:///path``, a plain
path, or ``s3://bucket/prefix``); the pipeline never branches on the kind of store.
S3-compatible stores (MinIO, R2, ...) are reached through boto3's own ``AWS_ENDPOINT_URL``.
Credentials come from the standard AWS chain, or from the ``boto3.Session`` the caller passes
(the Prefect tasks layer builds one from an ``AwsCredentials`` block: the core never imports
Prefect). No store ever deletes the file it was asked to store. A store reads an object back
whole (``get_file``) or a byte range of it, streamed (``read_range``: what the review page serves
a seeking video from).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..documents import path_problem
from ..errors import StorageError
from ..redaction import redact_url
from ..settings import Settings
from ._base import AI_GENERATED_TAG, RANGE_CHUNK_BYTES, SHA256_METADATA_KEY, Storage, StoredObject
from ._keys import check_key, clip_object_key, film_object_key, safe_component, storage_key
from ._local import LocalStorage, probe_directory
from ._s3 import S3Storage, check_location
from ..terminal import printable

if TYPE_CHECKING:
    import boto3

__all__ = [
    "AI_GENERATED_TAG",
    "RANGE_CHUNK_BYTES",
    "SHA256_METADATA_KEY",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageError",
    "StoredObject",
    "check_key",
    "check_storage_url",
    "clip_object_key",
    "film_object_key",
    "open_storage",
    "presign_uri",
    "probe_directory",
    "safe_component",
    "storage_key",
]


def open_storage(
    url: str | Path, settings: Settings | None = None, session: "boto3.Session | None" = None
) -> Storage:
    """The store behind ``url``: ``file:///path``, a plain path, or ``s3://bucket/prefix``."""
    settings = settings if settings is not None else Settings()
    kind, where, prefix = _location(url)
    if kind == "s3":
        if settings.aws_credentials_block and session is None:
            # Silently falling back to the default chain could write with other credentials.
            raise StorageError(
                f"SORAFLOW_AWS_CREDENTIALS_BLOCK={settings.aws_credentials_block!r} is set, but no boto3 "
                "session was built from it; open S3 storage through the Prefect tasks layer"
            )
        return S3Storage(where, prefix, settings, session=session)
    return LocalStorage(where)


def presign_uri(
    uri: str, settings: Settings | None = None, session: "boto3.Session | None" = None, expires_in: int | None = None
) -> str:
    """A link that opens the object at ``uri`` by itself: presigned for ``s3://bucket/key``
    (made now, valid ``expires_in`` seconds), the URI itself for a local file. Only for showing
    at once: a presigned link carries the access key id (and the session token)."""
    settings = settings if settings is not None else Settings()
    kind, where, key = _location(uri)
    if kind == "file":
        if not Path(where).is_file():
            raise StorageError(f"{printable(uri, 200)}: no such file")
        return Path(where).resolve().as_uri()
    if not key:
        raise StorageError(f"{printable(uri, 200)} names a bucket, not an object (s3://bucket/key)")
    return S3Storage(where, "", settings, session=session).presign(key, expires_in)  # type: ignore[return-value]


def check_storage_url(url: str | Path) -> str:
    """``url`` if a store can be opened on it (scheme, host, bucket name, prefix segments);
    StorageError otherwise. Builds no client and sends nothing: a preflight check, run before
    anything is spent."""
    kind, where, prefix = _location(url)
    if kind == "s3":
        check_location(where, prefix)
    return str(url)


def _location(url: str | Path) -> tuple[str, str, str]:
    """("s3", bucket, prefix) or ("file", path, "") for a storage URL; StorageError if neither."""
    text = str(url).strip()
    shown = printable(repr(redact_url(text) if "://" in text else text), 200)
    if problem := path_problem(text):
        raise StorageError(f"storage URL {shown}: the URL {problem}")
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme == "s3":
        parts = urlsplit(text)
        return "s3", parts.netloc, parts.path.strip("/")
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"storage URL {shown} names a host; file URLs must be local (file:///path)")
        return "file", unquote(parts.path), ""
    if scheme:
        raise StorageError(f"storage URL {shown}: unsupported scheme {printable(repr(scheme), 40)}; use file:///path, a path, or s3://bucket/prefix")
    if not text:
        raise StorageError("storage URL is empty; use file:///path, a path, or s3://bucket/prefix")
    return "file", text, ""
