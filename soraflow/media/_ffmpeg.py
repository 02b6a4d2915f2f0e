"""Running ffmpeg-python graphs: quiet, never reading stdin, failures as MediaError."""

from __future__ import annotations

import logging

import ffmpeg

from ..errors import MediaError
from ..terminal import printable

log = logging.getLogger("soraflow.media")

# What ffmpeg's stderr may say, and what soraflow says instead. Its stderr is never shown as it
# is: it quotes the input, and for a file that is not media that means the file's own bytes
# (a PNG decoder reports "Invalid PNG signature 0x726F6F743A783A30": 'root:x:0' of
# /etc/passwd, reached through a symlink named keeper.png).
_CAUSES = (
    ("reserved_moov_size is too small", "the index does not fit the space reserved for it (reserved_moov_size is too small)"),
    ("moov atom not found", "an incomplete MP4 (no index: moov atom not found)"),
    ("no space left on device", "no space left on device"),
    ("permission denied", "permission denied"),
    ("no such file or directory", "no such file"),
    ("error writing trailer", "the file's index could not be written (trailer)"),
    ("invalid png signature", "not a valid PNG image"),
    ("invalid jpeg", "not a valid JPEG image"),
    ("invalid data found when processing input", "not a format ffmpeg reads (invalid data)"),
    ("could not find codec parameters", "no decodable stream"),
    ("does not contain any stream", "no stream to write"),
    ("unknown encoder", "an encoder this ffmpeg lacks"),
    ("decoder not found", "a codec this ffmpeg cannot decode"),
    ("end of file", "the file ends early"),
)


def error_summary(stderr: bytes | str | None) -> str:
    """What went wrong, in soraflow's words: a known cause from ffmpeg's stderr, never its text.

    ffmpeg's own words are logged at DEBUG (``soraflow.media``), escaped, for whoever asks.
    """
    if not stderr:
        return "ffmpeg gave no reason"
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    if log.isEnabledFor(logging.DEBUG):
        log.debug("ffmpeg said: %s", printable(" | ".join(line.strip() for line in text.strip().splitlines()[-8:]), 1000))
    lowered = text.lower()
    causes = [said for phrase, said in _CAUSES if phrase in lowered]
    return "; ".join(causes[:2]) if causes else "ffmpeg failed for a reason it did not name plainly (DEBUG logging of soraflow.media shows its words)"


def run(output_stream, *, what: str, extra_args: tuple[str, ...] = ()) -> str:
    """Run an ffmpeg-python output; return ffmpeg's warnings. ``extra_args`` go after the
    output, for the few things ffmpeg-python cannot express (see the callers)."""
    # -nostdin: a worker's stdin is not ffmpeg's to read (it would swallow or block on it).
    stream = output_stream.global_args("-hide_banner", "-nostdin", "-loglevel", "warning", *extra_args)
    if log.isEnabledFor(logging.DEBUG):  # compiling the graph is not free
        log.debug("ffmpeg %s", " ".join(ffmpeg.compile(stream, overwrite_output=True)[1:]))
    try:
        _, err = stream.run(capture_stdout=True, capture_stderr=True, overwrite_output=True)
    except ffmpeg.Error as err:
        raise MediaError(f"{what}: ffmpeg failed: {error_summary(err.stderr)}") from None
    warnings = err.decode("utf-8", "replace").strip()
    # ffmpeg 5.1 exits 0 when the muxer fails to write the trailer (the index): the file is
    # broken all the same.
    if "Error writing trailer" in warnings:
        raise MediaError(f"{what}: ffmpeg failed: {error_summary(warnings)}")
    if warnings and log.isEnabledFor(logging.DEBUG):
        log.debug("%s: ffmpeg warned: %s", what, printable(" | ".join(warnings.splitlines()[-8:]), 1000))
    return warnings
