"""Veo on Vertex AI (``v1beta1``), as the google-genai SDK calls it:

- ``POST /v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:predictLongRunning``
  (project and location credentials: ``Authorization: Bearer``), or
  ``POST /v1beta1/publishers/google/models/{model}:predictLongRunning`` (express mode:
  ``x-goog-api-key``) → ``{"name": "projects/…/models/{model}/operations/{id}"}``;
  with ``instances[0].video`` it is an extension: the answer plays that video (inline bytes, or
  a ``gs://`` object an earlier operation wrote), then 7 s more;
- ``POST /v1beta1/{model resource}:fetchPredictOperation`` with ``{"operationName": name}`` →
  the operation (operation.py);
- ``GET /v1beta1/publishers/google/models/{model}`` → the publisher model, or 404 when it is gone;
- ``POST /token``: an OAuth 2.0 token endpoint, so application-default credentials (a service
  account file whose ``token_uri`` is the simulator) get an access token as they would from
  Google; any assertion is accepted and any bearer token is taken (as any API key is).
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import Refusal
from ..retirement import is_retired
from ..render import SourceClip, render_spec
from ..uploads import stored_video
from .envelope import GoogleApiError, google_json, invalid_argument, model_not_found, unauthenticated
from .models import EXTENDED_SOURCE_SECONDS, VEO_MODELS, VeoModel, frame_size, profiled
from .operation import object_names, operation_resource
from .request import VeoRequest, parse_body, veo_request

if TYPE_CHECKING:
    from ..state import SimulatorState

DIALECT = "google-genai"
# Express mode names no project; its operations still live under one (as Vertex AI's do).
EXPRESS_PROJECT, EXPRESS_LOCATION = "express-mode", "us-central1"
_RESOURCE = re.compile(
    r"^(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+)"
    r"(?::(?P<method>[A-Za-z]+))?$"
)


def _require_credentials(request: Request) -> None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if request.headers.get("x-goog-api-key", "").strip() or (scheme.lower() == "bearer" and token.strip()):
        return
    raise unauthenticated()


def _model(state: "SimulatorState", publisher: str, name: str, resource: str) -> VeoModel:
    model = None
    if publisher == "google":
        # Google's own models, else one a model profile asks for (the embedded simulator serves
        # every profile of this dialect, whatever its name).
        profile = state.config.model(name, "google-genai")
        model = VEO_MODELS.get(name) or (profiled(profile) if profile is not None else None)
    if model is None or is_retired(state.config, name):
        raise model_not_found(resource)
    return model


def veo_routes(state: "SimulatorState") -> list[Route]:
    def now() -> float:
        return state.jobs.clock()

    async def post(request: Request) -> Response:
        _require_credentials(request)
        match = _RESOURCE.match(request.path_params["resource"])
        if match is None or match["method"] not in ("predictLongRunning", "fetchPredictOperation"):
            raise GoogleApiError(404, f"Method not found: {request.url.path}")
        project = match["project"] or EXPRESS_PROJECT
        location = match["location"] or EXPRESS_LOCATION
        resource = f"projects/{project}/locations/{location}/publishers/{match['publisher']}/models/{match['model']}"
        body = parse_body(await request.body())
        if match["method"] == "fetchPredictOperation":
            return fetch_operation(resource, body)
        model = _model(state, match["publisher"], match["model"], resource)
        veo = veo_request(body, model)
        width, height = frame_size(veo.aspect_ratio, veo.resolution)
        # Storing and probing the video to extend block: off the event loop.
        source = await run_in_threadpool(extended, veo, width, height) if veo.extends else (None, None)
        return predict(resource, model, veo, width, height, *source)

    def predict(
        resource: str, model: VeoModel, veo: VeoRequest, width: int, height: int, source: SourceClip | None, source_id: str | None,
    ) -> Response:
        detail = "|".join(
            f"{k}={v}" for k, v in (("negative", veo.negative_prompt), ("seed", veo.seed), ("people", veo.person_generation))
            if v is not None
        ) + "".join(f"|ref {hashlib.sha256(r).hexdigest()[:16]}" for r in veo.reference_images)
        render = render_spec(
            prompt=veo.prompt or "(image only)", model=model.name, size=f"{width}x{height}", seconds=veo.seconds,
            audio=veo.audio, first_frame=veo.first_frame, last_frame=veo.last_frame, fit=veo.resize_mode, detail=detail,
            extends=source, seed=veo.seed,
        )
        job = state.create_job(
            kind="extension" if source else "create", model=model.name, size=f"{width}x{height}",
            seconds=veo.seconds + (source.seconds if source else 0), prompt=veo.prompt, render=render,
            dialect=DIALECT, id=f"{resource}/operations/{uuid.uuid4()}", request=veo, source=source_id,
        )
        if veo.storage_uri:
            state.gcs.expect(object_names(job), job)
        return google_json({"name": job.id})

    def extended(veo: VeoRequest, width: int, height: int) -> tuple[SourceClip, str | None]:
        """The clip an extension plays first, and the operation that made it where that is known
        (a ``gs://`` object it wrote); refused unless it is an MP4 of 1-30 s of the asked size."""
        where = "instances[0].video"
        if veo.video_uri:
            job = state.gcs.job(veo.video_uri.removeprefix("gs://"))
            media = job.media(now()) if job is not None else None
            if media is None:
                raise invalid_argument(f"{veo.video_uri} is not an object a finished operation wrote.", where)
            path, digest, label, source_id = media.path("video"), media.folder.name, job.id.rsplit("/", 1)[-1], job.id
        else:
            try:
                upload = stored_video(io.BytesIO(veo.video), "video.mp4", state.uploads_dir, param=where)
            except Refusal as err:
                raise invalid_argument(err.message, where) from None
            path, digest, label, source_id = upload.path, upload.sha256, f"video #{upload.sha256[:10]}", None
        from ...media import probe_clip  # ffprobe

        probe = probe_clip(path, name=label)
        low, high = EXTENDED_SOURCE_SECONDS
        if not low <= round(probe.duration) <= high:
            raise invalid_argument(f"The video to extend is {probe.duration:.2f} s long; Veo extends videos of {low} to {high} s.", where)
        if (probe.width, probe.height) != (width, height):
            raise invalid_argument(f"The video to extend is {probe.width}x{probe.height}; aspectRatio and resolution ask for "
                                   f"{width}x{height}.", where)
        return SourceClip(path, digest, round(probe.duration), probe.has_audio, label=label), source_id

    def fetch_operation(resource: str, body: dict) -> Response:
        name = body.get("operationName")
        if not isinstance(name, str) or not name:
            raise invalid_argument("operationName is required.", "operationName")
        if not name.startswith(resource + "/operations/"):
            raise invalid_argument(f"Operation {name} does not belong to {resource}.", "operationName")
        job = state.jobs.get(name, DIALECT)
        t = now()
        if job is None or job.expired(t):
            raise GoogleApiError(404, f"Operation {name} is not found.")
        job.status_calls += 1
        return google_json(operation_resource(job, t))

    async def get_model(request: Request) -> Response:
        _require_credentials(request)
        publisher, name = request.path_params["publisher"], request.path_params["model"]
        _model(state, publisher, name, f"publishers/{publisher}/models/{name}")
        return google_json({
            "name": f"publishers/{publisher}/models/{name}",
            "versionId": name.rsplit("-", 1)[-1],
            "openSourceCategory": "PROPRIETARY",
            "launchStage": "PUBLIC_PREVIEW" if name.endswith("-preview") else "GA",
        })

    async def token(request: Request) -> Response:
        form = await request.form()
        if not form.get("grant_type"):
            return google_json({"error": "invalid_request", "error_description": "grant_type is required"}, 400)
        return google_json({"access_token": f"ya29.simulated-{uuid.uuid4().hex}", "expires_in": 3599, "token_type": "Bearer"})

    return [
        Route("/token", token, methods=["POST"]),
        Route("/v1beta1/publishers/{publisher}/models/{model}", get_model, methods=["GET"]),
        Route("/v1beta1/{resource:path}", post, methods=["POST"]),
    ]
