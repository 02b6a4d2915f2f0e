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


def test_the_films_signer_is_checked_before_paying_and_required_only_refuses_when_none_is_configured(tmp_path, lighthouse):
    from soraflow.preflight import provenance_problems
    from soraflow.provenance import make_dev_chain

    plan = load_plan(str(lighthouse), None, settings=Settings(state_dir=tmp_path / "state"))
    required = plan.model_copy(update={"provenance": plan.provenance.model_copy(update={"required": True})})

    def problems(plan, **settings) -> list[str]:
        s = Settings(state_dir=tmp_path / "state", **settings)
        return [str(p) for p in provenance_problems(plan, Checks(s, model_catalog(s), None, open_storage=lambda url: None))]

    assert problems(plan) == []  # no signer, none required: the film is made unsigned (and the run says so)
    assert problems(plan, provenance="required")[0].startswith("provenance: a signed film is required (SORAFLOW_PROVENANCE=required)")
    assert problems(required)[0].startswith("provenance: a signed film is required (the storyboard's provenance: required) but no C2PA signer is configured: set SORAFLOW_PROVENANCE_CERT_CHAIN")
    s = Settings(state_dir=tmp_path / "state")
    checks = Checks(s, model_catalog(s), None, open_storage=lambda url: None, live=False)
    with pytest.raises(PreflightError, match="refused before anything was paid .1 problem.s..; nothing was created:\n  - provenance: a signed film is required"):
        preflight(lambda: required, out_dir=tmp_path / "out", storage=None, budget_usd=None, checks=checks)
    chain = make_dev_chain(tmp_path / "chain")
    signer = {"provenance_cert_chain": chain.chain, "provenance_private_key": chain.private_key}
    assert problems(required, **signer) == []
    # a configured signer that cannot sign is refused, required or not: the film would fail after every clip was paid
    other = make_dev_chain(tmp_path / "other")
    assert problems(plan, **{**signer, "provenance_private_key": other.private_key}) == [
        "provenance: the C2PA signer cannot sign: the private key is not the signing certificate's (the chain's first certificate): they must be a pair"
    ]
