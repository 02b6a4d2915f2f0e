"""Preflight: every problem that can be known before the first create, found at once.

One step of the journey, after planning and before any create. It gathers every problem (the
storyboard's, the output directory's, the storage's, each prompt's length, each input image,
the endpoints' credentials, the budget, the spend caps, the models' availability) and refuses
the run with one ``PreflightError`` listing them all, each naming the field or place, the value
and what is allowed. Nothing is spent before it passes.

What it costs: the checks that are free and local always run (``render --dry-run`` runs them
too); the ones that send a request (a probe object written to S3 and removed, the endpoint's
model list) run only when this run can pay something: a rerun that creates nothing asks
neither the storage nor the provider. The core never imports Prefect: what needs it (the AWS
session of a credentials block, the caps' Variable, the provider) comes in as callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Callable

from .budget import Payable, check_budget, clips_to_create, valid_budget
from .documents import path_problem
from .errors import MediaError, Problem, SoraflowError, StorageError, StoryboardError, TransientProviderError
from .images import image_kind
from .ledger import Ledger, Spend, SpendCaps
from .models import ModelCatalog, Route
from .plan import ClipSpec, Plan
from . import provenance
from .references import decoded_image_size, prepare_reference
from .settings import Settings
from .storage import Storage, check_storage_url, probe_directory
from .terminal import printable

# The suffix a provider names an image's type by (the Veo provider sends image/png for .png).
_KIND_SUFFIXES = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "webp": (".webp",)}


class PreflightError(SoraflowError):
    """The run is refused before anything was paid: ``problems`` lists every one found.
    ``in_storyboard``: every problem is the storyboard's own or its budget's, so no rerun can
    pass until the storyboard changes (a missing bucket or a retired model can pass later)."""

    def __init__(self, problems: list[Problem], in_storyboard: bool = False):
        self.problems = list(problems)
        self.in_storyboard = in_storyboard
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"refused before anything was paid ({len(self.problems)} problem(s)); nothing was created:\n{lines}")


@dataclass(frozen=True)
class Cleared:
    """What passed: the plan, what this run can pay, and the clips it creates now."""

    plan: Plan
    payable: Payable
    to_create: tuple[ClipSpec, ...]


@dataclass(frozen=True)
class Checks:
    """What the preflight may use besides the plan. ``open_storage``: the store of a URL (the tasks
    layer passes the AWS session of a credentials block). ``spend_caps`` / ``availability`` /
    ``credentials``: None where the caller cannot check them (the CLI before a flow starts)."""

    settings: Settings
    catalog: ModelCatalog
    ledger: Ledger | None
    open_storage: Callable[[str], Storage | None]  # None: this caller cannot open it (checked in the flow)
    spend_caps: Callable[[], SpendCaps] | None = None
    # (route, {model: retirement date}) → a warning or None; raises ModelUnavailableError
    availability: Callable[[Route, dict[str, date | None]], str | None] | None = None
    # route → why its credentials cannot be had here, or None
    credentials: Callable[[Route], str | None] | None = None
    # a Prefect Secret block's value by name (the C2PA signing key may be kept in one); None: not
    # readable here (the CLI before a flow starts), so only the signer's chain is checked
    read_secret: Callable[[str], str] | None = None
    live: bool = True  # False: no request at all (render --dry-run)


def preflight(
    load_plan: Callable[[], Plan], *, out_dir: str | Path, storage: str | None, budget_usd: object, checks: Checks,
    on_warning: Callable[[str], None] = lambda _: None,
) -> Cleared:
    """Run every check; ``Cleared`` if all pass, else ``PreflightError`` with every problem."""
    problems: list[Problem] = []
    budget_valid = not _collect(problems, "budget", lambda: valid_budget(budget_usd) and None)
    plan = _collect(problems, "", load_plan)
    in_storyboard = len(problems)
    payable = to_create = None
    if plan is not None:
        problems += prompt_problems(plan, checks.catalog)
        problems += image_problems(plan, checks.settings.state_dir / "checked-images")
        problems += image_limit_problems(plan, checks.catalog, checks.settings.state_dir / "checked-images" / "as-sent")
        budget = budget_usd if budget_valid else None
        payable = _collect(problems, "budget", lambda: check_budget(plan, budget, checks.ledger))
        payable = payable if isinstance(payable, Payable) else None
        in_storyboard = len(problems)
        to_create = clips_to_create(plan, checks.ledger) if checks.ledger is not None else list(plan.clips)
    pays = payable is None or payable.usd > 0 or bool(to_create)
    problems += location_problems(out_dir, storage, checks, write=checks.live and pays)
    if plan is not None:
        problems += provenance_problems(plan, checks)
    if plan is not None and to_create:
        problems += credential_problems(to_create, checks)
        if checks.spend_caps is not None and checks.ledger is not None:
            problems += cap_problems(to_create, _collect(problems, "spend caps", checks.spend_caps), Spend(checks.ledger))
        if checks.live and checks.availability is not None:
            problems += availability_problems(to_create, checks.availability, on_warning)
    if problems:
        raise PreflightError(problems, in_storyboard=in_storyboard == len(problems))
    assert plan is not None and payable is not None
    return Cleared(plan, payable, tuple(to_create or ()))


def _collect(problems: list[Problem], where: str, check: Callable):
    """``check()``'s value, or None after its error became problems (a storyboard's, one each);
    True when the check failed and gave no value."""
    try:
        return check()
    except StoryboardError as err:
        source = f"{err.source}: " if err.source else ""
        problems += [Problem(f"{source}{p.path}" if p.path else source.rstrip(": "), p.message) for p in err.problems]
    except SoraflowError as err:
        problems.append(Problem(where, str(err)))
    return True if where == "budget" else None


def prompt_problems(plan: Plan, catalog: ModelCatalog) -> list[Problem]:
    """Each clip's final prompt (style, anchors, dialogue and all) against its profile's cap."""
    problems = []
    for c in plan.clips:
        cap = catalog.profile(c.profile).prompt_max_chars
        if len(c.prompt) > cap:
            problems.append(Problem(
                f"shots[{c.shot_index}] ({printable(c.shot_id, 60)})",
                f"the prompt of part {c.part} comes to {len(c.prompt)} characters with the storyboard's style, anchors and "
                f"dialogue; {c.profile} takes at most {cap}: shorten the shot's text (visual, lighting, dialogue...)",
            ))
    return problems


def image_problems(plan: Plan, checked_dir: Path | None = None) -> list[Problem]:
    """Every input image the clips send (first frames, the cast's reference images), decoded to its
    last byte and of the type its name says (providers name the type by the suffix). An image that
    passed is remembered by its sha256 under ``checked_dir``, so a rerun decodes nothing again."""
    problems, seen = [], set()
    for c in plan.clips:
        images = [(c.reference_path, c.reference_sha256)] if c.reference_path else []
        images += list(zip(c.reference_images, c.reference_images_sha256))
        for path, sha in images:
            if path in seen:
                continue
            seen.add(path)
            if problem := image_problem(Path(path), sha, checked_dir):
                problems.append(Problem(f"shots[{c.shot_index}] ({printable(c.shot_id, 60)})", f"input image {printable(repr(path), 200)} {problem}"))
    return problems


def image_limit_problems(plan: Plan, catalog: ModelCatalog, sent_dir: Path) -> list[Problem]:
    """Each first frame against its endpoint's size limit (a fal profile's
    ``arguments.first_frame.max_bytes``), measured as it would be sent: fitted to the clip's size
    (references.prepare_reference, whose copy is kept under ``sent_dir``)."""
    problems = []
    for c in plan.clips:
        table = catalog.profile(c.profile).arguments
        limit = table.first_frame.max_bytes if table is not None and table.first_frame is not None else None
        if limit is None or not c.reference_path:
            continue
        try:
            sent = prepare_reference(Path(c.reference_path), c.size, sent_dir)
        except MediaError:
            continue  # image_problems says why it does not decode
        size = sent.stat().st_size
        if size > limit:
            fitted = "" if sent == Path(c.reference_path) else f" once fitted to {c.size}"
            problems.append(Problem(
                f"shots[{c.shot_index}] ({printable(c.shot_id, 60)})",
                f"input image {printable(repr(c.reference_path), 200)} is {size} bytes{fitted}; {c.profile}'s endpoint takes images "
                f"of at most {limit} bytes (arguments.first_frame.max_bytes): use a smaller or more compressible image",
            ))
    return problems


def image_problem(path: Path, sha256: str | None, checked_dir: Path | None = None) -> str | None:
    marker = checked_dir / sha256 if checked_dir is not None and sha256 else None
    if marker is not None and marker.is_file():
        return None
    try:
        with open(path, "rb") as f:
            kind = image_kind(f.read(12))
    except OSError as err:
        return f"cannot be read: {err.strerror or type(err).__name__}"
    if kind is None:
        return "is not a PNG, JPEG or WebP image (its content does not start like one)"
    if not path.suffix.lower() in _KIND_SUFFIXES[kind]:
        return f"is a {kind.upper()} image named {path.suffix!r}: it would be sent as another type; name it {_KIND_SUFFIXES[kind][0]}"
    try:
        width, height = decoded_image_size(path)
    except MediaError:
        return f"does not decode: the {kind.upper()} is cut short or damaged (allowed: a whole PNG, JPEG or WebP image)"
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(f"{width}x{height}\n")
        except OSError:
            pass  # only a shortcut for the next run
    return None


def location_problems(out_dir: str | Path, storage: str | None, checks: Checks, *, write: bool) -> list[Problem]:
    """The output directory holds files (a probe file written and removed there, or where it would
    be made), and the storage takes objects (with ``write``, a probe object written and removed)."""
    problems = []
    shown = printable(repr(str(out_dir)), 200)
    out: Path | None = None
    if problem := path_problem(out_dir):
        problems.append(Problem("output directory", f"{shown}: the path {problem}"))
    else:
        out = Path(out_dir).expanduser().resolve()
        try:
            probe_directory(out, what=f"{shown}")
        except StorageError as err:
            problems.append(Problem("output directory", f"{err} (allowed: a directory this process can write in, or a path where one can be made)"))
    url = storage or checks.settings.storage or (out.as_uri() if out is not None else None)
    if url is None:
        return problems
    try:
        check_storage_url(url)
        store = checks.open_storage(url)
        if store is None or (out is not None and Path(getattr(store, "root", "")).resolve() == out):
            return problems  # the output directory itself, probed above
        store.probe(write=write)
    except StorageError as err:
        problems.append(Problem("", str(err)))
    return problems


def credential_problems(clips: list[ClipSpec] | tuple[ClipSpec, ...], checks: Checks) -> list[Problem]:
    """Every endpoint the clips call can get its credentials here (the simulator needs none)."""
    if checks.credentials is None:
        return []
    problems = []
    for name, route in {c.route.name: c.route for c in clips}.items():
        if route.simulated:
            continue
        if why := checks.credentials(route):
            problems.append(Problem(f"endpoint {name}", why))
    return problems


def provenance_problems(plan: Plan, checks: Checks) -> list[Problem]:
    """The film's C2PA signer: a configured one must be able to sign now (else the film would
    fail after every clip was paid), and ``provenance: required`` (the setting or the
    storyboard) needs one. With none configured and none required the film is made unsigned."""
    settings = checks.settings
    if provenance.signer_configured(settings):
        if why := provenance.credentials_problem(settings, checks.read_secret):
            return [Problem("provenance", f"the C2PA signer cannot sign: {why}")]
        return []
    if settings.provenance == "required" or plan.provenance.required:
        who = "SORAFLOW_PROVENANCE=required" if settings.provenance == "required" else "the storyboard's provenance: required"
        return [Problem("provenance", f"a signed film is required ({who}) but no C2PA signer is configured: {provenance.HOW_TO_CONFIGURE}")]
    return []


def cap_problems(clips, caps: SpendCaps | None, spend: Spend) -> list[Problem]:
    """The clips this run creates against what every spend cap has left now (reserved or paid).
    When they do not all fit, the run is refused: each clip named, nothing half made. The caps
    are still checked atomically at each create (another run may reserve in between)."""
    return [Problem(f"shots[{c.shot_index}] ({printable(c.shot_id, 60)})", why) for c, why in over_caps(clips, caps, spend)]


def over_caps(clips, caps: SpendCaps | None, spend: Spend, *, whose: str = "this run's") -> list[tuple[ClipSpec, str]]:
    """Each clip that does not fit a spend cap with the others (what the cap has left now), and why."""
    if not caps:
        return []
    totals = spend.totals()
    over = []
    for endpoint, period, cap in {k: None for c in clips for k in caps.applying(c.endpoint)}:
        mine = [c for c in clips if endpoint is None or c.endpoint == endpoint]
        need = sum((c.price_usd for c in mine), Decimal("0"))
        counted = totals.get((endpoint, period), Decimal("0"))
        if counted + need <= cap:
            continue
        scope = f"endpoint {endpoint}" if endpoint else "all endpoints"
        when = "today" if period == "day" else "this month"
        for c in mine:
            over.append((c, (
                f"clip {c.label} (${c.price_usd:.2f}) would exceed the {'daily' if period == 'day' else 'monthly'} spend cap of "
                f"{scope}, ${cap:.2f}: ${counted:.2f} is reserved or paid {when} and {whose} {len(mine)} clip(s) come to ${need:.2f}"
            )))
    return over


def availability_problems(clips, check: Callable[[Route, dict[str, date | None]], str | None], on_warning) -> list[Problem]:
    """Each endpoint's models, as the endpoint (or the watch, or the profile's date) says."""
    wanted: dict[str, tuple[Route, dict[str, date | None]]] = {}
    for c in clips:
        wanted.setdefault(c.route.name, (c.route, {}))[1][c.model] = c.retires
    problems = []
    for name, (route, models) in wanted.items():
        try:
            if warning := check(route, models):
                on_warning(warning)
        except TransientProviderError:
            raise  # worth a retry of the whole preflight, not a refusal
        except SoraflowError as err:
            problems.append(Problem(f"endpoint {name}", str(err)))
    return problems


__all__ = ["Checks", "Cleared", "PreflightError", "preflight"]
