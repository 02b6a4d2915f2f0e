"""Commands that plan and make a film: ``estimate``, ``render`` and ``link``."""

from __future__ import annotations

import sys
import threading
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import archive, assembly, choices, preflight, provenance
from ..errors import SoraflowError
from ..ledger import Ledger, WatchedPrices
from ..limits import wall_time
from ..models import route_endpoints
from ..plan import Plan, estimate_rows, load_plan, model_catalog
from ..redaction import unredacted
from ..settings import Settings
from ..terminal import printable
from ..watch.pricing import with_watched_prices
from ._app import SIMULATE_HELP, app, settings_from_env, sigterm_unwinds
from ._output import console, out, report, say
from ._prefect import prefect_api, prefect_defaults, quiet_prefect_console


def _plan(storyboard: Path, settings: Settings, ledger: Ledger | None = None) -> Plan:
    """The storyboard's plan; with ``ledger``, the reviews' choices and retakes are planned too."""
    record = choices.record_reader(ledger) if ledger is not None else None
    return load_plan(str(storyboard), None, settings=settings, catalog=model_catalog(settings), record=record)


def _estimate_table(plan: Plan, settings: Settings, clips=None) -> Table:
    """Every clip's cost, the total, and (below) how long the render is expected to take:
    ``clips`` are those the run makes (default: all), scheduled under the limits."""
    table = Table(title=Text(f"{printable(plan.title)} — estimate"), title_justify="left")
    takes = plan.has_takes  # a take column only where a shot has several (every take is paid)
    columns = (("shot", "left"), ("part", "right"), *((("take", "right"),) if takes else ()), ("model", "left"), ("endpoint", "left"),
               ("size", "left"), ("seconds", "right"), ("USD", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    for row in estimate_rows(plan):
        cells = (row["shot"], row["part"], *((row["take"],) if takes else ()), row["model"], row["endpoint"], row["size"],
                 str(row["seconds"]), f"${row['usd']}")
        table.add_row(*(Text(printable(cell)) for cell in cells))
    table.add_section()
    table.add_row("total", "", *(("",) if takes else ()), "", "", "", str(plan.total_seconds), Text(f"${plan.total_usd:.2f}", style="bold"))
    table.caption = wall_time(plan, model_catalog(settings), settings, clips).describe()
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
    settings = settings_from_env(simulate)
    if prices is PriceChoice.profile:
        plan = _plan(storyboard, settings)
        out.print(_estimate_table(plan, settings))
        out.print("prices: the model profiles' (" + " + ".join(model_catalog(settings).sources) + ")")
    else:
        plan, used = _plan_at_watched_prices(storyboard, settings)
        out.print(_estimate_table(plan, settings))
        sizes = sorted({(c.profile, c.size) for c in plan.clips})
        watched = [used[s] for s in sizes if used[s].watched is not None]
        out.print(f"prices: watched by the model watch for {len(watched)} of {len(sizes)} model and size(s) used")
        for size in sizes:
            out.print(Text("  " + printable(used[size].describe())), soft_wrap=True)  # a URL stays whole
        if not watched:
            say(("warning: ", "bold yellow"), "the model watch has priced none of these (run `soraflow watch` against this ledger); the profiles' prices were used")
    _warn_fitting(plan)
    for problem in preflight.prompt_problems(plan, model_catalog(settings)):
        say(("warning: ", "bold yellow"), f"{problem} (render refuses it before paying)")


def _plan_at_watched_prices(storyboard: Path, settings: Settings) -> tuple[Plan, dict]:
    """The plan priced as the model watch last saw each size (the ledger's watched prices)."""
    catalog = model_catalog(settings)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    ledger = Ledger.from_settings(settings)
    try:
        watched = WatchedPrices(ledger).read()
    finally:
        ledger.close()
    catalog, used = with_watched_prices(catalog, routing, watched)
    return load_plan(str(storyboard), None, settings=settings, catalog=catalog), used


# A film of more clips than this shows one line for the whole film and a bar per clip in flight
# (and per failed clip), not a bar per clip: 150 bars do not fit a terminal.
SHOWN_CLIPS = 12


def _clip_state(e) -> str:
    """What a clip is doing, from its ledger entry (None: it waits for its turn under the limits)."""
    if e is None:
        return "queued"
    if e.storage_uri:
        return "stored"
    if e.local_path:
        return "downloaded"
    if e.state == "completed":
        return "downloading"
    if e.state == "claimed":
        return "starting"
    if e.job_status == "queued":  # the endpoint's own queue, not the limits'
        return "accepted"
    return e.job_status or e.state


def _watch_progress(plan: Plan, ledger: Ledger, stop: threading.Event) -> None:
    """Show the render's progress from the ledger, which every stage updates: one progress view,
    in which clips waiting for their turn under the limits are counted on one line, "queued"."""
    keys = [c.clip_key for c in plan.clips]
    labels = {c.clip_key: f"{c.label:<18}" for c in plan.clips}
    few = len(keys) <= SHOWN_CLIPS
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        film = None if few else progress.add_task(f"{'all clips':<18}", total=len(keys), state="")
        bars = {key: progress.add_task(labels[key], total=100, state="queued") for key in keys} if few else {}
        while True:
            entries = ledger.entries(keys)
            counts: dict[str, int] = {}
            for key in keys:
                e = entries.get(key)
                state = _clip_state(e)
                counts[state] = counts.get(state, 0) + 1
                done = 100 if e is not None and e.state == "completed" else (e.progress if e is not None else 0)
                if not few and state not in ("queued", "stored") and key not in bars:
                    bars[key] = progress.add_task(labels[key], total=100, state=state)
                if key in bars:
                    if not few and state == "stored":
                        progress.remove_task(bars.pop(key))
                    else:
                        progress.update(bars[key], completed=done, state=state)
            if film is not None:
                order = ("stored", "downloaded", "downloading", "in_progress", "accepted", "creating", "starting", "queued")
                said = [f"{counts[s]} {s}" for s in order if counts.get(s)] + [f"{n} {s}" for s, n in sorted(counts.items()) if s not in order]
                progress.update(film, completed=counts.get("stored", 0), state=" · ".join(said))
            if stop.wait(0.5):
                break


@app.command()
def render(
    storyboard: Path = typer.Argument(..., help="Storyboard YAML or JSON"),
    out_dir: Path = typer.Option(Path("out"), "--out", help="Output directory"),
    storage: Optional[str] = typer.Option(None, "--storage", help="file:///path or s3://bucket/prefix (env SORAFLOW_STORAGE)"),
    budget: Optional[float] = typer.Option(None, "--budget", help="Refuse to start if what this run can pay (clips to create, plus lost ones made again) exceeds this many USD"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cost and stop; nothing is created"),
    review: bool = typer.Option(
        False, "--review", help="Stop for a review of the takes before stitching (as the storyboard's review: true): "
        "choose takes or ask for retakes with `soraflow review OUT` or in the Prefect UI",
    ),
    simulate: bool = typer.Option(False, "--simulate", help=SIMULATE_HELP),
) -> None:
    """Render STORYBOARD into OUT/film.mp4, OUT/manifest.json and OUT/contact_sheet.png."""
    settings = settings_from_env(simulate)
    ledger = Ledger.from_settings(settings)  # before anything starts: a wrong URL is one line
    # The preflight's free checks, before Prefect starts: every problem at once; the flow runs
    # them again with those that send a request (the storage's probe object, the model list).
    checks = preflight.Checks(settings, model_catalog(settings), ledger, open_storage=_storage_here(settings), live=False)
    cleared = preflight.preflight(
        lambda: _plan(storyboard, settings, ledger), out_dir=out_dir, storage=storage, budget_usd=budget, checks=checks
    )
    plan, can_pay = cleared.plan, cleared.payable
    out.print(_estimate_table(plan, settings, cleared.to_create))
    _warn_fitting(plan)
    say(("this run: ", "bold"), can_pay.describe(), to=out)
    if dry_run:
        for clip in plan.clips:  # each clip's final prompt, as it would be sent
            out.print(Text(f"\n— {clip.label} ({clip.clip_key[:16]})", style="bold"))
            out.print(Text(printable(clip.prompt.rstrip("\n"), len(clip.prompt) + 1, keep_newlines=True)))
        console.print("dry run: nothing was created")
        return

    with sigterm_unwinds():
        _render(storyboard, plan, out_dir, storage, budget, settings, ledger, review)


def _storage_here(settings: Settings):
    """The store of a URL as this process can open it: not S3 through a Prefect credentials block
    (only a flow run loads it; the flow's preflight checks that store)."""
    def open_here(url: str):
        return None if settings.aws_credentials_block and str(url).startswith("s3://") else archive.open_for(url, settings)
    return open_here


def _render(
    storyboard: Path, plan: Plan, out_dir: Path, storage: str | None, budget: float | None, settings: Settings, ledger: Ledger,
    review: bool = False,
) -> None:
    reviewing = choices.review_needed(plan, ledger, asked=review)
    if not reviewing and (manifest := _up_to_date(plan, out_dir, storage, settings)) is not None:
        say(("up to date: ", "bold green"), "the film was made from exactly these clips and settings, and every "
            "clip is still stored; nothing to do (no request sent, no Prefect server started)")
        film = manifest["film"]
        say(("film: ", "bold green"), f"{Path(out_dir).resolve() / film['path']}  ({film['duration_seconds']:.2f} s, "
            f"billed this run $0.00, estimate ${manifest['totals']['estimated_usd']})", to=out)
        say(("manifest: ", "bold"), str(Path(out_dir).resolve() / assembly.MANIFEST_NAME), to=out)
        say(("contact sheet: ", "bold"), str(Path(out_dir).resolve() / assembly.CONTACT_SHEET_NAME), to=out)
        _say_signed(film.get("c2pa_manifest"), film.get("signed_by"))
        return
    _say_if_simulated(plan, settings)
    if reviewing:
        say(("review: ", "bold"), "once every take is stored, this render stops for your decision: open the review page "
            f"with `soraflow review {printable(str(out_dir))}` (or resume the run in the Prefect UI); it waits up to "
            f"{settings.review_pause_seconds // 3600} h (SORAFLOW_REVIEW_PAUSE_SECONDS)")
    state = _run_flow(storyboard, out_dir, storage, budget, plan, settings, ledger, review)
    if not state.is_completed():
        from soraflow.flows.render import ShotsFailed

        error = state.result(raise_on_failure=False)
        if isinstance(error, ShotsFailed):
            report(error, head="render failed: ")
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
    _say_signed(result.c2pa_manifest, result.signed_by)


def _say_signed(label: str | None, signer: str | None) -> None:
    if label:
        say(("signed: ", "bold green"), f"C2PA manifest {label}, by {signer or 'an unknown signer'} (check it: soraflow verify FILM)", to=out)
    else:
        say(("unsigned: ", "bold yellow"), "film.mp4 carries no Content Credentials: no C2PA signer is configured "
            "(soraflow provenance dev-cert DIR makes a development one)")


def _up_to_date(plan: Plan, out_dir: Path, storage: str | None, settings: Settings) -> dict | None:
    """The manifest, when the outputs in OUT are already what this render would make: then
    nothing needs Prefect, the provider or ffmpeg (an unchanged rerun answers in a second or
    two instead of starting a temporary Prefect server)."""
    out_path, storage_url = archive.resolve_paths(out_dir, storage, settings)
    try:
        store = archive.open_for(storage_url, settings)
    except SoraflowError:  # e.g. S3 credentials from a Prefect block: only a flow run can open it
        return None
    return assembly.up_to_date(
        plan, out_path, store, transition_seconds=settings.transition_seconds, burn_subtitles=settings.burn_subtitles,
        signer_identity=provenance.signer_identity(settings),
    )


def _run_flow(
    storyboard: Path, out_dir: Path, storage: str | None, budget: float | None, plan: Plan, settings: Settings, ledger: Ledger,
    review: bool = False,
):
    prefect_defaults()
    from soraflow.flows.render import RenderRequest, render_storyboard  # Prefect starts here

    quiet_prefect_console()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_progress, args=(plan, ledger, stop), daemon=True)
    watcher.start()
    try:
        with prefect_api(settings):
            return render_storyboard(
                RenderRequest(storyboard_path=str(storyboard), out_dir=str(out_dir), storage=storage or "", budget_usd=budget, review=review),
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
    from ..storage import presign_uri

    settings = Settings()
    session = None
    if settings.aws_credentials_block:
        from soraflow.tasks.runtime import aws_session  # Prefect loads the block

        session = aws_session()
    # The links carry the AWS access key id (and session token) on purpose: they are printed on
    # the stream under the redaction, and nowhere else (docs/secrets.md).
    links = Console(file=unredacted(sys.stdout), soft_wrap=True)
    for label, uri in _linked_objects(target):
        links.print(Text.assemble((f"{printable(label)}: ", "bold"), presign_uri(uri, settings, session, expires)), highlight=False)


def _linked_objects(target: str) -> list[tuple[str, str]]:
    """(label, URI) of every output and clip a render's manifest names, or of one URI."""
    from ..documents import DocumentError, parse_document, read_bounded

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
