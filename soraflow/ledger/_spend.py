"""The spend ledger and its caps: every create reserved before it is sent, settled after.

``Spend.reserve`` checks the caps and writes the reservation in one transaction that holds the
spend lock (SQLite: ``BEGIN IMMEDIATE``; Postgres: an advisory transaction lock), so concurrent
renders — threads, processes, or workers sharing a Postgres ledger — cannot together overshoot
a cap: each sees the reservations of the others. A reservation becomes ``paid`` once the create
answers with a job, ``released`` when the create certainly made nothing (refused before
acceptance, proven absent), and stays ``reserved`` while the create is in doubt: it may have
been paid, so it keeps counting.

Caps are per UTC day and month, over every endpoint and per endpoint. Reserved and paid both
count. The price is the plan's (the profile's at that moment), recorded with the endpoint.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import select, update

from ..errors import SpendCapError
from ..spend_caps import Period, SpendCaps, parse_caps  # noqa: F401 - re-exported by the ledger
from ._tables import spend

if TYPE_CHECKING:
    from ..plan import ClipSpec
    from ._ledger import Ledger

COUNTED = ("reserved", "paid")


def _periods(now: float) -> tuple[str, str]:
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return day, day[:7]


class Spend:
    """The ledger's spend rows: reserve under the caps, settle, release, and report."""

    def __init__(self, ledger: "Ledger"):
        self._engine = ledger._engine
        self._reader = ledger._reader
        self._backend = ledger._backend

    def reserve(self, spec: "ClipSpec", *, storyboard: str, owner: str, caps: SpendCaps) -> str:
        """Reserve the clip's price under ``caps`` (atomically, over every worker of the ledger);
        the reservation's id, or ``SpendCapError`` naming the cap, what counts against it and
        the clip's price (nothing written)."""
        with self._engine.begin() as conn:
            self._backend.lock_spend(conn)
            now = self._backend.now(conn)
            day, month = _periods(now)
            for endpoint, period, cap in caps.applying(spec.endpoint):
                where = [spend.c.state.in_(COUNTED), spend.c.day == day if period == "day" else spend.c.month == month]
                if endpoint is not None:
                    where.append(spend.c.endpoint == endpoint)
                # Summed here, not by SUM(): SQLite keeps prices as exact decimal text (ExactDecimal).
                counted = sum(conn.execute(select(spend.c.price_usd).where(*where)).scalars(), Decimal("0"))
                if counted + spec.price_usd > cap:
                    scope = f"endpoint {endpoint}" if endpoint else "all endpoints"
                    when = f"today ({day} UTC)" if period == "day" else f"this month ({month} UTC)"
                    raise SpendCapError(
                        f"clip {spec.label} (${spec.price_usd:.2f}) would exceed the {'daily' if period == 'day' else 'monthly'} "
                        f"spend cap of {scope}, ${cap:.2f}: ${counted:.2f} is reserved or paid {when}; nothing was created",
                        cap_usd=cap, counted_usd=counted, price_usd=spec.price_usd,
                    )
            rid = uuid.uuid4().hex
            conn.execute(
                spend.insert().values(
                    id=rid, clip_key=spec.clip_key, storyboard=storyboard, shot_id=spec.shot_id, part=spec.part,
                    profile=spec.profile, model=spec.model, endpoint=spec.endpoint, size=spec.size, seconds=spec.seconds,
                    price_usd=spec.price_usd, state="reserved", day=day, month=month, owner=owner, reserved_at=now,
                )
            )  # fmt: skip
        return rid

    def settle(self, reservation: str, job_id: str) -> None:
        """The create answered with ``job_id``: the reservation is paid."""
        self._set(reservation, "paid", job_id=job_id)

    def release(self, reservation: str, why: str) -> None:
        """The create certainly made nothing: the reservation stops counting."""
        self._set(reservation, "released", note=why)

    def release_open(self, clip_key: str, why: str) -> int:
        """Release the clip's open reservations (an earlier create proven to have made nothing)."""
        return self._set_where(spend.c.clip_key == clip_key, "released", note=why)

    def settle_open(self, clip_key: str, job_id: str) -> int:
        """An earlier create of the clip turned out to have made ``job_id``: its reservation is paid."""
        return self._set_where(spend.c.clip_key == clip_key, "paid", job_id=job_id)

    def _set(self, reservation: str, state: str, **values) -> None:
        self._set_where(spend.c.id == reservation, state, **values)

    def _set_where(self, where, state: str, **values) -> int:
        with self._engine.begin() as conn:
            now = self._backend.now(conn)
            return len(
                conn.execute(
                    update(spend).where(where, spend.c.state == "reserved").values(state=state, settled_at=now, **values).returning(spend.c.id)
                ).all()
            )

    def rows(self, *, since_day: str | None = None, clip_keys: Iterable[str] | None = None) -> list[dict]:
        """Every spend row (from ``since_day``, of these clips), oldest first, as plain dicts."""
        query = select(spend).order_by(spend.c.reserved_at)
        if since_day is not None:
            query = query.where(spend.c.day >= since_day)
        if clip_keys is not None:
            query = query.where(spend.c.clip_key.in_(list(clip_keys)))
        with self._reader.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def totals(self, now: float | None = None) -> dict[tuple[str | None, Period], Decimal]:
        """Reserved or paid today and this month (UTC), over all endpoints (None) and per endpoint."""
        day, month = _periods(now or time.time())
        out: dict[tuple[str | None, Period], Decimal] = {}
        for row in self.rows(since_day=f"{month}-01"):
            if row["state"] not in COUNTED:
                continue
            for endpoint in (None, row["endpoint"]):
                out[(endpoint, "month")] = out.get((endpoint, "month"), Decimal("0")) + row["price_usd"]
                if row["day"] == day:
                    out[(endpoint, "day")] = out.get((endpoint, "day"), Decimal("0")) + row["price_usd"]
        return out


def summarize(rows: list[dict], by: tuple[str, ...] = ("day", "storyboard", "profile", "endpoint")) -> list[dict[str, str]]:
    """Spend rows grouped by ``by``: clips and USD paid, reserved (in flight or in doubt), released."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        g = groups.setdefault(tuple(row[k] for k in by), {"clips": 0, "paid": Decimal("0"), "reserved": Decimal("0"), "released": Decimal("0")})
        g["clips"] += row["state"] != "released"
        g[row["state"]] += row["price_usd"]
    return [
        {**dict(zip(by, key)), "clips": str(g["clips"]), "paid_usd": f"{g['paid']:.2f}", "reserved_usd": f"{g['reserved']:.2f}",
         "released_usd": f"{g['released']:.2f}"}
        for key, g in sorted(groups.items())
    ]


def cap_rows(caps: SpendCaps, totals: dict[tuple[str | None, Period], Decimal]) -> list[dict[str, str]]:
    """Each cap beside what counts against it now (reserved or paid) and what is left."""
    rows = []
    for row in caps.rows():
        endpoint = None if row["endpoint"] == "all" else row["endpoint"]
        counted = totals.get((endpoint, row["period"]), Decimal("0"))  # type: ignore[index]
        left = max(Decimal(row["cap_usd"]) - counted, Decimal("0"))
        rows.append({**row, "counted_usd": f"{counted:.2f}", "left_usd": f"{left:.2f}"})
    return rows
