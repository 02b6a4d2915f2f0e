"""Webhook deliveries, signed as each dialect's service signs them, with the faults real ones have.

When a job reaches its end (completed or failed), a delivery about it is POSTed to where its
dialect sends them:

- **openai-videos**: to the project's webhook URL (OpenAI's webhooks are per project, set in its
  dashboard: here ``SimulatorConfig.webhook_url`` or ``POST /_sim/webhooks``), as Standard
  Webhooks: ``webhook-id`` (the same for every attempt), ``webhook-timestamp``,
  ``webhook-signature`` (``v1,`` + HMAC-SHA256 over ``id.timestamp.body`` with the project's
  ``whsec_`` secret, made by ``standardwebhooks``); the body is OpenAI's event
  ``{"id": "evt_…", "object": "event", "created_at", "type": "video.completed" | "video.failed",
  "data": {"id": VIDEO_ID}}``.
- **fal**: to the URL a submit named (``?fal_webhook=``; ``deliver_to``), signed with Ed25519 over
  ``request id \\n user id \\n timestamp \\n sha256(body) hex`` by the simulator's own key, whose
  public half it publishes as a JWKS at ``JWKS_PATH``; the body is fal's
  ``{"request_id", "gateway_request_id", "status": "OK" | "ERROR", "payload" | "error"}``. The
  signing below is written from fal's documentation, apart from the receiver's verifier, so a
  mistake in one is not hidden by the other.
- google-genai (Veo on Vertex AI) has no webhooks: nothing is sent.

Each attempt is signed afresh (its own timestamp); an answer other than 2xx, or none, is retried
with backoff, up to ``webhook_attempts`` attempts (fal: 10 in 2 hours), on a schedule scaled to
the simulator's latency: ``latency/4 · 2^n``, at most ``16 · latency`` apart.

Faults (``webhook_faults``, e.g. ``"drop=0.3,duplicate=0.1"``; one draw per delivery from a
seeded stream of its own, so request faults stay as they were): ``drop`` (never sent),
``duplicate`` (sent twice, the same id), ``delay`` (held one latency before it is sent),
``reorder`` (held until the next delivery has gone, at most four latencies), ``bad_signature`` (the first attempt signed
with another secret or key; the retries with the right one).

``GET /_sim/webhooks`` lists every delivery with its attempts (when, what answered, whether the
signature was good); ``GET /_sim/jobs`` shows each job's status calls and when it finished.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook

from .faults import FaultSpecError, parse_probabilities
from .jobs import MODERATION_AT, Job

if TYPE_CHECKING:
    from .state import SimulatorState

log = logging.getLogger("soraflow.simulator.webhooks")

WEBHOOK_FAULT_KINDS: tuple[str, ...] = ("drop", "duplicate", "delay", "reorder", "bad_signature")
JWKS_PATH = "/.well-known/jwks.json"
SECRET_ENV = "SORAFLOW_SIMULATOR_WEBHOOK_SECRET"
FAL_USER_ID = "sim-user"
DEFAULT_ATTEMPTS = 10  # fal: "retry 10 times in the span of 2 hours"
SEND_TIMEOUT_SECONDS = 10.0
REORDER_HOLD_LATENCIES = 4


def new_secret() -> str:
    """A project secret as OpenAI's dashboard shows one: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def parse_webhook_faults(spec: str | None) -> dict[str, float]:
    """``"drop=0.3,duplicate=0.1"`` → probabilities; at most one fault per delivery, so they add up to 1 or less."""
    found = parse_probabilities(spec, WEBHOOK_FAULT_KINDS, "webhook fault")
    if sum(found.values()) > 1.0 + 1e-9:
        raise FaultSpecError(f"webhook faults {spec!r} add up to {sum(found.values()):g}; at most one hits a delivery, so 1 or less")
    return found


@dataclass
class Attempt:
    at: float  # wall clock, when it was sent
    signature: str  # good | bad
    status: int | None = None  # what the receiver answered
    error: str | None = None  # or why there was no answer

    def to_json(self) -> dict:
        return {"at": self.at, "signature": self.signature, "status": self.status, "error": self.error}


@dataclass
class DeliveryRecord:
    delivery_id: str
    job_id: str
    dialect: str
    event: str  # completed | failed
    url: str
    fault: str | None
    job_finished_at: float  # wall clock: when the job reached its end
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False  # a 2xx answered one of its attempts

    def to_json(self) -> dict:
        return {
            "delivery_id": self.delivery_id, "job_id": self.job_id, "dialect": self.dialect, "event": self.event, "url": self.url,
            "fault": self.fault, "job_finished_at": self.job_finished_at, "delivered": self.delivered,
            "first_sent_at": self.attempts[0].at if self.attempts else None, "attempts": [a.to_json() for a in self.attempts],
        }  # fmt: skip


@dataclass(frozen=True)
class Signed:
    body: bytes
    headers: dict[str, str]


