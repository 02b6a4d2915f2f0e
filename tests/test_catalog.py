from decimal import Decimal

import pytest

from soraflow.catalog import get_model, split_seconds
from soraflow.errors import CatalogError


@pytest.mark.parametrize(
    "total,expected",
    [(4, [4]), (8, [8]), (12, [12]), (16, [8, 8]), (20, [12, 8]), (24, [12, 12]), (28, [12, 8, 8]), (10, None), (3, None), (0, None)],
)
def test_split_prefers_fewest_then_even_parts(total, expected):
    assert split_seconds(total, (4, 8, 12)) == expected


def test_prices_per_second():
    assert get_model("sora-2").price("1280x720", 8) == Decimal("0.80")
    assert get_model("sora-2-pro").price("1280x720", 4) == Decimal("1.20")
    assert get_model("sora-2-pro").price("1792x1024", 12) == Decimal("6.00")


def test_snapshots_resolve_to_their_base():
    snap = get_model("sora-2-pro-2025-10-06")
    assert snap.name == "sora-2-pro-2025-10-06"
    assert snap.price("1024x1792", 4) == Decimal("2.00")


def test_unknown_model_and_size_are_refused():
    with pytest.raises(CatalogError, match="unknown model 'sora-9'; allowed: sora-2"):
        get_model("sora-9")
    with pytest.raises(CatalogError, match="not offered by sora-2; allowed"):
        get_model("sora-2").price("1792x1024", 4)


def test_beyond_spec_marked():
    pro = get_model("sora-2-pro")
    assert "1920x1080" not in pro.size_names()
    assert "1920x1080" in pro.size_names(allow_beyond_spec=True)
    assert pro.clip_seconds() == (4, 8, 12)
    assert pro.clip_seconds(allow_beyond_spec=True) == (4, 8, 12, 16, 20)


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
