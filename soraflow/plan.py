"""The plan: one ClipSpec per generated clip, with its clip key and price, from a storyboard.

The clip key (docs/architecture.md, rule 2) hashes everything that changes the paid output and nothing
else: endpoint identity, model, size, seconds, final prompt text, reference image bytes and
remix source. It keys the ledger, the Prefect cache and the storage path. It never contains
a secret: the endpoint identity is a URL without credentials or query string.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict

from .errors import Problem, StoryboardError
from .models import ModelCatalog, Route, Routing, load_catalog, route_endpoints
from .prompts import build_prompt, dialogue_for_part
from .settings import Settings
from .storyboard import Provenance, Storyboard, load_storyboard, parse_storyboard


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clip_key(
    *,
    endpoint: str,
    model: str,
    size: str,
    seconds: int,
    prompt: str,
    reference_sha256: str | None = None,
    remix_of: str | None = None,
    audio: bool = True,
    follows: "ClipLink | None" = None,
    reference_images_sha256: tuple[str, ...] = (),
    take: int = 1,
    seed: int | None = None,
) -> str:
    fields = {
        "v": 1,
        "endpoint": endpoint,
        "model": model,
        "size": size,
        "seconds": seconds,
        "prompt": prompt,
        "reference_sha256": reference_sha256,
        "remix_of": remix_of,
    }
    if not audio:
        # A silent clip is another paid output. Sound on (what every clip had before models
        # could leave it out) adds nothing, so the keys of earlier runs stay valid.
        fields["audio"] = False
    if follows is not None:
        # A chained part, an extension or a remix is made from its source's clip: the source's key
        # (and, for a last frame, the frame's bytes, which follow from that clip) are in its own.
        fields["follows"] = {"kind": follows.kind, "clip_key": follows.clip_key}
    if reference_images_sha256:
        fields["reference_images_sha256"] = list(reference_images_sha256)
    if take != 1:
        # Another take is another paid output, even where the request is the same (a model
        # without a seed makes a new video each time). Take 1 adds nothing: the keys of films
        # made before takes existed stay valid.
        fields["take"] = take
    if seed is not None:
        fields["seed"] = seed
    material = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


class DialogueCue(BaseModel):
    model_config = ConfigDict(frozen=True)
    speaker: str
    line: str


class ClipLink(BaseModel):
    """What a clip is made from besides its prompt: another clip of the plan.

    ``last_frame``: it starts from that clip's last frame; ``extend``: it is that clip's video
    extended (its video plays the source, then the new seconds); ``remix``: a new take of it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["last_frame", "extend", "remix"]
    clip_key: str
    label: str


class ClipSpec(BaseModel):
    """One clip to generate. Plain data: safe as a Prefect task parameter and in results."""

    model_config = ConfigDict(frozen=True)

    shot_id: str
    shot_index: int
    part: int
    parts: int
    profile: str  # the model profile the storyboard names
    model: str  # what the endpoint calls that model (sent with the create)
    route: Route  # the endpoint, its identity in the clip key, and whether it is simulated
    size: str
    seconds: int
    prompt: str
    audio: bool = True  # whether the clip has sound (a profile with sound on request: the shot asked)
    reference_path: str | None = None
    reference_sha256: str | None = None
    transition: str = "cut"  # into this clip; parts after the first always join by cut
    dialogue: tuple[DialogueCue, ...] = ()
    reference_images: tuple[str, ...] = ()  # the cast's images, where the model takes reference images
    reference_images_sha256: tuple[str, ...] = ()
    follows: ClipLink | None = None  # made from this clip of the plan (made and downloaded first)
    video_seconds: int | None = None  # the video's length when more than the generated seconds (an extension)
    in_film: bool = True  # False: a later extension plays this clip, so the film takes that one
    take: int = 1  # which take of the shot (each take is its own clip, or chain of clips)
    seed: int | None = None  # sent where the model takes one (its profile's inputs.seed)
    retake: bool = False  # asked for by a review (its prompt changed and/or another seed)
    clip_key: str
    price_usd: Decimal
    expected_render_seconds: float  # from the profile: paces polling before the provider says more
    retires: date | None = None  # the profile's retirement date: availability where /models is not served

    @property
    def endpoint(self) -> str:
        return self.route.name

    @property
    def label(self) -> str:
        name = f"{self.shot_id} {self.part}/{self.parts}" if self.parts > 1 else self.shot_id
        return f"{name} take {self.take}" if self.take != 1 else name

    @property
    def prompt_sha256(self) -> str:
        return sha256_text(self.prompt)

    @property
    def job_seconds(self) -> int:
        """The length of the job's video: the generated seconds, plus the source's for an extension."""
        return self.video_seconds or self.seconds


