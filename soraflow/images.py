"""Recognising the images a storyboard names (reference frames) before anything reads them whole.

A reference is checked by what it is, not by its name: a regular file, not too large, whose first
bytes are a PNG, JPEG or WebP signature. A symlink named ``keeper.png`` that points at
``/etc/passwd`` is refused here with a message that shows none of its bytes.
"""

from __future__ import annotations

import os

from .documents import DocumentError, open_regular_file, path_problem

MAX_REFERENCE_BYTES = 50 * 1024 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def image_kind(head: bytes) -> str | None:
    """'png', 'jpeg' or 'webp' from a file's first 12 bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def reference_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a reference image, or None when it can."""
    if problem := path_problem(path):
        return f"the path {problem}"
    if not os.fspath(path).lower().endswith(IMAGE_SUFFIXES):
        return "must be a .png, .jpg, .jpeg or .webp image"
    try:
        fd = open_regular_file(path)
    except DocumentError as err:
        return str(err)
    try:
        size = os.fstat(fd).st_size
        head = os.read(fd, 12)
    except OSError as err:
        return f"cannot read it: {err.strerror or type(err).__name__}"
    finally:
        os.close(fd)
    if size > MAX_REFERENCE_BYTES:
        return f"is {size / 1024 / 1024:.0f} MiB; a reference image may be at most {MAX_REFERENCE_BYTES // 1024 // 1024} MiB"
    if image_kind(head) is None:
        return "is not a PNG, JPEG or WebP image (its content does not start like one)"
    return None
