"""The Videos and Models API under /v1, as the openai SDK calls it.

Choices where the service's behaviour had to be picked (all documented in the simulator's
package doc):
- content of a job that is not completed: 404 "Video is not ready yet" (what the live
  service answered while a job was queued or in progress); expired or failed: 404 too;
- delete of a job still queued or in progress: 400 (the service deletes completed or failed
  videos only);
- any non-empty bearer key is accepted.
Edits and extensions live in edits.py, characters in characters.py.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..render import MEDIA_TYPES, render_spec
from .characters import character_routes
from .edits import edit_routes
from .envelope import ApiError, invalid_value, json_response, not_found
from .models import check_model, is_retired, listed_models, model_resource, unknown_model
from .validation import (
    check_reference,
    prompt_too_long,
    read_fields,
    reference_bytes,
    require_key,
    string_field,
    validated_prompt,
)

if TYPE_CHECKING:
    from ..state import SimulatorState

CREATE_FIELDS = ("prompt", "model", "seconds", "size", "input_reference")
DEFAULTS = {"model": "sora-2", "seconds": "4", "size": "720x1280"}
LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT = 20, 100


def openai_routes(state: "SimulatorState") -> list[Route]:
    def now() -> float:
        return state.jobs.clock()

    def job_or_404(video_id: str):
        job = state.jobs.get(video_id)
        if job is None:
            raise not_found("Video", video_id, param="video_id")
        return job

    async def create_video(request: Request) -> Response:
        require_key(request)
        fields = await read_fields(request, CREATE_FIELDS)
        prompt = validated_prompt(fields)
        model = string_field(fields, "model", DEFAULTS["model"])
        spec = check_model(state.config, model)
        if len(prompt) > spec.prompt_max_chars:
            raise prompt_too_long(prompt, spec.prompt_max_chars)
        seconds = string_field(fields, "seconds", DEFAULTS["seconds"])
        allowed_seconds = [str(s) for s in spec.seconds]
        if seconds not in allowed_seconds:
            raise invalid_value("seconds", seconds, allowed_seconds, scope=model)
        size = string_field(fields, "size", DEFAULTS["size"])
        allowed_sizes = list(spec.sizes)
        if size not in allowed_sizes:
            raise invalid_value("size", size, allowed_sizes, scope=model)
        if int(seconds) not in spec.seconds_at(size):  # a size that comes in fewer lengths
            raise invalid_value("seconds", seconds, [str(s) for s in spec.seconds_at(size)], scope=f"{model} at {size}")
        reference = await reference_bytes(fields.get("input_reference"))
        if reference is not None:
            check_reference(reference, size)
        # The reference is the clip's first frame (the service's input_reference), as on Veo.
        render = render_spec(prompt=prompt, model=model, size=size, seconds=int(seconds), reference=reference, first_frame=reference)
        job = state.create_job(kind="create", model=model, size=size, seconds=int(seconds), prompt=prompt, render=render)
        return json_response(job.created_resource())

    async def remix_video(request: Request) -> Response:
        require_key(request)
        source = job_or_404(request.path_params["video_id"])
        fields = await read_fields(request, ("prompt",))
        prompt = validated_prompt(fields)
        status = source.state(now())[0]
        if status != "completed":
            raise ApiError(400, f"Video '{source.id}' is {status}; only completed videos can be remixed.", param="video_id")
        check_model(state.config, source.model)
        render = render_spec(prompt=prompt, model=source.model, size=source.size, seconds=source.seconds, remixed_from=source.id,
                             look=source.look)  # a remix carries its source's look
        job = state.create_job(kind="remix", model=source.model, size=source.size, seconds=source.seconds, prompt=prompt,
                               render=render, source=source.id)
        return json_response(job.created_resource())

    async def retrieve_video(request: Request) -> Response:
        require_key(request)
        job = job_or_404(request.path_params["video_id"])
        t = now()
        resource = job.resource(t)
        job.status_calls += 1
        headers = {}
        if state.config.poll_after_hint and resource["status"] in ("queued", "in_progress"):
            headers["openai-poll-after-ms"] = str(job.poll_after_ms(t))
        return json_response(resource, headers=headers)

    async def list_videos(request: Request) -> Response:
        require_key(request)
        q = request.query_params
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_value("order", order, ("asc", "desc"))
        try:
            limit = int(q.get("limit", LIST_DEFAULT_LIMIT))
        except ValueError:
            raise ApiError(400, f"Invalid 'limit': expected an integer, but got '{q.get('limit')}' instead.", param="limit",
                           code="invalid_type") from None
        if not 0 <= limit <= LIST_MAX_LIMIT:
            raise ApiError(400, f"Invalid 'limit': expected an integer between 0 and {LIST_MAX_LIMIT}, got {limit}.", param="limit",
                           code="invalid_value")
        after = q.get("after")
        try:
            jobs, has_more = state.jobs.page(after=after, limit=limit, order=order)
        except KeyError:
            raise not_found("Video", after or "", param="after") from None
        t = now()
        data = [j.resource(t) for j in jobs]
        return json_response({
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        })

    async def delete_video(request: Request) -> Response:
        require_key(request)
        job = job_or_404(request.path_params["video_id"])
        status = job.state(now())[0]
        if status not in ("completed", "failed"):
            raise ApiError(400, f"Video '{job.id}' is {status}; only completed or failed videos can be deleted.", param="video_id")
        state.jobs.delete(job)
        return json_response({"id": job.id, "object": "video.deleted", "deleted": True})

    async def video_content(request: Request) -> Response:
        require_key(request)
        variant = request.query_params.get("variant", "video")
        if variant not in MEDIA_TYPES:
            raise invalid_value("variant", variant, tuple(MEDIA_TYPES))
        job = job_or_404(request.path_params["video_id"])
        t = now()
        status, _, _, error = job.state(t)
        if status == "failed":
            raise ApiError(404, f"Video '{job.id}' failed ({error['code']}); it has no content.", param="video_id")
        if status != "completed":
            raise ApiError(404, "Video is not ready yet, use GET /v1/videos/{video_id} to check status.", param="video_id")
        if job.expired(t):
            raise ApiError(404, f"The content of video '{job.id}' has expired.", param="video_id", code="video_expired")
        media = job.media(t)
        return FileResponse(media.path(variant), media_type=MEDIA_TYPES[variant], headers={"x-request-id": f"req_{uuid.uuid4().hex}"})

    async def list_models(request: Request) -> Response:
        require_key(request)
        return json_response({"object": "list", "data": listed_models(state.config)})

    async def retrieve_model(request: Request) -> Response:
        require_key(request)
        name = request.path_params["model"]
        if name not in state.config.model_names() or (state.config.shutdown_listing == "omit" and is_retired(state.config, name)):
            raise unknown_model(name)
        return json_response(model_resource(state.config, name))

    async def unknown_route(request: Request) -> Response:
        require_key(request)
        raise ApiError(404, f"Invalid URL ({request.method} {request.url.path})")

    return [
        *character_routes(state),  # before /v1/videos/{video_id}, which their paths would match
        *edit_routes(state),
        Route("/v1/videos", create_video, methods=["POST"]),
        Route("/v1/videos", list_videos, methods=["GET"]),
        Route("/v1/videos/{video_id}", retrieve_video, methods=["GET"]),
        Route("/v1/videos/{video_id}", delete_video, methods=["DELETE"]),
        Route("/v1/videos/{video_id}/remix", remix_video, methods=["POST"]),
        Route("/v1/videos/{video_id}/content", video_content, methods=["GET"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model}", retrieve_model, methods=["GET"]),
        Route("/v1/{rest:path}", unknown_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
