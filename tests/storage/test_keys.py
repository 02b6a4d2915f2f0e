"""Keys: free text becomes one safe path component; anything else handed to a store is refused."""

from __future__ import annotations

import re

import pytest

from soraflow.errors import StorageError
from soraflow.storage import check_key, clip_object_key, film_object_key, safe_component, storage_key

SAFE = re.compile(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?")

HOSTILE = [
    "../etc/passwd",
    "../../..",
    "/absolute/path",
    "..\\..\\windows\\system32",
    "a\x00b",
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc",  # fullwidth ．．／．．／etc
    "\u2024\u2024/x",  # one dot leaders
    "\u202eevil\u202c.mp4",  # right-to-left override
    "\u200f..\u200f",  # right-to-left marks around ..
    "\u200b",  # zero-width space only
    "",
    " ",
    ".",
    "..",
    "...",
    "~/.ssh/id_rsa",
    "C:\\temp\\x",
    "con.mp4\n",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_safe_component_is_one_plain_segment(text):
    slug = safe_component(text)
    assert SAFE.fullmatch(slug), slug
    assert ".." not in slug
    assert slug not in (".", "..")
    assert check_key(slug) == slug


def test_safe_component_reads_well_and_is_stable():
    assert safe_component("The Lighthouse Keeper") == "the-lighthouse-keeper"
    assert safe_component("Café Ünïcode — Part II") == "cafe-unicode-part-ii"
    assert safe_component("Straße") == "strasse"
    assert safe_component("ＦＵＬＬＷＩＤＴＨ") == "fullwidth"
    assert safe_component("v1.2_final") == "v1.2_final"
    assert safe_component("灯台守") == safe_component("灯台守")


def test_titles_that_slug_to_nothing_or_get_cut_stay_distinct():
    assert safe_component("灯台守") != safe_component("海辺の家")
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    assert safe_component(long_a) != safe_component(long_b)
    assert len(safe_component(long_a)) <= 64


def test_clip_and_film_keys_follow_the_layout():
    key = "0123456789abcdef" + "f" * 16
    assert clip_object_key("The Lighthouse Keeper", "dawn", 2, key) == (
        "the-lighthouse-keeper/clips/dawn-p2-0123456789abcdef.mp4"
    )
    assert film_object_key("The Lighthouse Keeper", "film.mp4") == "the-lighthouse-keeper/film.mp4"
    assert film_object_key("The Lighthouse Keeper", "manifest.json") == "the-lighthouse-keeper/manifest.json"
    assert storage_key("a/b", "../c") == "a-b/c"


@pytest.mark.parametrize("title", HOSTILE)
def test_hostile_titles_and_ids_cannot_add_segments(title):
    key = clip_object_key(title, title, 1, "ab" * 16)
    segments = key.split("/")
    assert len(segments) == 3 and segments[1] == "clips"
    assert all(SAFE.fullmatch(s) for s in segments)
    assert len(film_object_key(title, title).split("/")) == 2


def test_clip_key_must_be_hex():
    with pytest.raises(ValueError, match="hex"):
        clip_object_key("t", "s", 1, "../../../../etc/x")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/./b",
        "a//b",
        "a/",
        "a\\..\\b",
        "a\x00b",
        "\uff0e\uff0e/x",
        "a/\u202eb",
        "x" * 1025,
        "films/" + "x" * 256 + "/film.mp4",  # a segment longer than a file name may be
    ],
)
def test_check_key_refuses_anything_but_plain_relative_paths(key):
    with pytest.raises(StorageError):
        check_key(key)


def test_check_key_accepts_plain_keys():
    assert check_key("the-keeper/clips/dawn-p1-0123456789abcdef.mp4")
    assert check_key("films/Été 2026/film.mp4")  # plain unicode is fine; tricks are not
