"""``soraflow simulator``: every dialect soraflow speaks, served as `render` embeds it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._app import app
from ._output import report


@app.command()
def simulator(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8765, help="Port (0: any free port)"),
    latency: float = typer.Option(5.0, help="Seconds from create to completed"),
    faults: str = typer.Option("", help='Fault probabilities, e.g. "429=0.1,500=0.05,reset=0.05,stall=0.02,moderation=0.1"'),
    seed: Optional[int] = typer.Option(None, help="Seed that makes faults repeatable"),
    shutdown: bool = typer.Option(False, "--shutdown", help="Answer as a retired model does"),
    stall_seconds: float = typer.Option(30.0, help="How long a 'stall' fault holds its response"),
    ttl_seconds: float = typer.Option(3600.0, help="How long finished content stays downloadable (expires_at)"),
    cache_dir: Optional[Path] = typer.Option(None, help="Reuse identical renders from this directory"),
    fal_port: int = typer.Option(0, help="fal's TLS port: queue, storage, platform API (0: any free port)"),
    fal_proxy_port: int = typer.Option(0, help="The proxy for fal-client's fixed storage hosts (0: any free port)"),
    fal_history_lag: float = typer.Option(0.0, help="fal's request history lists a finished request this many seconds late"),
    webhook_url: Optional[str] = typer.Option(
        None, help="Deliver each openai-videos job's end to this URL (the project's webhook; secret from "
        "SORAFLOW_SIMULATOR_WEBHOOK_SECRET, else a new one, printed)"),
    webhook_faults: str = typer.Option("", help='Delivery faults, e.g. "drop=0.3,duplicate=0.1,delay=0.1,reorder=0.1,bad_signature=0.1"'),
) -> None:
    """Serve the simulator: the Videos API (openai SDK), Veo (google-genai) and fal (fal-client, over TLS), as `render` embeds it without credentials."""
    import os

    from ..redaction import register_secret
    from pydantic import ValidationError

    from ..errors import InvalidSettingError, shown_value
    from ..simulator import SimulatorConfig, serve
    from ..simulator.webhooks import SECRET_ENV

    try:
        cfg = SimulatorConfig(
            host=host, port=port, latency=latency, faults=faults, seed=seed, shutdown=shutdown,
            stall_seconds=stall_seconds, ttl_seconds=ttl_seconds, cache_dir=str(cache_dir) if cache_dir else None,
            fal_port=fal_port, fal_proxy_port=fal_proxy_port, fal_history_lag_seconds=fal_history_lag,
            webhook_url=webhook_url, webhook_secret=register_secret(os.environ.get(SECRET_ENV) or None, "simulator webhook secret"),
            webhook_faults=webhook_faults,
        )
    except ValidationError as err:  # one line per option: its name, its value, what is allowed
        bad = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')} {shown_value(e.get('input'))} is not allowed: {_allowed(e)}" for e in err.errors()
        )
        raise InvalidSettingError(bad) from None
    except ValueError as err:
        report(err)
        raise typer.Exit(2) from None
    serve(cfg)


def _allowed(error: dict) -> str:
    """A pydantic error's rule in words ("greater than or equal to 0" and finiteness)."""
    if error["type"] == "finite_number":
        return "a finite number"
    return error["msg"].replace("Input should be", "").strip() or error["msg"]
