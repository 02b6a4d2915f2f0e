"""``soraflow webhooks serve``: the receiver of webhook deliveries, run beside the workers.

It serves every endpoint whose entry declares ``webhooks`` (the models file, or the Prefect
Variable ``soraflow-models`` when a Prefect server is configured), records each verified
delivery in the ledger the workers share, and emits a Prefect event per delivery
(``soraflow.video.completed`` / ``.failed``) when ``PREFECT_API_URL`` names a server.
Prefect is imported only inside the command.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

import typer

from ..ledger import Deliveries, Delivery, Ledger
from ..models import ModelCatalog
from ..plan import model_catalog
from ..settings import Settings
from ._app import app
from ._output import say

webhooks_app = typer.Typer(help="Webhook deliveries: the receiver that tells waiting clips their jobs are done.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")

EVENT_PREFIX = "soraflow.video."


def _catalog(settings: Settings) -> ModelCatalog:
    """The models file when set; else, with a Prefect server configured, the catalog the workers
    read (the file, or the Prefect Variable); else the built-in one."""
    if settings.models is None and os.environ.get("PREFECT_API_URL"):
        from soraflow.tasks import runtime  # Prefect starts here

        return runtime.model_catalog()
    return model_catalog(settings)


def _read_block(name: str) -> str:
    from prefect.blocks.system import Secret

    return Secret.load(name, _sync=True).get()


def prefect_event_emitter():
    """``on_delivery`` for the receiver: one Prefect event per recorded delivery, or None when no
    Prefect server is configured (Prefect would otherwise start a temporary one per receiver)."""
    from prefect.settings import PREFECT_API_URL

    from soraflow.tasks import outbound  # every event soraflow emits is redacted there

    if not PREFECT_API_URL.value():
        return None

    def emit(delivery: Delivery) -> None:
        outbound.event(
            event=EVENT_PREFIX + delivery.event,
            resource={
                "prefect.resource.id": f"soraflow.clip.{delivery.clip_key}",
                "soraflow.clip-key": delivery.clip_key,
                "soraflow.job-id": delivery.job_id,
                "soraflow.endpoint": delivery.endpoint,
            },
            payload={"delivery_id": delivery.delivery_id, "signed_at": delivery.signed_at, "detail": delivery.detail},
        )

    return emit


@webhooks_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8780, help="Port (0: any free port)"),
) -> None:
    """Receive webhook deliveries: verify each, record it in the ledger, and tell waiting clips."""
    from ..webhooks import Receiver, receiver_endpoints

    settings = Settings()
    endpoints = receiver_endpoints(_catalog(settings), settings.environment, read_block=_read_block)
    ledger = Ledger.from_settings(settings)
    emitter = prefect_event_emitter()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("soraflow").setLevel(logging.INFO)
    receiver = Receiver(endpoints, Deliveries(ledger), host=host, port=port, on_delivery=emitter).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    events = "Prefect events on" if emitter else "Prefect events off (no PREFECT_API_URL)"
    say(("soraflow webhooks receiver", "bold"), f" at {receiver.url}; ledger {ledger.where}; {events}. Ctrl-C stops it.")
    for name, endpoint in endpoints.items():
        say(f"  endpoint {name} ({endpoint.dialect}, {endpoint.verifier.scheme}, {endpoint.secret_source}): "
            f"{receiver.delivery_url(name)} (its entry's url: {endpoint.url})")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        receiver.stop()
        if emitter is not None:
            from prefect.events.worker import EventsWorker

            EventsWorker.drain_all(timeout=10)
