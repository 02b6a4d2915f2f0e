"""``soraflow jobs``: the job ledger, and settling the clips a render left in doubt."""

from __future__ import annotations

import time
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .. import recovery
from ..ledger import Ledger
from ..models import route_endpoints
from ..plan import model_catalog
from ..settings import Settings
from ..terminal import printable
from ._app import _Commands, app
from ._output import out, say
from ._prefect import secret_reader


jobs_app = typer.Typer(
    cls=_Commands, add_completion=False, pretty_exceptions_show_locals=False,
    help="The job ledger: each clip's state, job, endpoint and price; settle clips a render left in doubt.",
)
app.add_typer(jobs_app, name="jobs")

_STATE_STYLE = {"in_doubt": "bold red", "creating": "yellow", "failed": "red", "lost": "red", "completed": "green"}
CLIP_ARG = typer.Argument(..., help="The start of the clip's key, as the render and `soraflow jobs` print it")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{max(0, seconds):.0f}s"


@jobs_app.callback(invoke_without_command=True)
def jobs(ctx: typer.Context, state: Optional[str] = typer.Option(None, "--state", help="Only clips in this state, e.g. in_doubt")) -> None:
    """List the ledger: clip, state, job id, endpoint, age and price, and what settles each clip in doubt."""
    if ctx.invoked_subcommand is not None:
        return
    ledger = Ledger(Settings().resolved_ledger_url)
    entries = [e for e in ledger.entries().values() if state is None or e.state == state]
    if not entries:
        say(f"no clips{f' in state {state}' if state else ''} in the ledger at {ledger.where}", to=out)
        return
    table = Table(title=Text(f"job ledger at {printable(ledger.where)}"), title_justify="left")
    for col in ("clip", "shot", "part", "state", "job", "endpoint", "age", "USD"):
        table.add_column(col, overflow="fold")
    now = time.time()
    for e in entries:
        cells = (recovery.ref_of(e), e.shot_id, str(e.part), e.state, e.job_id or "-", e.endpoint or "-",
                 _age(now - (e.updated_at or now)), f"{e.price_usd:.2f}" if e.price_usd is not None else "-")
        table.add_row(*(Text(printable(c), style=_STATE_STYLE.get(e.state, "") if i == 3 else "") for i, c in enumerate(cells)))
    out.print(table)
    for e in entries:
        if e.state in ("in_doubt", "creating"):
            why = f"{e.error_message}. " if e.state == "in_doubt" and e.error_message else ""
            say((f"{recovery.ref_of(e)} {e.state}: ", _STATE_STYLE[e.state]), f"{why}{recovery.what_settles(e)}", to=out)


def _settled(settled: recovery.Settled) -> None:
    say(("done: ", "bold green"), settled.said, to=out)


@jobs_app.command("adopt")
def jobs_adopt(
    clip: str = CLIP_ARG, job_id: str = typer.Argument(..., help="The job id found at the provider (its dashboard, logs or billing)")
) -> None:
    """The clip's job is JOB_ID: checked at the clip's endpoint, then the next render resumes from it (nothing is created)."""
    settings = Settings()
    _settled(recovery.adopt(Ledger(settings.resolved_ledger_url), lambda entry: _provider_of(entry, settings), clip, job_id))


def _provider_of(entry, settings: Settings):
    """The provider of the endpoint that made the clip, as the ledger names it, reached as a render would."""
    from ..providers import build_provider, connect

    catalog = model_catalog(settings)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    route = routing.routes.get(entry.endpoint or "")
    if route is None:
        what = routing.unconfigured.get(entry.endpoint or "")
        raise recovery.SettleError(
            f"clip {recovery.ref_of(entry)} was made at endpoint {entry.endpoint or '(not recorded)'}, which is not configured here"
            + (f": set {what}" if what else "")
        )
    if route.simulated:
        raise recovery.SettleError(
            f"clip {recovery.ref_of(entry)} was made by the embedded simulator, whose jobs ended with its render: "
            f"`soraflow jobs re-create {recovery.ref_of(entry)}`"
        )
    connection = connect(route, settings.environment, read_secret=secret_reader(settings), profiles=catalog.profiles.values())
    return build_provider(connection, settings)


@jobs_app.command("re-create")
def jobs_re_create(clip: str = CLIP_ARG) -> None:
    """At your word: the next render pays for a new job for this clip in doubt."""
    _settled(recovery.re_create(Ledger(Settings().resolved_ledger_url), clip))


@jobs_app.command("release")
def jobs_release(clip: str = CLIP_ARG) -> None:
    """Free a claim left by a run that is gone: the next render searches for its create at once."""
    _settled(recovery.release(Ledger(Settings().resolved_ledger_url), clip))


@jobs_app.command("forget")
def jobs_forget(clip: str = CLIP_ARG) -> None:
    """Remove a failed or lost clip from the ledger (its jobs stay recorded as paid)."""
    _settled(recovery.forget(Ledger(Settings().resolved_ledger_url), clip))


@jobs_app.command("log")
def jobs_log(clip: Optional[str] = typer.Argument(None, help="Only this clip's actions")) -> None:
    """The ledger's action record: every adopt, re-create, release and forget, and what runs did on their own."""
    ledger = Ledger(Settings().resolved_ledger_url)
    key = recovery.find_clip(ledger, clip).clip_key if clip else None
    table = Table(title=Text(f"actions in the ledger at {printable(ledger.where)}"), title_justify="left")
    for col in ("time (UTC)", "clip", "action", "detail", "by"):
        table.add_column(col, overflow="fold")
    for a in ledger.actions(key):
        detail = ", ".join(f"{k}={v}" for k, v in (a.detail or {}).items() if v not in (None, "")) if isinstance(a.detail, dict) else str(a.detail or "")
        cells = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a.at)), (a.clip_key or "-")[: recovery.CLIP_REF_LENGTH], a.action, detail, a.actor)
        table.add_row(*(Text(printable(c)) for c in cells))
    out.print(table)
