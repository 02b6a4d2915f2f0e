"""The preflight's checks one by one, on real files and a real ledger (no flow, no server)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from soraflow.plan import load_plan, model_catalog
from soraflow.ledger import Ledger, Spend, SpendCaps
from soraflow.preflight import Checks, PreflightError, cap_problems, image_problem, preflight
from soraflow.settings import Settings
from soraflow.archive import open_for

KEEPER = Path(__file__).resolve().parent.parent / "examples" / "lighthouse" / "images" / "keeper.png"


def test_an_image_is_decoded_to_its_last_byte_and_named_by_its_type(tmp_path):
    whole = KEEPER.read_bytes()
    cases = {
        "empty.png": b"",
        "text.png": b"hello, not an image",
        "half.png": whole[: len(whole) // 2],
        "jpeg.png": b"\xff\xd8\xff\xe0" + b"\x00" * 64,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    assert image_problem(KEEPER, None) is None
    assert "is not a PNG, JPEG or WebP image" in image_problem(tmp_path / "empty.png", None)
    assert "is not a PNG, JPEG or WebP image" in image_problem(tmp_path / "text.png", None)
    assert image_problem(tmp_path / "half.png", None) == "does not decode: the PNG is cut short or damaged (allowed: a whole PNG, JPEG or WebP image)"
    assert "is a JPEG image named '.png'" in image_problem(tmp_path / "jpeg.png", None)


def test_every_problem_of_a_run_in_one_refusal(tmp_path):
    """A prompt over the cap, an input image cut short, an --out under a file and a negative
    budget: one PreflightError naming all four."""
    images = tmp_path / "images"
    images.mkdir()
    whole = KEEPER.read_bytes()
    (images / "keeper.png").write_bytes(whole[: len(whole) // 2])
    sb = tmp_path / "sb.yaml"
    sb.write_text(yaml.safe_dump({"title": "All at once", "model": "terse-sora", "shots": [
        {"id": "first", "seconds": 4, "visual": "A keeper.", "input_reference": "images/keeper.png"},
        {"id": "long", "seconds": 4, "visual": "A keeper talks. " * 30},
    ]}))  # fmt: skip
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"models": {"terse-sora": {"like": "sora-2", "prompt_max_chars": 300}}}))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    settings = Settings(state_dir=tmp_path / "state", models=models)
    catalog = model_catalog(settings)
    checks = Checks(settings, catalog, Ledger(tmp_path / "ledger.sqlite"), open_storage=lambda url: open_for(url, settings), live=False)
    with pytest.raises(PreflightError) as err:
        preflight(lambda: load_plan(str(sb), None, settings=settings, catalog=catalog),
                  out_dir=blocker / "out", storage=None, budget_usd=-3, checks=checks)  # fmt: skip
    shown = [str(p) for p in err.value.problems]
    assert len(shown) == 4, shown
    assert shown[0].startswith("budget: budget -3 is not allowed")
    assert shown[1].startswith("shots[1] (long): the prompt of part 1 comes to ") and "terse-sora takes at most 300" in shown[1]
    assert shown[2].startswith("shots[0] (first): input image ") and "does not decode" in shown[2]
    assert shown[3].startswith("output directory: ") and f"cannot be made: {blocker} is a file" in shown[3]
    assert not err.value.in_storyboard
    assert list(tmp_path.glob("**/.soraflow-probe-*")) == []


def test_a_run_that_does_not_fit_a_cap_is_refused_whole_naming_each_clip(tmp_path, lighthouse):
    settings = Settings(state_dir=tmp_path / "state")
    plan = load_plan(str(lighthouse), None, settings=settings)
    spend = Spend(Ledger(tmp_path / "ledger.sqlite"))
    assert cap_problems(plan.clips, SpendCaps(day=Decimal("2.80")), spend) == []
    problems = [str(p) for p in cap_problems(plan.clips, SpendCaps(day=Decimal("2.00")), spend)]
    assert len(problems) == len(plan.clips) == 4
    assert all("would exceed the daily spend cap of all endpoints, $2.00: $0.00 is reserved or paid today" in p for p in problems)