class RecordedRetake(BaseModel):
    """A retake a review asked for, as the ledger keeps it: its take number is fixed when it is
    asked for. ``refused``: why it was not made (over a spend cap or the budget, or it failed):
    such a retake is shown, never planned again."""

    model_config = ConfigDict(frozen=True)

    shot_id: str
    take: int
    prompt_change: str = ""
    seed: int | None = None
    refused: str | None = None


class ReviewRecord(BaseModel):
    """What the reviews of one storyboard decided, from the ledger, handed to planning (the plan
    never reads the ledger itself): each shot's chosen take, and the retakes asked for."""

    model_config = ConfigDict(frozen=True)

    choices: dict[str, int] = {}
    retakes: tuple[RecordedRetake, ...] = ()


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    clips: tuple[ClipSpec, ...]
    size: str = "1280x720"  # the film's size: the storyboard's own, whatever size a shot's clips have
    # Each shot's chosen take: the storyboard's ``choose``, else the review's, else 1.
    chosen: dict[str, int] = {}
    fixed: dict[str, int] = {}  # the shots whose storyboard says ``choose`` (a review cannot change them)
    review: bool = False  # the storyboard asks for a review before the film is stitched
    # Retakes a review asked for that were not made (refused or failed), planned to be shown only.
    refused: tuple[ClipSpec, ...] = ()
    provenance: Provenance = Provenance()  # the storyboard's wishes for the film's C2PA manifest

    @property
    def film_width_height(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)

    def fitting_notes(self) -> list[str]:
        """One line per shot whose clips are not the film's size: they are fitted into it (scaled,
        with black bars where the aspect differs, never cropped). Said before anything is paid,
        because a clip scaled down is resolution paid for and not shown. Counted over the chosen
        takes (the clips the film is made from; a shot's takes all have its size)."""
        film_w, film_h = self.film_width_height
        notes, seen = [], set()
        for c in self.chosen_clips:
            if c.size == self.size or (c.shot_id, c.size) in seen:
                continue
            seen.add((c.shot_id, c.size))
            w, h = (int(v) for v in c.size.split("x"))
            scale = min(film_w / w, film_h / h)
            how = []
            if scale < 1:
                how.append(f"scaled down to {round(w * scale)}x{round(h * scale)}, so {1 - scale * scale:.0%} of its pixels are not shown")
            elif scale > 1:
                how.append(f"scaled up {scale:.2f}x")
            if w * film_h != h * film_w:
                how.append("with black bars (another aspect ratio)")
            parts = sum(1 for x in self.chosen_clips if x.shot_id == c.shot_id and x.size == c.size)
            what = f"its {parts} {c.size} clips" if parts > 1 else f"its {c.size} clip"
            notes.append(f"shot {c.shot_id!r}: {what} ({c.profile}) will be fitted into the {self.size} film, {' and '.join(how)}")
        return notes

    @property
    def total_usd(self) -> Decimal:
        return sum((c.price_usd for c in self.clips), Decimal("0"))

    @property
    def total_seconds(self) -> int:
        return sum(c.seconds for c in self.clips)

    @property
    def models(self) -> list[str]:
        return sorted({c.model for c in self.clips})

    @property
    def routes(self) -> dict[str, Route]:
        """Every endpoint the plan uses, by name."""
        return {c.route.name: c.route for c in self.clips}

    @property
    def simulated(self) -> bool:
        return any(c.route.simulated for c in self.clips)

    def is_chosen(self, clip: ClipSpec) -> bool:
        return clip.take == self.chosen.get(clip.shot_id, 1)

    @property
    def chosen_clips(self) -> tuple[ClipSpec, ...]:
        """Every clip of each shot's chosen take, in storyboard order (what the film is made from)."""
        return tuple(c for c in self.clips if self.is_chosen(c))

    @property
    def film_clips(self) -> tuple[ClipSpec, ...]:
        """The clips the film plays, in order: each shot's chosen take (an extended clip is played
        by its extension)."""
        return tuple(c for c in self.chosen_clips if c.in_film)

    def takes_of(self, shot_id: str) -> list[int]:
        """The shot's takes that are planned (storyboard takes and retakes), in order."""
        return sorted({c.take for c in self.clips if c.shot_id == shot_id})

    @property
    def shot_ids(self) -> list[str]:
        return list(dict.fromkeys(c.shot_id for c in self.clips))

    @property
    def has_takes(self) -> bool:
        return any(c.take != 1 for c in self.clips)

    @property
    def longest_chain_seconds(self) -> float:
        """Render time of the longest chain (a clip made from another waits for it), as if every
        clip could run at once: the floor of any wall time (soraflow.limits.wall_time counts the
        limits)."""
        done: dict[str, float] = {}
        for c in self.clips:  # sources come before the clips made from them
            done[c.clip_key] = c.expected_render_seconds + (done[c.follows.clip_key] if c.follows else 0.0)
        return max(done.values(), default=0.0)


