"""A folder of storyboards: which are new, changed, finished or rejected; S3 prefixes mirrored."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from soraflow import inbox
from soraflow.errors import StorageError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def states(folder: Path, out: Path) -> dict[str, str]:
    return {i.name: i.state for i in inbox.scan(folder, out)}


def test_scan_finds_storyboards_and_tracks_them_by_hash(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    _write(folder, "a.yaml", "title: a")
    _write(folder, "b.json", "{}")
    _write(folder, "notes.txt", "not a storyboard")
    _write(folder, "images/c.yaml", "below the folder: an asset, not a storyboard")
    assert states(folder, out) == {"a.yaml": "new", "b.json": "new"}

    a, b = inbox.scan(folder, out)
    inbox.record_outcome(a, "finished", "film.mp4")
    inbox.record_outcome(b, "rejected", "invalid")
    assert states(folder, out) == {"a.yaml": "new", "b.json": "rejected"}  # no manifest yet
    (a.out_dir / "manifest.json").write_text("{}")
    assert states(folder, out) == {"a.yaml": "finished", "b.json": "rejected"}

    _write(folder, "a.yaml", "title: a, edited")
    _write(folder, "b.json", '{"fixed": true}')
    assert states(folder, out) == {"a.yaml": "changed", "b.json": "changed"}
    assert all(i.to_render for i in inbox.scan(folder, out))


def test_same_stem_gets_distinct_output_dirs(tmp_path):
    _write(tmp_path / "in", "film.yaml", "x")
    _write(tmp_path / "in", "film.json", "{}")
    _write(tmp_path / "in", "other.yml", "y")
    dirs = {i.name: i.out_dir.name for i in inbox.scan(tmp_path / "in", tmp_path / "out")}
    assert dirs == {"film.json": "film-json", "film.yaml": "film-yaml", "other.yml": "other"}


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(StorageError, match="nowhere does not exist"):
        inbox.scan(tmp_path / "nowhere", tmp_path / "out")


def test_s3_prefix_is_mirrored_with_its_images(tmp_path):
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="films")
        s3.put_object(Bucket="films", Key="inbox/one.yaml", Body=b"title: one")
        s3.put_object(Bucket="films", Key="inbox/images/ref.png", Body=b"png")
        s3.put_object(Bucket="films", Key="elsewhere/two.yaml", Body=b"title: two")
        dest = inbox.mirror_s3_prefix("s3://films/inbox", tmp_path / "mirror", client=s3)
        assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["images/ref.png", "one.yaml"]

        s3.put_object(Bucket="films", Key="inbox/one.yaml", Body=b"title: ONE")  # edited in place, same size
        inbox.mirror_s3_prefix("s3://films/inbox/", dest, client=s3)
        assert (dest / "one.yaml").read_text() == "title: ONE"

        with pytest.raises(StorageError, match="could not read s3://missing/inbox"):
            inbox.mirror_s3_prefix("s3://missing/inbox", tmp_path / "m2", client=s3)
