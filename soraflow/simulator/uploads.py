"""Video files uploaded to the API: a character's clip, or the video an edit or extension
starts from (the reference's ``video`` part, ``format: binary``).

An upload is streamed to disk while it is hashed (never held whole in memory, docs/architecture.md rule 8),
checked, then kept under its sha256, so a file uploaded twice is stored once. Whether it is a
video is ffprobe's answer through soraflow.media.probe_clip (a readable container with a video
stream and a duration), once still images are ruled out: ffprobe reads a JPEG as a one-frame
video.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..errors import MediaError
from ..media import ClipProbe, probe_clip
from .errors import Refusal
from .images import image_format

CHUNK_BYTES = 1 << 20
HEAD_BYTES = 16  # enough for every image signature images.image_format knows


@dataclass(frozen=True)
class UploadedVideo:
    path: Path
    sha256: str
    filename: str
    width: int
    height: int
    duration: float
    has_audio: bool

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


async def uploaded_video(value, folder: Path, *, param: str = "video") -> UploadedVideo:
    """Store and check the file part ``value``, or refuse it (``Refusal`` 400, naming ``param``)."""
    if not isinstance(value, UploadFile):
        raise Refusal(400, f"Invalid '{param}': expected a video file upload (a multipart/form-data file part).",
                      param=param, code="invalid_type")
    # Copying and ffprobe block, so they run off the event loop.
    return await run_in_threadpool(_store, value.file, value.filename or "upload", folder, param)


def stored_video(data: BinaryIO, filename: str, folder: Path, *, param: str = "video") -> UploadedVideo:
    """Store and check a video that came in another form than a file part (Veo sends inline
    base64); refused with ``Refusal`` as an upload is."""
    return _store(data, filename, folder, param)


def _store(upload: BinaryIO, filename: str, folder: Path, param: str) -> UploadedVideo:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".upload-{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    try:
        upload.seek(0)
        head = upload.read(HEAD_BYTES)
        with open(partial, "wb") as out:
            chunk = head
            while chunk:
                digest.update(chunk)
                out.write(chunk)
                chunk = upload.read(CHUNK_BYTES)
        probe = _probed_video(partial, head, filename, param)
        stored = folder / digest.hexdigest()
        os.replace(partial, stored)
    finally:
        partial.unlink(missing_ok=True)
    return UploadedVideo(stored, digest.hexdigest(), filename, probe.width, probe.height, probe.duration, probe.has_audio)


def _probed_video(path: Path, head: bytes, filename: str, param: str) -> ClipProbe:
    def refuse(why: str) -> Refusal:
        return Refusal(400, f"Invalid '{param}': {why}", param=param, code="invalid_video_format")

    if not head:
        raise refuse(f"the uploaded file '{filename}' is empty.")
    still = image_format(head)
    if still is not None:
        raise refuse(f"the uploaded file '{filename}' is a {still} image, not a video.")
    try:
        return probe_clip(path, name=filename)
    except MediaError as err:
        detail = str(err).replace(str(path), filename).removeprefix(f"clip {filename}: ")
        raise refuse(f"the uploaded file '{filename}' is not a video ffprobe can read ({detail}).") from None