def _link(continuity: str, previous: ClipSpec) -> ClipLink | None:
    """How a part follows the part before it: by its last frame, as its extension, or (anchors)
    by text only, made in parallel."""
    if continuity == "anchors":
        return None
    return ClipLink(kind=continuity, clip_key=previous.clip_key, label=previous.label)


def _take_numbers(count: int, held: set[int]) -> list[int]:
    """The storyboard's ``count`` takes: 1, 2, ... skipping the numbers retakes hold (a retake
    keeps its number when the storyboard asks for more takes later)."""
    numbers, n = [], 0
    while len(numbers) < count:
        n += 1
        if n not in held:
            numbers.append(n)
    return numbers


def plan_storyboard(
    sb: Storyboard, *, catalog: ModelCatalog, routing: Routing, allow_beyond_spec: bool = False, record: ReviewRecord | None = None,
    simulator_latency: float | None = None,
) -> Plan:
    """Split shots into clips of the profile's lengths, route and price them. No I/O but hashing refs.

    Every take of a shot is planned as its own clip (or chain of clips): the storyboard's takes,
    then the retakes ``record`` holds (reviews' decisions, from the ledger), each with its take
    number in its clip key; a take after the first carries a seed where the model takes one.

    A clip's expected render time is its profile's pace, or on the simulator its latency
    (``simulator_latency``, every job's time from create to completed there): it paces the first
    polls and the wall-time estimate (soraflow.limits).

    Refuses a plan that needs an endpoint without credentials (every such endpoint named at once).
    A prompt longer than its profile takes is the preflight's to refuse (soraflow.preflight),
    beside every other problem known before paying.
    """
    record = record or ReviewRecord()
    unrouted: dict[str, list[str]] = {}
    for shot in sb.shots:
        endpoint = catalog.profile(sb.model_of(shot)).endpoint
        if endpoint not in routing.routes:
            unrouted.setdefault(endpoint, []).append(f"shot {shot.id!r}")
    if unrouted:
        raise routing.refusal(unrouted)

    clips: list[ClipSpec] = []
    refused: list[ClipSpec] = []
    chosen: dict[str, int] = {}
    for index, shot in enumerate(sb.shots):
        profile = catalog.profile(sb.model_of(shot))
        retakes = [r for r in record.retakes if r.shot_id == shot.id]
        takes = [(n, None) for n in _take_numbers(sb.takes_of(shot), {r.take for r in retakes})]
        takes += [(r.take, r) for r in sorted(retakes, key=lambda r: r.take)]
        for take, retake in takes:
            seed = (retake.seed if retake and retake.seed is not None else (take if take != 1 else None)) if profile.takes_seed else None
            made = _take_clips(sb, shot, index, take, seed, retake, profile, routing, clips, allow_beyond_spec, simulator_latency)
            (refused if retake is not None and retake.refused else clips).extend(made)
        planned = {n for n, r in takes if not (r and r.refused)}
        wanted = shot.choose or record.choices.get(shot.id) or 1
        chosen[shot.id] = wanted if wanted in planned else min(planned)
    fixed = {shot.id: shot.choose for shot in sb.shots if shot.choose}
    return Plan(title=sb.title, clips=tuple(clips), size=sb.size, chosen=chosen, fixed=fixed, review=sb.review, refused=tuple(refused),
                provenance=sb.provenance)


