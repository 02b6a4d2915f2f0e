"""The archive's guards, before anything is spent: the output directory and the storage URL."""

from __future__ import annotations

import pytest

from soraflow.archive import resolve_paths
from soraflow.errors import StorageError
from soraflow.settings import Settings


def test_output_directories_the_system_cannot_hold_are_refused(tmp_path):
    settings = Settings()
    with pytest.raises(StorageError, match="at most 4096"):
        resolve_paths("d/" * 2100, None, settings)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(StorageError, match="exists and is not a directory"):
        resolve_paths(tmp_path / "a-file", None, settings)


def test_storage_is_checked_with_the_output_directory(tmp_path):
    out, url = resolve_paths(tmp_path / "out", None, Settings())
    assert (out, url) == (tmp_path / "out", (tmp_path / "out").as_uri())
    with pytest.raises(StorageError, match="at most 255"):
        resolve_paths(tmp_path / "out", "s3://bucket-ok/" + "p" * 300, Settings())
