"""S3 over real HTTP (moto's server on loopback): checksums, idempotency, retries, presigning,
traversal."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from soraflow.errors import StorageError
from soraflow.settings import Settings
from soraflow.storage import RANGE_CHUNK_BYTES, S3Storage, clip_object_key, open_storage

from .conftest import MiB, operations, sent_requests

KEY = "the-keeper/clips/dawn-p1-0123456789abcdef.mp4"
UPLOAD_OPS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
METADATA = {"clip-key": "0123456789abcdef" * 2, "model": "sora-2", "size": "1280x720", "seconds": "8", "prompt-sha256": "ab" * 32}


def open_s3(bucket: str, **settings) -> S3Storage:
    store = open_storage(f"s3://{bucket}/films", Settings(**settings))
    assert isinstance(store, S3Storage)
    return store


class FailFirst:
    """A botocore before-send hook: the first ``failures`` attempts of an operation never
    reach the server and get a 500 (or a connection reset) instead."""

    def __init__(self, failures: int, *, reset: bool = False):
        self.failures = failures
        self.reset = reset
        self.calls = 0

    def __call__(self, request, **_):
        self.calls += 1
        if self.calls > self.failures:
            return None
        if self.reset:
            raise ConnectionClosedError(endpoint_url=request.url)
        body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
        return AWSResponse(request.url, 500, {"Content-Type": "application/xml"}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


@pytest.mark.parametrize("size", [0, 1 * MiB])
def test_small_and_empty_files_are_single_puts_with_a_checksum(s3_bucket, s3_client, media, size):
    src, sha = media(size=size)
    store = open_s3(s3_bucket)
    with sent_requests(store.client) as seen:
        obj = store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha)
    assert obj.uploaded and obj.size == size
    assert operations(seen) == ["HeadObject", "PutObject", "HeadObject"]
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"films/{KEY}", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] and head["Metadata"]["sha256"] == sha
    assert not store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha).uploaded


def test_multipart_upload_lands_with_checksum_metadata_and_tag(s3_bucket, s3_client, media):
    src, sha = media(size=20 * MiB)
    store = open_s3(s3_bucket)
    with sent_requests(store.client) as seen:
        obj = store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA, sha256=sha)
    assert obj.uploaded and obj.sha256 == sha and obj.size == 20 * MiB
    assert obj.uri == f"s3://{s3_bucket}/films/{KEY}"
    assert operations(seen).count("UploadPart") == 2  # 16 MiB parts: really multipart
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"films/{KEY}", ChecksumMode="ENABLED")
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {**METADATA, "sha256": sha}
    assert head["ChecksumType"] == "FULL_OBJECT" and head["ChecksumCRC32"]
    tags = s3_client.get_object_tagging(Bucket=s3_bucket, Key=f"films/{KEY}")["TagSet"]
    assert tags == [{"Key": "ai-generated", "Value": "true"}]
    body = s3_client.get_object(Bucket=s3_bucket, Key=f"films/{KEY}")["Body"].read()
    assert body == src.read_bytes()
    assert src.is_file()


def test_putting_the_same_file_again_sends_no_upload(s3_bucket, media):
    src, sha = media(size=20 * MiB)
    store = open_s3(s3_bucket)
    store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA)
    with sent_requests(store.client) as seen:
        again = store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA, sha256=sha)
    assert again.uploaded is False and again.sha256 == sha
    assert operations(seen) == ["HeadObject"]
    assert not UPLOAD_OPS & set(operations(seen))


def test_a_different_file_under_the_same_key_is_uploaded(s3_bucket, s3_client, media):
    old, _ = media("old.mp4", seed=1)
    new, new_sha = media("new.mp4", seed=2)
    store = open_s3(s3_bucket)
    store.put_file(old, KEY, content_type="video/mp4", metadata={})
    obj = store.put_file(new, KEY, content_type="video/mp4", metadata={})
    assert obj.uploaded and obj.sha256 == new_sha
    assert s3_client.get_object(Bucket=s3_bucket, Key=f"films/{KEY}")["Body"].read() == new.read_bytes()


def test_a_source_that_does_not_match_its_sha256_is_refused(s3_bucket, s3_client, media):
    src, sha = media()
    store = open_s3(s3_bucket)
    with pytest.raises(StorageError, match="changed since it was checked"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256="0" * 64)
    assert src.is_file()
    assert store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha).uploaded
    # A good object is never replaced on a claim that does not hold.
    with sent_requests(store.client) as seen:
        with pytest.raises(StorageError, match="changed since it was checked"):
            store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256="1" * 64)
    assert not UPLOAD_OPS & set(operations(seen))
    assert s3_client.head_object(Bucket=s3_bucket, Key=f"films/{KEY}")["Metadata"]["sha256"] == sha


def test_injected_500s_and_resets_are_retried(s3_bucket, s3_client, media):
    src, sha = media(size=20 * MiB)
    store = open_s3(s3_bucket)
    part_faults, complete_faults, head_faults = FailFirst(2), FailFirst(1), FailFirst(1, reset=True)
    store.client.meta.events.register("before-send.s3.UploadPart", part_faults)
    store.client.meta.events.register("before-send.s3.CompleteMultipartUpload", complete_faults)
    store.client.meta.events.register("before-send.s3.HeadObject", head_faults)
    with sent_requests(store.client) as seen:
        obj = store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA, sha256=sha)
    assert obj.uploaded and obj.sha256 == sha
    ops = operations(seen)
    assert part_faults.calls == 2 + 2 and ops.count("UploadPart") == 4  # 2 parts + 2 retried
    assert complete_faults.calls == 2 and ops.count("CompleteMultipartUpload") == 2
    # HEAD before the upload: reset, then retried; HEAD after it: the verification.
    assert head_faults.calls == 3
    head = s3_client.head_object(Bucket=s3_bucket, Key=f"films/{KEY}")
    assert head["ContentLength"] == 20 * MiB and head["Metadata"]["sha256"] == sha


def test_errors_that_outlast_the_retries_are_storage_errors(s3_bucket, s3_client, media):
    src, _ = media()
    store = open_s3(s3_bucket, transient_retries=1)
    faults = FailFirst(10)
    store.client.meta.events.register("before-send.s3.PutObject", faults)
    with pytest.raises(StorageError, match=f"s3://{s3_bucket}/films/{KEY}"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={})
    assert faults.calls == 2  # botocore's standard mode: 1 try + 1 retry
    assert src.is_file()
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def _corrupt_first_part(request, **_):
    """Flip a byte of a part on the wire, after the client has checksummed it."""
    if getattr(_corrupt_first_part, "done", False):
        return None
    data = request.body.read()
    request.body = bytes([data[0] ^ 0xFF]) + data[1:]
    _corrupt_first_part.done = True
    return None


@pytest.mark.parametrize("mode", ["when_supported", "when_required"])
def test_bytes_corrupted_in_transit_fail_verification_and_the_next_put_repairs(s3_bucket, media, mode):
    src, sha = media(size=20 * MiB)
    store = open_s3(s3_bucket, s3_checksum_mode=mode)
    _corrupt_first_part.done = False
    store.client.meta.events.register("before-send.s3.UploadPart", _corrupt_first_part)
    with pytest.raises(StorageError, match="failed verification"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha)
    assert src.is_file()
    store.client.meta.events.unregister("before-send.s3.UploadPart", _corrupt_first_part)
    repaired = store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha)
    assert repaired.uploaded is True


@pytest.mark.parametrize("size", [0, 1 * MiB, 20 * MiB])
def test_when_required_mode_sends_no_checksum_headers(s3_bucket, s3_client, media, size):
    src, sha = media(size=size)
    store = open_s3(s3_bucket, s3_checksum_mode="when_required")
    headers: list[str] = []

    def record(request, **_):
        headers.extend(k.lower() for k in request.headers.keys())

    store.client.meta.events.register("before-send.s3", record)
    obj = store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA, sha256=sha)
    assert obj.uploaded
    assert not [h for h in headers if h.startswith(("x-amz-checksum", "x-amz-sdk-checksum", "x-amz-trailer"))]
    again = store.put_file(src, KEY, content_type="video/mp4", metadata=METADATA, sha256=sha)
    assert again.uploaded is False
    assert s3_client.get_object(Bucket=s3_bucket, Key=f"films/{KEY}")["Body"].read() == src.read_bytes()


def test_presigned_url_downloads_the_object(s3_bucket, media):
    src, _ = media(size=20 * MiB)
    store = open_s3(s3_bucket, presign_expiry_seconds=900)
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    presigned = store.presign(KEY)
    query = parse_qs(urlsplit(presigned).query)
    assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert parse_qs(urlsplit(store.presign(KEY, expires_in=60)).query)["X-Amz-Expires"] == ["60"]
    response = httpx.get(presigned, timeout=30)
    assert response.status_code == 200
    assert response.content == src.read_bytes()
    # moto does not check signatures, so only the shape of the URL is ours to assert.
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/s3/aws4_request")


def test_exists_and_get_file_round_trip(s3_bucket, media, tmp_path):
    src, sha = media(size=20 * MiB)
    store = open_s3(s3_bucket)
    assert store.exists(KEY) is None
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    found = store.exists(KEY, sha)
    assert found is not None and found.sha256 == sha and found.size == 20 * MiB
    assert store.exists(KEY, "0" * 64) is None
    dest = tmp_path / "restore" / "clip.mp4"
    got = store.get_file(KEY, dest)
    assert got.sha256 == sha and dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["clip.mp4"]
    with pytest.raises(StorageError, match="404"):
        store.get_file("the-keeper/missing.mp4", tmp_path / "missing.mp4")


def test_a_byte_range_is_one_ranged_get_streamed_in_pieces(s3_bucket, media):
    src, _ = media(size=20 * MiB)
    store = open_s3(s3_bucket)
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    data = src.read_bytes()
    assert store.object_size(KEY) == 20 * MiB and store.object_size("the-keeper/missing.mp4") is None
    ranges = []

    def record(request, **_):
        ranges.append(request.headers.get("Range").decode())

    store.client.meta.events.register_first("before-send.s3.GetObject", record)
    start, end = 5 * MiB + 3, 5 * MiB + 2 * RANGE_CHUNK_BYTES + 2
    pieces = list(store.read_range(KEY, start, end))
    assert ranges == [f"bytes={start}-{end}"]  # only those bytes were asked for
    assert b"".join(pieces) == data[start : end + 1]
    assert max(len(p) for p in pieces) <= RANGE_CHUNK_BYTES and len(pieces) >= 2
    assert b"".join(store.read_range(KEY, len(data) - 1, len(data) - 1)) == data[-1:]
    with pytest.raises(StorageError, match="416|InvalidRange"):
        store.read_range(KEY, len(data), len(data) + 5)
    with pytest.raises(StorageError, match="404|NoSuchKey"):
        store.read_range("the-keeper/missing.mp4", 0, 1)


def test_key_of_is_the_inverse_of_uri_within_the_bucket_and_prefix(s3_bucket):
    store = open_s3(s3_bucket)
    assert store.key_of(store.uri(KEY)) == KEY
    for uri in (
        f"s3://{s3_bucket}/other/{KEY}",
        f"s3://{s3_bucket}/films/../{KEY}",
        f"s3://{s3_bucket}/films//{KEY}",
        f"s3://another-bucket/films/{KEY}",
        f"file:///films/{KEY}",
        f"s3://{s3_bucket}/films",
    ):
        assert store.key_of(uri) is None, uri


def test_get_file_refuses_an_object_whose_bytes_do_not_match_its_sha256(s3_bucket, s3_client, tmp_path):
    s3_client.put_object(Bucket=s3_bucket, Key=f"films/{KEY}", Body=b"not the clip", Metadata={"sha256": "0" * 64})
    dest = tmp_path / "clip.mp4"
    with pytest.raises(StorageError, match="sha256"):
        open_s3(s3_bucket).get_file(KEY, dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "key",
    ["../escape.mp4", "a/../../escape.mp4", "/escape.mp4", "a\\..\\escape.mp4", "\uff0e\uff0e/escape.mp4", "a\x00b", "a//b"],
)
def test_traversal_keys_are_refused_before_any_request(s3_bucket, media, key):
    src, _ = media()
    store = open_s3(s3_bucket)
    with sent_requests(store.client) as seen:
        with pytest.raises(StorageError):
            store.put_file(src, key, content_type="video/mp4", metadata={})
        with pytest.raises(StorageError):
            store.exists(key)
        with pytest.raises(StorageError):
            store.presign(key)
    assert seen == []


def test_hostile_titles_land_under_the_prefix(s3_bucket, s3_client, media):
    src, _ = media()
    store = open_s3(s3_bucket)
    key = clip_object_key("../../\uff0e\uff0e\uff0f\u202etitle", "../shot", 1, "ab" * 16)
    store.put_file(src, key, content_type="video/mp4", metadata={})
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"films/{key}"]
    assert all(seg not in ("", ".", "..") for seg in keys[0].split("/"))


@pytest.mark.parametrize("url", ["s3://bucket/../other", "s3://bucket/a/./b", "s3://bucket/a//b", "s3://Bad_Bucket/x", "s3:///x"])
def test_bad_s3_urls_are_refused(url, s3_env):
    with pytest.raises(StorageError):
        open_storage(url, Settings())


def test_a_credentials_block_without_a_session_is_refused(s3_env):
    with pytest.raises(StorageError, match="SORAFLOW_AWS_CREDENTIALS_BLOCK"):
        open_storage("s3://bucket/x", Settings(aws_credentials_block="team-aws"))


def test_a_caller_session_is_used(s3_bucket, media):
    import boto3

    from tests.fixtures.s3 import S3_TEST_ACCESS_KEY_ID, S3_TEST_SECRET_ACCESS_KEY

    session = boto3.Session(
        aws_access_key_id=S3_TEST_ACCESS_KEY_ID, aws_secret_access_key=S3_TEST_SECRET_ACCESS_KEY, region_name="eu-west-1"
    )
    store = open_storage(f"s3://{s3_bucket}/films", Settings(aws_credentials_block="team-aws"), session=session)
    assert store.client.meta.region_name == "eu-west-1"
    src, _ = media()
    assert store.put_file(src, KEY, content_type="video/mp4", metadata={}).uploaded


def test_metadata_that_cannot_travel_as_headers_is_refused(s3_bucket, media):
    src, _ = media()
    store = open_s3(s3_bucket)
    with pytest.raises(StorageError, match="ASCII"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={"title": "灯台守"})
    with pytest.raises(StorageError, match="metadata key"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={"bad key": "x"})


def test_stored_objects_carry_a_link_without_credentials(s3_bucket, s3_env, media, monkeypatch):
    """What is stored (manifests, artifacts, results) is a link a person opens with their own
    login: the object on the endpoint (MinIO, R2, here moto), or its AWS console page."""
    from tests.fixtures.s3 import S3_TEST_ACCESS_KEY_ID

    src, _ = media()
    obj = open_s3(s3_bucket).put_file(src, KEY, content_type="video/mp4", metadata={})
    assert obj.link == f"{s3_env}/{s3_bucket}/films/{KEY}"
    assert "X-Amz" not in obj.link and S3_TEST_ACCESS_KEY_ID not in repr(obj)

    monkeypatch.delenv("AWS_ENDPOINT_URL")  # AWS itself: no request is made by link()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    link = open_s3(s3_bucket).link(KEY)
    assert link == (
        f"https://console.aws.amazon.com/s3/object/{s3_bucket}?region=eu-west-3&bucketType=general"
        f"&prefix=films%2F{KEY.replace('/', '%2F')}"
    )


def test_the_credentials_a_store_opens_with_are_registered_as_secrets(s3_bucket, monkeypatch):
    """The S3 client's credentials (here the environment's, with a session token) are read where
    the store is opened and registered: an S3 error or an endpoint that echoes one removes it."""
    from soraflow.redaction import redact_text

    monkeypatch.setenv("AWS_SESSION_TOKEN", "s3-session-token-canary-4d2a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-key-canary-7b19")
    open_s3(s3_bucket)
    said = "InvalidAccessKeyId: s3-secret-key-canary-7b19 / s3-session-token-canary-4d2a"
    assert redact_text(said) == "InvalidAccessKeyId: REDACTED / REDACTED"
