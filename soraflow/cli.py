"""The ``soraflow`` command line (typer + rich).

Prefect is imported lazily inside the commands that run flows, so ``estimate`` and
``render --dry-run`` answer in well under a second and the core stays Prefect-free.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from . import assembly, planning, preflight, recovery, storing
from .errors import (
    BudgetExceededError,
    CatalogError,
    EndpointNotConfiguredError,
    InvalidBudgetError,
    InvalidInputError,
    SoraflowError,
)
from .ledger import Ledger, WatchedPrices
from .models import SIMULATE_VARIABLE, ModelCatalog, profile_table_row, route_endpoints
from .plan import Plan
from .pricing import with_watched_prices
from .settings import Settings
from .terminal import printable

console = Console(stderr=True)
out = Console()

SIMULATE_HELP = f"Render every endpoint on the embedded simulator, credentials or not (env {SIMULATE_VARIABLE}=1)"
# The user's input is wrong (exit 2) rather than the run failing (exit 1).
INPUT_ERRORS = (
    InvalidInputError, BudgetExceededError, InvalidBudgetError, CatalogError, EndpointNotConfiguredError, recovery.SettleError,
    preflight.PreflightError,
)
_debug = False


def say(*parts: str | tuple[str, str], to: Console = console) -> None:
    """Print a line of labels (``(text, style)``, ours) and text from users or providers (plain
    strings): never read as rich markup, so a provider code like ``[moderation_blocked]`` or a
    title with brackets prints as it is, and every control character escaped."""
    pieces = [part if isinstance(part, tuple) else printable(part, keep_newlines=True) for part in parts]
    to.print(Text.assemble(*pieces), highlight=False, soft_wrap=True)


class _Commands(TyperGroup):
    """Every command ends an expected error with one clean line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        # typer vendors click (typer._click): its usage errors (--budget abc) are TyperException,
        # not click.ClickException, and print their own clean usage message.
        except (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except SoraflowError as err:
            _report(err)
            raise typer.Exit(2 if isinstance(err, INPUT_ERRORS) else 1) from None
        except KeyboardInterrupt:
            say(("interrupted", "bold yellow"), ": nothing is left running; a rerun resumes where this one stopped")
            raise typer.Exit(143 if _terminated.is_set() else 130) from None
        except Exception as err:  # noqa: BLE001 - a bug or an environment problem: one line unless --debug
            if _debug:
                raise
            say(("error: ", "bold red"), f"{type(err).__name__}: {err}", (" (run with --debug for the traceback)", "dim"))
            raise typer.Exit(1) from None


def _report(err: BaseException, head: str = "error: ") -> None:
    if _debug:
        console.print("".join(traceback.format_exception(err)), markup=False, highlight=False)
    say((head, "bold red"), str(err))


app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help="Turn a storyboard into a film with generative video models."
)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and Prefect's own log lines")) -> None:
    global _debug
    _debug = debug


def _settings(simulate: bool = False) -> Settings:
    """Settings from the environment; ``--simulate`` goes into it so the flow run sees it too."""
    if simulate:
        os.environ[SIMULATE_VARIABLE] = "1"
    return Settings()


def _plan(storyboard: Path, settings: Settings) -> Plan:
    return planning.load_plan(str(storyboard), None, settings=settings, catalog=planning.model_catalog(settings))


