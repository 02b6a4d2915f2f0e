"""soraflow's deployments, defined once.

Two ways to run them read these definitions, and neither can overwrite the other's:

- ``deployments/prefect.yaml``, for ``prefect deploy`` and a process work pool, is generated
  from this module (``python -m soraflow.deployments.definitions > deployments/prefect.yaml``;
  a test fails when the committed file differs). Its deployments are ``<flow>/<flow>``, e.g.
  ``render-storyboard/render-storyboard``.
- ``python -m soraflow.deployments.serve`` serves the same flows, schedules and parameters from
  one process under the deployment name ``served`` (``render-storyboard/served``). Prefect
  pauses a served deployment when serving stops; with its own name, that never touches the
  work pool's deployments.

Entrypoints are module paths (``soraflow.flows.render.render_storyboard``): a worker imports
the flows from the installed package, wherever the deploying machine kept its checkout, and the
pull step (``deployments/pull.py``) gives the run its working directory on that worker.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import yaml

WORK_POOL = "soraflow-pool"
SERVED_NAME = "served"
PULL_STEPS = [{"soraflow.deployments.pull.enter_service_dir": {}}]


@dataclass(frozen=True)
class Definition:
    """One deployment: a flow, what it is for, and when it runs."""

    flow_name: str
    entrypoint: str  # a module path, importable wherever soraflow is installed
    description: str  # shown on the deployment's page in the UI
    tags: tuple[str, ...]
    cron: str | None = None  # UTC
    parameters: dict = field(default_factory=dict)
    concurrency_limit: int | None = None
    note: str = ""  # a comment above the deployment in prefect.yaml


DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        flow_name="render-storyboard",
        entrypoint="soraflow.flows.render.render_storyboard",
        description=(
            "Render one storyboard into a film: film.mp4, contact_sheet.png and manifest.json in the "
            "output folder. Write the storyboard in the run form, or give the path of a storyboard file "
            "on the worker. Clips already paid for are reused, never paid twice."
        ),
        tags=("soraflow",),
        note="Ad hoc: the run form (a storyboard written in the form, or a file on the worker), the API, automations.",
    ),
    Definition(
        flow_name="watch-models",
        entrypoint="soraflow.flows.watch.watch_models",
        description=(
            "Check which profiled models each endpoint still serves and at what price, every 6 hours. A "
            "model that is gone or retiring, or a changed price, becomes an event (soraflow.model.unavailable, "
            "soraflow.model.retiring, soraflow.price.changed) and a row in the report artifact."
        ),
        tags=("soraflow", "watch"),
        cron="0 */6 * * *",
        note="Which profiled models each endpoint still serves, and what they cost; changes become events.",
    ),
    Definition(
        flow_name="render-folder",
        entrypoint="soraflow.flows.folder.render_folder",
        description=(
            "Every 30 minutes, render every new or changed storyboard in a folder on the worker (created "
            "when missing) or an s3:// prefix. Finished storyboards are skipped; one that fails does not "
            "stop the others."
        ),
        tags=("soraflow", "batch"),
        cron="*/30 * * * *",
        parameters={"source": "inbox", "out_root": "out"},
        concurrency_limit=1,
        note="Scheduled batch. Overlapping runs would render the same storyboard twice: one run at a time.",
    ),
)


def _schedules(d: Definition) -> list[dict]:
    return [{"cron": d.cron, "timezone": "UTC", "active": True}] if d.cron else []


def prefect_yaml() -> str:
    """The text of deployments/prefect.yaml."""
    header = f"""\
# soraflow's deployments for a process work pool. GENERATED from deployments/definitions.py:
#   python -m soraflow.deployments.definitions > deployments/prefect.yaml
# (edit the definitions, not this file; a test compares the two).
#
#   soraflow bootstrap                                            # work pool, limits, watch Variable
#   prefect --no-prompt deploy --prefect-file deployments/prefect.yaml --all
#   prefect worker start --pool {WORK_POOL}
#
# Entrypoints are module paths: workers import the flows from the installed soraflow package, so
# `prefect deploy` may run from any directory. No build or push step. The pull step enters the
# worker's SORAFLOW_SERVICE_DIR (default ~/soraflow), where relative paths of a run resolve.

"""
    body = yaml.safe_dump(
        {
            "name": "soraflow",
            "prefect-version": "3.8.8",
            "build": None,
            "push": None,
            "pull": PULL_STEPS,
        },
        sort_keys=False,
    )
    deployments = []
    for d in DEFINITIONS:
        entry: dict = {"name": d.flow_name, "entrypoint": d.entrypoint, "description": d.description, "tags": list(d.tags)}
        if d.concurrency_limit is not None:
            entry["concurrency_limit"] = d.concurrency_limit
        if d.parameters:
            entry["parameters"] = dict(d.parameters)
        if d.cron:
            entry["schedules"] = _schedules(d)
        entry["work_pool"] = {"name": WORK_POOL, "work_queue_name": "default"}
        text = yaml.safe_dump([entry], sort_keys=False, width=100)
        deployments.append(f"# {d.note}\n{text}" if d.note else text)
    return header + body + "\ndeployments:\n" + "\n".join(_indent(t) for t in deployments)


def _indent(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def served_deployments(inbox: str | None = None, out_root: str | None = None) -> list:
    """The same deployments as runner deployments for ``prefect.serve`` (no work pool)."""
    from prefect.deployments.runner import EntrypointType
    from prefect.utilities.importtools import import_object

    served = []
    for d in DEFINITIONS:
        parameters = dict(d.parameters)
        if "source" in parameters and inbox:
            parameters["source"] = inbox
        if "out_root" in parameters and out_root:
            parameters["out_root"] = out_root
        flow = import_object(d.entrypoint)
        served.append(
            flow.to_deployment(
                name=SERVED_NAME,
                description=d.description,
                tags=[*d.tags, "served"],
                cron=d.cron,
                parameters=parameters,
                concurrency_limit=d.concurrency_limit,
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return served


if __name__ == "__main__":  # pragma: no cover - `python -m soraflow.deployments.definitions`
    sys.stdout.write(prefect_yaml())
