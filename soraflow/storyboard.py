"""The storyboard: what the user writes (YAML or JSON), validated before anything is spent.

Every problem is reported with its field path (``shots[2].seconds``), the value found and
what is allowed, and all problems are reported at once rather than the first one only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .documents import DocumentError, check_shape, parse_document, read_bounded
from .errors import CatalogError, Problem, StoryboardError, problems_from_validation, shown_value
from .images import reference_problem
from .models import ModelCatalog, builtin_catalog, split_seconds
from .terminal import printable

Transition = Literal["cut", "crossfade", "fade"]
Movement = Literal["static", "pan_left", "pan_right", "zoom_in", "zoom_out", "track"]
Speed = Literal["slow", "medium", "fast"]
Framing = Literal["wide", "medium", "close-up", "extreme_close-up"]
# How the parts of a shot longer than one clip follow each other (docs/architecture.md, "Continuity").
Continuity = Literal["anchors", "last_frame", "extend"]
CONTINUITY_NEEDS = {"last_frame": "first_frame", "extend": "extension"}  # the profile input each one needs

_SHOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SIZE = re.compile(r"^\d{2,5}x\d{2,5}$")

# Every text field is bounded, so no storyboard can make a prompt, a message or a key huge.
ShortText = Annotated[str, Field(max_length=1000)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
MAX_SHOTS = 500
_PROVENANCE_WORDS = {"required": {"required": True}, "optional": {"required": False}}
MAX_PROBLEMS_SHOWN = 50
# Takes of one shot: each is a paid clip (or chain of clips), so a typo cannot order hundreds.
MAX_TAKES = 20
Takes = Annotated[int, Field(ge=1, le=MAX_TAKES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Camera(_Strict):
    movement: Movement = "static"
    speed: Speed = "medium"
    framing: Framing = "medium"


class DialogueLine(_Strict):
    speaker: Annotated[str, Field(min_length=1, max_length=80)]
    line: Annotated[str, Field(min_length=1, max_length=500)]


Anchor = Annotated[str, Field(min_length=1, max_length=200)]
Reference = Annotated[str, Field(min_length=1, max_length=4096)]


class Character(_Strict):
    """One member of the cast: what must look the same wherever the character appears."""

    anchors: list[Anchor] = Field(min_length=1, max_length=20)
    reference: Reference | None = None  # an image of the character


class Provenance(_Strict):
    """What the film's C2PA manifest must be (docs/provenance.md). ``required``: refuse to render
    without a usable signer; ``include_prompts``: each clip's prompt goes into the manifest
    (nothing else secret ever does). Written ``provenance: required`` for short."""

    required: bool = False
    include_prompts: bool = False


class Shot(_Strict):
    id: Annotated[str, Field(max_length=64)]
    seconds: int = Field(gt=0, le=600)
    visual: Annotated[str, Field(min_length=1, max_length=4000)]
    camera: Camera | None = None
    lighting: ShortText | None = None
    audio: ShortText | None = None
    dialogue: list[DialogueLine] = Field(default_factory=list, max_length=50)
    input_reference: Reference | None = None
    cast: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)
    continuity: Continuity = "anchors"
    remix_of: Annotated[str, Field(max_length=64)] | None = None  # a new take of that shot's clip, this shot's prompt
    model: Name | None = None
    size: Annotated[str, Field(max_length=20)] | None = None
    style: ShortText | None = None
    transition: Transition | None = None
    # Round 3: several takes of the shot (each its own paid clip), and which one the film uses
    # (otherwise the review's decision, else take 1).
    takes: Takes | None = None
    choose: Annotated[int, Field(ge=1)] | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not _SHOT_ID.match(v):
            raise ValueError(
                "must be 1-64 letters, digits, '-' or '_', starting with a letter or digit"
            )
        return v


class Storyboard(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=200)]
    model: Name = "sora-2"  # a model profile name
    size: Annotated[str, Field(max_length=20)] = "1280x720"
    style: ShortText | None = None
    # Anchors of every shot (the older form); a cast's anchors go only into the shots that cast them.
    identity_anchors: list[Anchor] = Field(default_factory=list, max_length=20)
    characters: dict[Annotated[str, Field(pattern=_SHOT_ID.pattern)], Character] = Field(default_factory=dict, max_length=20)
    palette: list[Annotated[str, Field(max_length=7)]] = Field(default_factory=list, max_length=16)
    transition: Transition = "cut"
    takes: Takes = 1  # every shot's takes, unless a shot says otherwise
    review: bool = False  # stop for a review of the takes before the film is stitched
    shots: list[Shot] = Field(min_length=1, max_length=MAX_SHOTS)
    provenance: Provenance = Field(default_factory=Provenance)

    # Where relative paths (input_reference) resolve; not part of the user's format.
    base_dir: Path = Field(default=Path("."), exclude=True, repr=False)

    @field_validator("provenance", mode="before")
    @classmethod
    def _provenance_word(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v not in _PROVENANCE_WORDS:
                raise ValueError("not a provenance word")  # worded in _explain
            return _PROVENANCE_WORDS[v]
        return v

    @field_validator("palette")
    @classmethod
    def _palette_hex(cls, v: list[str]) -> list[str]:
        for i, c in enumerate(v):
            if not _HEX_COLOR.match(c):
                raise ValueError(f"[{i}] {c!r} is not a colour like '#1a2b3c'")
        return v

    # --- effective values of a shot (shot override, else storyboard default) ---------------
    def model_of(self, shot: Shot) -> str:
        return shot.model or self.model

    def size_of(self, shot: Shot) -> str:
        return shot.size or self.size

    def style_of(self, shot: Shot) -> str | None:
        return shot.style or self.style

    def transition_of(self, shot: Shot) -> Transition:
        return shot.transition or self.transition

    def takes_of(self, shot: Shot) -> int:
        return shot.takes or self.takes

    def reference_path(self, shot: Shot) -> Path | None:
        return self._path(shot.input_reference) if shot.input_reference else None

    def cast_of(self, shot: Shot) -> list[tuple[str, Character]]:
        """The shot's cast in the shot's order (validation guarantees every name exists)."""
        return [(name, self.characters[name]) for name in shot.cast if name in self.characters]

    def cast_references(self, shot: Shot) -> list[Path]:
        return [self._path(c.reference) for _, c in self.cast_of(shot) if c.reference]

    def shot(self, shot_id: str) -> Shot | None:
        return next((s for s in self.shots if s.id == shot_id), None)

    def _path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def total_seconds(self) -> int:
        return sum(s.seconds for s in self.shots)


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------

def _explain(e: dict) -> str | None:
    loc = tuple(e["loc"])
    if e["type"] == "too_short" and loc == ("shots",):
        return "no shots: a storyboard needs at least one shot"
    if loc == ("provenance",):
        return (f"{shown_value(e.get('input'))} is not allowed; allowed: required, optional, "
                "or a mapping {required: true|false, include_prompts: true|false}")
    if e["type"] == "greater_than" and loc[-1] == "seconds":
        return f"{shown_value(e.get('input'))} is not allowed: {e['msg']} (a whole number of seconds)"
    return None


def _problems_from_validation(err: ValidationError) -> list[Problem]:
    return _capped(problems_from_validation(err, Storyboard, hidden=frozenset({"base_dir"}), explain=_explain))


def _shown(value: Any) -> str:
    return shown_value(value)


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS_SHOWN:
        return problems
    return [*problems[:MAX_PROBLEMS_SHOWN], Problem("", f"… and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")]


def _semantic_problems(sb: Storyboard, allow_beyond_spec: bool, catalog: ModelCatalog) -> list[Problem]:
    """Checks that need the model profiles or the file system, run after the shape is valid."""
    problems: list[Problem] = []
    for name, character in sb.characters.items():
        if character.reference and (problem := reference_problem(sb._path(character.reference))):
            problems.append(Problem(f"characters.{name}.reference", f"{_shown(character.reference)}: {problem}"))
    seen: dict[str, int] = {}
    for i, shot in enumerate(sb.shots):
        where = f"shots[{i}]"
        if shot.id in seen:
            problems.append(
                Problem(f"{where}.id", f"{shot.id!r} is already used by shots[{seen[shot.id]}]; shot ids must be unique")
            )
        seen.setdefault(shot.id, i)

        ref = sb.reference_path(shot)
        if ref is not None and (problem := reference_problem(ref)):
            problems.append(Problem(f"{where}.input_reference", f"{_shown(shot.input_reference)}: {problem}"))
        if shot.choose is not None and shot.choose > sb.takes_of(shot):
            takes = sb.takes_of(shot)
            whose = f"{where}.takes" if shot.takes else "the storyboard's takes"
            allowed = "1" if takes == 1 else f"1-{takes}"
            problems.append(Problem(
                f"{where}.choose", f"{shot.choose} is more than the shot has: {takes} take(s) ({whose}); allowed: {allowed}",
            ))

        model_field = f"{where}.model" if shot.model else "model"
        try:
            profile = catalog.profile(sb.model_of(shot))
        except CatalogError:
            problems.append(Problem(
                model_field,
                f"{_shown(sb.model_of(shot))} is not a known model profile; known profiles: {', '.join(catalog.profile_names())}",
            ))
            continue

        if ref is not None and not profile.inputs.first_frame:
            problems.append(Problem(f"{where}.input_reference", f"{profile.name} takes no first-frame image; remove it or use another model"))
        for j, name in enumerate(shot.cast):
            if name not in sb.characters:
                known = ", ".join(sorted(sb.characters)) or "none: add them under characters:"
                problems.append(Problem(f"{where}.cast[{j}]", f"{_shown(name)} is not a character; characters: {known}"))
        problems.extend(_continuity_problems(sb, shot, where, profile, [k for k in seen if k != shot.id], allow_beyond_spec))

        size = sb.size_of(shot)
        size_field = f"{where}.size" if shot.size else "size"
        allowed_sizes = profile.size_names(allow_beyond_spec)
        if size not in allowed_sizes:
            problems.append(
                Problem(size_field, f"{_shown(size)} is not offered by {profile.name}; allowed: {', '.join(allowed_sizes)}")
            )

        lengths = profile.clip_seconds(size, allow_beyond_spec)
        extend = shot.continuity == "extend" and bool(profile.inputs.extension_seconds)
        if extend and profile.shot_parts(shot.seconds, size, extend=True, allow_beyond_spec=allow_beyond_spec) is None:
            steps = ", ".join(map(str, profile.inputs.extension_seconds))
            most = profile.inputs.extended_max_seconds
            reachable = [s for s in range(1, (most or shot.seconds + 60) + 1)
                         if profile.shot_parts(s, size, extend=True, allow_beyond_spec=allow_beyond_spec)]
            nearest = min(reachable, key=lambda s: (abs(s - shot.seconds), -s)) if reachable else None
            problems.append(Problem(
                f"{where}.seconds",
                f"{shot.seconds} cannot be made by extension with {profile.name}: a first clip of "
                f"{', '.join(map(str, lengths))} s, then extensions of {steps} s"
                + (f", {most} s at most" if most else "") + (f" (e.g. {nearest})" if nearest else ""),
            ))
        elif not extend and split_seconds(shot.seconds, lengths) is None:
            at_size = f" at {size}" if lengths != profile.clip_seconds(None, allow_beyond_spec) else ""
            problems.append(
                Problem(
                    f"{where}.seconds",
                    f"{shot.seconds} cannot be made from {profile.name} clip lengths{at_size} "
                    f"{', '.join(map(str, lengths))} s; use a sum of those (e.g. "
                    f"{_nearest_reachable(shot.seconds, lengths)})",
                )
            )

    return problems


def _continuity_problems(sb: Storyboard, shot: Shot, where: str, profile, earlier: list[str], allow_beyond_spec: bool) -> list[Problem]:
    """``continuity`` and ``remix_of``: refused where the shot's model cannot do them."""
    problems = []
    needs = CONTINUITY_NEEDS.get(shot.continuity)
    if needs and not getattr(profile.inputs, needs):
        allowed = ["anchors", *(c for c, n in CONTINUITY_NEEDS.items() if getattr(profile.inputs, n))]
        problems.append(Problem(
            f"{where}.continuity",
            f"{shot.continuity!r} needs a model that takes {'a first-frame image' if needs == 'first_frame' else 'extensions'}; "
            f"{profile.name} allows: {', '.join(allowed)}",
        ))
    if shot.remix_of is None:
        return problems
    field = f"{where}.remix_of"
    source = sb.shot(shot.remix_of)
    if shot.remix_of not in earlier or source is None or source is shot:
        before = ", ".join(earlier) or "none"
        return [*problems, Problem(field, f"{_shown(shot.remix_of)} is not an earlier shot; earlier shots: {before}")]
    if not profile.inputs.remix:
        return [*problems, Problem(field, f"{profile.name} makes no remixes; use a model that does (e.g. sora-2)")]
    same = [(f, getattr(sb, f"{f}_of")(shot), getattr(sb, f"{f}_of")(source)) for f in ("model", "size")]
    for name, mine, theirs in same:
        if mine != theirs:
            problems.append(Problem(field, f"a remix keeps its source's {name}: shot {source.id!r} has {theirs}, this shot {mine}"))
    if shot.seconds != source.seconds:
        problems.append(Problem(f"{where}.seconds", f"a remix keeps its source's length: shot {source.id!r} is {source.seconds} s"))
    if source.continuity != "anchors" or split_seconds(source.seconds, profile.clip_seconds(sb.size_of(source), allow_beyond_spec)) != [source.seconds]:
        problems.append(Problem(field, f"shot {source.id!r} is not one clip of its own; a remix takes one clip"))
    if shot.continuity != "anchors" or shot.input_reference:
        problems.append(Problem(field, "a remix takes only a prompt: no continuity or input_reference"))
    return problems