def _prefect_defaults() -> None:
    """Defaults for the temporary Prefect server a command starts when no PREFECT_API_URL is set.

    Must run before Prefect is imported: it reads its settings once, at import. The first start
    on a new machine migrates a fresh SQLite database, which takes about 30 s on 2 cores, past
    Prefect's 20 s startup timeout, so README command 1 failed on every fresh machine. The
    temporary server also sends no telemetry (offline machines logged an ERROR for it). A value
    the user sets wins.
    """
    if os.environ.get("PREFECT_API_URL"):
        return
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@contextmanager
def _prefect_api(settings: Settings) -> Iterator[None]:
    """The Prefect server a flow run of this command reports to: PREFECT_API_URL when it is set
    (environment or Prefect profile); else one already running where ``prefect server start``
    listens by default (SORAFLOW_PREFECT_LOCAL_API); else a temporary server Prefect starts for
    this command and stops at its end (9 to 30 s on 2 cores)."""
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    local = settings.prefect_local_api.rstrip("/")
    try:
        running = bool(local) and httpx.get(f"{local}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        running = False
    if not running:
        say("starting a temporary Prefect server for this render (set PREFECT_API_URL, or run `prefect server start`, to reuse one)")
        yield
        return
    say(f"using the Prefect server running at {local}")
    with temporary_settings(updates={PREFECT_API_URL: local}):
        yield


def _quiet_prefect_console() -> None:
    """Prefect's console lines, as a CLI user needs them: warnings only, one line each.

    The run's failures are summarised by the command itself (one line per failed shot), so
    Prefect's own error records for failed task and flow runs, with their tracebacks, would
    say the same thing again in 99 lines. Everything still reaches the Prefect server's logs.
    ``--debug`` keeps Prefect's console as it is.
    """
    if _debug:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(logging.WARNING)
            handler.addFilter(_run_errors_summarised_later)
            handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


def _run_errors_summarised_later(record: logging.LogRecord) -> bool:
    return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


class _WithoutTraceback(logging.Formatter):
    def __init__(self, inner: logging.Formatter):
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        # A copy: the record is shared with the handler that sends it to the Prefect API.
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        return self.inner.format(plain)


_terminated = threading.Event()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM ends a command the way Ctrl-C does: the stack unwinds, so the embedded simulator
    stops, the temporary Prefect server is stopped (at exit) and no port stays open.

    Python's default for SIGTERM ends the process on the spot, leaving the temporary Prefect
    server (a child process) listening. During a flow run Prefect's engine takes SIGTERM
    first, marks the run crashed and sends it again to the handler installed here.
    """
    def interrupt(signum, frame):
        _terminated.set()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _estimate_table(plan: Plan) -> Table:
    table = Table(title=Text(f"{printable(plan.title)} — estimate"), title_justify="left")
    columns = (("shot", "left"), ("part", "right"), ("model", "left"), ("endpoint", "left"), ("size", "left"), ("seconds", "right"), ("USD", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for row in planning.estimate_rows(plan):
        cells = (row["shot"], row["part"], row["model"], row["endpoint"], row["size"], str(row["seconds"]), f"${row['usd']}")
        table.add_row(*(Text(printable(cell)) for cell in cells))
    table.add_section()
    table.add_row("total", "", "", "", "", str(plan.total_seconds), Text(f"${plan.total_usd:.2f}", style="bold"))
    # chained parts (last_frame, extend, remix) wait for their source: the wall time is the longest chain
    table.caption = f"expected wall time ~{plan.expected_wall_seconds:.0f} s (chained parts run in sequence)"
    table.caption_justify = "left"
    return table


def _say_if_simulated(plan: Plan, settings: Settings) -> None:
    if plan.simulated:
        why = "--simulate" if settings.simulate else "No credentials for any endpoint"
        say((f"{why}: this film is simulated", "yellow"),
            " by soraflow's built-in simulator, started in this process (no paid model is called).")


def _warn_fitting(plan: Plan) -> None:
    for note in plan.fitting_notes():
        say(("warning: ", "bold yellow"), note)


class PriceChoice(str, Enum):
    profile = "profile"
    watched = "watched"


@app.command()
def estimate(
    storyboard: Path = typer.Argument(..., help="Storyboard YAML or JSON"),
    prices: PriceChoice = typer.Option(
        PriceChoice.profile, "--prices",
        help="profile: the model profiles' prices; watched: the prices the model watch last saw (kept in the ledger)",
    ),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Print the cost of every clip and the total, to the cent. Creates nothing."""
    settings = _settings(simulate)
    if prices is PriceChoice.profile:
        plan = _plan(storyboard, settings)
        out.print(_estimate_table(plan))
        out.print("prices: the model profiles' (" + " + ".join(planning.model_catalog(settings).sources) + ")")
    else:
        plan, used = _plan_at_watched_prices(storyboard, settings)
        out.print(_estimate_table(plan))
        sizes = sorted({(c.profile, c.size) for c in plan.clips})
        watched = [used[s] for s in sizes if used[s].watched is not None]
        out.print(f"prices: watched by the model watch for {len(watched)} of {len(sizes)} model and size(s) used")
        for size in sizes:
            out.print(Text("  " + printable(used[size].describe())), soft_wrap=True)  # a URL stays whole
        if not watched:
            say(("warning: ", "bold yellow"), "the model watch has priced none of these (run `soraflow watch` against this ledger); the profiles' prices were used")
    _warn_fitting(plan)
    for problem in preflight.prompt_problems(plan, planning.model_catalog(settings)):
        say(("warning: ", "bold yellow"), f"{problem} (render refuses it before paying)")


def _plan_at_watched_prices(storyboard: Path, settings: Settings) -> tuple[Plan, dict]:
    """The plan priced as the model watch last saw each size (the ledger's watched prices)."""
    catalog = planning.model_catalog(settings)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    ledger = Ledger.from_settings(settings)
    try:
        watched = WatchedPrices(ledger).read()
    finally:
        ledger.close()
    catalog, used = with_watched_prices(catalog, routing, watched)
    return planning.load_plan(str(storyboard), None, settings=settings, catalog=catalog), used


def _watch_progress(plan: Plan, ledger: Ledger, stop: threading.Event) -> None:
    """Show each clip's progress from the ledger, which every stage updates."""
    keys = [c.clip_key for c in plan.clips]
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        bars = {c.clip_key: progress.add_task(f"{c.label:<18}", total=100, state="waiting") for c in plan.clips}
        while True:
            entries = ledger.entries(keys)
            for key, bar in bars.items():
                e = entries.get(key)
                if e is None:
                    continue
                state = "stored" if e.storage_uri else ("downloaded" if e.local_path else (e.job_status or e.state))
                progress.update(bar, completed=100 if e.state == "completed" else e.progress, state=state)
            if stop.wait(0.5):
                break


@app.command()
def render(
    storyboard: Path = typer.Argument(..., help="Storyboard YAML or JSON"),
    out_dir: Path = typer.Option(Path("out"), "--out", help="Output directory"),
    storage: Optional[str] = typer.Option(None, "--storage", help="file:///path or s3://bucket/prefix (env SORAFLOW_STORAGE)"),
    budget: Optional[float] = typer.Option(None, "--budget", help="Refuse to start if what this run can pay (clips to create, plus lost ones made again) exceeds this many USD"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cost and stop; nothing is created"),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Render STORYBOARD into OUT/film.mp4, OUT/manifest.json and OUT/contact_sheet.png."""
    settings = _settings(simulate)
    ledger = Ledger.from_settings(settings)  # before anything starts: a wrong URL is one line
    # The preflight's free checks, before Prefect starts: every problem at once; the flow runs
    # them again with those that send a request (the storage's probe object, the model list).
    checks = preflight.Checks(settings, planning.model_catalog(settings), ledger, open_storage=_storage_here(settings), live=False)
    cleared = preflight.preflight(
        lambda: _plan(storyboard, settings), out_dir=out_dir, storage=storage, budget_usd=budget, checks=checks
    )
    plan, can_pay = cleared.plan, cleared.payable
    out.print(_estimate_table(plan))
    _warn_fitting(plan)
    say(("this run: ", "bold"), can_pay.describe(), to=out)
    if dry_run:
        for clip in plan.clips:  # each clip's final prompt, as it would be sent
            out.print(Text(f"\n— {clip.label} ({clip.clip_key[:16]})", style="bold"))
            out.print(Text(printable(clip.prompt.rstrip("\n"), len(clip.prompt) + 1, keep_newlines=True)))
        console.print("dry run: nothing was created")
        return

    with _sigterm_unwinds():
        _render(storyboard, plan, out_dir, storage, budget, settings, ledger)


def _storage_here(settings: Settings):
    """The store of a URL as this process can open it: not S3 through a Prefect credentials block
    (only a flow run loads it; the flow's preflight checks that store)."""
    def open_here(url: str):
        return None if settings.aws_credentials_block and str(url).startswith("s3://") else storing.open_for(url, settings)
    return open_here


def _render(
    storyboard: Path, plan: Plan, out_dir: Path, storage: str | None, budget: float | None, settings: Settings, ledger: Ledger
) -> None:
    if (manifest := _up_to_date(plan, out_dir, storage, settings)) is not None:
        say(("up to date: ", "bold green"), "the film was made from exactly these clips and settings, and every "
            "clip is still stored; nothing to do (no request sent, no Prefect server started)")
        film = manifest["film"]
        say(("film: ", "bold green"), f"{Path(out_dir).resolve() / film['path']}  ({film['duration_seconds']:.2f} s, "
            f"billed this run $0.00, estimate ${manifest['totals']['estimated_usd']})", to=out)
        say(("manifest: ", "bold"), str(Path(out_dir).resolve() / assembly.MANIFEST_NAME), to=out)
        say(("contact sheet: ", "bold"), str(Path(out_dir).resolve() / assembly.CONTACT_SHEET_NAME), to=out)
        return
    _say_if_simulated(plan, settings)
    state = _run_flow(storyboard, out_dir, storage, budget, plan, settings, ledger)
    if not state.is_completed():
        from soraflow.flows.render import ShotsFailed

        error = state.result(raise_on_failure=False)
        if isinstance(error, ShotsFailed):
            _report(error, head="render failed: ")
            for failure in error.failures:
                say(f"  shot {failure['shot_id']!r} part {failure['part']}: ", failure["error"])
            raise typer.Exit(1)
        if isinstance(error, BaseException):
            raise error
        raise SoraflowError(f"render {state.name.lower()}: {state.message}")
    result = state.result()
    say(("film: ", "bold green"), f"{result.film}  ({result.duration_seconds:.2f} s, billed this run "
        f"${result.billed_usd_this_run}, estimate ${result.estimated_usd})", to=out)
    say(("manifest: ", "bold"), str(result.manifest), to=out)
    say(("contact sheet: ", "bold"), str(result.contact_sheet), to=out)


def _up_to_date(plan: Plan, out_dir: Path, storage: str | None, settings: Settings) -> dict | None:
    """The manifest, when the outputs in OUT are already what this render would make: then
    nothing needs Prefect, the provider or ffmpeg (an unchanged rerun answers in a second or
    two instead of starting a temporary Prefect server)."""
    out_path, storage_url = planning.resolve_paths(out_dir, storage, settings)
    try:
        store = storing.open_for(storage_url, settings)
    except SoraflowError:  # e.g. S3 credentials from a Prefect block: only a flow run can open it
        return None
    return assembly.up_to_date(
        plan, out_path, store, transition_seconds=settings.transition_seconds, burn_subtitles=settings.burn_subtitles
    )


def _run_flow(storyboard: Path, out_dir: Path, storage: str | None, budget: float | None, plan: Plan, settings: Settings, ledger: Ledger):
    _prefect_defaults()
    from soraflow.flows.render import RenderRequest, render_storyboard  # Prefect starts here

    _quiet_prefect_console()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_progress, args=(plan, ledger, stop), daemon=True)
    watcher.start()
    try:
        with _prefect_api(settings):
            return render_storyboard(
                RenderRequest(storyboard_path=str(storyboard), out_dir=str(out_dir), storage=storage or "", budget_usd=budget),
                return_state=True,
            )
    finally:
        stop.set()
        watcher.join(timeout=5)


@app.command()
def link(
    target: str = typer.Argument(..., help="An output directory (or its manifest.json), or an s3:// or file:// URI"),
    expires: Optional[int] = typer.Option(
        None, "--expires", min=1, max=7 * 24 * 3600, help="Seconds the links stay valid (env SORAFLOW_PRESIGN_EXPIRY_SECONDS, 3600)"
    ),
) -> None:
    """Print links that open a render's outputs and clips: presigned for S3, made now.

    A presigned link carries your AWS access key id (and session token, with temporary
    credentials), so soraflow never stores one: manifests and artifacts keep credential-free
    links, and this command makes presigned ones when you want to open or share an object.
    """
    from .storage import presign_uri

    settings = Settings()
    session = None
    if settings.aws_credentials_block:
        from soraflow.tasks.runtime import aws_session  # Prefect loads the block

        session = aws_session()
    for label, uri in _linked_objects(target):
        say((f"{printable(label)}: ", "bold"), presign_uri(uri, settings, session, expires), to=out)


def _linked_objects(target: str) -> list[tuple[str, str]]:
    """(label, URI) of every output and clip a render's manifest names, or of one URI."""
    from .documents import DocumentError, parse_document, read_bounded

    if "://" in target:
        return [(target.rsplit("/", 1)[-1] or target, target)]
    path = Path(target)
    manifest_path = path / "manifest.json" if path.is_dir() else path
    try:
        manifest = parse_document(read_bounded(manifest_path, limit=16 * 1024 * 1024).decode("utf-8", "replace"), json_only=True)
    except DocumentError as err:
        raise SoraflowError(f"{printable(manifest_path, 200)}: {err}") from None
    if not isinstance(manifest, dict):
        raise SoraflowError(f"{printable(manifest_path, 200)} is not a soraflow manifest")
    links = [(name, out["uri"]) for name, out in (manifest.get("outputs") or {}).items() if isinstance(out, dict) and out.get("uri")]
    for clip in manifest.get("clips") or []:
        if isinstance(clip, dict) and clip.get("storage_uri"):
            links.append((f"{clip.get('shot_id')} part {clip.get('part')}", clip["storage_uri"]))
    if not links:
        raise SoraflowError(f"{printable(manifest_path, 200)} names no stored outputs or clips")
    return links


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
) -> None:
    """Serve the simulator: the Videos API (openai SDK) and Veo (google-genai), as `render` embeds it without credentials."""
    from .simulator import SimulatorConfig, serve

    try:
        cfg = SimulatorConfig(
            host=host, port=port, latency=latency, faults=faults, seed=seed, shutdown=shutdown,
            stall_seconds=stall_seconds, ttl_seconds=ttl_seconds, cache_dir=str(cache_dir) if cache_dir else None,
        )
    except ValueError as err:
        _report(err)
        raise typer.Exit(2) from None
    serve(cfg)


_STATUS_STYLE = {"available": "green", "retiring": "yellow", "gone": "bold red"}


@app.command()
def watch(
    pricing: Optional[str] = typer.Option(
        None, "--pricing", help="LiteLLM's price list or a {model: {size: USD/s}} table (https URL or file) over the profiles' prices (env SORAFLOW_PRICING_SOURCE)"
    ),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Check which profiled models each endpoint serves and at what price; report what changed since last time."""
    _settings(simulate)
    _prefect_defaults()
    from soraflow.flows.watch import watch_models  # Prefect starts here

    _quiet_prefect_console()
    with _sigterm_unwinds():
        state = watch_models(pricing_source=pricing or "", return_state=True)
    if not state.is_completed():
        error = state.result(raise_on_failure=False)
        if isinstance(error, BaseException):
            raise error
        raise SoraflowError(f"watch {state.name.lower()}: {state.message}")
    for report in state.result():
        table = Table(title=Text(f"Models at {printable(report.endpoint)}"), title_justify="left")
        for col in ("model", "status", "shutdown date", "USD per second"):
            table.add_column(col)
        for row in report.rows():
            style = _STATUS_STYLE.get(row["status"], "")
            cells = (row["model"], row["status"], row["shutdown_date"] or "-", row["prices_usd_per_second"])
            table.add_row(*(Text(printable(cell), style=style if i == 1 else "") for i, cell in enumerate(cells)))
        out.print(table)
        for warning in report.warnings:  # an entry of the pricing source that priced nothing
            say(("warning: ", "bold yellow"), f"pricing source {report.pricing_source}: {warning}")
        for change in report.changes:
            say((f"{change.kind}: ", "bold"), change.message, to=out)
        if not report.changes:
            out.print("no changes since the last check")


@app.command()
def models(
    check: bool = typer.Option(False, "--check", help="Also ask each endpoint whether it offers the model now"),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Every model profile that resolves: its endpoint, lengths, sizes and prices (and, with --check, availability)."""
    settings = _settings(simulate)
    catalog = planning.model_catalog(settings)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    offered = _check_offers(catalog, routing, settings) if check else {}
    table = Table(title=Text(f"Model profiles ({' + '.join(printable(s) for s in catalog.sources)})"), title_justify="left")
    columns = ["profile", "model", "endpoint", "seconds", "sizes and USD per second", "retires"] + (["offered now"] if check else [])
    for col in columns:
        table.add_column(col, overflow="fold")
    for profile in catalog.profiles.values():
        row = profile_table_row(profile)
        route = routing.routes.get(profile.endpoint)
        where = f"{profile.endpoint} ({'simulated' if route.simulated else route.identity})" if route else f"{profile.endpoint} (not configured)"
        cells = [row["profile"], row["model"], where, row["seconds"], row["sizes"], row["retires"] or "-"]
        if check:
            cells.append(offered.get(profile.name, "-"))
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    if routing.simulated_because:
        why = "--simulate" if routing.simulated_because == "forced" else "no endpoint has credentials here"
        say("every endpoint is served by the embedded simulator: ", why)
    for name, what in sorted(routing.unconfigured.items()):
        say(f"endpoint {name} is not configured here: set {what}")


def _check_offers(catalog: ModelCatalog, routing, settings: Settings) -> dict[str, str]:
    """Ask each routed endpoint once; an endpoint that fails is said, and the others still answer."""
    from .availability import offered_now
    from .providers import build_provider, connect
    from .simulator import simulated_models

    offered: dict[str, str] = {}
    for name, route in sorted(routing.routes.items()):
        profiles = catalog.profiles_at(name)
        if not profiles:
            continue
        if not route.simulated and route.endpoint.key_secret and not route.endpoint.key(settings.environment):
            offered.update({p.name: f"not checked: the key is in Prefect Secret block {route.endpoint.key_secret}" for p in profiles})
            continue
        try:
            connection = connect(
                route, settings.environment, simulated_models=simulated_models(catalog),
                simulator_latency=settings.simulator_latency, simulator_cache_dir=settings.state_dir / "simulator-renders",
            )
            offered.update(offered_now(profiles, build_provider(connection, settings)))
        except SoraflowError as err:
            offered.update({p.name: f"error: {err}" for p in profiles})
    return offered


@app.command()
def spend(
    days: int = typer.Option(30, "--days", min=1, max=3660, help="Show spend of the last DAYS days (UTC)"),
    by: str = typer.Option("day,storyboard,model,endpoint", "--by", help="Group by any of: day, storyboard, model, endpoint"),
) -> None:
    """What was spent (paid), is reserved (in flight or in doubt) and was released, from the ledger; and the caps."""
    from datetime import datetime, timedelta, timezone

    from .ledger import Spend, cap_rows, summarize

    columns = {"day": "day", "storyboard": "storyboard", "model": "profile", "endpoint": "endpoint"}
    wanted = [c.strip() for c in by.split(",") if c.strip()]
    if not wanted or (unknown := [c for c in wanted if c not in columns]):
        raise typer.BadParameter(f"{printable(repr((unknown or [by])[0]))} is not allowed: give any of day, storyboard, model, endpoint", param_hint="--by")
    settings = Settings()
    spend_rows = Spend(Ledger.from_settings(settings))
    since = (datetime.now(timezone.utc) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    rows = summarize(spend_rows.rows(since_day=since), by=tuple(columns[c] for c in wanted))
    table = Table(title=Text(f"Spend since {since} (UTC)"), title_justify="left")
    for col in [*wanted, "clips", "paid USD", "reserved USD", "released USD"]:
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = [row[columns[c]] for c in wanted] + [row["clips"], row["paid_usd"], row["reserved_usd"], row["released_usd"]]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    caps = settings.spend_caps
    if not caps:
        say("no spend caps set here (SORAFLOW_SPEND_CAP_DAY_USD, SORAFLOW_SPEND_CAP_MONTH_USD, SORAFLOW_SPEND_CAPS_BY_ENDPOINT; "
            "deployments also read the Prefect Variable soraflow-spend-caps)", to=out)
        return
    cap_table = Table(title=Text("Caps (settings here)"), title_justify="left")
    for col in ["endpoint", "period", "cap USD", "reserved or paid", "left"]:
        cap_table.add_column(col)
    for row in cap_rows(caps, spend_rows.totals()):
        cap_table.add_row(row["endpoint"], row["period"], row["cap_usd"], row["counted_usd"], row["left_usd"])
    out.print(cap_table)


@app.command()
def limits() -> None:
    """The caps on clips in flight and creates per minute, as the ledger holds them, and who holds their slots."""
    from .ledger import Slots
    from .limits import settings_limit

    settings = Settings()
    ledger = Ledger(settings.resolved_ledger_url)
    slots = Slots(ledger, lease_seconds=settings.slot_lease_seconds)
    states = {s.name: s for s in slots.state()}
    wanted = settings_limit(settings)
    table = Table(title=Text(f"Limits (ledger at {printable(ledger.where)})"), title_justify="left")
    for col in ["limit", "in flight", "creates per minute", "from", "held by"]:
        table.add_column(col, overflow="fold")
    for name, state in sorted(states.items(), key=lambda kv: (kv[0] != wanted.name, kv[0])):
        held = "; ".join(f"{h.holder} ({h.pid})" for h in state.held) or "-"
        cells = [name, f"{len(state.held)} of {state.capacity}", str(state.per_minute or "-"), state.source, held]
        table.add_row(*(Text(printable(cell)) for cell in cells))
    out.print(table)
    if wanted.name not in states:
        say(f"limit {wanted.name!r} is not in the ledger yet; the next render creates it with {wanted.capacity} in flight "
            f"and {wanted.per_minute} creates per minute")
    elif (states[wanted.name].capacity, states[wanted.name].per_minute) != (wanted.capacity, wanted.per_minute):
        say(f"the settings here size {wanted.name!r} to {wanted.capacity} in flight and {wanted.per_minute} creates per "
            "minute: the next render applies that")


@app.command()
def bootstrap() -> None:
    """Create the work pool and watch Variable on the Prefect server and size the ledger's limit 'all' (safe to rerun)."""
    from soraflow.deployments.bootstrap import bootstrap as create_prefect_objects

    done = create_prefect_objects(Settings())
    limits = ", ".join(f"{name}={size}" for name, size in done["limits"].items())
    say("work pool ", (done["work_pool"], "bold"), f", limits {limits}, variables {', '.join(done['variables'])}: ready", to=out)
    for change in done["changes"]:
        say(change)


jobs_app = typer.Typer(
    cls=_Commands, add_completion=False,
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
    from .providers import build_provider, connect

    catalog = planning.model_catalog(settings)
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
    if route.endpoint.key_secret and not route.endpoint.key(settings.environment):
        raise recovery.SettleError(f"endpoint {route.name} takes its key from Prefect Secret block {route.endpoint.key_secret}: "
                                   f"set {route.endpoint.what_to_set()} to run this command")
    return build_provider(connect(route, settings.environment), settings)


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


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
