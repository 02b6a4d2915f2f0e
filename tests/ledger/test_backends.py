"""Choosing and opening a backend: URLs, drivers, clean errors, secrets, exact money, clocks."""

from __future__ import annotations

import sys
import time
from decimal import Decimal

import pytest
from sqlalchemy.exc import StatementError
from typer.testing import CliRunner

from soraflow.cli import app
from soraflow.errors import LedgerError
from soraflow.ledger import ClaimKind, Ledger, owner_id
from soraflow.settings import Settings
from tests.fixtures.postgres import PG_TEST_PASSWORD, PG_TEST_USER

CLIP = dict(clip_key="k1", shot_id="a", part=1, model="sora-2", size="1280x720", seconds=8, prompt_sha256="p")


def test_a_path_or_a_sqlite_url_is_sqlite_and_a_postgres_url_is_postgres(tmp_path, postgres_server):
    assert Ledger(tmp_path / "a" / "l.sqlite").backend == "sqlite"
    assert Ledger(f"sqlite:///{tmp_path / 'b' / 'l.sqlite'}").backend == "sqlite"
    assert (tmp_path / "a" / "l.sqlite").exists() and (tmp_path / "b" / "l.sqlite").exists()
    url = postgres_server.fresh_schema()
    assert Ledger(url).backend == "postgresql"
    assert Ledger(url.replace("postgresql+psycopg://", "postgresql://")).backend == "postgresql"  # psycopg, not psycopg2


@pytest.mark.parametrize(
    "url, says",
    [
        ("mysql://u:p@h/db", "'mysql' is not supported; allowed: sqlite:///PATH or postgresql+psycopg://"),
        ("postgresql+asyncpg://u:p@h/db", "'postgresql+asyncpg' is not supported"),
        ("sqlite://", "a ledger in memory forgets what was paid"),
        ("sqlite:///:memory:", "a ledger in memory forgets what was paid"),
    ],
)
def test_unsupported_urls_are_refused_in_one_line(url, says):
    with pytest.raises(LedgerError, match=says.replace("(", r"\(").replace("+", r"\+")) as err:
        Ledger(url)
    assert "\n" not in str(err.value) and ":p@" not in str(err.value)


def test_a_postgres_url_without_the_driver_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if soraflow[postgres] were not installed
    with pytest.raises(LedgerError, match=r"psycopg is not installed: pip install 'soraflow\[postgres\]'"):
        Ledger("postgresql+psycopg://u:p@127.0.0.1:9/db")


def test_unreachable_or_refusing_postgres_is_one_clean_line_without_credentials(postgres_server):
    wrong = postgres_server.url().replace(PG_TEST_PASSWORD, "not-the-password-4242")
    with pytest.raises(LedgerError) as err:
        Ledger(wrong)
    message = str(err.value)
    assert message.startswith(f"cannot open the ledger at postgresql+psycopg://127.0.0.1:{postgres_server.port}/postgres: ")
    assert "password authentication failed" in message
    assert "not-the-password-4242" not in message and PG_TEST_USER not in message and "\n" not in message

    closed = postgres_server.url().replace(f":{postgres_server.port}/", ":9/")
    with pytest.raises(LedgerError, match=r"cannot open the ledger at postgresql\+psycopg://127.0.0.1:9/postgres: "):
        Ledger(closed)


