"""Text from storyboards and endpoints, made safe to show on a terminal.

Titles, prompts, file names and job ids come from people and services soraflow does not
control: an ESC sequence in a title could recolour, retitle or clear the user's terminal, and
a bidi override could make a message read backwards. ``printable`` escapes every control,
format and line-separator character (``\\x1b`` is shown as the four characters ``\\x1b``),
keeps ordinary unicode as it is, and shortens what is too long to read. A registered secret
is removed first (by value: ``soraflow.redaction``), so a shortened text never shows half a key.
"""

from __future__ import annotations

import unicodedata

from .redaction import redact_secrets

# Cc: C0/C1 controls (ESC, BEL, CR, DEL...), Cf: format (bidi overrides, zero-width joiners),
# Zl/Zp: line and paragraph separators, Cs/Co/Cn: surrogates, private use, unassigned.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or invisible character escaped, shortened to ``limit``
    characters (keeping both ends) when given. ``keep_newlines`` leaves line breaks of a
    multi-line message in place (each line is still escaped)."""
    value = redact_secrets(str(text))
    out = "".join(
        ch if (keep_newlines and ch == "\n") or unicodedata.category(ch) not in _ESCAPED_CATEGORIES else _escape(ch)
        for ch in value
    )
    if limit is not None and len(out) > limit:
        keep = max(1, limit - 20)
        head, tail = out[: keep * 2 // 3], out[-(keep // 3) :]
        out = f"{head}…[{len(out) - len(head) - len(tail)} more chars]…{tail}"
    return out


__all__ = ["printable"]
