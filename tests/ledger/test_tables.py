"""The ledger's text columns lose every registered secret on the way in, whichever statement
writes them: an endpoint may echo the key it got into an error message, a reason or a note."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from soraflow.ledger import Ledger, Spend, SpendCaps, WatchedPrices
from soraflow.plan import load_plan
from soraflow.providers.base import VideoJob
from soraflow.redaction import register_secret
from soraflow.settings import Settings

KEY = "sk-ledger-echo+canary/8d1f"


@pytest.fixture(scope="module")
def lamp():
    from tests.conftest import EXAMPLES

    return load_plan(str(EXAMPLES / "lighthouse" / "storyboard.yaml"), None, settings=Settings()).clips[-1]


def raw_rows(url: str) -> str:
    """Every row of the tables that hold text, as the database has them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                str(tuple(row)) for table in ("clips", "ledger_actions", "spend", "watched_prices")
                for row in conn.execute(text(f"SELECT * FROM {table}"))
            )  # fmt: skip
    finally:
        engine.dispose()


def test_every_text_column_is_written_without_a_registered_secret(ledger_url, lamp):
    register_secret(KEY, "test key")
    echoed = f"401: key={KEY} not found in db (sent as {KEY.replace('+', '%2B').replace('/', '%2F')})"
    ledger = Ledger(ledger_url)
    spend = Spend(ledger)
    owner = "host:1:1"
    ledger.claim_create(clip_key=lamp.clip_key, shot_id=lamp.shot_id, part=1, model=lamp.model, size=lamp.size, seconds=4,
                        prompt_sha256=lamp.prompt_sha256, owner=owner, endpoint="gateway", profile=lamp.profile, price_usd=lamp.price_usd)
    reservation = spend.reserve(lamp, storyboard="Echo", owner=owner, caps=SpendCaps())
    spend.release(reservation, f"refused before acceptance: {echoed}")
    ledger.mark_failed(lamp.clip_key, "invalid_api_key", echoed)
    ledger.mark_in_doubt(lamp.clip_key, "unanswered_create", f"a create may have been paid; GET /videos answered {echoed}")
    ledger.record_action(lamp.clip_key, "note", {"reason": echoed, "tried": [echoed]})
    ledger.claim_create(clip_key="k2", shot_id="s2", part=1, model=lamp.model, size=lamp.size, seconds=4,
                        prompt_sha256=lamp.prompt_sha256, owner=owner)
    ledger.record_job("k2", VideoJob(id="video_k2", status="queued"), how="created")
    ledger.update_job("k2", VideoJob(id="video_k2", status="failed", error_code="auth", error_message=echoed))
    WatchedPrices(ledger).record("gateway", {"m": {"1280x720": Decimal("0.1")}}, source=f"https://prices.example/list.json?token={KEY}")

    stored = raw_rows(ledger_url)
    assert KEY not in stored and "sk-ledger-echo%2Bcanary%2F8d1f" not in stored
    assert stored.count("REDACTED") >= 6, stored
    # what soraflow reads back says what happened, without the key
    entry = ledger.get(lamp.clip_key)
    assert entry.state == "in_doubt" and entry.error_message.endswith("answered 401: key=REDACTED not found in db (sent as REDACTED)")
    ledger.close()
