"""Serve soraflow's three deployments from this process: no work pool, no worker.

The local counterpart of ``deployments/prefect.yaml``: same names, same schedules. Runs are
executed in subprocesses of this one, so it needs the same environment a worker would
(OPENAI_API_KEY / OPENAI_BASE_URL, SORAFLOW_*, AWS_* for S3).

    python -m soraflow.deployments.serve                      # Ctrl-C stops serving
    SORAFLOW_INBOX=s3://bucket/inbox python -m soraflow.deployments.serve
"""

from __future__ import annotations

import os

from prefect import serve

WATCH_CRON = "0 */6 * * *"
FOLDER_CRON = "*/30 * * * *"


def deployments(inbox: str | None = None, out_root: str = "out") -> list:
    """The deployments as runner deployments (``flow.to_deployment``)."""
    from soraflow.flows.folder import render_folder
    from soraflow.flows.render import render_storyboard
    from soraflow.flows.watch import watch_models

    inbox = inbox or os.environ.get("SORAFLOW_INBOX", "inbox")
    return [
        render_storyboard.to_deployment(
            name="render-storyboard",
            description="Render one storyboard into a film (film.mp4, manifest.json, contact_sheet.png).",
            tags=["soraflow"],
        ),
        watch_models.to_deployment(
            name="watch-models",
            description="Check model availability and prices every 6 hours; emit events on changes.",
            cron=WATCH_CRON,
            tags=["soraflow", "watch"],
        ),
        render_folder.to_deployment(
            name="render-folder",
            description="Render every new or changed storyboard in a folder or an S3 prefix.",
            cron=FOLDER_CRON,
            parameters={"source": inbox, "out_root": out_root},
            concurrency_limit=1,
            tags=["soraflow", "batch"],
        ),
    ]


def main() -> None:
    from soraflow.deployments.bootstrap import ensure_watch_variable

    # No work pool is involved; the limits live in the ledger and each render applies them.
    ensure_watch_variable()
    serve(*deployments())


if __name__ == "__main__":  # pragma: no cover
    main()
