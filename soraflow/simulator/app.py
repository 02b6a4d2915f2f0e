"""The ASGI app: every dialect's routes on one job store, and the admin routes under /_sim.

- the Videos and Models API under /v1 (openai/);
- Veo under /v1beta1 and the GCS objects Veo writes (veo/);
- admin routes, never faulted or counted: ``GET /_sim/stats``, ``GET /_sim/jobs`` (every job
  of every dialect), ``POST /_sim/reset``, ``POST /_sim/faults``.
A ``Refusal`` raised by a shared part (a stored upload) is answered in the envelope of the
dialect whose route was called.
"""

from __future__ import annotations

import contextlib
import json

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import Refusal
from .faults import FaultSpecError
from .gate import ApiGate
from .openai.envelope import ApiError, json_response
from .openai.routes import openai_routes
from .state import SimulatorState
from .veo.envelope import GoogleApiError
from .veo.gcs import gcs_routes
from .webhooks import webhook_routes
from .veo.routes import veo_routes


def build_app(state: SimulatorState) -> ApiGate:
    def now() -> float:
        return state.jobs.clock()

    # --- admin (never faulted, never counted) ----------------------------------------------
    async def admin_stats(request: Request) -> Response:
        return json_response(state.snapshot())

    async def admin_jobs(request: Request) -> Response:
        t = now()
        jobs = [{**j.resource(t), "kind": j.kind, "source": j.source, "deleted": j.deleted, "dialect": j.dialect,
                 "status_calls": j.status_calls, "finished_at": j.finished_at(t)} for j in state.jobs.all()]
        return json_response({"data": jobs})

    async def admin_reset(request: Request) -> Response:
        state.reset()
        return json_response(state.snapshot())

    async def admin_faults(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            seed = body.get("seed")
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise ValueError(f"seed must be an integer or null, not {seed!r}")
            state.set_faults(body.get("faults") or "", seed)
        except (ValueError, AttributeError) as err:
            message = str(err) if isinstance(err, FaultSpecError) else f"expected {{\"faults\": SPEC, \"seed\": N}}: {err}"
            return json_response({"error": {"message": message, "type": "invalid_request_error", "param": "faults", "code": None}}, 400)
        return json_response({"faults": str(state.faults.plan), "seed": state.faults.seed})

    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    async def on_google_error(request: Request, exc: GoogleApiError) -> Response:
        return exc.response()

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own refusals (an unparsable multipart body) in the service's envelope too.
        if not request.url.path.startswith("/v1/"):
            return GoogleApiError(exc.status_code, str(exc.detail)).response()
        return ApiError(exc.status_code, str(exc.detail)).response()

    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    async def on_google_error(request: Request, exc: GoogleApiError) -> Response:
        return exc.response()

    def in_dialect(request: Request, status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
        if not request.url.path.startswith("/v1/"):
            return GoogleApiError(status, message).response()
        return ApiError(status, message, param=param, code=code).response()

    async def on_refusal(request: Request, exc: Refusal) -> Response:
        return in_dialect(request, exc.status, exc.message, exc.param, exc.code)

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own refusals (an unparsable multipart body) in the service's envelope too.
        return in_dialect(request, exc.status_code, str(exc.detail))

    routes = [
        *openai_routes(state),
        *veo_routes(state),
        *gcs_routes(state),
        *webhook_routes(state),
        Route("/_sim/stats", admin_stats, methods=["GET"]),
        Route("/_sim/jobs", admin_jobs, methods=["GET"]),
        Route("/_sim/reset", admin_reset, methods=["POST"]),
        Route("/_sim/faults", admin_faults, methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        state.bind_loop()
        yield
        await state.webhooks.aclose()

    handlers = {ApiError: on_api_error, GoogleApiError: on_google_error, Refusal: on_refusal, HTTPException: on_http_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    return ApiGate(app, state)
