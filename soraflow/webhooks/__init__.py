"""Webhook deliveries: a clip is known done the moment its provider says so, and a forged
delivery changes nothing.

- ``receiver``: the ASGI app ``soraflow webhooks serve`` runs beside the workers; it verifies each
  delivery (``signatures``: Standard Webhooks, fal's Ed25519 with its JWKS in ``jwks``) and
  records it in the ledger, where waiting clips read it (soraflow/ledger/_deliveries.py);
- ``config``: which endpoints declare webhooks, with their verifiers and secrets (read here,
  registered as secrets where they are read);
- ``server``: the receiver on uvicorn, in this process or on a thread.

No Prefect here: the CLI hands ``on_delivery`` a Prefect event emitter.
"""

from .config import SecretReader, receiver_endpoints
from .receiver import DELIVERY_PATH, MAX_BODY_BYTES, ReceiverEndpoint, build_receiver, delivery_path
from .server import Receiver
from .signatures import FalVerifier, Refused, StandardWebhooksVerifier, VerifiedDelivery

__all__ = [
    "DELIVERY_PATH", "MAX_BODY_BYTES", "FalVerifier", "Receiver", "ReceiverEndpoint", "Refused", "SecretReader",
    "StandardWebhooksVerifier", "VerifiedDelivery", "build_receiver", "delivery_path", "receiver_endpoints",
]
