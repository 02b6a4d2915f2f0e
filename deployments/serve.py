"""Serve soraflow's deployments from this process: no work pool, no worker.

The same flows, schedules and parameters as ``deployments/prefect.yaml`` (both come from
``deployments/definitions.py``), under the deployment name ``served``
(``render-storyboard/served``, ...), so serving never overwrites the work pool's deployments,
and the pause Prefect applies when serving stops touches only these. Runs execute in
subprocesses of this one, in its working directory, with its environment (endpoint keys,
SORAFLOW_*, AWS_* for S3).

    python -m soraflow.deployments.serve                      # Ctrl-C stops serving
    SORAFLOW_INBOX=s3://bucket/inbox python -m soraflow.deployments.serve
"""

from __future__ import annotations

import os

from prefect import serve

from soraflow.deployments.definitions import served_deployments


def main() -> None:
    from soraflow.deployments.bootstrap import ensure_watch_variable

    # No work pool is involved; the limits live in the ledger and each render applies them.
    ensure_watch_variable()
    serve(*served_deployments(inbox=os.environ.get("SORAFLOW_INBOX")))


if __name__ == "__main__":  # pragma: no cover
    main()