def _nearest_reachable(seconds: int, lengths: tuple[int, ...]) -> str:
    for delta in range(1, 61):
        for cand in (seconds - delta, seconds + delta):
            if cand > 0 and split_seconds(cand, lengths) is not None:
                return str(cand)
    return str(min(lengths))


def parse_storyboard(
    data: Any,
    *,
    base_dir: Path = Path("."),
    source: str | None = None,
    allow_beyond_spec: bool = False,
    catalog: ModelCatalog | None = None,
) -> Storyboard:
    """Validate already-parsed data (a dict) into a Storyboard, or raise StoryboardError.

    Model names are checked against ``catalog`` (default: the built-in profiles)."""
    if not isinstance(data, dict):
        raise StoryboardError(
            [Problem("", f"the top level must be a mapping with title and shots, not {type(data).__name__}")],
            source,
        )
    try:
        check_shape(data)  # an inline storyboard (the UI's form) gets the limits a file gets
    except DocumentError as err:
        raise StoryboardError([err.problem], source) from None
    if "base_dir" in data:
        allowed = sorted(k for k in Storyboard.model_fields if k != "base_dir")
        raise StoryboardError([Problem("base_dir", "unknown key; allowed keys: " + ", ".join(allowed))], source)
    try:
        sb = Storyboard.model_validate({**data, "base_dir": base_dir})
    except ValidationError as err:
        raise StoryboardError(_problems_from_validation(err), source) from None
    problems = _semantic_problems(sb, allow_beyond_spec, catalog or builtin_catalog())
    if problems:
        raise StoryboardError(_capped(problems), source)
    return sb


def load_storyboard(path: str | Path, *, allow_beyond_spec: bool = False, catalog: ModelCatalog | None = None) -> Storyboard:
    """Read a YAML or JSON storyboard file; relative references resolve next to it.

    Only a regular file of bounded size is read (soraflow.documents): a FIFO, a device or an
    oversized file is refused, never waited on or read into memory.
    """
    path = Path(path)
    source = printable(path, 200)
    try:
        raw = read_bounded(path)
    except DocumentError as err:
        raise StoryboardError([err.problem], source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise StoryboardError(
            [Problem("", f"the file is not UTF-8 text (at byte {e.start}); save it as UTF-8")],
            source,
        ) from None
    try:
        # YAML is a superset of JSON, so other suffixes (and none) go through YAML.
        data = parse_document(text, json_only=path.suffix.lower() == ".json")
    except DocumentError as err:
        raise StoryboardError([err.problem], source) from None
    return parse_storyboard(
        data, base_dir=path.parent.resolve(), source=source, allow_beyond_spec=allow_beyond_spec, catalog=catalog
    )
