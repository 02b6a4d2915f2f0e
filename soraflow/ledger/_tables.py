"""The ledger's tables as the code reads and writes them (the schema at the migrations' head).

The migrations under ``migrations/versions`` build this schema step by step; a test compares a
freshly migrated database with these tables on both backends, so the two cannot drift apart.
Times are seconds since the epoch (as in round 1); money is exact (``ExactDecimal``). Columns
that hold what endpoints, errors and users said (``RedactedText``, ``RedactedJSON``) lose every
registered secret on the way in, whichever statement writes them.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, MetaData, Numeric, Table, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator

from ..redaction import redact_data, redact_text

metadata = MetaData()


class RedactedText(TypeDecorator):
    """Text that may quote an endpoint (an error message, a reason, a note): every registered
    secret, URL userinfo and signed link removed before it is written (soraflow.redaction)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return redact_text(value) if isinstance(value, str) else value


class RedactedJSON(TypeDecorator):
    """JSON whose strings are redacted as ``RedactedText`` is, before it is written."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return redact_data(value)


class ExactDecimal(TypeDecorator):
    """A Decimal stored exactly: NUMERIC on Postgres, its decimal text on SQLite.

    SQLAlchemy's Numeric on SQLite goes through a float (SQLite has no decimal type), and a
    price must come back to the cent as it went in. Floats are refused on the way in.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("price_usd must be a Decimal (or its text), never a float")
        value = Decimal(value)
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


