"""Reference images: failures are summarised, never ffmpeg's stderr or the file's own bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from soraflow.errors import MediaError
from soraflow.references import image_size, prepare_reference

PASSWD_BYTES = Path("/etc/passwd").read_bytes()[:64]


def _leaks(message: str) -> list[str]:
    head = PASSWD_BYTES[:8]
    return [s for s in (head.decode("latin-1"), head.hex(), head.hex().upper(), "root:") if s in message]


def test_a_symlink_to_a_text_file_named_like_an_image_shows_none_of_its_bytes(tmp_path):
    link = tmp_path / "keeper.png"
    link.symlink_to("/etc/passwd")
    with pytest.raises(MediaError) as info:
        image_size(link)
    assert _leaks(str(info.value)) == [], str(info.value)
    assert str(info.value) == f"reference image {link}: not a readable image"


def test_a_damaged_image_is_refused_with_a_summary(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + PASSWD_BYTES)
    with pytest.raises(MediaError) as info:
        prepare_reference(broken, "1280x720", tmp_path / "cache")
    assert str(info.value).startswith(f"reference image {broken}: ")
    assert _leaks(str(info.value)) == [], str(info.value)
