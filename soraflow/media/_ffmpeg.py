"""Running ffmpeg-python graphs: quiet, never reading stdin, failures as MediaError."""

from __future__ import annotations

import logging

import ffmpeg

from ..errors import MediaError

log = logging.getLogger("soraflow.media")

_MAX_MESSAGE_CHARS = 600


def trimmed(stderr: bytes | str | None, lines: int = 4) -> str:
    """The end of ffmpeg's stderr: where it says what went wrong."""
    if not stderr:
        return "no message"
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    message = " | ".join(kept)
    return message if len(message) <= _MAX_MESSAGE_CHARS else "…" + message[-_MAX_MESSAGE_CHARS:]


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
        raise MediaError(f"{what}: ffmpeg failed: {trimmed(err.stderr)}") from None
    warnings = err.decode("utf-8", "replace").strip()
    # ffmpeg 5.1 exits 0 when the muxer fails to write the trailer (the index): the file is
    # broken all the same.
    if "Error writing trailer" in warnings:
        raise MediaError(f"{what}: ffmpeg failed: {trimmed(warnings)}")
    if warnings:
        log.info("%s: ffmpeg said: %s", what, trimmed(warnings, lines=8))
    return warnings