clips = Table(
    "clips",
    metadata,
    Column("clip_key", Text, primary_key=True),
    Column("shot_id", Text, nullable=False),
    Column("part", Integer, nullable=False),
    Column("model", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("prompt_sha256", Text, nullable=False),
    # claimed (nothing sent) | creating (sent, no answer yet) | in_doubt | submitted | completed | failed | lost
    Column("state", Text, nullable=False),
    Column("owner", Text),
    Column("create_started", Double),
    Column("lease_until", Double),
    Column("job_id", Text),
    Column("submitted_at", Double),
    Column("job_status", Text),
    Column("progress", Integer, server_default="0"),
    Column("error_code", Text),
    Column("error_message", RedactedText),
    Column("local_path", Text),
    Column("sha256", Text),
    Column("storage_uri", Text),
    Column("updated_at", Double, nullable=False),
    # revision 0002: where the clip is generated and what it costs (optional)
    Column("endpoint", Text),
    Column("profile", Text),
    Column("price_usd", ExactDecimal),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("clip_key", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # created | reconciled
    Column("how", Text, nullable=False),
    Index("ix_jobs_clip_key", "clip_key"),
)

# Append-only: user actions (adopt, re-create, release, forget) and notable events (a claim
# taken over from a dead owner, a job adopted after an unanswered create, a clip regenerated).
ledger_actions = Table(
    "ledger_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("clip_key", Text),
    Column("action", Text, nullable=False),
    Column("detail", RedactedJSON),
    Column("actor", Text, nullable=False),
    Index("ix_ledger_actions_clip_key", "clip_key"),
)

# revision 0003: the caps on clips in flight and the creates-per-minute rates, kept beside the
# claims so that a dead owner is detected the same way (its pid on this host, its lease elsewhere).
# One row per limit: its capacity, its rate (a token bucket: ``tokens`` as of ``refilled_at``),
# and where its figures come from (a setting, a profile, an endpoint entry).
slot_limits = Table(
    "slot_limits",
    metadata,
    Column("name", Text, primary_key=True),
    Column("capacity", Integer, nullable=False),
    Column("per_minute", Integer),
    Column("tokens", Double),
    Column("refilled_at", Double),
    Column("source", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

# One row per slot held: which limit, by whom (``owner`` as in clips: host:pid:thread), for which
# clip and run (what a waiting render shows), and until when its lease runs (renewed while held).
slot_holders = Table(
    "slot_holders",
    metadata,
    Column("id", Text, primary_key=True),
    Column("limit_name", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("clip_key", Text),
    Column("holder", Text, nullable=False),
    Column("acquired_at", Double, nullable=False),
    Column("lease_until", Double, nullable=False),
    Index("ix_slot_holders_limit_name", "limit_name"),
)

# revision 0004: the spend ledger. One row per create: reserved (under the caps) before it is
# sent, paid once its job is known, released when the create certainly made nothing. A create in
# doubt keeps its reservation: it may have been paid. ``day``/``month`` are the UTC period the
# row counts against (by the database's clock when it was reserved).
spend = Table(
    "spend",
    metadata,
    Column("id", Text, primary_key=True),
    Column("clip_key", Text, nullable=False),
    Column("storyboard", Text, nullable=False),
    Column("shot_id", Text, nullable=False),
    Column("part", Integer, nullable=False),
    Column("profile", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("size", Text, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("price_usd", ExactDecimal, nullable=False),
    # reserved | paid | released
    Column("state", Text, nullable=False),
    Column("day", Text, nullable=False),
    Column("month", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("job_id", Text),
    Column("reserved_at", Double, nullable=False),
    Column("settled_at", Double),
    Column("note", RedactedText),
    Index("ix_spend_month", "month"),
    Index("ix_spend_clip_key", "clip_key"),
)

# revision 0005: what the model watch last priced each model and size at, per endpoint identity
# (the pricing source over the profiles), so an estimate can use today's prices without Prefect.
# ``since``: when the price became this value; ``watched_at``: the watch that last saw it.
watched_prices = Table(
    "watched_prices",
    metadata,
    Column("endpoint", Text, primary_key=True),
    Column("model", Text, primary_key=True),
    Column("size", Text, primary_key=True),
    Column("usd_per_second", ExactDecimal, nullable=False),
    Column("source", RedactedText, nullable=False),
    Column("since", Double, nullable=False),
    Column("watched_at", Double, nullable=False),
)

# revision 0006_takes: what reviews decided, per storyboard (its title) and shot. The take the
# film uses; every retake asked for (its number fixed when asked; ``state`` requested | refused |
# failed, ``note`` why); the cut last approved. ``decision`` names the flow run and review round
# that decided, so a decision replayed after a resumed suspend changes nothing.
take_choices = Table(
    "take_choices",
    metadata,
    Column("storyboard", Text, primary_key=True),
    Column("shot_id", Text, primary_key=True),
    Column("take", Integer, nullable=False),
    Column("decision", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("decided_at", Double, nullable=False),
)

retakes = Table(
    "retakes",
    metadata,
    Column("storyboard", Text, primary_key=True),
    Column("shot_id", Text, primary_key=True),
    Column("take", Integer, primary_key=True),
    Column("prompt_change", Text, nullable=False),
    Column("seed", BigInteger),
    Column("state", Text, nullable=False),
    Column("note", Text),
    Column("decision", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("requested_at", Double, nullable=False),
    UniqueConstraint("decision", name="uq_retakes_decision"),
)

review_approvals = Table(
    "review_approvals",
    metadata,
    Column("storyboard", Text, primary_key=True),
    Column("cut_sha256", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("approved_at", Double, nullable=False),
)

# revision 0007_webhooks: every verified webhook delivery matched to a clip's job, kept where
# every worker sees it (a waiting clip reads it here, woken on Postgres by NOTIFY). One row per
# (endpoint, delivery id): a redelivery is a no-op. ``event``: completed | failed; ``detail``:
# the provider's error code and message for a failure, bounded. A delivery is only a hint: the
# clip's own row changes after one status call confirms it.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("endpoint", Text, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("job_id", Text, nullable=False),
    Column("clip_key", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("detail", JSON),
    Column("signed_at", Double, nullable=False),
    Column("received_at", Double, nullable=False),
    Index("ux_webhook_deliveries_endpoint_delivery", "endpoint", "delivery_id", unique=True),
    Index("ix_webhook_deliveries_clip_key", "clip_key"),
)