class StandardWebhooksSigner:
    """OpenAI's project webhooks (Standard Webhooks)."""

    def __init__(self, secret: str):
        self._webhook = Webhook(secret)
        self._forger = Webhook(new_secret())

    def delivery_id(self, job: Job) -> str:
        return f"msg_{uuid.uuid4().hex}"

    def body(self, job: Job, event: str, finished_wall: float, error: dict | None) -> bytes:
        return json.dumps({
            "id": f"evt_{uuid.uuid4().hex}", "object": "event", "created_at": int(finished_wall),
            "type": f"video.{event}", "data": {"id": job.id},
        }).encode()  # fmt: skip

    def sign(self, delivery_id: str, body: bytes, *, good: bool, at: float | None = None) -> dict[str, str]:
        now = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
        signer = self._webhook if good else self._forger
        return {
            "content-type": "application/json", "webhook-id": delivery_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signer.sign(delivery_id, now, body),
        }  # fmt: skip


class FalSigner:
    """fal's deliveries: Ed25519 with the simulator's key, published at ``JWKS_PATH``."""

    def __init__(self, key: Ed25519PrivateKey):
        self._key = key
        self._forger = Ed25519PrivateKey.generate()

    def delivery_id(self, job: Job) -> str:
        return job.id  # fal names a delivery by its request id

    def body(self, job: Job, event: str, finished_wall: float, error: dict | None) -> bytes:
        if event == "completed":
            return json.dumps({"request_id": job.id, "gateway_request_id": job.id, "status": "OK",
                               "payload": {"video": {"url": f"sim://{job.id}/video.mp4", "content_type": "video/mp4"}}}).encode()
        message = (error or {}).get("message", "the model failed")
        return json.dumps({"request_id": job.id, "gateway_request_id": job.id, "status": "ERROR",
                           "error": f"Invalid status code: 422", "payload": {"detail": [{"msg": message}]}}).encode()

    def sign(self, delivery_id: str, body: bytes, *, good: bool, at: float | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() if at is None else at))
        message = "\n".join((delivery_id, FAL_USER_ID, timestamp, hashlib.sha256(body).hexdigest())).encode()
        signature = (self._key if good else self._forger).sign(message)
        return {
            "content-type": "application/json", "x-fal-webhook-request-id": delivery_id, "x-fal-webhook-user-id": FAL_USER_ID,
            "x-fal-webhook-timestamp": timestamp, "x-fal-webhook-signature": signature.hex(),
        }  # fmt: skip


def public_jwks(key: Ed25519PrivateKey) -> dict:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": hashlib.sha256(raw).hexdigest()[:16], "use": "sig", "alg": "EdDSA"}]}


