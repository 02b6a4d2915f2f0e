"""The webhook receiver: an ASGI app (starlette) that believes a delivery only once it is verified.

``POST /webhooks/{endpoint}`` takes one endpoint's deliveries. In order, each check answers and
changes nothing when it fails:

1. an endpoint that declares no webhooks: 404;
2. a content type other than JSON: 415;
3. a body over ``max_body_bytes`` (its Content-Length, or the bytes as they arrive: the body is
   never read whole before it is bounded): 413;
4. the dialect's signature and timestamp (signatures.py): 401 (503 when fal's keys cannot be read);
5. a verified event that is not about a video: 200, ignored;
6. its delivery id already recorded (a redelivery, a replay): 200, a no-op;
7. a job no clip of that endpoint holds: 202, logged;
8. otherwise the delivery is recorded in the ledger (one transaction, NOTIFY on Postgres) and
   ``on_delivery`` is told (the CLI emits a Prefect event there): 200.

A ledger that cannot be written answers 503, so the sender delivers again later. Nothing here
logs a secret, a signature or a body; only endpoint names, delivery and job ids and reasons.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable, Mapping

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import LedgerError
from ..ledger import Deliveries, Delivery
from ..redaction import redact_text
from .signatures import Refused, Verifier

log = logging.getLogger("soraflow.webhooks")

# Deliveries are small (an event id and a job id; fal's carries the model's output: URLs, a
# seed); 64 KiB is far above any of them and small enough to refuse at once.
MAX_BODY_BYTES = 64 * 1024
DELIVERY_PATH = "/webhooks/{endpoint}"

OnDelivery = Callable[[Delivery], None]


@dataclass(frozen=True)
class ReceiverEndpoint:
    """One endpoint the receiver takes deliveries for: how they are verified, and from where
    its secret came (said at start; never the secret)."""

    name: str
    dialect: str
    verifier: Verifier
    url: str  # the public URL the entry declares (the provider posts there)
    secret_source: str | None = None


def delivery_path(endpoint: str) -> str:
    return DELIVERY_PATH.format(endpoint=endpoint)


async def _bounded_body(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > cap:
                raise Refused(413, f"body of {int(declared)} bytes declared, over the {cap}-byte cap")
        except ValueError:
            raise Refused(400, "Content-Length is not a number") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise Refused(413, f"body over the {cap}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def build_receiver(
    endpoints: Mapping[str, ReceiverEndpoint],
    deliveries: Deliveries,
    *,
    on_delivery: OnDelivery | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The receiver's app for ``endpoints`` (by name), recording into ``deliveries``."""

    def answer(status: int, outcome: str, **extra) -> Response:
        return JSONResponse({"outcome": outcome, **extra}, status_code=status)

    async def receive(request: Request) -> Response:
        name = request.path_params["endpoint"]
        endpoint = endpoints.get(name)
        if endpoint is None:
            return answer(404, "refused", reason="no endpoint of that name declares webhooks here")
        try:
            if not _is_json(request.headers.get("content-type")):
                raise Refused(415, f"content type {request.headers.get('content-type', 'none')[:80]!r} is not application/json")
            body = await _bounded_body(request, max_body_bytes)
            verified = await endpoint.verifier.verify(body, request.headers)
        except Refused as refusal:
            log.warning("endpoint %s: delivery refused (%d): %s", name, refusal.status, redact_text(refusal.reason))
            return answer(refusal.status, "refused", reason=refusal.reason)
        if verified.event is None:
            log.info("endpoint %s: delivery %s is a %s event, not about a video: ignored", name, verified.delivery_id, verified.kind)
            return answer(200, "ignored")
        try:
            result = await asyncio.to_thread(
                deliveries.record, endpoint=name, delivery_id=verified.delivery_id, job_id=verified.job_id,
                event=verified.event, signed_at=verified.signed_at, detail=verified.detail, match=verified.job_match,
            )  # fmt: skip
        except (SQLAlchemyError, LedgerError) as err:
            log.error("endpoint %s: delivery %s could not be recorded (%s); the sender will deliver it again", name,
                      verified.delivery_id, type(err).__name__)
            return answer(503, "retry", reason="the ledger cannot be written now")
        if result.outcome == "seen":
            log.info("endpoint %s: delivery %s was recorded before: nothing to do", name, verified.delivery_id)
            return answer(200, "seen")
        if result.outcome == "unknown_job":
            log.warning("endpoint %s: delivery %s is about job %s, which no clip of this endpoint holds: not recorded",
                        name, verified.delivery_id, verified.job_id)
            return answer(202, "unknown_job")
        delivery = result.delivery
        log.info("endpoint %s: job %s %s (delivery %s, clip %s)", name, delivery.job_id, delivery.event, delivery.delivery_id,
                 delivery.clip_key[:16])
        if on_delivery is not None:
            try:
                await asyncio.to_thread(on_delivery, delivery)
            except Exception as err:  # noqa: BLE001 - the delivery is recorded; an event is a convenience
                log.warning("endpoint %s: delivery %s recorded, but telling about it failed: %s", name, delivery.delivery_id,
                            redact_text(f"{type(err).__name__}: {err}"))
        return answer(200, "recorded")

    async def health(request: Request) -> Response:
        return JSONResponse({"endpoints": sorted(endpoints)})

    routes = [
        Route(DELIVERY_PATH, receive, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes)


__all__ = ["DELIVERY_PATH", "MAX_BODY_BYTES", "OnDelivery", "ReceiverEndpoint", "build_receiver", "delivery_path"]