def test_render_with_a_wrong_ledger_url_fails_in_one_line_before_starting(lighthouse, tmp_path, monkeypatch, postgres_server):
    monkeypatch.setenv("SORAFLOW_LEDGER_URL", postgres_server.url().replace(PG_TEST_PASSWORD, "wrong-pw-7777"))
    res = CliRunner().invoke(app, ["render", str(lighthouse), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    said = " ".join(res.output.split())  # rich wraps long lines
    assert "error: cannot open the ledger at postgresql+psycopg://127.0.0.1:" in said and 'failed for user "***"' in said
    assert "wrong-pw-7777" not in said and PG_TEST_USER not in said and "Traceback" not in said
    assert not (tmp_path / "out").exists()


def test_settings_keep_the_ledger_url_secret(tmp_path, monkeypatch, postgres_server):
    url = postgres_server.fresh_schema()
    monkeypatch.setenv("SORAFLOW_LEDGER_URL", url)
    s = Settings()
    assert s.resolved_ledger_url == url
    assert PG_TEST_PASSWORD not in repr(s) and PG_TEST_PASSWORD not in str(s.model_dump())
    assert PG_TEST_PASSWORD not in repr(Ledger(s.resolved_ledger_url))
    monkeypatch.delenv("SORAFLOW_LEDGER_URL")
    monkeypatch.setenv("SORAFLOW_STATE_DIR", str(tmp_path))
    assert Settings().resolved_ledger_url == str(tmp_path / "ledger.sqlite")


def test_a_lease_shorter_than_a_create_is_refused_without_quoting_other_settings(monkeypatch, tmp_path):
    from soraflow.errors import InvalidSettingError

    monkeypatch.setenv("SORAFLOW_LEDGER_URL", f"postgresql+psycopg://u:{PG_TEST_PASSWORD}@h/db")
    monkeypatch.setenv("SORAFLOW_REQUEST_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("SORAFLOW_LEDGER_LEASE_SECONDS", "60")
    with pytest.raises(InvalidSettingError, match=r"^invalid setting SORAFLOW_LEDGER_LEASE_SECONDS \(60\) must be at least SORAFLOW_REQUEST_TIMEOUT_SECONDS \(60\) \+ 30") as err:
        Settings()
    assert PG_TEST_PASSWORD not in str(err.value) and "postgresql" not in str(err.value)
    monkeypatch.setenv("SORAFLOW_LEDGER_LEASE_SECONDS", "90")
    monkeypatch.setenv("SORAFLOW_LEDGER_URL", f"sqlite:///{tmp_path / 'l.sqlite'}")
    led = Ledger.from_settings(Settings())
    assert (led.backend, led.lease_seconds) == ("sqlite", 90.0)


def test_prices_are_exact_and_floats_are_refused(ledger_url):
    led = Ledger(ledger_url)
    price = Decimal("0.1") + Decimal("0.2") + Decimal("0.000001")  # 0.300001: a float would not round-trip
    led.claim_create(**CLIP, owner=owner_id(), endpoint="gateway", profile="gateway-veo", price_usd=price)
    entry = led.get("k1")
    assert (entry.price_usd, entry.endpoint, entry.profile) == (Decimal("0.300001"), "gateway", "gateway-veo")
    with pytest.raises(StatementError, match="never a float"):
        led.claim_create(**{**CLIP, "clip_key": "k2"}, owner=owner_id(), price_usd=0.3)


def test_actions_are_appended_in_order_with_their_detail(ledger_url):
    led = Ledger(ledger_url)
    led.record_action("k1", "adopt", {"job_id": "video_7", "by": "cli"}, actor="alice@laptop")
    led.record_action(None, "note", "ledger moved to Postgres")
    acts = led.actions()
    assert [(a.clip_key, a.action, a.detail, a.actor) for a in acts] == [
        ("k1", "adopt", {"job_id": "video_7", "by": "cli"}, "alice@laptop"),
        (None, "note", "ledger moved to Postgres", owner_id()),
    ]
    assert acts[0].id < acts[1].id and acts[0].at <= acts[1].at <= time.time()
    assert led.actions("k1") == acts[:1]


def test_postgres_judges_leases_by_its_own_clock(postgres_server, monkeypatch):
    """A worker whose clock runs an hour fast must not take over another host's live claim."""
    led = Ledger(postgres_server.fresh_schema(), lease_seconds=300.0)
    led.claim_create(**CLIP, owner="other-host:1:1")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    assert led.claim_create(**CLIP, owner=owner_id()).kind is ClaimKind.WAIT
