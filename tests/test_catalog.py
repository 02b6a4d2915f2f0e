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
