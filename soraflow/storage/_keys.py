"""Object keys that cannot escape the store's prefix or root.

Titles and ids come from storyboards that anyone may write, so they are slugged into one
path component each (``safe_component``); keys handed to a store are checked again
(``check_key``) so a key built any other way is refused rather than trusted.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ..errors import StorageError
from ..terminal import printable

_UNSAFE_RUN = re.compile(r"[^a-z0-9._-]+")
_DOT_RUN = re.compile(r"\.{2,}")
_EDGE = "-._"
# Control, format (RTL overrides, zero-width joiners), surrogate, private and unassigned
# code points: invisible or ambiguous in a path, so never part of a key.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
MAX_KEY_BYTES = 1024  # S3's limit for a whole key
MAX_SEGMENT_BYTES = 255  # NAME_MAX: a segment must be a valid file name wherever it is mirrored


def _digest8(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_component(text: str, *, max_length: int = 64) -> str:
    """One path component from free text: NFKC-normalised, slugged to ``[a-z0-9._-]``.

    Never empty, never ``.``/``..``, no separators of any script (fullwidth dots and slashes
    fold to ASCII under NFKC before they are replaced). Text that slugs to nothing (a title
    in another script) or has to be shortened gets a short hash of the original, so two
    different titles do not share a folder.
    """
    original = str(text)
    folded = unicodedata.normalize("NFKC", original)
    folded = "".join(ch for ch in folded if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    folded = unicodedata.normalize("NFKD", folded.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    slug = _DOT_RUN.sub(".", _UNSAFE_RUN.sub("-", folded)).strip(_EDGE)
    if not slug:
        return f"untitled-{_digest8(original)}" if original.strip() else "untitled"
    if len(slug) > max_length:
        suffix = f"-{_digest8(original)}"
        slug = slug[: max(1, max_length - len(suffix))].rstrip(_EDGE) + suffix
    return slug


def storage_key(*parts: str) -> str:
    """A key from free-text parts, one safe component each (a '/' inside a part is not a
    separator)."""
    if not parts:
        raise ValueError("storage_key needs at least one part")
    return "/".join(safe_component(p) for p in parts)


def clip_object_key(storyboard_title: str, shot_id: str, part: int, clip_key: str) -> str:
    """``{slug(title)}/clips/{shot_id}-p{part}-{clip_key[:16]}.mp4``"""
    key16 = clip_key[:16].lower()
    if not re.fullmatch(r"[0-9a-f]{16}", key16):
        raise ValueError(f"clip key must be at least 16 hex digits, got {clip_key!r}")
    name = f"{safe_component(shot_id)}-p{int(part)}-{key16}.mp4"
    return f"{safe_component(storyboard_title)}/clips/{name}"


def film_object_key(storyboard_title: str, name: str) -> str:
    """``{slug(title)}/{name}`` for film.mp4, manifest.json, contact_sheet.png."""
    return storage_key(storyboard_title, name)


def check_key(key: str, *, what: str = "key") -> str:
    """The key itself if it is a plain relative path; StorageError otherwise.

    Refused: empty keys and segments, '.', '..', absolute keys, backslashes, control and
    format characters, and segments whose NFKC form differs (fullwidth '．．', '／').
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"{what} must be a non-empty relative path, got {key!r}")
    problem = None
    if key.startswith("/"):
        problem = "is absolute"
    elif "\\" in key:
        problem = "contains a backslash"
    elif any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in key):
        problem = "contains control or invisible characters"
    elif unicodedata.normalize("NFKC", key) != key:
        problem = "is not NFKC-normalised (lookalike dots or slashes)"
    elif any(seg in ("", ".", "..") for seg in key.split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif len(key.encode("utf-8")) > MAX_KEY_BYTES:
        problem = f"is longer than {MAX_KEY_BYTES} bytes"
    elif any(len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES for seg in key.split("/")):
        problem = f"has a segment longer than {MAX_SEGMENT_BYTES} bytes (a file name's limit, for local mirrors and caches)"
    if problem:
        raise StorageError(
            f"{what} {printable(repr(key), 120)} {problem}; keys are relative paths of plain segments "
            "(build them with storage_key/clip_object_key)"
        )
    return key


def check_range(start: int, end: int) -> None:
    """A byte range of an object (both ends included) a store can be asked for; ValueError otherwise."""
    if not (isinstance(start, int) and isinstance(end, int)) or start < 0 or end < start:
        raise ValueError(f"a byte range is 0 <= start <= end, got {start!r}-{end!r}")
