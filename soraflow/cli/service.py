"""Commands that set up soraflow as a service on a Prefect server: ``bootstrap``."""

from __future__ import annotations

from ..settings import Settings
from ._app import app
from ._output import out, say


@app.command()
def bootstrap() -> None:
    """Create the work pool and watch Variable on the Prefect server and size the ledger's limit 'all' (safe to rerun)."""
    from soraflow.deployments.bootstrap import bootstrap as create_prefect_objects

    done = create_prefect_objects(Settings())
    limits = ", ".join(f"{name}={size}" for name, size in done["limits"].items())
    say("work pool ", (done["work_pool"], "bold"), f", limits {limits}, variables {', '.join(done['variables'])}: ready", to=out)
    for change in done["changes"]:
        say(change)
