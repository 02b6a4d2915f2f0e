"""Storage URLs are checked before anything is spent, and messages never show credentials."""

from __future__ import annotations

import pytest

from soraflow.errors import StorageError
from soraflow.storage import check_storage_url


@pytest.mark.parametrize(
    "url, message",
    [
        ("s3://bucket-ok/films/" + "p" * 300, "at most 255"),
        ("s3://bucket-ok/" + "a/" * 600 + "b", "longer than 1024 bytes"),
        ("s3://Bad_Bucket/films", "bucket name 'Bad_Bucket' is not valid"),
        ("s3://bucket-ok/a/../b", "'.' or '..' segment"),
        ("file://fileserver/share", "must be local"),
        ("gs://bucket/prefix", "unsupported scheme 'gs'"),
        ("", "is empty"),
    ],
)
def test_bad_storage_urls_are_refused_with_what_is_allowed(url, message):
    with pytest.raises(StorageError, match=message) as info:
        check_storage_url(url)
    assert len(str(info.value)) < 500


def test_good_storage_urls_pass_unchanged(tmp_path):
    for url in ("s3://bucket-ok/films/team-a", "s3://bucket-ok", tmp_path.as_uri(), str(tmp_path)):
        assert check_storage_url(url) == url


def test_userinfo_in_a_refused_url_is_not_repeated():
    with pytest.raises(StorageError) as info:
        check_storage_url("https://admin:hunter2@store.example/films")
    assert "hunter2" not in str(info.value) and "admin" not in str(info.value)
