"""Local files: the embedded default store."""

from __future__ import annotations

import os

import pytest

from soraflow.errors import StorageError
from soraflow.settings import Settings
from soraflow.storage import RANGE_CHUNK_BYTES, LocalStorage, StoredObject, clip_object_key, open_storage

KEY = "the-keeper/clips/dawn-p1-0123456789abcdef.mp4"


@pytest.fixture
def store(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "out")


def test_put_copies_verifies_and_keeps_the_source(store, media):
    src, sha = media(size=3 * 1024 * 1024)
    obj = store.put_file(src, KEY, content_type="video/mp4", metadata={"model": "sora-2"}, sha256=sha)
    dest = store.root / KEY
    assert obj == StoredObject(dest.as_uri(), KEY, sha, src.stat().st_size, uploaded=True, link=dest.as_uri())
    assert dest.read_bytes() == src.read_bytes()
    assert src.is_file()
    assert not os.path.samefile(src, dest)  # a copy, not a link the source could rewrite
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temp files left


def test_put_again_is_a_no_op(store, media):
    src, sha = media()
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    before = (store.root / KEY).stat()
    again = store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256=sha)
    after = (store.root / KEY).stat()
    assert again.uploaded is False and again.sha256 == sha
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_put_replaces_different_content(store, media):
    old, _ = media("old.mp4", seed=1)
    new, new_sha = media("new.mp4", seed=2)
    store.put_file(old, KEY, content_type="video/mp4", metadata={})
    obj = store.put_file(new, KEY, content_type="video/mp4", metadata={})
    assert obj.uploaded and obj.sha256 == new_sha
    assert (store.root / KEY).read_bytes() == new.read_bytes()


def test_source_already_in_place_is_only_verified(store, media):
    dest = store.root / KEY
    _, sha = media()
    src, _ = media()
    dest.parent.mkdir(parents=True)
    os.replace(src, dest)
    obj = store.put_file(dest, KEY, content_type="video/mp4", metadata={}, sha256=sha)
    assert obj.uploaded is False and obj.sha256 == sha and dest.is_file()
    with pytest.raises(StorageError, match="expected"):
        store.put_file(dest, KEY, content_type="video/mp4", metadata={}, sha256="0" * 64)
    assert dest.is_file()


def test_a_source_that_changed_is_refused(store, media):
    src, _ = media()
    with pytest.raises(StorageError, match="changed"):
        store.put_file(src, KEY, content_type="video/mp4", metadata={}, sha256="f" * 64)
    assert not (store.root / KEY).exists()
    assert src.is_file()


def test_missing_source_is_a_storage_error(store, tmp_path):
    with pytest.raises(StorageError, match="no such file"):
        store.put_file(tmp_path / "nope.mp4", KEY, content_type="video/mp4", metadata={})


def test_exists_presign_and_get_file(store, media, tmp_path):
    src, sha = media()
    assert store.exists(KEY) is None
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    found = store.exists(KEY, sha)
    assert found is not None and found.sha256 == sha and found.size == src.stat().st_size
    assert store.exists(KEY, "0" * 64) is None
    assert store.presign(KEY) == (store.root / KEY).as_uri() == store.uri(KEY)
    restored = tmp_path / "restore" / "clip.mp4"
    got = store.get_file(KEY, restored)
    assert got.sha256 == sha and restored.read_bytes() == src.read_bytes()
    with pytest.raises(StorageError, match="does not exist"):
        store.get_file("the-keeper/missing.mp4", tmp_path / "x.mp4")


@pytest.mark.parametrize(
    "key",
    ["../escape.mp4", "a/../../escape.mp4", "/tmp/escape.mp4", "a\\..\\..\\escape.mp4", "\uff0e\uff0e/escape.mp4", "a\x00b"],
)
def test_traversal_keys_are_refused(store, media, key, tmp_path):
    src, _ = media()
    with pytest.raises(StorageError):
        store.put_file(src, key, content_type="video/mp4", metadata={})
    assert not (tmp_path / "escape.mp4").exists()
    assert not store.root.exists() or not any(store.root.rglob("*"))


def test_a_symlink_out_of_the_root_is_refused(store, media, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    src, _ = media()
    with pytest.raises(StorageError, match="outside the storage root"):
        store.put_file(src, "link/clip.mp4", content_type="video/mp4", metadata={})
    assert not any(outside.iterdir())


def test_hostile_titles_land_under_the_root(store, media):
    src, _ = media()
    key = clip_object_key("../../\uff0e\uff0e\uff0f\u202etitle", "../shot", 1, "ab" * 16)
    obj = store.put_file(src, key, content_type="video/mp4", metadata={})
    stored = store.path(key)
    assert obj.uri == stored.as_uri()
    assert stored.is_relative_to(store.root.resolve())
    assert [p for p in store.root.rglob("*") if p.is_file()] == [stored]


def test_a_byte_range_is_read_in_pieces(store, media):
    src, _ = media(size=3 * 1024 * 1024)
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    data = src.read_bytes()
    assert store.object_size(KEY) == len(data) and store.object_size("the-keeper/missing.mp4") is None
    pieces = list(store.read_range(KEY, 1000, 1000 + 2 * RANGE_CHUNK_BYTES + 9))
    assert b"".join(pieces) == data[1000 : 1000 + 2 * RANGE_CHUNK_BYTES + 10]
    assert [len(p) for p in pieces] == [RANGE_CHUNK_BYTES, RANGE_CHUNK_BYTES, 10]
    assert b"".join(store.read_range(KEY, len(data) - 1, len(data) - 1)) == data[-1:]
    with pytest.raises(StorageError, match="holds"):
        store.read_range(KEY, 0, len(data))
    with pytest.raises(StorageError, match="cannot read"):
        store.read_range("the-keeper/missing.mp4", 0, 1)
    with pytest.raises(ValueError):
        store.read_range(KEY, 10, 9)
    with pytest.raises(StorageError):
        store.read_range("../escape.mp4", 0, 1)


def test_key_of_is_the_inverse_of_uri_and_refuses_what_is_not_under_the_root(store, media, tmp_path):
    src, _ = media()
    store.put_file(src, KEY, content_type="video/mp4", metadata={})
    assert store.key_of(store.uri(KEY)) == KEY
    assert store.key_of(f"file://localhost{store.root}/{KEY}") == KEY
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    for uri in (
        f"file://{store.root}/../outside/secret.mp4",
        f"file://{store.root}/%2e%2e/outside/secret.mp4",
        f"file://{store.root}/link/secret.mp4",
        (outside / "secret.mp4").as_uri(),
        f"file://elsewhere{store.root}/{KEY}",
        f"s3://bucket/{KEY}",
        f"file://{store.root}",
        f"file://{store.root}/{KEY}?x=1",
        "/etc/passwd",
    ):
        assert store.key_of(uri) is None, uri


def test_open_storage_understands_paths_and_file_urls(tmp_path, monkeypatch):
    settings = Settings()
    assert open_storage(tmp_path, settings).root == tmp_path
    assert open_storage(tmp_path.as_uri(), settings).root == tmp_path
    spaced = tmp_path / "my films"
    assert open_storage(spaced.as_uri(), settings).root == spaced
    assert open_storage(f"file://localhost{tmp_path}", settings).root == tmp_path
    monkeypatch.chdir(tmp_path)
    assert open_storage("out", settings).root == tmp_path / "out"
    with pytest.raises(StorageError, match="must be local"):
        open_storage("file://fileserver/share", settings)
    with pytest.raises(StorageError, match="unsupported scheme"):
        open_storage("gs://bucket/prefix", settings)
