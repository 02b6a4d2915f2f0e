"""The secret access key never reaches a log, an error, a result or a repr."""

from __future__ import annotations

import logging

import pytest

from soraflow.errors import StorageError
from soraflow.settings import Settings
from soraflow.storage import open_storage
from tests.fixtures.s3 import S3_TEST_SECRET_ACCESS_KEY

from .test_s3 import KEY, FailFirst


def test_the_secret_key_never_appears_in_debug_logs_errors_or_results(s3_bucket, media, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    src, sha = media()
    store = open_storage(f"s3://{s3_bucket}/films", Settings(transient_retries=1))
    seen = [repr(store)]
    obj = store.put_file(src, KEY, content_type="video/mp4", metadata={"model": "sora-2"}, sha256=sha)
    seen += [repr(obj), obj.link or "", store.presign(KEY) or ""]
    seen.append(repr(store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha)))
    seen.append(repr(store.exists(KEY, sha)))
    seen.append(repr(store.get_file(KEY, tmp_path / "back.mp4")))
    with pytest.raises(StorageError) as missing:
        store.get_file("the-keeper/missing.mp4", tmp_path / "missing.mp4")
    store.client.meta.events.register("before-send.s3.PutObject", FailFirst(10))
    with pytest.raises(StorageError) as failed:
        store.put_file(src, "the-keeper/other.mp4", content_type="video/mp4", metadata={})
    seen += [str(missing.value), str(failed.value), repr(failed.value.__cause__)]

    # DEBUG logging really was on for botocore (it logs signing and every request) and for us.
    loggers = {record.name.split(".")[0] for record in caplog.records}
    assert {"botocore", "soraflow"} <= loggers
    assert any(record.name == "botocore.auth" for record in caplog.records)
    assert S3_TEST_SECRET_ACCESS_KEY not in caplog.text
    for record in caplog.records:
        assert S3_TEST_SECRET_ACCESS_KEY not in record.getMessage()
    for text in seen:
        assert S3_TEST_SECRET_ACCESS_KEY not in text
