"""Objects in an S3 bucket (or an S3-compatible store reached through AWS_ENDPOINT_URL)."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from ..errors import StorageError
from ..redaction import redact_url, register_secret
from ..terminal import printable
from ..settings import Settings
from ._base import AI_GENERATED_TAG, RANGE_CHUNK_BYTES, SHA256_METADATA_KEY, StoredObject
from ._digest import FileDigest, digest_file, sha256_in_background, sha256_of
from ._keys import check_key, check_range

if TYPE_CHECKING:
    import boto3

log = logging.getLogger("soraflow.storage")

MiB = 1024 * 1024
# Parts of 16 MiB, 8 in flight: a few hundred MB/s on one connection pool while memory
# stays bounded by in-flight parts (s3transfer streams each part from the file).
MULTIPART_THRESHOLD = 16 * MiB
MULTIPART_CHUNKSIZE = 16 * MiB
MAX_CONCURRENCY = 8
# S3 user metadata travels in HTTP headers: ASCII only, 2 KB in all.
_METADATA_KEY = re.compile(r"[a-z0-9][a-z0-9._-]*")
_METADATA_LIMIT = 2048
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# An ETag is an MD5 of the bytes only for unencrypted or SSE-S3 objects.
_MD5_ETAG = re.compile(r'"?([0-9a-f]{32}(?:-\d+)?)"?')


def transfer_config():
    from boto3.s3.transfer import TransferConfig

    # "classic" keeps s3transfer (botocore events, retries, ExtraArgs) even where awscrt is
    # installed and would otherwise be picked on some instance types.
    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNKSIZE,
        max_concurrency=MAX_CONCURRENCY,
        preferred_transfer_client="classic",
    )


def client_config(settings: Settings):
    from botocore.config import Config

    return Config(
        # Transient errors (5xx, throttling, resets) are retried by botocore itself, with
        # backoff; botocore's "max_attempts" counts retries only, hence the total here.
        retries={"mode": "standard", "total_max_attempts": settings.transient_retries + 1},
        request_checksum_calculation=settings.s3_checksum_mode,
        response_checksum_validation=settings.s3_checksum_mode,
        signature_version="s3v4",
        max_pool_connections=MAX_CONCURRENCY + 2,
    )


def check_location(bucket: str, prefix: str) -> tuple[str, str]:
    """The bucket and prefix if S3 accepts them and no key under them can escape; else StorageError."""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise StorageError(
            f"bucket name {printable(repr(bucket), 80)} is not valid: 3-63 lowercase letters, digits, '.' or '-'"
        )
    return bucket, check_key(prefix, what="S3 prefix") if prefix else ""


class S3Storage:
    """Objects under ``s3://bucket/prefix``.

    Uploads carry ContentType, the caller's metadata plus the sha256, the ``ai-generated``
    tag and (checksum mode ``when_supported``) a full-object CRC32 that the store checks on
    arrival and that is read back with HEAD after the upload. Stores that reject checksum
    headers (``when_required``) are verified by size and by their MD5 ETag where the ETag
    is one. A sha256 passed by the caller is re-checked against the file on a thread while
    the upload runs; an existing object is never replaced before that check has passed.
    ``put_file`` never deletes its source.
    """

    def __init__(self, bucket: str, prefix: str, settings: Settings, session: "boto3.Session | None" = None):
        self.bucket, self.prefix = check_location(bucket, prefix)
        self.settings = settings
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._verify_with_checksum = settings.s3_checksum_mode == "when_supported"
        if session is None:
            import boto3

            session = boto3.Session()
        self._session = session
        # Credentials come from the session (standard chain or a Prefect block) and stay in it.
        self.client = session.client("s3", config=client_config(settings))
        _register_credentials(session)
        log.debug("opened %s via %s", self.url, redact_url(self.client.meta.endpoint_url) or "(default endpoint)")

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r})"

    # --- keys -----------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def key_of(self, uri: str) -> str | None:
        parts = urlsplit(str(uri))
        if parts.scheme != "s3" or parts.netloc != self.bucket or parts.query or parts.fragment:
            return None
        object_key = parts.path.removeprefix("/")
        prefix = f"{self.prefix}/" if self.prefix else ""
        if not object_key.startswith(prefix):
            return None
        try:
            return check_key(object_key[len(prefix):])
        except StorageError:
            return None

    # --- operations -----------------------------------------------------------------------

    def put_file(
        self,
        local_path: str | Path,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        source = Path(local_path)
        object_key = self.object_key(key)
        uri = f"s3://{self.bucket}/{object_key}"
        user_metadata = _checked_metadata(metadata or {}, uri)
        if not source.is_file():
            raise StorageError(f"cannot store {source} at {uri}: no such file")
        claimed = sha256.lower() if sha256 else None
        # A sha256 the caller already has (computed while downloading) is re-checked on a
        # thread while the upload runs, rather than in a pass of its own before it.
        digest = self._digest(source, with_sha256=claimed is None)
        expected_sha = claimed or digest.sha256
        source_check = sha256_in_background(source) if claimed else None
        head = self._head(object_key, missing_ok=True, forbidden_ok=True)
        if head is not None:
            # Never replace (or vouch for) an existing object on a claim not yet checked.
            _confirm_source(source, source_check, expected_sha)
            if self._mismatch(head, digest, expected_sha) is None:
                log.info("already stored: %s (%d bytes)", uri, digest.size)
                return StoredObject(uri, key, expected_sha, digest.size, uploaded=False, link=self.link(key))

        extra: dict[str, Any] = {
            "ContentType": content_type,
            "Metadata": {**user_metadata, SHA256_METADATA_KEY: expected_sha},
            "Tagging": urlencode([AI_GENERATED_TAG]),
        }
        if self._verify_with_checksum:
            # Our full-object value travels with the upload: the store rejects bytes that do
            # not match it (s3transfer marks multipart uploads FULL_OBJECT for it).
            extra["ChecksumAlgorithm"] = "CRC32"
            extra["ChecksumCRC32"] = digest.crc32_b64
        try:
            self.client.upload_file(str(source), self.bucket, object_key, ExtraArgs=extra, Config=transfer_config())
        except Exception as err:  # noqa: BLE001 - boto3 raises several unrelated families
            raise _storage_error(f"could not upload {source} to {uri}", err) from err
        mismatch = self._mismatch(self._head(object_key), digest, expected_sha)
        if mismatch:
            raise StorageError(f"{uri} failed verification after upload: {mismatch}; the local file is kept")
        _confirm_source(source, source_check, expected_sha)
        log.info("stored %s (%d bytes)", uri, digest.size)
        return StoredObject(uri, key, expected_sha, digest.size, uploaded=True, link=self.link(key))

    def exists(self, key: str, sha256: str | None = None) -> StoredObject | None:
        head = self._head(self.object_key(key), missing_ok=True)
        if head is None:
            return None
        stored_sha = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        if sha256 is not None and stored_sha != sha256.lower():
            return None
        return StoredObject(self.uri(key), key, stored_sha, head["ContentLength"], uploaded=False)

    def link(self, key: str) -> str:
        """The AWS console page of the object on AWS; elsewhere (MinIO, R2, a proxy) the object's
        path-style URL on the endpoint, which opens where the bucket allows it. No credential:
        a person opens it with their own login, or asks ``soraflow link`` for a presigned one."""
        object_key = self.object_key(key)
        endpoint = self.client.meta.endpoint_url or ""
        host = (urlsplit(endpoint).hostname or "").lower()
        if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
            region = self.client.meta.region_name or "us-east-1"
            query = urlencode({"region": region, "bucketType": "general", "prefix": object_key})
            return f"https://console.aws.amazon.com/s3/object/{quote(self.bucket)}?{query}"
        return f"{redact_url(endpoint).rstrip('/')}/{quote(self.bucket)}/{quote(object_key)}"

    def presign(self, key: str, expires_in: int | None = None) -> str | None:
        try:
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.object_key(key)},
                ExpiresIn=expires_in or self.settings.presign_expiry_seconds,
            )
        except Exception as err:  # noqa: BLE001
            raise _storage_error(f"could not presign {self.uri(key)}", err) from err

    def get_file(self, key: str, local_path: str | Path) -> StoredObject:
        """Stream the object to ``local_path`` (via a temp file); its sha256 is checked
        against the metadata before the file appears under its name."""
        object_key = self.object_key(key)
        uri = self.uri(key)
        head = self._head(object_key)
        dest = Path(local_path)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self.bucket, object_key, str(tmp), Config=transfer_config())
            actual = sha256_of(tmp)
            expected = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
            if expected is not None and actual != expected:
                raise StorageError(f"downloaded {uri} has sha256 {actual}, but it was stored with {expected}")
            os.replace(tmp, dest)
        except StorageError:
            raise
        except Exception as err:  # noqa: BLE001
            raise _storage_error(f"could not download {uri} to {dest}", err) from err
        finally:
            tmp.unlink(missing_ok=True)
        return StoredObject(uri, key, actual, dest.stat().st_size, uploaded=False)

    def object_size(self, key: str) -> int | None:
        head = self._head(self.object_key(key), missing_ok=True)
        return None if head is None else int(head["ContentLength"])

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """One ranged GET, its body streamed: S3's answer is checked (the range and length asked
        for) before a byte is handed on."""
        check_range(start, end)
        uri = self.uri(key)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key), Range=f"bytes={start}-{end}")
        except Exception as err:  # noqa: BLE001 - boto3 raises several unrelated families
            raise _storage_error(f"could not read bytes {start}-{end} of {uri}", err) from None
        body = answer["Body"]
        served = answer.get("ContentRange") or ""
        if answer.get("ContentLength") != end - start + 1 or not served.startswith(f"bytes {start}-{end}/"):
            body.close()
            raise StorageError(
                f"S3 answered bytes {start}-{end} of {uri} with {served or 'no Content-Range'} "
                f"({answer.get('ContentLength')} bytes)"
            )
        return _body_chunks(body)

    def probe(self, *, write: bool = True) -> None:
        """Credentials are there; with ``write``, the bucket exists and takes a probe object,
        which is then removed (HEAD bucket, PUT, DELETE: what a clip's store needs, before any
        clip is paid for). Errors name the bucket and what S3 answered, never a credential."""
        from botocore.exceptions import BotoCoreError, ClientError, PartialCredentialsError

        try:
            credentials = self._session.get_credentials()
        except PartialCredentialsError as err:  # names the missing variable, never a value
            raise StorageError(f"storage {self.url}: incomplete AWS credentials: {err}") from None
        except BotoCoreError as err:
            raise StorageError(f"storage {self.url}: AWS credentials could not be loaded: {err}") from None
        if credentials is None:
            raise StorageError(
                f"storage {self.url}: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, SSO or an instance role; or SORAFLOW_AWS_CREDENTIALS_BLOCK with a Prefect AwsCredentials block)"
            )
        if not write:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise StorageError(f"storage {self.url}: the bucket {self.bucket!r} does not exist (create it, or name another)") from None
            if status in (401, 403):
                raise StorageError(
                    f"storage {self.url}: access to the bucket {self.bucket!r} is denied (HTTP {status}): the credentials are "
                    "not valid, or they may not use this bucket"
                ) from None
            raise _storage_error(f"storage {self.url}: could not reach the bucket", err) from None
        except Exception as err:  # noqa: BLE001 - boto3 raises several unrelated families
            raise _storage_error(f"storage {self.url}: could not reach the bucket", err) from None
        key = self.object_key(f".soraflow-probe/{uuid.uuid4().hex}")
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"soraflow preflight probe\n", ContentType="text/plain")
        except Exception as err:  # noqa: BLE001
            raise _storage_error(f"storage {self.url}: could not write a probe object", err) from None
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as err:  # noqa: BLE001 - the store takes objects: that is what the probe asked
            log.warning("the probe object s3://%s/%s could not be removed: %s", self.bucket, key, _storage_error("delete", err))

    # --- helpers --------------------------------------------------------------------------

    def _digest(self, source: Path, *, with_sha256: bool) -> FileDigest:
        if self._verify_with_checksum:
            return digest_file(source, sha256=with_sha256, crc32=True)
        from s3transfer.utils import ChunksizeAdjuster

        size = source.stat().st_size
        # The same part size s3transfer will pick, so the MD5 ETag can be predicted.
        part_size = (
            ChunksizeAdjuster().adjust_chunksize(MULTIPART_CHUNKSIZE, size) if size >= MULTIPART_THRESHOLD else None
        )
        return digest_file(source, sha256=with_sha256, etag=True, part_size=part_size)

    def _head(self, object_key: str, *, missing_ok: bool = False, forbidden_ok: bool = False) -> dict | None:
        from botocore.exceptions import ClientError

        kwargs = {"ChecksumMode": "ENABLED"} if self._verify_with_checksum else {}
        try:
            return self.client.head_object(Bucket=self.bucket, Key=object_key, **kwargs)
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if missing_ok and status == 404:
                return None
            if forbidden_ok and status == 403:
                # Without s3:ListBucket a missing object answers 403: upload, then verify.
                log.debug("HEAD s3://%s/%s answered 403; treating it as absent", self.bucket, object_key)
                return None
            raise _storage_error(f"could not read s3://{self.bucket}/{object_key}", err) from err
        except Exception as err:  # noqa: BLE001
            raise _storage_error(f"could not read s3://{self.bucket}/{object_key}", err) from err

    def _mismatch(self, head: dict, digest: FileDigest, sha256: str) -> str | None:
        """Why the object is not these bytes, or None when it is."""
        if head.get("ContentLength") != digest.size:
            return f"size {head.get('ContentLength')} != {digest.size}"
        stored_sha = head.get("Metadata", {}).get(SHA256_METADATA_KEY)
        if stored_sha != sha256:
            return f"recorded sha256 {stored_sha} != {sha256}"
        if self._verify_with_checksum:
            stored_crc = head.get("ChecksumCRC32")
            if stored_crc is None:
                return (
                    "the store returned no CRC32 checksum "
                    "(set SORAFLOW_S3_CHECKSUM_MODE=when_required for stores without checksums)"
                )
            if stored_crc != digest.crc32_b64:
                return f"CRC32 {stored_crc} != {digest.crc32_b64}"
            return None
        etag = _MD5_ETAG.fullmatch(head.get("ETag", ""))
        encrypted = head.get("ServerSideEncryption", "").startswith("aws:kms") or head.get("SSECustomerAlgorithm")
        if etag and not encrypted and etag.group(1) != digest.etag:
            return f"ETag {etag.group(1)} != {digest.etag}"
        return None


def _register_credentials(session) -> None:
    """The session's AWS credentials, as the client just resolved them (environment, profile,
    SSO, a role, a Prefect block), registered as secrets here, where they are read: an S3
    error or an endpoint that echoes one must not carry it anywhere (soraflow.redaction)."""
    try:
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
    except Exception:  # noqa: BLE001 - none or incomplete: the probe and every request say so
        return
    if frozen is not None:
        register_secret(frozen.access_key, "AWS access key id")
        register_secret(frozen.secret_key, "AWS secret access key")
        register_secret(frozen.token, "AWS session token")


def _body_chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(RANGE_CHUNK_BYTES)
    finally:
        body.close()


def _confirm_source(source: Path, check: "Future[str] | None", expected: str) -> None:
    if check is not None and (actual := check.result()) != expected:
        raise StorageError(f"{source} has sha256 {actual}, not the expected {expected}; it changed since it was checked")


def _checked_metadata(metadata: dict[str, str], uri: str) -> dict[str, str]:
    checked = {}
    for key, value in metadata.items():
        name = str(key).lower()
        if not _METADATA_KEY.fullmatch(name):
            raise StorageError(f"metadata key {key!r} for {uri}: use lowercase letters, digits, '.', '_' or '-'")
        text = str(value)
        if not text.isascii() or not text.isprintable():
            raise StorageError(f"metadata {key!r} for {uri}: values must be printable ASCII (S3 sends them as headers)")
        checked[name] = text
    if sum(len(k) + len(v) for k, v in checked.items()) > _METADATA_LIMIT - 80:
        raise StorageError(f"metadata for {uri} is larger than S3's 2 KB limit")
    return checked


def _storage_error(action: str, err: Exception) -> StorageError:
    """A StorageError naming what failed; botocore's messages carry no secrets, and the
    endpoint is shown without any userinfo."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(err, NoCredentialsError) or isinstance(err.__cause__, NoCredentialsError):
        return StorageError(
            f"{action}: no AWS credentials (use the standard AWS chain: env, profile, SSO, "
            "instance role; or SORAFLOW_AWS_CREDENTIALS_BLOCK with a Prefect AwsCredentials block)"
        )
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return StorageError(f"{action}: {error.get('Code', 'error')} {error.get('Message', '')} (HTTP {status})".rstrip())
    return StorageError(f"{action}: {type(err).__name__}: {err}")
