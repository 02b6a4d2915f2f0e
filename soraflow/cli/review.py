"""``soraflow review``: the review page of a render stopped for review."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from uuid import UUID

import typer
from rich.console import Console

from ..redaction import unredacted
from ..review import REVIEW_STATE_NAME
from ..settings import Settings
from ..terminal import printable
from ._app import app
from ._output import report, say


@app.command()
def review(
    target: str = typer.Argument(..., metavar="RUN_OR_OUT_DIR", help="The render's output directory, or the id of its flow run"),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on; any but loopback needs the page's token on every request"),
    port: int = typer.Option(8766, help="Port (0: any free port)"),
) -> None:
    """Serve the review page: play the current cut and every take, keep a take or ask for a retake,
    and resume the paused run with the decision. Prints the page's URL (with its token) once."""
    from ..screening import ReviewFolder, ReviewServer, ReviewServerError, ReviewTargetError
    from ..storage import open_storage
    from ._prefect import reachable_api, review_run_control

    settings = Settings()
    session = None
    if settings.aws_credentials_block:
        from soraflow.tasks.runtime import aws_session  # Prefect loads the block

        session = aws_session()
    try:
        run_id = _run_id(target)  # before Prefect is imported: a wrong argument is said at once
        api_url = reachable_api(settings)
        out_dir = _out_dir_of_run(run_id, settings, api_url) if run_id else Path(target).expanduser()
        folder = ReviewFolder(out_dir, lambda url: open_storage(url, settings, session))
        runs = review_run_control(api_url) if api_url else None
        server = ReviewServer(folder, host=host, port=port, runs=runs).start()
    except (ReviewTargetError, ReviewServerError) as err:  # the user's input: exit 2, one line
        report(err)
        raise typer.Exit(2) from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        # The one place the page's token is shown: its URL, printed past the redaction of stdout
        # (the token is registered as a secret, so an error or a log line never carries it).
        say(("review page", "bold"), f" of {printable(folder.out_dir, 200)}: ", (server.url, "bold"), to=Console(file=unredacted(sys.stdout), soft_wrap=True))
        if server.loopback:
            say(f"  listening on {printable(host)} only; sending a decision needs the token in this URL. Ctrl-C stops it.")
        else:
            say(f"  listening on {printable(host)}: every request needs the token in this URL, printed only here. Ctrl-C stops it.")
        if not folder.state_path.exists():
            say(f"  no {REVIEW_STATE_NAME} there yet: the page shows the review once the render stops for one")
        if runs is None:
            say("  no Prefect API found (PREFECT_API_URL, or a server at SORAFLOW_PREFECT_LOCAL_API): decisions cannot resume a run")
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()


def _run_id(target: str) -> str | None:
    """None when ``target`` is an output directory; the flow run id it is otherwise."""
    from ..screening import ReviewTargetError

    if Path(target).expanduser().is_dir():
        return None
    try:
        return str(UUID(target))
    except ValueError:
        raise ReviewTargetError(
            f"RUN_OR_OUT_DIR {printable(repr(target), 200)} is neither an output directory nor a flow run id"
        ) from None


def _out_dir_of_run(run_id: str, settings: Settings, api_url: str | None) -> Path:
    """The output directory flow run ``run_id`` renders into (its parameters, through the Prefect API)."""
    from ..screening import ReviewTargetError

    if api_url is None:
        raise ReviewTargetError(
            f"{run_id} looks like a flow run id, but no Prefect API is reachable to look it up: set PREFECT_API_URL, "
            "or pass the run's output directory"
        )
    from ._prefect import flow_run_parameters

    parameters = flow_run_parameters(api_url, run_id)
    request = parameters.get("request")
    given = _render_out_dir(request) if isinstance(request, dict) else parameters.get("out_dir")
    if not isinstance(given, str) or not given:
        raise ReviewTargetError(f"flow run {run_id} names no output directory in its parameters: pass the directory instead")
    # A relative folder is where the run started: a worker's service directory, or here.
    candidates = [Path(given)] if Path(given).is_absolute() else [settings.service_dir / given, Path.cwd() / given]
    for candidate in candidates:
        if _holds_review_of(candidate, run_id):
            return candidate
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ReviewTargetError(
        f"flow run {run_id} renders into {printable(repr(given), 200)}, which is not a directory here "
        f"(looked at {', '.join(printable(str(c), 200) for c in candidates)}): run this where the run's worker ran, "
        "or pass the output directory"
    )


def _render_out_dir(request: dict) -> str | None:
    """The output directory of a render-storyboard run's request, the form's default where the
    run was started without one (the UI's Run button sends only what was changed)."""
    from pydantic import ValidationError

    from soraflow.flows.form import RenderRequest  # the run form: plain pydantic, no Prefect

    try:
        return RenderRequest.model_validate(request).out_dir
    except ValidationError:
        return request.get("out_dir")


def _holds_review_of(out_dir: Path, run_id: str) -> bool:
    from ..screening import ReviewUnavailable, read_review

    try:
        return read_review(out_dir).flow_run_id == run_id
    except ReviewUnavailable:
        return False
