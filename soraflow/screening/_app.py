"""The review page's routes (starlette).

- ``GET /``, ``/page.js``, ``/page.css``: the page (one HTML file, a script and a stylesheet,
  package data read once: no build chain, nothing from another site, no file path in any URL);
- ``GET /api/state``: the review as the flow last wrote it, and where its run is;
- ``GET /media/film``, ``GET /media/takes/{shot}/{take}``: the current cut and each take, with
  HTTP Range. Media are named by shot and take, never by path: a file is served only when the
  review names it and it lies in the run's storage or output directory;
- ``POST /api/decision``: a ``ReviewDecision`` (JSON), checked against the review, then handed
  to the run (the CLI's Prefect glue resumes it with the decision as its ``run_input``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import SoraflowError
from ..review import ReviewState
from ._access import TOKEN_PARAMETER, Access, Guard
from ._decisions import DecisionRefused, read_decision
from ._media import ranged
from ._state import ReviewFolder, ReviewUnavailable, find_take

MAX_DECISION_BYTES = 256 * 1024
# Prefect's state types in which a run waits for its input (pause and suspend are both PAUSED).
WAITING = "PAUSED"
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
ROUND_HEADER = "x-review-round"


class ResumeRefused(SoraflowError):
    """The run could not be resumed with the decision; ``status`` is the page's answer (409: the
    run is not waiting, 422: its form refused the input, 502: the Prefect API did not answer)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RunControl:
    """How the page reaches a paused run. The core never imports Prefect: the CLI gives these.

    ``resume(flow_run_id, run_input)`` resumes the run (ResumeRefused when it cannot);
    ``describe(flow_run_id)`` is the run's state as ``{"type": "PAUSED", "name": "Suspended"}``,
    or None when it cannot be known.
    """

    resume: Callable[[str, dict], None]
    describe: Callable[[str], dict | None]
    where: str = "the Prefect API"


def build_app(folder: ReviewFolder, access: Access, runs: RunControl | None = None) -> Starlette:
    files = resources.files(__package__)
    page = (files / "page.html").read_text(encoding="utf-8")
    assets = {
        "page.js": ((files / "page.js").read_bytes(), "text/javascript; charset=utf-8"),
        "page.css": ((files / "page.css").read_bytes(), "text/css; charset=utf-8"),
    }

    def load() -> ReviewState:
        return folder.load()

    async def index(request: Request) -> Response:
        # The page's own script and stylesheet are asked for with the token the page was opened
        # with: on a bind that is not loopback every request needs it.
        token = request.query_params.get(TOKEN_PARAMETER)
        query = f"?{TOKEN_PARAMETER}={html.escape(token)}" if token and access.has_token(request.headers, request.query_params) else ""
        return HTMLResponse(page.replace("{{query}}", query))

    async def asset(request: Request) -> Response:
        body, media_type = assets[request.url.path.lstrip("/")]
        return Response(body, media_type=media_type)

    async def state(request: Request) -> Response:
        try:
            review = await run_in_threadpool(load)
        except ReviewUnavailable as err:
            return JSONResponse({"review": None, "error": str(err), "run": None, "can_decide": False, "why_not": str(err)})
        run = await run_in_threadpool(runs.describe, review.flow_run_id) if runs and review.flow_run_id else None
        why_not = _why_no_decision(review, runs, run)
        return JSONResponse({
            "review": review.model_dump(mode="json"), "error": None, "run": run, "can_decide": why_not is None, "why_not": why_not,
        })

    async def film(request: Request) -> Response:
        return await _serve(request, lambda review: review.film_uri, "this review has no film yet")

    async def take(request: Request) -> Response:
        shot, number = request.path_params["shot"], request.path_params["take"]

        def uri(review: ReviewState) -> str | None:
            found = find_take(review, shot, number)
            return found.storage_uri if found else None

        return await _serve(request, uri, f"the review has no stored take {number} of shot {shot!r}")

    async def _serve(request: Request, uri_of: Callable[[ReviewState], str | None], missing: str) -> Response:
        try:
            review = await run_in_threadpool(load)
        except ReviewUnavailable as err:
            return JSONResponse({"error": str(err)}, 404)
        located = await run_in_threadpool(folder.media, review, uri_of(review))
        if located is None:
            return JSONResponse({"error": missing}, 404)
        return await ranged(request, *located)

    async def decide(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return JSONResponse({"error": "a decision is sent as JSON (Content-Type: application/json)"}, 415)
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > MAX_DECISION_BYTES:
                return JSONResponse({"error": f"a decision is at most {MAX_DECISION_BYTES // 1024} KiB"}, 413)
        try:
            review = await run_in_threadpool(load)
        except ReviewUnavailable as err:
            return JSONResponse({"error": str(err)}, 409)
        said_round = request.headers.get(ROUND_HEADER)
        if said_round is not None and said_round.strip() != str(review.round):
            return JSONResponse(
                {"error": f"this decision answers review round {said_round}, but the run is at round {review.round}: look again"}, 409
            )
        try:
            decision = read_decision(bytes(body), review)
        except DecisionRefused as err:
            return JSONResponse(
                {"error": "the decision does not fit this review", "problems": [_problem(p) for p in err.problems]}, 422
            )
        run = await run_in_threadpool(runs.describe, review.flow_run_id) if runs and review.flow_run_id else None
        if why_not := _why_no_decision(review, runs, run):
            return JSONResponse({"error": why_not}, 409)
        assert runs is not None and review.flow_run_id is not None
        try:
            await run_in_threadpool(runs.resume, review.flow_run_id, decision.model_dump(mode="json"))
        except ResumeRefused as err:
            return JSONResponse({"error": str(err)}, err.status)
        return JSONResponse({"resumed": review.flow_run_id, "round": review.round, "decision": decision.model_dump(mode="json")}, 202)

    app = Starlette(routes=[
        Route("/", index, methods=["GET"]),
        *(Route(f"/{name}", asset, methods=["GET"]) for name in assets),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/decision", decide, methods=["POST"]),
        Route("/media/film", film, methods=["GET"]),
        Route("/media/takes/{shot}/{take:int}", take, methods=["GET"]),
    ])
    app.add_middleware(Guard, access=access)
    return app


def _why_no_decision(review: ReviewState, runs: RunControl | None, run: dict | None) -> str | None:
    """Why the page cannot send a decision now, or None when it can."""
    if not review.flow_run_id:
        return "this review names no flow run to resume"
    if runs is None:
        return "no Prefect API is reachable to resume the run: set PREFECT_API_URL and start the page again"
    if run is not None and run.get("type") != WAITING:
        name = run.get("name") or run.get("type")
        if run.get("type") in FINAL:
            return f"the run is {name}: it takes no more decisions"
        return f"the run is {name}: new takes appear here as they are stored"
    return None


def _problem(problem: Any) -> dict:
    return {"field": problem.path, "message": problem.message}
