"""The budget: what a run can pay, checked before anything is spent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from soraflow.errors import BudgetExceededError, InvalidBudgetError
from soraflow.ledger import Ledger, owner_id
from soraflow.budget import check_budget, check_regeneration_budget, payable
from soraflow.plan import load_plan
from soraflow.providers.base import VideoJob
from soraflow.settings import Settings


@pytest.fixture
def plan(lighthouse):
    return load_plan(str(lighthouse), None, settings=Settings())


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), float("-inf"), -3.0, True, "5"])
def test_a_budget_that_is_not_a_finite_amount_is_refused(plan, budget):
    with pytest.raises(InvalidBudgetError, match="finite amount of USD, 0 or more"):
        check_budget(plan, budget)


def test_a_budget_is_compared_to_the_cent(plan):
    check_budget(plan, 2.80)
    check_budget(plan, None)
    with pytest.raises(BudgetExceededError, match=r"\$2\.80 exceeds the budget \$2\.79"):
        check_budget(plan, 2.79)


def _done(ledger: Ledger, spec, *, stored: bool, job: str) -> None:
    ledger.claim_create(clip_key=spec.clip_key, shot_id=spec.shot_id, part=spec.part, model=spec.model, size=spec.size,
                        seconds=spec.seconds, prompt_sha256=spec.prompt_sha256, owner=owner_id())
    ledger.record_job(spec.clip_key, VideoJob(id=job, status="completed"))
    if stored:
        ledger.record_stored(spec.clip_key, f"file:///x/{job}.mp4")


def test_the_budget_is_what_this_run_can_pay_beside_the_whole_film(plan, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    dawn, keeper1, keeper2, lamp = plan.clips  # $0.80, $0.80, $0.80, $0.40
    _done(ledger, dawn, stored=True, job="video_a")
    _done(ledger, keeper1, stored=False, job="video_b")  # its job may be lost: made again once
    can_pay = payable(plan, ledger)
    assert (can_pay.create_usd, can_pay.regenerate_usd, can_pay.usd, can_pay.film_usd) == (
        Decimal("1.20"), Decimal("0.80"), Decimal("2.00"), Decimal("2.80"),
    )
    check_budget(plan, 2.00, ledger)
    with pytest.raises(BudgetExceededError) as info:
        check_budget(plan, 1.99, ledger)
    assert str(info.value).startswith(
        "estimated cost $2.00 exceeds the budget $1.99 (this run can pay up to $2.00 (2 clip(s) to create $1.20 + 1 that may "
        "be generated again $0.80); the whole film costs $2.80)"
    )
    for spec, job in ((keeper2, "video_c"), (lamp, "video_d")):
        _done(ledger, spec, stored=True, job=job)
    ledger.record_stored(keeper1.clip_key, "file:///x/b.mp4")
    assert check_budget(plan, 0, ledger).usd == 0  # a finished film: a rerun can pay nothing


def test_regenerating_lost_clips_is_checked_against_the_same_budget(plan):
    lost = list(plan.clips[:1])  # $0.80
    check_regeneration_budget(lost, Decimal("1.20"), 2.00)
    check_regeneration_budget(lost, Decimal("5"), None)
    with pytest.raises(BudgetExceededError, match=r"\$2.00 exceeds the budget \$1.99 \(this run billed \$1.20 and generating 1 lost"):
        check_regeneration_budget(lost, Decimal("1.20"), 1.99)
    with pytest.raises(InvalidBudgetError):
        check_regeneration_budget(lost, Decimal("0"), -3)
