"""fal's platform API (``https://api.fal.ai/v1``; here ``/v1`` on the fal port), with the
``Authorization: Key`` header:

- ``GET /v1/models/requests/by-endpoint?endpoint_id=A[,B]&start=&end=&status=&request_id=
  &limit=&cursor=&expand=payloads&sort_by=``: an endpoint's past requests, **finished ones
  only**, ``start`` 24 h back by default (90 days with ``request_id``), ``end`` exclusive,
  newest ``ended_at`` first, 1-100 a page (default 50) with an opaque ``cursor`` (the page
  number, base64); ``json_input``/``json_output`` only with ``expand=payloads``. The
  ``fal_history_lag_seconds`` setting lists a request only that long after it ended (fal's
  history has lagged by hours); ``fal_history`` answers 403 (a key without access) or 503;
- ``GET /v1/models/pricing?endpoint_id=A[,B]`` → ``{"prices": [{endpoint_id, unit_price,
  unit, currency}], "next_cursor", "has_more"}``: one price per endpoint, per second of video
  (the profile's sound-on price, or ``fal_prices``);
- ``GET /v1/models?endpoint_id=…`` → ``{"models": [{endpoint_id, metadata: {display_name,
  category, status: active|deprecated, …}}], …}``; a retired model is ``deprecated``.
Errors are ``{"detail": …}`` as on the queue (the platform API's own error body was not found).
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..retirement import is_retired
from .envelope import FalError, fal_json, invalid, unprocessable
from .queue import DIALECT, fal_status, result_body_of
from .storage import require_fal_key

if TYPE_CHECKING:
    from ..state import SimulatorState

DEFAULT_LIMIT, MAX_LIMIT, MAX_IDS = 50, 100, 50
DEFAULT_WINDOW = datetime.timedelta(hours=24)
REQUEST_ID_WINDOW = datetime.timedelta(days=90)


def _ids(request: Request) -> list[str]:
    ids = [i.strip() for value in request.query_params.getlist("endpoint_id") for i in value.split(",") if i.strip()]
    if not 1 <= len(ids) <= MAX_IDS:
        raise unprocessable([invalid("endpoint_id", f"Give 1 to {MAX_IDS} endpoint ids", "value_error", len(ids))])
    return ids


def _when(request: Request, name: str) -> datetime.datetime | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise unprocessable([invalid(name, "Input should be an ISO 8601 date or datetime", "datetime_parsing", value)]) from None
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def _page(request: Request) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_LIMIT:
        raise unprocessable([invalid("limit", f"Input should be between 1 and {MAX_LIMIT}", "value_error", request.query_params.get("limit"))])
    cursor = request.query_params.get("cursor")
    if cursor is None:
        return limit, 0
    try:
        return limit, int(base64.b64decode(cursor, validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise unprocessable([invalid("cursor", "Invalid cursor", "value_error", cursor)]) from None


def platform_routes(state: "SimulatorState") -> list[Route]:
    def wall(mono: float, job) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(job.to_wall(mono), datetime.timezone.utc)

    async def history(request: Request) -> Response:
        require_fal_key(request)
        if state.config.fal_history == "forbid":
            raise FalError(403, "Forbidden: this key may not read the request history (an admin key is required).")
        if state.config.fal_history == "down":
            raise FalError(503, "The request history is temporarily unavailable.")
        ids = _ids(request)
        request_id = request.query_params.get("request_id")
        now_wall = datetime.datetime.now(datetime.timezone.utc)
        start = _when(request, "start") or now_wall - (REQUEST_ID_WINDOW if request_id else DEFAULT_WINDOW)
        end = _when(request, "end") or now_wall
        wanted = request.query_params.get("status")
        if wanted not in (None, "success", "error", "user_error"):
            raise unprocessable([invalid("status", "Input should be 'success', 'error' or 'user_error'", "literal_error", wanted)])
        payloads = "payloads" in request.query_params.getlist("expand")
        limit, page = _page(request)
        t = state.jobs.clock()
        lag = state.config.fal_history_lag_seconds
        items = []
        for job in state.jobs.all():
            if job.dialect != DIALECT or job.deleted or job.request.endpoint_id not in ids:
                continue
            if request_id and job.id != request_id:
                continue
            name, finished, error = fal_status(job, t)
            if name != "COMPLETED" or finished is None or t - finished < lag:
                continue  # finished requests only, once the history has caught up with them
            ended = wall(finished, job)
            if not start <= ended < end:
                continue
            code = 200 if error is None else 422 if error["code"] == "content_policy_violation" else 500
            outcome = "success" if code == 200 else "user_error" if code == 422 else "error"
            if wanted and wanted != outcome:
                continue
            item = {
                "request_id": job.id,
                "endpoint_id": job.request.endpoint_id,
                "sent_at": wall(job.created_mono, job).isoformat(),
                "started_at": wall(job.created_mono + job.latency * 0.1, job).isoformat(),
                "ended_at": ended.isoformat(),
                "status_code": code,
                "duration": round(finished - job.created_mono, 3),
            }
            if payloads:
                item["json_input"] = job.request.arguments
                item["json_output"] = result_body_of(state, job) if code == 200 else {"detail": error["message"]}
            items.append(item)
        items.sort(key=lambda i: i["ended_at"], reverse=True)
        chunk = items[page * limit : (page + 1) * limit]
        more = (page + 1) * limit < len(items)
        cursor = base64.b64encode(str(page + 1).encode()).decode() if more else None
        return fal_json({"items": chunk, "next_cursor": cursor, "has_more": more})

    def price_of(endpoint_id: str) -> float | None:
        if endpoint_id in state.config.fal_prices:
            return state.config.fal_prices[endpoint_id]
        model = state.config.model(endpoint_id, DIALECT)
        return model.unit_price if model is not None else None

    async def pricing(request: Request) -> Response:
        require_fal_key(request)
        prices = []
        for endpoint_id in _ids(request):
            price = price_of(endpoint_id)
            if price is not None:
                prices.append({"endpoint_id": endpoint_id, "unit_price": price, "unit": "second", "currency": "USD"})
        return fal_json({"prices": prices, "next_cursor": None, "has_more": False})

    async def models(request: Request) -> Response:
        ids = [i.strip() for v in request.query_params.getlist("endpoint_id") for i in v.split(",") if i.strip()]
        served = [m for m in state.config.models if m.dialect == DIALECT and m.arguments is not None and (not ids or m.id in ids)]
        wanted = request.query_params.get("status")
        out = []
        for m in served:
            status = "deprecated" if is_retired(state.config, m.id) else "active"
            if wanted and wanted != status:
                continue
            category = "image-to-video" if m.arguments.first_frame is not None else "text-to-video"
            out.append({"endpoint_id": m.id, "metadata": {
                "display_name": m.id.split("/", 1)[-1], "category": category, "description": f"{m.id} (simulated)",
                "status": status, "tags": ["video"], "updated_at": "2026-12-01T00:00:00Z", "thumbnail_url": None,
                "model_url": f"https://fal.ai/models/{m.id}", "date": "2026-12-01", "highlighted": False, "pinned": False,
            }})
        return fal_json({"models": out, "next_cursor": None, "has_more": False})

    return [
        Route("/v1/models/requests/by-endpoint", history, methods=["GET"]),
        Route("/v1/models/pricing", pricing, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
