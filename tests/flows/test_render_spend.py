"""Spend caps across renders: two `soraflow render` processes share a ledger and a daily cap."""

from __future__ import annotations

import os
import re
import subprocess
from decimal import Decimal

import pytest

from soraflow.ledger import Ledger, Spend, summarize
from tests.flows.processes import KEY, SOR, SimProcess, finish, render, storyboard

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_two_concurrent_renders_under_a_daily_cap_that_fits_one(tmp_path):
    """Each storyboard is 3 clips of $0.40; the cap ($1.50) fits one of them. Together they never
    reserve or pay beyond it, the refused clips say so, and no clip is paid twice."""
    from prefect.settings import PREFECT_API_URL

    sim = SimProcess(tmp_path, "--latency", "0.5")
    ledger_path = tmp_path / "ledger.sqlite"
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "OPENAI_BASE_URL": f"{sim.url}/v1",
        "OPENAI_API_KEY": KEY,
        "SORAFLOW_LEDGER_PATH": str(ledger_path),
        "SORAFLOW_SPEND_CAP_DAY_USD": "1.50",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    try:
        boards = [storyboard(tmp_path, 3, title=title) for title in ("North", "South")]
        procs = [render(sb, tmp_path / sb.stem, env) for sb in boards]
        outputs = [finish(p) for p in procs]
        jobs = sim.all_jobs()
    finally:
        sim.stop()

    rows = Spend(Ledger(ledger_path)).rows()
    counted = [r for r in rows if r["state"] in ("reserved", "paid")]
    assert sum((r["price_usd"] for r in counted), Decimal("0")) <= Decimal("1.50")
    assert len(counted) == 3 == len(jobs)  # three $0.40 clips fit under $1.50, a fourth does not
    assert all(r["state"] == "paid" for r in counted)
    assert sorted(r["job_id"] for r in counted) == sorted(j["id"] for j in jobs)
    assert len({r["clip_key"] for r in counted}) == 3  # nothing paid twice
    refusals = sum(out.count("would exceed the daily spend cap of all endpoints, $1.50") for out in outputs)
    assert refusals == 3, outputs

    # soraflow spend: by storyboard, with the cap beside what counts against it
    said = subprocess.run([*SOR, "spend", "--by", "storyboard"], env={**env, "COLUMNS": "200"}, capture_output=True, text=True)
    assert said.returncode == 0, said.stderr
    by_board = {r["storyboard"]: r for r in summarize(rows, by=("storyboard",))}
    for title, row in by_board.items():
        assert re.search(rf"{title}\s+│\s+{row['clips']}\s+│\s+{row['paid_usd']}\s+│\s+0.00", said.stdout), said.stdout
    assert re.search(r"all\s+│\s+day\s+│\s+1.50\s+│\s+1.20\s+│\s+0.30", said.stdout), said.stdout
