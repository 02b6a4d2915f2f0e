"""fal's queue, as fal-client 1.0.3 calls it:

- ``POST /{endpoint_id}`` with the JSON arguments (``?fal_webhook=URL``: where the request's end
  is delivered, signed as fal signs, by ../webhooks.py) →
  ``{request_id, response_url, status_url, cancel_url, gateway_request_id, queue_position}``;
  fal-client fails with KeyError without any of the four first, and its handle uses the URLs
  given here;
- ``GET /{owner}/{alias}/requests/{id}/status?logs=0|1``: 202 ``IN_QUEUE`` (``queue_position``)
  or ``IN_PROGRESS``, 200 ``COMPLETED`` (``metrics.inference_time``; ``error`` and
  ``error_type`` when the model refused). ``logs`` is always there: a list with ``logs=1``,
  else null (fal-client reads the key);
- ``GET /{owner}/{alias}/requests/{id}``: the result (400 while unfinished; a refused request
  answers the model's 422); ``PUT …/cancel``: 202 ``CANCELLATION_REQUESTED``, 400 when done.
fal-client builds the last three from the endpoint id without its sub-path
(``fal-ai/kling-video/v3/pro/image-to-video`` → ``fal-ai/kling-video``), so they are served so.

A request is checked the way its profile's ``arguments:`` table says the endpoint takes it
(soraflow/models/arguments.py): unknown, missing and ill-typed arguments and values the
endpoint does not allow answer 422 in pydantic's words; an image argument must be a ``data:``
URI or a file of this storage (the simulator fetches nothing from elsewhere), within the
table's ``max_bytes``. Unknown arguments are refused (fal's apps may ignore them): a table
that names an argument wrongly must fail here, not pass unseen. Every request is a shared
``Job`` (dialect ``fal``), so ``GET /_sim/jobs`` counts it. A request blocked by ``moderation``
(or a moderation term) finishes COMPLETED with ``error`` and ``error_type:
content_policy_violation``, and its result answers 422.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ...models.arguments import Arguments
from ...models.profiles import aspect_and_resolution
from ..config import SimulatedModel
from ..images import NotAnImage, image_size
from ..render import MEDIA_TYPES, render_spec
from ..retirement import is_retired
from .envelope import FalError, fal_json, invalid, unprocessable
from .storage import origin, require_fal_key

if TYPE_CHECKING:
    from ..jobs import Job
    from ..state import SimulatorState

DIALECT = "fal"
NAMESPACES = ("workflows", "comfy")  # fal-client's APP_NAMESPACES
RESULT_FILE = "output.mp4"
POLICY_ERROR = "content_policy_violation"


@dataclass
class FalRequest:
    """What the simulator keeps of a submitted request (its job's ``request``)."""

    endpoint_id: str
    arguments: dict
    table: Arguments
    seed: int
    origin: str  # https://HOST the client called: where its URLs point
    webhook_url: str | None = None
    cancelled_mono: float | None = None
    logs: list[dict] = field(default_factory=list)


def app_path(endpoint_id: str) -> str:
    """``owner/alias`` (with its namespace) as fal-client builds request URLs: no sub-path."""
    parts = endpoint_id.split("/")
    keep = 3 if parts[0] in NAMESPACES else 2
    return "/".join(parts[:keep])


def request_urls(request: FalRequest, request_id: str) -> dict[str, str]:
    base = f"{request.origin}/{app_path(request.endpoint_id)}/requests/{request_id}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def _iso(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).isoformat()


def fal_status(job: "Job", now: float) -> tuple[str, float | None, dict | None]:
    """``(IN_QUEUE | IN_PROGRESS | COMPLETED, finished_mono, error)`` of a request."""
    request: FalRequest = job.request
    status, _, finished, error = job.state(now)
    if request.cancelled_mono is not None and (finished is None or request.cancelled_mono < finished):
        return "COMPLETED", request.cancelled_mono, {"message": "Request was cancelled.", "code": "request_cancelled"}
    if status == "queued":
        return "IN_QUEUE", None, None
    if status == "in_progress":
        return "IN_PROGRESS", None, None
    if status == "failed":
        code = POLICY_ERROR if error and error.get("code") == "moderation_blocked" else "internal_error"
        message = ("The request was flagged by the content checker: the prompt or image may violate the content policy."
                   if code == POLICY_ERROR else (error or {}).get("message", "failed"))
        return "COMPLETED", finished, {"message": message, "code": code}
    return "COMPLETED", finished, None


# --- checking a request by its table ---------------------------------------------------------


def _image(state: "SimulatorState", url: object, name: str, limit: int | None) -> bytes | dict:
    """The image's bytes, or a 422 entry saying why not."""
    if not isinstance(url, str):
        return invalid(name, "Input should be a valid string", "string_type", url)
    if url.startswith("data:"):
        try:
            data = base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            return invalid(name, "The data URI is not valid base64.", "file_download_error", url[:64])
    else:
        stored = state.fal.files.by_url(url)
        if stored is None:
            return invalid(name, f"Failed to download the file at {url}: the simulator fetches only its own storage's "
                           "files and data: URIs.", "file_download_error", url)
        data = stored.path.read_bytes()
    if limit is not None and len(data) > limit:
        return invalid(name, f"File size {len(data)} bytes exceeds the maximum of {limit} bytes.", "file_too_large", len(data))
    try:
        image_size(data)
    except NotAnImage:
        return invalid(name, "The file is not a supported image (PNG, JPEG or WebP).", "image_load_error")
    return data


def _typed(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, bool)


def checked(state: "SimulatorState", model: SimulatedModel, body: object) -> tuple[dict[str, Any], list[dict]]:
    """soraflow field -> value of a request, and the 422 entries it earns."""
    table = model.arguments
    if not isinstance(body, dict):
        return {}, [invalid("body", "Input should be a valid dictionary", "dict_type", body)]
    by_name = {a.name: f for f, a in table.mapped().items()}
    errors = [invalid(k, "Extra inputs are not permitted", "extra_forbidden", v) for k, v in body.items() if k not in by_name]
    values: dict[str, Any] = {}
    for name, value in body.items():
        fld = by_name.get(name)
        if fld is None:
            continue
        argument = getattr(table, fld)
        kind = table.type_of(fld)
        if not _typed(kind, value):
            errors.append(invalid(name, f"Input should be a valid {kind}", f"{kind}_type", value))
        elif argument.values and value not in argument.values:
            allowed = ", ".join(repr(v) for v in argument.values)
            errors.append(invalid(name, f"Input should be {allowed}", "literal_error", value))
        elif fld == "first_frame":
            image = _image(state, value, name, argument.max_bytes)
            if isinstance(image, dict):
                errors.append(image)
            else:
                values[fld] = image
        elif fld == "seconds":
            seconds = table.seconds_in(value)
            if seconds is None:
                errors.append(invalid(name, "Input should name a length in seconds", "value_error", value))
            else:
                values[fld] = seconds
        else:
            values[fld] = value
    if "prompt" not in values and not any(e["loc"][-1] == table.prompt.name for e in errors):
        errors.append(invalid(table.prompt.name, "Field required", "missing"))
    elif "prompt" in values and not 1 <= len(values["prompt"]) <= model.prompt_max_chars:
        errors.append(invalid(table.prompt.name, f"String should have between 1 and {model.prompt_max_chars} characters",
                              "string_too_long", len(values["prompt"])))
    if table.first_frame is not None and "first_frame" not in values and not any(e["loc"][-1] == table.first_frame.name for e in errors):
        errors.append(invalid(table.first_frame.name, "Field required", "missing"))
    return values, errors


def _size(model: SimulatedModel, values: dict) -> str | None:
    """The clip's size: the profile's size of the asked aspect ratio and resolution (the image's
    aspect where the endpoint takes no aspect ratio)."""
    image = values.get("first_frame")
    image_aspect = None
    if image is not None and "aspect_ratio" not in values:
        _, w, h = image_size(image)
        image_aspect = w / h
    for size in model.sizes:
        aspect, resolution = aspect_and_resolution(size)
        width, height = (int(v) for v in size.split("x"))
        if "aspect_ratio" in values and aspect != values["aspect_ratio"]:
            continue
        if "resolution" in values and resolution != values["resolution"]:
            continue
        if image_aspect is not None and abs(width / height - image_aspect) > 0.02:
            continue
        return size
    return None


def result_body_of(state: "SimulatorState", job: "Job") -> dict:
    """A finished request's result: its video's URL (on this server) at the table's ``result_video`` path, and its seed."""
    fal: FalRequest = job.request
    media = job.media(state.jobs.clock())
    video = media.path("video")
    url = f"{fal.origin}/files/results/{job.id}/{RESULT_FILE}"
    file = {"url": url, "content_type": "video/mp4", "file_name": RESULT_FILE, "file_size": video.stat().st_size}
    out: dict = {"seed": fal.seed}
    steps = fal.table.result_video.split(".")
    node: Any = out
    for i, step in enumerate(steps[:-1]):
        nxt: Any = [] if steps[i + 1].isdigit() else {}
        if isinstance(node, list):
            node.append(nxt)
        else:
            node[step] = nxt
        node = nxt
    if isinstance(node, list):
        node.append(url)
    else:
        node.update({k: v for k, v in file.items() if k != "url"})
        node[steps[-1]] = url
    return out


def queue_routes(state: "SimulatorState") -> list[Route]:
    def now() -> float:
        return state.jobs.clock()

    def served(endpoint_id: str) -> SimulatedModel:
        model = state.config.model(endpoint_id, DIALECT)
        if model is None or model.arguments is None:
            raise FalError(404, f"Application '{endpoint_id}' not found.")
        if is_retired(state.config, endpoint_id):
            raise FalError(404, f"Application '{endpoint_id}' has been retired and is no longer available.", error_type="app_retired")
        return model

    async def submit(request: Request) -> Response:
        require_fal_key(request)
        endpoint_id = request.path_params["endpoint"].strip("/")
        model = served(endpoint_id)
        raw = await request.body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise unprocessable([invalid("body", "JSON decode error", "json_invalid")]) from None
        values, errors = checked(state, model, body)
        seconds = values.get("seconds")
        if seconds is None and not errors:
            seconds = model.seconds[0]  # the endpoint's default length
        size = _size(model, values) if not errors else None
        if not errors and seconds not in model.seconds:
            errors.append(invalid(model.arguments.seconds.name, f"Input should be one of {list(model.seconds)} seconds", "literal_error", seconds))
        if not errors and size is None:
            errors.append(invalid("aspect_ratio", "No output size matches the asked aspect ratio and resolution", "value_error"))
        if errors:
            raise unprocessable(errors)
        # fal's video models default generate_audio to true; one without the switch makes sound or not, as its profile says.
        audio = values.get("audio", True) if model.arguments.audio is not None else model.audio != "never"
        seed = values.get("seed")
        seed = seed if seed is not None else int.from_bytes(hashlib.sha256(raw).digest()[:4], "big")
        detail = f"fal|{endpoint_id}|seed={seed}" + (f"|negative={body.get(model.arguments.negative_prompt.name)}" if model.arguments.negative_prompt else "")
        # a seed asked for is drawn as its band (the same seed, the same video); without one, the
        # same request asked again is another video (the shared job state counts them)
        render = render_spec(prompt=values["prompt"], model=endpoint_id, size=size, seconds=seconds, audio=bool(audio),
                             first_frame=values.get("first_frame"), detail=detail, seed=values.get("seed"))
        request_id = str(uuid.uuid4())
        fal = FalRequest(endpoint_id, body, model.arguments, seed, origin(request), request.query_params.get("fal_webhook"))
        job = state.create_job(kind="create", model=endpoint_id, size=size, seconds=seconds, prompt=values["prompt"], render=render,
                               dialect=DIALECT, id=request_id, request=fal)
        fal.logs.append({"message": f"Request {request_id} queued for {endpoint_id}", "level": "INFO", "source": "user",
                         "timestamp": _iso(job.created_wall)})
        return fal_json({"request_id": request_id, "gateway_request_id": request_id, "queue_position": position(job),
                         **request_urls(fal, request_id)})

    def position(job: "Job") -> int:
        t = now()
        ahead = [j for j in state.jobs.all() if j.dialect == DIALECT and j.seq < job.seq and j.request.endpoint_id == job.request.endpoint_id
                 and fal_status(j, t)[0] == "IN_QUEUE"]
        return len(ahead)

    def job_or_404(request: Request) -> "Job":
        require_fal_key(request)
        app, request_id = request.path_params["app"], request.path_params["request_id"]
        job = state.jobs.get(request_id, DIALECT)
        if job is None or app_path(job.request.endpoint_id) != app:
            raise FalError(404, f"Request {request_id} not found.")
        return job

    async def status(request: Request) -> Response:
        job = job_or_404(request)
        job.status_calls += 1
        t = now()
        name, finished, error = fal_status(job, t)
        fal: FalRequest = job.request
        with_logs = request.query_params.get("logs", "false").lower() in ("1", "true")
        logs = list(fal.logs) if with_logs else None
        if with_logs and name != "IN_QUEUE":
            logs.append({"message": "Generating video", "level": "INFO", "source": "user", "timestamp": _iso(job.to_wall(t))})
        body: dict = {"status": name, "request_id": job.id, **request_urls(fal, job.id), "logs": logs}
        if name == "IN_QUEUE":
            body["queue_position"] = position(job)
            return fal_json(body, 202)
        if name == "IN_PROGRESS":
            return fal_json(body, 202)
        body["metrics"] = {"inference_time": round(max(0.0, finished - job.created_mono), 3)}
        if error:
            body["error"], body["error_type"] = error["message"], error["code"]
        return fal_json(body, 200)

    async def result(request: Request) -> Response:
        job = job_or_404(request)
        t = now()
        name, finished, error = fal_status(job, t)
        if name != "COMPLETED":
            raise FalError(400, "Request is still in progress.", error_type="request_in_progress")
        if finished is not None and t >= finished + state.config.ttl_seconds:
            raise FalError(404, f"Request {job.id} result has expired.", error_type="result_expired")
        if error:
            if error["code"] == POLICY_ERROR:
                raise FalError(422, [invalid("prompt", error["message"], POLICY_ERROR)], error_type=POLICY_ERROR)
            raise FalError(500, error["message"], error_type=error["code"])
        return fal_json(result_body_of(state, job))

    async def cancel(request: Request) -> Response:
        job = job_or_404(request)
        name, _, _ = fal_status(job, now())
        if name == "COMPLETED":
            raise FalError(400, "Request is already completed.", error_type="already_completed")
        job.request.cancelled_mono = now()
        return fal_json({"status": "CANCELLATION_REQUESTED"}, 202)

    async def video(request: Request) -> Response:
        job = state.jobs.get(request.path_params["request_id"], DIALECT)
        t = now()
        if job is None or request.path_params["name"] != RESULT_FILE or fal_status(job, t)[0] != "COMPLETED" or job.media(t) is None:
            raise FalError(404, "File not found.")
        return FileResponse(job.media(t).path("video"), media_type=MEDIA_TYPES["video"])

    return [
        Route("/files/results/{request_id}/{name}", video, methods=["GET"]),
        Route("/{app:path}/requests/{request_id}/status", status, methods=["GET"]),
        Route("/{app:path}/requests/{request_id}/cancel", cancel, methods=["PUT"]),
        Route("/{app:path}/requests/{request_id}", result, methods=["GET"]),
        Route("/{endpoint:path}", submit, methods=["POST"]),
    ]
