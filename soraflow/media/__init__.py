"""Media: probe and validate clips, stitch them into a film, make a contact sheet.

Everything goes through ffmpeg/ffprobe via ffmpeg-python; no media bytes pass through Python.
"""

from ._contact_sheet import contact_sheet, thumbnail
from ._ffmpeg import error_summary
from ._frames import last_frame
from ._probe import ClipProbe, clear_probe_cache, probe_clip, validate_clip
from ._stitch import StitchResult, copy_refusal, stitch_film
from ._timeline import Chapter, FilmSegment, FilmSpec, SubtitleLine, TimelineEntry, Transition

__all__ = [
    "Chapter",
    "ClipProbe",
    "FilmSegment",
    "FilmSpec",
    "StitchResult",
    "SubtitleLine",
    "TimelineEntry",
    "Transition",
    "clear_probe_cache",
    "contact_sheet",
    "copy_refusal",
    "error_summary",
    "last_frame",
    "probe_clip",
    "stitch_film",
    "thumbnail",
    "validate_clip",
]
