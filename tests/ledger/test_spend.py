"""The spend ledger: reservations under the caps are atomic across workers, on both backends."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from soraflow.errors import InvalidSettingError, SpendCapError
from soraflow.ledger import Ledger, Spend, SpendCaps, parse_caps, summarize
from soraflow.plan import load_plan
from soraflow.settings import Settings


@pytest.fixture(scope="module")
def lamp(lighthouse_plan):
    return lighthouse_plan.clips[-1]  # 4 s of sora-2 at 1280x720: $0.40


@pytest.fixture(scope="module")
def lighthouse_plan():
    from tests.conftest import EXAMPLES

    return load_plan(str(EXAMPLES / "lighthouse" / "storyboard.yaml"), None, settings=Settings())


def _clip(spec, n: int, endpoint: str | None = None):
    update = {"clip_key": f"k{n:02d}", "shot_id": f"s{n:02d}"}
    if endpoint:
        route = spec.route
        update["route"] = route.model_copy(update={"endpoint": route.endpoint.model_copy(update={"name": endpoint})})
    return spec.model_copy(update=update)


def test_concurrent_workers_never_reserve_beyond_a_daily_cap(ledger_url, lamp):
    """Eight workers (each its own engine, as separate processes or hosts would be) reserve a
    $0.40 clip each under a $1.50 daily cap at the same moment: exactly three fit."""
    caps = SpendCaps(day=Decimal("1.50"))
    workers = [Spend(Ledger(ledger_url)) for _ in range(8)]
    start, won, refused = threading.Barrier(8), [], []

    def worker(n: int) -> None:
        start.wait()
        try:
            won.append(workers[n].reserve(_clip(lamp, n), storyboard="Race", owner=f"w{n}", caps=caps))
        except SpendCapError as err:
            refused.append(str(err))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 3 and len(refused) == 5
    assert "would exceed the daily spend cap of all endpoints, $1.50: $1.20 is reserved or paid today" in refused[0]
    spend = workers[0]
    assert spend.totals()[(None, "day")] == Decimal("1.20")

    # paid keeps counting; a create that certainly made nothing gives its room back
    spend.settle(won[0], "video_1")
    spend.release(won[1], "refused before acceptance")
    assert spend.totals()[(None, "day")] == Decimal("0.80")
    spend.reserve(_clip(lamp, 20), storyboard="Race", owner="w0", caps=caps)
    with pytest.raises(SpendCapError):
        spend.reserve(_clip(lamp, 21), storyboard="Race", owner="w0", caps=caps)
    rows = summarize(spend.rows(), by=("storyboard", "endpoint"))
    assert rows == [{"storyboard": "Race", "endpoint": lamp.endpoint, "clips": "3", "paid_usd": "0.40",
                     "reserved_usd": "0.80", "released_usd": "0.40"}]  # fmt: skip


def test_endpoint_and_monthly_caps_and_reservations_of_a_clip(ledger_url, lamp):
    spend = Spend(Ledger(ledger_url))
    caps = SpendCaps(month=Decimal("2.00"), endpoints={"vertex": {"day": Decimal("0.40")}})
    spend.reserve(_clip(lamp, 1, "vertex"), storyboard="A", owner="o", caps=caps)
    with pytest.raises(SpendCapError, match=r"daily spend cap of endpoint vertex, \$0.40: \$0.40 is reserved or paid today"):
        spend.reserve(_clip(lamp, 2, "vertex"), storyboard="A", owner="o", caps=caps)
    for n in range(3, 7):  # another endpoint: only the monthly cap over all applies
        spend.reserve(_clip(lamp, n, "gateway"), storyboard="A", owner="o", caps=caps)
    with pytest.raises(SpendCapError, match=r"monthly spend cap of all endpoints, \$2.00: \$2.00 is reserved or paid this month"):
        spend.reserve(_clip(lamp, 7, "gateway"), storyboard="A", owner="o", caps=caps)
    # an earlier create of a clip proven to have made nothing: its reservation is released
    assert spend.release_open("k03", "proven absent") == 1 and spend.release_open("k03", "again") == 0
    assert spend.settle_open("k04", "video_4") == 1
    states = {r["clip_key"]: (r["state"], r["job_id"]) for r in spend.rows()}
    assert states["k03"] == ("released", None) and states["k04"] == ("paid", "video_4") and states["k05"] == ("reserved", None)


def test_caps_are_read_and_combined_with_the_lower_winning():
    variable = parse_caps({"day": 5, "endpoints": {"vertex": {"month": "20"}}}, "Prefect Variable soraflow-spend-caps")
    settings = Settings(spend_cap_day_usd="10", spend_cap_month_usd="100", spend_caps_by_endpoint={"vertex": {"month": 50, "day": 3}})
    both = settings.spend_caps.tightest(variable)
    assert (both.day, both.month, both.endpoints) == (Decimal(5), Decimal(100), {"vertex": {"day": Decimal(3), "month": Decimal(20)}})
    for bad, says in ((-1, "day: -1 is not allowed"), ("nan", "day: 'nan' is not allowed"), (True, "day: True is not allowed")):
        with pytest.raises(SpendCapError, match=f"Prefect Variable soraflow-spend-caps: {says}"):
            parse_caps({"day": bad}, "Prefect Variable soraflow-spend-caps")
    with pytest.raises(SpendCapError, match="weekly: unknown key"):
        parse_caps({"weekly": 1}, "x")
    with pytest.raises(InvalidSettingError, match="SORAFLOW_SPEND_CAP_DAY_USD='-1' is not allowed: a finite amount of USD, at least 0"):
        Settings(spend_cap_day_usd="-1")