def _take_clips(
    sb: Storyboard, shot, index: int, take: int, seed: int | None, retake: RecordedRetake | None, profile, routing: Routing,
    earlier: list[ClipSpec], allow_beyond_spec: bool, simulator_latency: float | None = None,
) -> list[ClipSpec]:
    """The clips of one take of a shot: its parts, chained as the shot's continuity says."""
    route = routing.route(profile.endpoint)
    size = sb.size_of(shot)
    parts_seconds = profile.shot_parts(shot.seconds, size, extend=shot.continuity == "extend", allow_beyond_spec=allow_beyond_spec)
    assert parts_seconds is not None, "storyboard validation guarantees a split"
    if retake is not None and retake.prompt_change:
        # A retake's prompt change is added to the shot's visual description (the review's words).
        shot = shot.model_copy(update={"visual": f"{shot.visual.rstrip()} {retake.prompt_change.strip()}"})
    ref = sb.reference_path(shot)
    ref_sha = sha256_file(ref) if ref is not None else None
    cast_images = [str(p) for p in sb.cast_references(shot)]
    cast_shas = tuple(sha256_file(Path(p)) for p in cast_images)
    n = len(parts_seconds)
    clips: list[ClipSpec] = []
    previous: ClipSpec | None = None
    played = 0  # seconds of the shot so far: an extension's video holds all of them
    for part, seconds in enumerate(parts_seconds, start=1):
        played += seconds
        prompt = build_prompt(sb, shot, part=part, parts=n, part_seconds=seconds)
        follows = _link(shot.continuity, previous) if previous is not None else None
        if shot.remix_of is not None:
            # validation: an earlier one-clip shot; the remix is made from its chosen take in the
            # storyboard (``choose``), else its take 1
            source_take = sb.shot(shot.remix_of).choose or 1
            source = next(c for c in earlier if c.shot_id == shot.remix_of and c.take == source_take)
            follows = ClipLink(kind="remix", clip_key=source.clip_key, label=source.label)
        extends = follows is not None and follows.kind == "extend"
        # The reference image anchors the first part; a chained part starts from its source instead.
        part_ref = ref if part == 1 and shot.remix_of is None else None
        part_ref_sha = ref_sha if part_ref else None
        # The cast's images go where the model takes reference images (not beside a first frame);
        # elsewhere the cast is in the prompt only.
        takes = profile.inputs.takes_reference_images(seconds) if follows is None and part_ref is None else 0
        images, image_shas = tuple(cast_images[:takes]), cast_shas[:takes]
        spoken = dialogue_for_part(shot, part, n)
        audio = profile.makes_audio(asked=bool(shot.audio or spoken))
        last = part == n
        shown = list(shot.dialogue) if extends and last else spoken  # the last extension plays the whole shot
        clip = ClipSpec(
            shot_id=shot.id,
            shot_index=index,
            part=part,
            parts=n,
            profile=profile.name,
            model=profile.model,
            route=route,
            size=size,
            seconds=seconds,
            prompt=prompt,
            audio=audio,
            reference_path=str(part_ref) if part_ref else None,
            reference_sha256=part_ref_sha,
            reference_images=images,
            reference_images_sha256=image_shas,
            follows=follows,
            video_seconds=played if extends else None,
            in_film=last or shot.continuity != "extend",
            transition=sb.transition_of(shot) if part == 1 or (extends and last) else "cut",
            dialogue=tuple(DialogueCue(speaker=d.speaker, line=d.line) for d in shown),
            take=take,
            seed=seed,
            retake=retake is not None,
            clip_key=clip_key(
                endpoint=route.identity,
                model=profile.model,
                size=size,
                seconds=seconds,
                prompt=prompt,
                reference_sha256=part_ref_sha,
                audio=audio,
                follows=follows,
                reference_images_sha256=image_shas,
                take=take,
                seed=seed,
            ),
            price_usd=profile.price(size, seconds, audio=audio),
            expected_render_seconds=(
                simulator_latency if route.simulated and simulator_latency is not None else profile.expected_render_seconds(seconds)
            ),
            retires=profile.retires,
        )
        clips.append(clip)
        previous = clip
    return clips


def model_catalog(settings: Settings) -> ModelCatalog:
    """The built-in profiles with the user's file (``SORAFLOW_MODELS``) laid over them."""
    return load_catalog(settings.models)


def load_plan(
    storyboard_path: str | None,
    storyboard_inline: dict | None,
    *,
    settings: Settings,
    catalog: ModelCatalog | None = None,
    record: Callable[[str], ReviewRecord] | None = None,
) -> Plan:
    """Validate the storyboard against the profiles, route every endpoint, and price the plan.

    ``record``: what the reviews of a storyboard (by its title) decided, from the ledger: its
    choices and retakes are planned too."""
    if (storyboard_path is None) == (storyboard_inline is None):
        raise StoryboardError([Problem("", "give exactly one of a storyboard path or an inline storyboard")])
    catalog = catalog or model_catalog(settings)
    beyond = settings.allow_beyond_spec
    source = storyboard_path or "(inline)"
    if storyboard_path is not None:
        sb = load_storyboard(storyboard_path, allow_beyond_spec=beyond, catalog=catalog)
    else:
        sb = parse_storyboard(storyboard_inline, source=source, allow_beyond_spec=beyond, catalog=catalog)
    routing = route_endpoints(catalog, settings.environment, simulate=settings.simulate)
    try:
        return plan_storyboard(
            sb, catalog=catalog, routing=routing, allow_beyond_spec=beyond, record=record(sb.title) if record else None,
            simulator_latency=settings.simulator_latency,
        )
    except StoryboardError as err:
        raise StoryboardError(err.problems, source) from None


def estimate_rows(plan: Plan) -> list[dict]:
    """One row per clip to pay for: every take of every shot (takes are paid, chosen or not)."""
    return [
        {
            "shot": c.shot_id,
            "part": f"{c.part}/{c.parts}",
            "take": f"{c.take} (retake)" if c.retake else str(c.take),
            "model": c.profile,
            "endpoint": c.endpoint,
            "size": c.size,
            "seconds": c.seconds,
            "usd": f"{c.price_usd:.2f}",
            "clip_key": c.clip_key[:16],
        }
        for c in plan.clips
    ]
