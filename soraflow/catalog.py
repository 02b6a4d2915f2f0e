"""What each Sora model offers: clip lengths, sizes and the price per second of each size.

The published OpenAPI description (shared/reference) lists seconds 4, 8, 12 and four sizes.
The live service accepted more than it published: 16 and 20 second clips, and 1080p sizes on
sora-2-pro. Those values are marked ``beyond_spec`` here: the simulator accepts them, but plans
use them only when ``allow_beyond_spec`` is set, because an endpoint that follows the
published contract (a gateway, Azure OpenAI v1) may refuse them.

Prices are USD per generated second, as published by OpenAI before the shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .errors import CatalogError

# OpenAI shut the Sora Videos API down on this date; the simulator's --shutdown mode reports it.
OPENAI_SORA_SHUTDOWN_DATE = "2026-09-24"

SPEC_SECONDS: tuple[int, ...] = (4, 8, 12)
BEYOND_SPEC_SECONDS: tuple[int, ...] = (16, 20)


@dataclass(frozen=True)
class SizeOffer:
    size: str
    usd_per_second: Decimal
    beyond_spec: bool = False

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


@dataclass(frozen=True)
class ModelSpec:
    """One model: its clip lengths, sizes with prices, and the snapshots that alias it."""

    name: str
    sizes: tuple[SizeOffer, ...]
    seconds: tuple[int, ...] = SPEC_SECONDS
    beyond_spec_seconds: tuple[int, ...] = BEYOND_SPEC_SECONDS
    snapshots: tuple[str, ...] = ()
    # Relative render time of one generated second, used to pace polling (not a promise).
    expected_seconds_per_second: float = 10.0
    default_concurrency: int = 4
    default_requests_per_minute: int = 60

    def clip_seconds(self, allow_beyond_spec: bool = False) -> tuple[int, ...]:
        extra = self.beyond_spec_seconds if allow_beyond_spec else ()
        return tuple(sorted(set(self.seconds) | set(extra)))

    def all_seconds(self) -> tuple[int, ...]:
        return self.clip_seconds(allow_beyond_spec=True)

    def size_names(self, allow_beyond_spec: bool = False) -> tuple[str, ...]:
        return tuple(s.size for s in self.sizes if allow_beyond_spec or not s.beyond_spec)

    def offer(self, size: str) -> SizeOffer:
        for s in self.sizes:
            if s.size == size:
                return s
        raise CatalogError(
            f"size {size!r} is not offered by {self.name}; allowed: "
            + ", ".join(self.size_names(allow_beyond_spec=True))
        )

    def price(self, size: str, seconds: int) -> Decimal:
        """Price in USD of one clip of this size and length."""
        return self.offer(size).usd_per_second * seconds


_SORA_2_SIZES = (
    SizeOffer("720x1280", Decimal("0.10")),
    SizeOffer("1280x720", Decimal("0.10")),
)
_SORA_2_PRO_SIZES = (
    SizeOffer("720x1280", Decimal("0.30")),
    SizeOffer("1280x720", Decimal("0.30")),
    SizeOffer("1024x1792", Decimal("0.50")),
    SizeOffer("1792x1024", Decimal("0.50")),
    SizeOffer("1080x1920", Decimal("0.70"), beyond_spec=True),
    SizeOffer("1920x1080", Decimal("0.70"), beyond_spec=True),
)

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "sora-2",
            _SORA_2_SIZES,
            snapshots=("sora-2-2025-10-06", "sora-2-2025-12-08"),
            expected_seconds_per_second=8.0,
            default_concurrency=4,
        ),
        ModelSpec(
            "sora-2-pro",
            _SORA_2_PRO_SIZES,
            snapshots=("sora-2-pro-2025-10-06",),
            expected_seconds_per_second=20.0,
            default_concurrency=2,
            default_requests_per_minute=30,
        ),
    )
}

_SNAPSHOT_TO_BASE = {snap: m.name for m in MODELS.values() for snap in m.snapshots}


def model_names() -> list[str]:
    """Every name the catalog accepts: base models and dated snapshots."""
    return sorted([*MODELS, *_SNAPSHOT_TO_BASE])


def get_model(name: str) -> ModelSpec:
    """The spec for a model or one of its dated snapshots; unknown names are refused."""
    if name in MODELS:
        return MODELS[name]
    if name in _SNAPSHOT_TO_BASE:
        base = MODELS[_SNAPSHOT_TO_BASE[name]]
        return ModelSpec(
            name,
            base.sizes,
            base.seconds,
            base.beyond_spec_seconds,
            (),
            base.expected_seconds_per_second,
            base.default_concurrency,
            base.default_requests_per_minute,
        )
    raise CatalogError(f"unknown model {name!r}; allowed: {', '.join(model_names())}")


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
