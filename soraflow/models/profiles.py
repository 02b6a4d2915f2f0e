"""A model profile: what one model at one endpoint accepts and what it costs.

Everything downstream of the storyboard reads the profile of a shot: the clip lengths a shot
is split into, the sizes it may ask for, the price of each clip, the longest prompt, the
inputs it can take, when the model retires, how fast it renders (to pace polling) and how
many clips to keep in flight. A profile is plain data (built-in ones ship as package data,
users add their own in a YAML file); nothing here talks to an endpoint.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from math import gcd
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import CatalogError
from .arguments import Arguments

Size = Annotated[str, Field(pattern=r"^[1-9]\d{1,4}x[1-9]\d{1,4}$")]
Seconds = Annotated[int, Field(gt=0, le=600)]
UsdPerSecond = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=6)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SizeOffer(_Data):
    """One output size, its price per generated second, and the lengths it comes in."""

    size: Size
    usd_per_second: UsdPerSecond
    # Models that price sound separately (Veo: audio on or off) give the silent price here.
    usd_per_second_silent: UsdPerSecond | None = None
    # Lengths this size comes in, when narrower than the profile's (Veo: 1080p and 4k at 8 s only).
    seconds: tuple[Seconds, ...] | None = None
    # Accepted by the live service beyond its published contract: planned only when allowed.
    beyond_spec: bool = False
    # This size's entry in LiteLLM's price list when not the profile's (sora-2-pro's 1024x1792
    # is ``openai/sora-2-pro-high-res``); false: the list does not price this size.
    price_source_key: str | Literal[False] | None = None

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])

    @property
    def aspect_and_resolution(self) -> tuple[str, str]:
        return aspect_and_resolution(self.size)

    def price_per_second(self, audio: bool = True) -> Decimal:
        if not audio and self.usd_per_second_silent is not None:
            return self.usd_per_second_silent
        return self.usd_per_second


def aspect_and_resolution(size: str) -> tuple[str, str]:
    """A size the way APIs that do not take pixels name it: ``1280x720`` → ``("16:9", "720p")``,
    ``2160x3840`` → ``("9:16", "4k")``. The short side names the resolution (2160 is "4k")."""
    width, height = (int(v) for v in size.split("x"))
    d = gcd(width, height)
    short = min(width, height)
    return f"{width // d}:{height // d}", ("4k" if short == 2160 else f"{short}p")


class Inputs(_Data):
    """What a model takes besides the prompt."""

    first_frame: bool = False  # an image the clip starts from (the Videos API's input_reference)
    last_frame: bool = False  # an image the clip ends on
    reference_images: Annotated[int, Field(ge=0, le=16)] = 0  # how many (0: none)
    # The clip lengths that take reference images (empty: every length).
    reference_images_seconds: tuple[Seconds, ...] = ()
    remix: bool = False  # a new take of a finished video with another prompt
    extension: bool = False  # more seconds after a finished video
    # The lengths one extension adds (empty: the model's clip lengths). Veo extends by 7 s.
    extension_seconds: tuple[Seconds, ...] = ()
    # The longest video an extension may make, its source's seconds included (None: no limit).
    # Veo extends videos of 1-30 s, so an extended video is at most 37 s.
    extended_max_seconds: Annotated[int, Field(ge=1)] | None = None
    # A seed the request takes (Veo's GenerateVideosConfig.seed, fal's ``seed``): takes of a shot
    # are told apart by it. Without one, each take is the same request made again, and the
    # model's own randomness makes another video.
    seed: bool = False

    def takes_reference_images(self, seconds: int) -> int:
        """How many reference images a clip of ``seconds`` takes (0: none)."""
        return self.reference_images if not self.reference_images_seconds or seconds in self.reference_images_seconds else 0


class ModelProfile(_Data):
    """One model at one endpoint. ``model`` is what the endpoint calls it (an Azure deployment
    name, a gateway's alias); ``name`` is what storyboards say."""

    name: str
    endpoint: str
    model: str
    seconds: tuple[Seconds, ...] = Field(min_length=1)
    beyond_spec_seconds: tuple[Seconds, ...] = ()
    sizes: tuple[SizeOffer, ...] = Field(min_length=1)
    prompt_max_chars: Annotated[int, Field(ge=1)] = 32000
    inputs: Inputs = Inputs()
    # Sound: "always" (Sora: every clip has it), "on-request" (Veo's generate_audio: only the
    # shots that ask for it, with ``audio:`` or dialogue), or "never".
    audio: Literal["always", "on-request", "never"] = "always"
    retires: date | None = None
    # Render time of one generated second, in seconds: how soon to look at a new job first.
    render_seconds_per_second: Annotated[float, Field(gt=0)] = 10.0
    concurrency: Annotated[int, Field(ge=1)] = 4
    requests_per_minute: Annotated[int, Field(ge=1)] = 60
    description: str | None = None
    # The model's entry in LiteLLM's price list (``vertex_ai/veo-3.1-generate-001``), read by
    # the watch when its pricing source is that list; a size may name another entry.
    price_source_key: str | None = None
    # fal: which storyboard field goes into which of the endpoint's arguments, and where its
    # result names the video (arguments.py). Required for the fal dialect, refused elsewhere.
    arguments: Arguments | None = None

    @property
    def takes_seed(self) -> bool:
        """Whether a request to this model carries a seed (``inputs.seed``, or a fal arguments
        table that names one): takes after the first are told apart by it."""
        return self.inputs.seed or (self.arguments is not None and self.arguments.seed is not None)

    # --- sizes and lengths ----------------------------------------------------------------
    def size_names(self, allow_beyond_spec: bool = False) -> tuple[str, ...]:
        return tuple(s.size for s in self.sizes if allow_beyond_spec or not s.beyond_spec)

    def offer(self, size: str) -> SizeOffer:
        for s in self.sizes:
            if s.size == size:
                return s
        raise CatalogError(
            f"size {size!r} is not offered by {self.name}; allowed: " + ", ".join(self.size_names(allow_beyond_spec=True))
        )

    def clip_seconds(self, size: str | None = None, allow_beyond_spec: bool = False) -> tuple[int, ...]:
        """The clip lengths of this model (at ``size``, when a size narrows them)."""
        lengths = set(self.seconds) | (set(self.beyond_spec_seconds) if allow_beyond_spec else set())
        if size is not None:
            narrowed = next((s.seconds for s in self.sizes if s.size == size and s.seconds), None)
            if narrowed:
                lengths &= set(narrowed)
        return tuple(sorted(lengths))

    def shot_parts(self, seconds: int, size: str | None = None, *, extend: bool = False, allow_beyond_spec: bool = False) -> list[int] | None:
        """The clip lengths a shot of ``seconds`` is made of (None: it cannot be made).

        Parts made by extension (``extend``) where the model extends by lengths of its own
        (``inputs.extension_seconds``): a first clip of the model's lengths, then extensions of
        those lengths, the fewest parts (the longer first clip among equals), the whole within
        ``inputs.extended_max_seconds``. Otherwise the even split of ``split_seconds``."""
        lengths = self.clip_seconds(size, allow_beyond_spec)
        if not extend or not self.inputs.extension_seconds:
            return split_seconds(seconds, lengths)
        if self.inputs.extended_max_seconds is not None and seconds > self.inputs.extended_max_seconds:
            return None
        best: list[int] | None = None
        for first in sorted(lengths, reverse=True):
            rest = seconds - first
            more = [] if rest == 0 else split_seconds(rest, self.inputs.extension_seconds) if rest > 0 else None
            if more is not None and (best is None or 1 + len(more) < len(best)):
                best = [first, *more]
        return best

    def all_seconds(self) -> tuple[int, ...]:
        """Every length the model accepts at any size, the beyond-spec ones included."""
        return self.clip_seconds(allow_beyond_spec=True)

    def makes_audio(self, asked: bool) -> bool:
        """Whether a clip of this model has sound when its shot ``asked`` for it or not."""
        return self.audio == "always" or (self.audio == "on-request" and asked)

    # --- money and time -----------------------------------------------------------------
    def price(self, size: str, seconds: int, *, audio: bool = True) -> Decimal:
        """USD of one clip of this size and length."""
        return self.offer(size).price_per_second(audio) * seconds

    def price_key(self, size: str) -> str | None:
        """The price list entry that prices ``size`` (None: the list does not price it)."""
        key = self.offer(size).price_source_key
        if key is False:
            return None
        return key or self.price_source_key

    def expected_render_seconds(self, seconds: int) -> float:
        return self.render_seconds_per_second * seconds

    def retired_on(self, today: date) -> bool:
        return self.retires is not None and self.retires <= today


def split_seconds(total: int, lengths: tuple[int, ...]) -> list[int] | None:
    """Split ``total`` seconds into the fewest clips of allowed ``lengths``, as even as possible.

    Returns the parts longest first, or None when no combination reaches ``total`` exactly.
    16 with (4, 8, 12) gives [8, 8] rather than [12, 4]: even parts keep continuity smoother.
    Among splits as even as each other, the one with the longer clips first wins.

    Time is linear in the number of parts (times a small power of the number of lengths):
    sums reachable with exactly k clips are kept as a bitset per k, first over every length
    (to find the fewest parts), then over each window [shortest, longest] of lengths in order
    of evenness. Enumerating combinations instead took 300 s of CPU for 597 s of 5 lengths.
    """
    values = sorted({int(v) for v in lengths if int(v) > 0}, reverse=True)
    if total <= 0 or not values:
        return None
    mask = (1 << (total + 1)) - 1

    def reachable(allowed: list[int], parts: int) -> list[int]:
        """reach[k]: bit s set when k clips of ``allowed`` lengths sum to s (s <= total)."""
        reach = [1]
        for _ in range(parts):
            prev, nxt = reach[-1], 0
            for v in allowed:
                nxt |= prev << v
            reach.append(nxt & mask)
        return reach

    # The fewest parts: grow k until total is reachable (at most total // shortest steps).
    parts, row = None, 1
    for k in range(1, total // values[-1] + 1):
        nxt = 0
        for v in values:
            nxt |= row << v
        row = nxt & mask
        if row >> total & 1:
            parts = k
            break
    if parts is None:
        return None

    # The most even split with that many parts: windows of lengths by spread, longest first.
    windows = sorted(
        ((hi, lo) for i, hi in enumerate(values) for lo in values[i:]),
        key=lambda w: (w[0] - w[1], -w[0]),
    )
    for hi, lo in windows:
        allowed = [v for v in values if lo <= v <= hi]
        reach = reachable(allowed, parts)
        if not reach[parts] >> total & 1:
            continue
        split, remaining = [], total
        for left in range(parts - 1, -1, -1):  # greedy, longest first, staying reachable
            pick = next(v for v in allowed if remaining >= v and reach[left] >> (remaining - v) & 1)
            split.append(pick)
            remaining -= pick
        return split
    return None  # pragma: no cover - the full window always succeeds once parts is found

