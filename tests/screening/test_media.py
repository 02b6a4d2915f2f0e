"""Takes and the cut served with HTTP Range, from local files and from S3, through the storage layer."""

from __future__ import annotations

import httpx
import pytest

from soraflow.screening import parse_range
from soraflow.screening._media import Unsatisfiable
from soraflow.settings import Settings
from soraflow.storage import open_storage

from .reviews import TITLE, review_of


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        (None, None),
        ("bytes=0-", (0, 999)),
        ("bytes=100-199", (100, 199)),
        ("bytes=900-5000", (900, 999)),  # past the end: what there is
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes = 5-9", (5, 9)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole object (RFC 9110 lets a server ignore them)
        ("items=0-5", None),
        ("bytes=9-5", None),
        ("bytes=x-5", None),
        ("bytes=-", None),
    ],
)
def test_a_range_header_is_read_as_rfc_9110_says(header, wanted):
    assert parse_range(header, 1000) == wanted


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=-0"])
def test_a_range_past_the_end_is_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


def check_ranges(base: str, path: str, data: bytes) -> None:
    size = len(data)
    with httpx.Client(base_url=base, timeout=30) as http:
        whole = http.get(path)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "video/mp4"
        part = http.get(path, headers={"Range": "bytes=100-4195"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-4195/{size}" and part.headers["content-length"] == "4096"
        assert part.content == data[100:4196] and part.headers["accept-ranges"] == "bytes"
        tail = http.get(path, headers={"Range": "bytes=-77"})
        assert tail.status_code == 206 and tail.content == data[-77:]
        assert tail.headers["content-range"] == f"bytes {size - 77}-{size - 1}/{size}"
        start = http.get(path, headers={"Range": "bytes=0-"})  # what a browser asks first
        assert start.status_code == 206 and start.content == data and start.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
        beyond = http.get(path, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        head = http.head(path, headers={"Range": "bytes=10-19"})
        assert head.status_code == 206 and head.content == b"" and head.headers["content-range"] == f"bytes 10-19/{size}"
        assert head.headers["content-length"] == "10"


def test_takes_and_the_cut_are_served_with_ranges_from_local_storage(harbour, review_page):
    with review_page(harbour.review) as page:
        for shot, takes in harbour.takes.items():
            for take in takes:
                check_ranges(page.base_url, f"/media/takes/{shot}/{take.take}", harbour.store.path(harbour.store.key_of(take.storage_uri)).read_bytes())
        check_ranges(page.base_url, "/media/film", harbour.store.path(harbour.store.key_of(harbour.film_uri)).read_bytes())
        missing = httpx.get(f"{page.base_url}/media/takes/b/9")
        assert missing.status_code == 404 and "no stored take 9 of shot 'b'" in missing.json()["error"]


def test_takes_kept_in_s3_are_served_with_ranged_gets(harbour, review_page, s3_bucket):
    """The review's storage is S3: each answer is one ranged GET on the bucket, streamed."""
    s3 = open_storage(f"s3://{s3_bucket}/films", Settings())
    moved = {}
    for shot, takes in harbour.takes.items():
        moved[shot] = []
        for take in takes:
            key = harbour.store.key_of(take.storage_uri)
            stored = s3.put_file(harbour.store.path(key), key, content_type="video/mp4", metadata={})
            moved[shot].append(take.model_copy(update={"storage_uri": stored.uri}))
    gets = []
    with review_page(lambda out: review_of(out, s3.url, moved)) as page:
        page.folder.store(s3.url).client.meta.events.register_first(
            "before-send.s3.GetObject", lambda request, **_: gets.append(request.headers.get("Range").decode())
        )
        take = moved["b"][1]
        assert take.storage_uri.startswith(f"s3://{s3_bucket}/films/{TITLE.lower().replace(' ', '-')}/clips/")
        data = harbour.store.path(harbour.store.key_of(harbour.takes["b"][1].storage_uri)).read_bytes()
        check_ranges(page.base_url, "/media/takes/b/2", data)
        assert "bytes=100-4195" in gets and f"bytes={len(data) - 77}-{len(data) - 1}" in gets
        # the review names no cut: none is served, and nothing outside the bucket's prefix either
        assert httpx.get(f"{page.base_url}/media/film").status_code == 404
