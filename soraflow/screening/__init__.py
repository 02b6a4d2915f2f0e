"""The review page: watch every take of a render stopped for review, choose, ask for retakes.

``soraflow review RUN_OR_OUT_DIR`` serves it (``cli/review.py``). It reads the review the render
flow writes to ``OUT/.work/review.json`` (``soraflow.review.ReviewState``), plays the current
film and every take side by side with HTTP Range (from local files or S3, through the storage
layer), and sends the creator's ``ReviewDecision`` to the paused run, then follows the run as
it stores the retakes. Prefect is not imported here: the CLI hands the page a ``RunControl``
that resumes runs through the Prefect API.

Security (``_access.py``): loopback by default; a token printed once, required on every request
of a bind that is not loopback and on every decision; decisions by POST only, same-origin and
JSON; media named by shot and take, served only from the run's own storage and output directory.
"""

from __future__ import annotations

from ._access import Access, is_loopback
from ._app import ResumeRefused, RunControl, build_app
from ._decisions import DecisionRefused, decision_problems, read_decision
from ._media import parse_range
from ._server import ReviewServer, ReviewServerError
from ._state import ReviewFolder, ReviewTargetError, ReviewUnavailable, read_review

__all__ = [
    "Access",
    "DecisionRefused",
    "ResumeRefused",
    "ReviewFolder",
    "ReviewServer",
    "ReviewServerError",
    "ReviewTargetError",
    "ReviewUnavailable",
    "RunControl",
    "build_app",
    "decision_problems",
    "is_loopback",
    "parse_range",
    "read_decision",
    "read_review",
]
