"""The deployments' pull step: where a flow run starts on a worker.

The flows are installed with soraflow (module entrypoints such as
``soraflow.flows.render.render_storyboard``), so there is no code to pull: what a worker needs
is a working directory of its own. Without a pull step Prefect would record the deploying
machine's directory (a worker elsewhere fails to enter it), and a process worker with none
runs each flow in a temporary directory that is deleted afterwards, films included.

This step enters the worker's ``SORAFLOW_SERVICE_DIR`` (default ``~/soraflow``), creating it
when missing: the run form's relative ``out_dir`` (``out``) and render-folder's ``inbox`` are
there, the same on every worker that sets it the same way.
"""

from __future__ import annotations

import os

from soraflow.settings import Settings


def enter_service_dir() -> dict[str, str]:
    """Create and enter the service directory; Prefect runs the flow from there."""
    directory = Settings().service_dir.expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    os.chdir(directory)
    return {"directory": str(directory)}


__all__ = ["enter_service_dir"]
