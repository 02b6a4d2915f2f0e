"""Edits and extensions: new jobs made from an existing video (POST /v1/videos/edits,
POST /v1/videos/extensions).

The reference's ``video`` field names the source in one of two ways:
- a reference to a completed video, ``{"id": "video_…"}``: a JSON object, a form part holding
  that JSON, or the form field ``video[id]`` (how the openai SDK sends an object in a form).
  An unknown id answers 404; a source that is not completed answers 400, as remix does;
- an uploaded video file. The fields name no model, so an upload is taken as a sora-2 clip:
  its size must be a sora-2 size and its length, rounded to whole seconds, a sora-2 length.
The new job keeps the source's model and size and moves queued → in_progress → completed like
any create (moderation included):
- an edit renders a clip of the source's length from the new prompt;
- an extension renders ``seconds`` more and plays the source before them, so its content is
  the stitched video and its ``seconds`` the stitched total, as the reference defines it.
A retired model is refused as create and remix refuse it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .envelope import ApiError, invalid_value, json_response, not_found
from .models import check_model
from ..render import SourceClip, render_spec
from ..uploads import uploaded_video
from .validation import missing, read_fields, require_key, string_field, validated_prompt

if TYPE_CHECKING:
    from ..state import SimulatorState

EDIT_FIELDS = ("prompt", "video")
EXTEND_FIELDS = ("prompt", "seconds", "video")
UPLOAD_MODEL = "sora-2"


@dataclass(frozen=True)
class SourceVideo:
    """What an edit or an extension starts from."""

    model: str
    size: str
    clip: SourceClip
    video_id: str | None  # None: an uploaded file

    @property
    def seconds(self) -> int:
        return self.clip.seconds


def referenced_id(value) -> str:
    """The id in a ``VideoReferenceInputParam``: an object, or a form part holding its JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid type for 'video': expected a reference to a completed video ({\"id\": \"video_…\"}) "
                       "or a video file upload.", param="video", code="invalid_type")
    for key in value:
        if key != "id":
            raise ApiError(400, f"Unknown parameter: 'video.{key}'.", param=f"video.{key}", code="unknown_parameter")
    video_id = value.get("id")
    if video_id is None:
        raise missing("video.id")
    if not isinstance(video_id, str) or not video_id:
        raise ApiError(400, "Invalid 'video.id': expected the id of a completed video.", param="video.id", code="invalid_type")
    return video_id


def edit_routes(state: "SimulatorState") -> list[Route]:
    def now() -> float:
        return state.jobs.clock()

    async def source_of(fields: dict, done: str) -> SourceVideo:
        value = fields.get("video")
        if value is None:
            raise missing("video")
        if isinstance(value, UploadFile):
            return await uploaded_source(value)
        video_id = referenced_id(value)
        job = state.jobs.get(video_id)
        if job is None:
            raise not_found("Video", video_id, param="video")
        t = now()
        status = job.state(t)[0]
        if status != "completed":
            raise ApiError(400, f"Video '{job.id}' is {status}; only completed videos can be {done}.", param="video")
        media = job.media(t)
        # Every render has a sound track; its cache key names its content.
        clip = SourceClip(media.path("video"), media.folder.name, job.seconds, has_audio=True, label=job.id)
        return SourceVideo(job.model, job.size, clip, job.id)

    async def uploaded_source(value: UploadFile) -> SourceVideo:
        spec = check_model(state.config, UPLOAD_MODEL)  # refuse a retired model before storing anything
        upload = await uploaded_video(value, state.uploads_dir)
        sizes = list(spec.sizes)
        if upload.size not in sizes:
            raise ApiError(400, f"Invalid 'video': the uploaded video is {upload.size}; supported sizes for {UPLOAD_MODEL} are: "
                           f"{', '.join(sizes)}.", param="video", code="invalid_video_size")
        seconds = round(upload.duration)
        if seconds not in spec.seconds:
            lengths = ", ".join(str(s) for s in spec.seconds)
            raise ApiError(400, f"Invalid 'video': the uploaded video is {upload.duration:.2f} s long; supported lengths for "
                           f"{UPLOAD_MODEL} are {lengths} seconds.", param="video", code="invalid_video_duration")
        clip = SourceClip(upload.path, upload.sha256, seconds, upload.has_audio, label=f"upload #{upload.sha256[:10]}")
        return SourceVideo(UPLOAD_MODEL, upload.size, clip, None)

    async def edit_video(request: Request) -> Response:
        require_key(request)
        fields = await read_fields(request, EDIT_FIELDS)
        prompt = validated_prompt(fields)
        source = await source_of(fields, "edited")
        check_model(state.config, source.model)
        render = render_spec(prompt=prompt, model=source.model, size=source.size, seconds=source.seconds, edited_from=source.clip.label)
        job = state.create_job(kind="edit", model=source.model, size=source.size, seconds=source.seconds, prompt=prompt,
                               render=render, source=source.video_id)
        return json_response(job.created_resource())

    async def extend_video(request: Request) -> Response:
        require_key(request)
        fields = await read_fields(request, EXTEND_FIELDS)
        prompt = validated_prompt(fields)
        seconds = string_field(fields, "seconds")
        if seconds is None:
            raise missing("seconds")
        source = await source_of(fields, "extended")
        spec = check_model(state.config, source.model)
        allowed = [str(s) for s in spec.seconds]
        if seconds not in allowed:
            raise invalid_value("seconds", seconds, allowed, scope=source.model)
        render = render_spec(prompt=prompt, model=source.model, size=source.size, seconds=int(seconds), extends=source.clip)
        job = state.create_job(kind="extension", model=source.model, size=source.size, seconds=source.seconds + int(seconds),
                               prompt=prompt, render=render, source=source.video_id)
        return json_response(job.created_resource())

    return [
        Route("/v1/videos/edits", edit_video, methods=["POST"]),
        Route("/v1/videos/extensions", extend_video, methods=["POST"]),
    ]