class WebhookDeliveries:
    """Delivers each job's end to where its dialect sends it; thread-safe to configure and read."""

    def __init__(self, state: "SimulatorState"):
        self._state = state
        config = state.config
        self._lock = threading.Lock()
        self.project_url: str | None = config.webhook_url
        self.project_secret: str | None = config.webhook_secret or (new_secret() if config.webhook_url else None)
        self.fal_key = Ed25519PrivateKey.generate()
        self.attempts = config.webhook_attempts
        self.configure_faults(config.webhook_faults, config.seed)
        self._records: list[DeliveryRecord] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self._sent: asyncio.Event | None = None  # set when any delivery goes out (reorder waits for it)

    # --- configuration ------------------------------------------------------------------
    def configure_project(self, url: str | None, secret: str | None = None) -> str | None:
        """Set (or clear) the openai-videos project's webhook; a new secret unless one is given."""
        with self._lock:
            self.project_url = url
            self.project_secret = (secret or new_secret()) if url else None
            return self.project_secret

    def configure_faults(self, spec: str, seed: int | None) -> None:
        probabilities = parse_webhook_faults(spec)
        with self._lock:
            self.faults = probabilities
            self._seed = seed
            self._rng = random.Random(None if seed is None else seed + 0x5EB)  # a stream of its own

    @property
    def fault_spec(self) -> str:
        return ",".join(f"{k}={self.faults[k]:g}" for k in WEBHOOK_FAULT_KINDS if self.faults.get(k))

    def jwks(self) -> dict:
        return public_jwks(self.fal_key)

    def _signer(self, dialect: str):
        if dialect == "openai-videos" and self.project_secret:
            return StandardWebhooksSigner(self.project_secret)
        if dialect == "fal":
            return FalSigner(self.fal_key)
        return None

    def _draw_fault(self) -> str | None:
        with self._lock:
            draw, edge = self._rng.random(), 0.0
            for kind in WEBHOOK_FAULT_KINDS:
                edge += self.faults.get(kind, 0.0)
                if draw < edge:
                    return kind
        return None

    # --- run time -----------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._client = httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS)
        self._sent = asyncio.Event()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()

    def job_created(self, job: Job, deliver_to: str | None = None) -> None:
        """Deliver the job's end when it comes: to ``deliver_to`` (a per-request webhook, fal's),
        else to its dialect's project webhook; nothing when neither is set or the dialect has none."""
        url = deliver_to or (self.project_url if job.dialect == "openai-videos" else None)
        signer = self._signer(job.dialect) if url else None
        if signer is None or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._start, job, url, signer)

    def _start(self, job: Job, url: str, signer) -> None:
        task = self._loop.create_task(self._deliver(job, url, signer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _until_done(self, job: Job) -> tuple[str, float, dict | None] | None:
        """(completed | failed, when, error) once the job reaches its end; None if it was deleted."""
        clock = self._state.jobs.clock
        due = job.created_mono + job.latency * (MODERATION_AT if job.moderated else 1.0)
        await asyncio.sleep(max(0.0, due - clock()))
        while not job.deleted:
            status, _, finished, error = job.state(clock())
            if status in ("completed", "failed"):
                return status, job.to_wall(finished if finished is not None else clock()), error
            if job.render is not None and not job.render.done():
                try:
                    await asyncio.wrap_future(job.render)
                except Exception:  # noqa: BLE001 - a failed render is a failed job: state() says so
                    pass
            else:
                await asyncio.sleep(0.02)
        return None

    async def _deliver(self, job: Job, url: str, signer) -> None:
        ended = await self._until_done(job)
        if ended is None:
            return
        event, finished, error = ended
        record = DeliveryRecord(signer.delivery_id(job), job.id, job.dialect, event, url, self._draw_fault(), finished)
        with self._lock:
            self._records.append(record)
        body = signer.body(job, event, finished, error)
        latency = max(self._state.config.latency, 0.05)
        if record.fault == "drop":
            return
        if record.fault == "delay":
            await asyncio.sleep(latency)
        if record.fault == "reorder":
            held_for = self._sent
            try:  # until another delivery goes out (at most a few latencies, so a last one is not lost)
                await asyncio.wait_for(held_for.wait(), timeout=REORDER_HOLD_LATENCIES * latency)
            except TimeoutError:
                pass
        await self._send_until_delivered(record, signer, body, latency)
        if record.fault == "duplicate" and record.delivered:
            await self._attempt(record, signer, body, good=True)

    async def _send_until_delivered(self, record: DeliveryRecord, signer, body: bytes, latency: float) -> None:
        for n in range(self.attempts):
            good = not (record.fault == "bad_signature" and n == 0)
            if await self._attempt(record, signer, body, good=good):
                record.delivered = True
                return
            await asyncio.sleep(min(latency / 4 * 2**n, 16 * latency))

    async def _attempt(self, record: DeliveryRecord, signer, body: bytes, *, good: bool) -> bool:
        headers = signer.sign(record.delivery_id, body, good=good)
        attempt = Attempt(at=time.time(), signature="good" if good else "bad")
        record.attempts.append(attempt)
        if self._sent is not None:  # wake a delivery held back to arrive after this one
            self._sent.set()
            self._sent = asyncio.Event()
        try:
            response = await self._client.post(record.url, content=body, headers=headers)
            attempt.status = response.status_code
            return 200 <= response.status_code < 300
        except httpx.HTTPError as err:
            attempt.error = type(err).__name__
            return False

    # --- what a test sees ---------------------------------------------------------------
    def records(self) -> list[dict]:
        with self._lock:
            return [r.to_json() for r in self._records]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._rng = random.Random(None if self._seed is None else self._seed + 0x5EB)

    def describe(self) -> dict:
        return {"openai-videos": {"url": self.project_url}, "faults": self.fault_spec, "attempts": self.attempts, "jwks_path": JWKS_PATH}


def webhook_routes(state: "SimulatorState") -> list:
    """``GET /_sim/webhooks`` (every delivery and its attempts; never the secret), ``POST
    /_sim/webhooks`` with ``{"url", "secret"?, "faults"?, "seed"?}`` (the project's webhook, as a
    dashboard sets it: the answer shows the secret, as a dashboard does), and fal's JWKS."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listed(request: Request) -> JSONResponse:
        return JSONResponse({**state.webhooks.describe(), "deliveries": state.webhooks.records()})

    async def configure(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            url, secret = body.get("url"), body.get("secret")
            if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
                raise ValueError(f"url must be an http(s) URL or null, not {url!r}")
            if secret is not None and (not isinstance(secret, str) or not secret.startswith("whsec_")):
                raise ValueError("secret must start with whsec_")
            if "faults" in body or "seed" in body:
                seed = body.get("seed")
                if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                    raise ValueError(f"seed must be an integer or null, not {seed!r}")
                state.webhooks.configure_faults(body.get("faults") or "", seed)
            if "url" in body:
                secret = state.webhooks.configure_project(url, secret)
            else:
                secret = state.webhooks.project_secret
        except (ValueError, FaultSpecError) as err:
            return JSONResponse({"error": {"message": str(err), "type": "invalid_request_error"}}, status_code=400)
        return JSONResponse({**state.webhooks.describe(), "secret": secret})

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(state.webhooks.jwks(), headers={"cache-control": "public, max-age=3600"})

    return [
        Route("/_sim/webhooks", listed, methods=["GET"]),
        Route("/_sim/webhooks", configure, methods=["POST"]),
        Route(JWKS_PATH, jwks, methods=["GET"]),
    ]


__all__ = [
    "JWKS_PATH", "SECRET_ENV", "WEBHOOK_FAULT_KINDS", "FalSigner", "StandardWebhooksSigner", "WebhookDeliveries", "new_secret",
    "parse_webhook_faults", "public_jwks", "webhook_routes",
]
