"""Model profiles: clip lengths, sizes, prices, and the built-in ones soraflow ships."""

from datetime import date
from decimal import Decimal

import pytest

from soraflow.errors import CatalogError
from soraflow.models import builtin_catalog, split_seconds

CATALOG = builtin_catalog()


@pytest.mark.parametrize(
    "total,expected",
    [(4, [4]), (8, [8]), (12, [12]), (16, [8, 8]), (20, [12, 8]), (24, [12, 12]), (28, [12, 8, 8]), (10, None), (3, None), (0, None)],
)
def test_split_prefers_fewest_then_even_parts(total, expected):
    assert split_seconds(total, (4, 8, 12)) == expected


def test_split_with_six_second_clips():
    assert split_seconds(14, (4, 6, 8)) == [8, 6]
    assert split_seconds(18, (4, 6, 8)) == [6, 6, 6]
    assert split_seconds(2, (4, 6, 8)) is None


def _fewest_most_even(total: int, lengths: tuple[int, ...]) -> list[int] | None:
    """The definition, by enumeration: fewest parts, then least spread, then longest first."""
    from itertools import combinations_with_replacement

    for n in range(1, total // min(lengths) + 1):
        combos = [c for c in combinations_with_replacement(sorted(lengths, reverse=True), n) if sum(c) == total]
        if combos:
            return list(min(combos, key=lambda c: (max(c) - min(c), [-v for v in c])))
    return None


@pytest.mark.parametrize("lengths", [(4, 8, 12), (4, 8, 12, 16, 20), (4, 6, 8), (5, 7), (3,), (7, 4, 9, 12, 13)])
def test_split_seconds_matches_the_definition(lengths):
    for total in range(0, 61):
        assert split_seconds(total, lengths) == (_fewest_most_even(total, lengths) if total > 0 else None), total


def test_split_seconds_of_long_shots_needs_no_enumeration():
    # Enumerating combinations took over 300 s of CPU for 597 s of five lengths (no split exists).
    assert split_seconds(597, (4, 8, 12, 16, 20)) is None
    assert split_seconds(599, (4, 8, 12, 16, 20)) is None
    assert split_seconds(600, (4, 8, 12, 16, 20)) == [20] * 30
    assert split_seconds(598, (4, 6, 8)) == [8] * 74 + [6]


def test_prices_per_second():
    assert CATALOG.profile("sora-2").price("1280x720", 8) == Decimal("0.80")
    assert CATALOG.profile("sora-2-pro").price("1280x720", 4) == Decimal("1.20")
    assert CATALOG.profile("sora-2-pro").price("1792x1024", 12) == Decimal("6.00")


def test_snapshots_are_profiles_like_their_base_with_their_own_model_name():
    snap = CATALOG.profile("sora-2-pro-2025-10-06")
    assert (snap.name, snap.model, snap.endpoint) == ("sora-2-pro-2025-10-06", "sora-2-pro-2025-10-06", "openai")
    assert snap.price("1024x1792", 4) == Decimal("2.00")
    assert snap.retires == date(2026, 9, 24)


def test_unknown_profile_and_size_are_refused():
    with pytest.raises(CatalogError, match="unknown model profile 'sora-9'; known profiles: kling-3.0-pro, .* sora-2, "):
        CATALOG.profile("sora-9")
    with pytest.raises(CatalogError, match="not offered by sora-2; allowed"):
        CATALOG.profile("sora-2").price("1792x1024", 4)


def test_beyond_spec_marked():
    pro = CATALOG.profile("sora-2-pro")
    assert "1920x1080" not in pro.size_names()
    assert "1920x1080" in pro.size_names(allow_beyond_spec=True)
    assert pro.clip_seconds() == (4, 8, 12)
    assert pro.clip_seconds(allow_beyond_spec=True) == (4, 8, 12, 16, 20)


def test_veo_family_as_data():
    veo, fast = CATALOG.profile("veo-3.1-generate-001"), CATALOG.profile("veo-3.1-fast-generate-001")
    assert CATALOG.endpoint_of(veo).dialect == "google-genai" and fast.endpoint == "vertex"
    assert veo.clip_seconds() == (4, 6, 8)
    assert veo.clip_seconds("1280x720") == (4, 6, 8) and veo.clip_seconds("1920x1080") == (8,)
    assert [veo.price(size, 8) for size in ("1280x720", "1920x1080", "3840x2160")] == [Decimal("3.20"), Decimal("3.20"), Decimal("4.80")]
    assert [fast.price(size, 8) for size in ("720x1280", "1080x1920", "2160x3840")] == [Decimal("0.80"), Decimal("0.96"), Decimal("2.40")]
    assert veo.inputs.reference_images == 3 and veo.inputs.last_frame and not veo.inputs.remix
    assert fast.model == "veo-3.1-fast-generate-001" and fast.retires is None


def test_a_silent_price_applies_only_without_audio():
    from soraflow.models import SizeOffer

    offer = SizeOffer(size="1280x720", usd_per_second=Decimal("0.40"), usd_per_second_silent=Decimal("0.20"))
    assert offer.price_per_second() == Decimal("0.40") and offer.price_per_second(audio=False) == Decimal("0.20")
