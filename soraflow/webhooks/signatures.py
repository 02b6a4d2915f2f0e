"""Each dialect's webhook signature, verified with the library made for it, and its event read.

- ``StandardWebhooksVerifier``: OpenAI-shaped services and gateways sign as Standard Webhooks
  (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 over
  ``id.timestamp.body`` with a ``whsec_`` secret). Verified with ``standardwebhooks``, the
  specification's own library, rather than the openai SDK's ``webhooks.verify_signature``: the
  deliveries come from gateways as much as from OpenAI, it needs no API client, and it returns
  the verified JSON. Its tolerance is the specification's fixed 5 minutes either way. The secret
  keeps its ``whsec_`` prefix: both libraries then read it the same way (base64 after the prefix).
- ``FalVerifier``: fal signs Ed25519 over ``request id \\n user id \\n timestamp \\n
  sha256(body) in hex`` (``X-Fal-Webhook-*`` headers, the signature in hex), with the keys it
  publishes as a JWKS (``jwks.JwksKeys``); a delivery is good when any published key verifies
  it. There is no fal library for this; ``cryptography`` does the Ed25519.

A verifier returns what the delivery says (``VerifiedDelivery``) or raises ``Refused`` with the
HTTP status to answer and a reason to log (never a secret or a signature).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from .jwks import JwksKeys, JwksUnavailable

# fal's documented tolerance, the same as Standard Webhooks' fixed one.
TOLERANCE_SECONDS = 300
# How the fal provider's job ids end (providers/fal_queue.py: ``{endpoint_id}/requests/{request id}``;
# not imported: that module imports fal_client, which the receiver has no use for).
FAL_JOB_SUFFIX = "/requests/{request_id}"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_ID_CHARS = 256
MAX_DETAIL_CHARS = 500
OPENAI_EVENTS = {"video.completed": "completed", "video.failed": "failed"}


class Refused(Exception):
    """A delivery not believed: answered with ``status``, logged with ``reason``; nothing changes."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class VerifiedDelivery:
    """What a verified delivery says. ``event`` None: a verified event that is not about a video
    (a project's webhook may carry other events): acknowledged, nothing recorded. ``job_match``:
    ``exact`` when ``job_id`` is the job id the ledger holds, ``suffix`` when it is how that id
    ends (fal names a request by its id alone; the ledger's job id also names its endpoint)."""

    delivery_id: str
    job_id: str | None
    event: str | None  # completed | failed | None
    signed_at: float
    kind: str  # the event as the provider names it, for the log
    detail: dict[str, Any] | None = field(default=None)
    job_match: str = "exact"


class Verifier(Protocol):
    scheme: str  # how the dialect signs, as said at start

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery: ...


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS or not value.isprintable():
        raise Refused(400, f"the verified delivery's {what} is not an identifier")
    return value


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the verified delivery's body is not JSON") from None


def _bounded(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_DETAIL_CHARS]


class StandardWebhooksVerifier:
    scheme = "Standard Webhooks (HMAC-SHA256, whsec_ secret)"

    def __init__(self, secret: str):
        self._webhook = Webhook(secret)

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery:
        try:
            event = self._webhook.verify(body, dict(headers))
        except WebhookVerificationError as err:
            reason = str(err)  # the library's own words: missing headers, too old/new, no matching signature
            raise Refused(401, f"Standard Webhooks verification failed: {reason}") from None
        except (ValueError, UnicodeDecodeError):  # verified, but not JSON
            raise Refused(400, "the verified delivery's body is not JSON") from None
        delivery_id = _identifier(headers.get("webhook-id"), "webhook-id")
        signed_at = float(headers["webhook-timestamp"])  # parsed by the library already
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise Refused(400, "the verified delivery is not an event (no type)")
        kind = event["type"][:100]
        outcome = OPENAI_EVENTS.get(kind)
        if outcome is None:
            return VerifiedDelivery(delivery_id, None, None, signed_at, kind)
        data = event.get("data")
        job_id = _identifier(data.get("id") if isinstance(data, dict) else None, "data.id")
        return VerifiedDelivery(delivery_id, job_id, outcome, signed_at, kind)


class FalVerifier:
    scheme = "fal (Ed25519, keys from its JWKS)"

    def __init__(self, keys: JwksKeys, *, tolerance: float = TOLERANCE_SECONDS):
        self._keys = keys
        self._tolerance = tolerance

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedDelivery:
        names = ("x-fal-webhook-request-id", "x-fal-webhook-user-id", "x-fal-webhook-timestamp", "x-fal-webhook-signature")
        request_id, user_id, timestamp, signature = (headers.get(n) for n in names)
        if not (request_id and user_id and timestamp and signature):
            raise Refused(401, "fal signature headers missing")
        try:
            signed_at = int(timestamp)
        except ValueError:
            raise Refused(401, "fal timestamp is not unix seconds") from None
        if abs(time.time() - signed_at) > self._tolerance:
            raise Refused(401, f"fal timestamp outside the {self._tolerance:.0f} s tolerance")
        try:
            signature_bytes = bytes.fromhex(signature)
        except ValueError:
            raise Refused(401, "fal signature is not hex") from None
        message = f"{request_id}\n{user_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
        try:
            good = await self._keys.verify(message, signature_bytes)
        except JwksUnavailable as err:
            # Nothing can be verified without the keys: the sender is asked to come back.
            raise Refused(503, f"fal's signing keys cannot be read: {err}") from None
        if not good:
            raise Refused(401, "fal signature does not verify with any published key")
        delivery = _json(body)
        if not isinstance(delivery, dict) or delivery.get("status") not in ("OK", "ERROR"):
            raise Refused(400, "the verified fal delivery has no status OK or ERROR")
        if not _UUID.match(request_id):
            raise Refused(400, "the verified fal delivery's request id is not a uuid")
        if delivery.get("request_id") not in (None, request_id):
            raise Refused(400, "the verified fal delivery names another request than its signed header")
        job = FAL_JOB_SUFFIX.format(request_id=request_id)
        if delivery["status"] == "OK":
            return VerifiedDelivery(request_id, job, "completed", float(signed_at), "OK", job_match="suffix")
        said = (("error", _bounded(delivery.get("error"))), ("payload_error", _bounded(delivery.get("payload_error"))))
        detail = {k: v for k, v in said if v}
        return VerifiedDelivery(request_id, job, "failed", float(signed_at), "ERROR", detail or None, job_match="suffix")


__all__ = ["TOLERANCE_SECONDS", "FalVerifier", "Refused", "StandardWebhooksVerifier", "VerifiedDelivery", "Verifier"]
