"""The job ledger: a durable record, keyed by clip key, of every paid job.

It is what makes "never pay twice" (docs/architecture.md, rule 3) hold across crashes, retries,
concurrent runs and machines: a clip is claimed before its create, its job id is recorded the
moment the create returns, and a claim left by a dead owner is reconciled against the provider
before anyone creates again (see ``Ledger``).

Two backends behind one interface (``_backends``): SQLite, the embedded default
(``SORAFLOW_STATE_DIR/ledger.sqlite``), for workers on one machine; Postgres
(``SORAFLOW_LEDGER_URL=postgresql+psycopg://...``) for workers on several. The schema is
versioned by Alembic migrations shipped in this package (``_migrate``).

The same database keeps the caps on clips in flight and creates per minute (``_slots``), so a
slot's dead holder is detected the way a claim's is, and the spend of every create, reserved
under the spend caps before it is sent (``_spend``), and the prices the model watch last saw
(``_prices``), what reviews decided: each shot's chosen take, the retakes asked for, the cut
approved (``_reviews``), and the webhook deliveries every waiting clip reads (``_deliveries``).
"""

from ._deliveries import DELIVERY_CHANNEL, Deliveries, Delivery, DeliveryOutcome, DeliveryWatch
from ._ledger import CLIP_REF_LENGTH, Claim, ClaimKind, JobHeldError, Ledger, LedgerAction, LedgerEntry
from ._owners import owner_alive, owner_id
from ._prices import WatchedPrice, WatchedPrices
from ._reviews import RETAKE_STATES, Reviews
from ._slots import Holding, Limit, LimitState, Slots, Wait
from ._spend import Spend, SpendCaps, cap_rows, parse_caps, summarize

__all__ = [
    "CLIP_REF_LENGTH", "Claim", "ClaimKind", "DELIVERY_CHANNEL", "Deliveries", "Delivery", "DeliveryOutcome", "DeliveryWatch", "Holding", "JobHeldError", "Ledger", "LedgerAction", "LedgerEntry", "Limit",
    "LimitState", "RETAKE_STATES", "Reviews", "Slots", "Spend", "SpendCaps", "Wait", "WatchedPrice", "WatchedPrices", "cap_rows", "owner_alive", "owner_id",
    "parse_caps", "summarize",
]
