"""Typed errors: every failure soraflow reports falls into one of these families.

The families decide what happens next (docs/architecture.md, rule 6):
- ``StoryboardError`` / ``ModelsFileError``: the input is wrong; nothing was spent; the message
  names the field.
- ``EndpointNotConfiguredError``: a plan needs an endpoint with no credentials here.
- ``TransientProviderError``: worth retrying with backoff (429, 5xx, resets, stalls).
- ``ClipInDoubtError``: a create may have been paid and nothing proves whether it made a job;
  the clip waits for the user's word (``soraflow jobs``), never for a guess; not retried.
- ``PermanentProviderError``: retrying cannot help (moderation, invalid parameters,
  a retired model, an answer that fails a check); the shot and the provider's message are named.
- ``BudgetExceededError`` / ``SpendCapError``: what a run can pay is above the budget, or a clip
  would exceed a spend cap; nothing was spent for it.
- ``MediaError`` / ``StorageError``: a clip or film could not be validated or stored.
- ``LedgerError``: the job ledger cannot be opened or used (its URL, driver or schema).
- ``UnexpectedError``: anything else, as it may be stored (``safe_error``): the original's type
  name and a redacted, bounded message, never the original object.
- ``InvalidSettingError``: a ``SORAFLOW_*`` variable (or an option) soraflow cannot use; one
  line naming it, its value (never a secret's) and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ValidationError

from .redaction import redact_text
from .terminal import printable

SHOWN_VALUE_CHARS = 80
# The most of an unclassified error's message that is kept: an SDK's message may quote a whole
# response body (an HTML page, a JSON document).
UNEXPECTED_MESSAGE_CHARS = 500


class SoraflowError(Exception):
    """Base of every error soraflow raises on purpose.

    Its message never carries a registered secret, a URL's userinfo or a signed link's
    credentials: they are removed when the error is made, before it can reach a state, a log, a
    result or a terminal. Pickled (Prefect's result storage), it keeps its message and its own
    attributes only: never its cause, context or traceback, and ``__init__`` is not run again.
    """

    def __init__(self, *args):
        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))

    def __reduce__(self):
        return _rebuilt, (type(self), self.args, dict(self.__dict__))


def _rebuilt(cls: type, args: tuple, state: dict) -> "SoraflowError":
    """A pickled SoraflowError as it was: its class, message and attributes (subclasses take
    other arguments than their message, so their ``__init__`` is not called again)."""
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class UnexpectedError(SoraflowError):
    """An error soraflow does not classify, made safe to keep: the original's type name and its
    message, redacted and bounded. The original is never kept: an SDK exception may hold the
    response (with the request and its headers) or the whole body it failed to parse
    (``json.JSONDecodeError.doc``), and Prefect pickles a task's exception into result storage."""

    def __init__(self, message: str, *, type_name: str = "Exception"):
        self.type_name = type_name
        super().__init__(message)


def safe_error(err: BaseException) -> "SoraflowError":
    """``err`` as it may be raised out of a task or a flow: a SoraflowError as it is (its message
    is redacted already), anything else as an ``UnexpectedError`` of the same type name."""
    if isinstance(err, SoraflowError):
        return err
    name = type(err).__name__
    message = " ".join(redact_text(str(err)).split())
    if len(message) > UNEXPECTED_MESSAGE_CHARS:
        message = message[: UNEXPECTED_MESSAGE_CHARS - 1] + "…"
    return UnexpectedError(f"{name}: {message}" if message else name, type_name=name)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file the user wrote: where, what was found, what is allowed."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def shown_value(value: Any) -> str:
    """A value as a message shows it: repr (control characters escaped), shortened."""
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return printable(repr(value), SHOWN_VALUE_CHARS)


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    """``("shots", 2, "seconds")`` → ``shots[2].seconds`` (after ``prefix``, if any)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...], hidden: frozenset[str]) -> list[str]:
    """The keys the model at ``loc`` (the parent of an unknown key) accepts."""
    model = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            break
        ann = field.annotation
        candidates = [ann, *(getattr(ann, "__args__", None) or ())]
        nxt = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nxt is None:
            break
        model = nxt
    return sorted(k for k in model.model_fields if k not in hidden)


def problems_from_validation(
    err: ValidationError,
    root: type[BaseModel],
    *,
    prefix: str = "",
    hidden: frozenset[str] = frozenset(),
    explain: Callable[[dict], str | None] | None = None,
) -> list[Problem]:
    """One Problem per pydantic error: the field path, the value found and what is allowed.

    ``explain`` may word an error its own way (return None to keep the default wording).
    """
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        value = e.get("input")
        message = explain(e) if explain else None
        if message is not None:
            pass
        elif e["type"] == "extra_forbidden":
            message = f"unknown key; allowed keys: {', '.join(_allowed_keys(root, loc, hidden))}"
        elif e["type"] == "missing":
            message = "is required"
        elif e["type"] == "value_error" and isinstance(value, dict):
            message = str(e.get("ctx", {}).get("error") or e["msg"])  # a rule across several fields
        else:
            message = f"{shown_value(value)} is not allowed: {e['msg']}"
        problems.append(Problem(field_path(loc, prefix), message))
    return problems


class InvalidInputError(SoraflowError):
    """A file the user wrote is invalid. Carries every problem found, each naming its field path."""

    what = "input"

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"invalid {self.what} {source}" if source else f"invalid {self.what}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}:\n{lines}")


class StoryboardError(InvalidInputError):
    """The storyboard is invalid; nothing was spent."""

    what = "storyboard"


class CatalogError(SoraflowError):
    """A model profile, size or clip length that the model catalog does not offer."""


class ModelsFileError(InvalidInputError):
    """The model profiles and endpoints file (or Variable) is invalid."""

    what = "models file"


class EndpointNotConfiguredError(SoraflowError):
    """A plan uses an endpoint that has no credentials here, while other endpoints do.

    Refused before anything is spent, naming the endpoint and the variable to set.
    """


class ProviderError(SoraflowError):
    """A failure reported by (or while talking to) the video provider."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        shot_id: str | None = None,
        retry_after: float | None = None,
    ):
        self.provider_message = redact_text(message)
        self.code = code
        self.status = status
        self.shot_id = shot_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"shot {self.shot_id!r}: " if self.shot_id else ""
        return f"{where}{self.detail}"

    @property
    def detail(self) -> str:
        """The provider's message with its code and status, without the shot (for a line that
        already names it)."""
        code = f" [{self.code}]" if self.code else ""
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.provider_message}{code}{status}"

    def for_shot(self, shot_id: str) -> "ProviderError":
        """The same error, naming the shot it happened to."""
        self.shot_id = shot_id
        self.args = (self._render(),)
        return self


class TransientProviderError(ProviderError):
    """Retrying later may succeed: rate limits, server errors, resets, stalls."""


class RetryAfterTooLongError(TransientProviderError):
    """The endpoint asks to wait longer than soraflow will (``SORAFLOW_MAX_RETRY_AFTER_SECONDS``).

    Transient (a later rerun may pass) but not retried now: retrying means waiting as asked.
    """


class AmbiguousCreateError(TransientProviderError):
    """A create request was sent but its answer was lost: the job may exist.

    Never answered by a blind retry: the ledger reconciles against the provider's job list.
    """


class ClipInDoubtError(ProviderError):
    """A create may have reached the provider, and nothing proves whether it made a job.

    Neither retried nor created again (docs/architecture.md, rule 4): the message names the
    clip, what was tried, and the commands that settle it.
    """


class PermanentProviderError(ProviderError):
    """Retrying cannot help: the request or its content is refused."""


class ModerationBlockedError(PermanentProviderError):
    """The provider refused the prompt or the generated content."""


class ModelUnavailableError(PermanentProviderError):
    """The model is retired or not offered by this endpoint."""

    def __init__(self, model: str, message: str, *, shutdown_date: str | None = None, **kw):
        self.model = model
        self.shutdown_date = shutdown_date
        super().__init__(message, **kw)


class JobLostError(PermanentProviderError):
    """A job the ledger knows is gone at the provider (expired or deleted).

    Only the job's own routes (retrieve, content) can say so; a 404 elsewhere is
    ``RouteNotServedError``.
    """


class RouteNotServedError(PermanentProviderError):
    """The endpoint does not serve a route (a 404 on the job list, or on create)."""


class UntrustedAnswerError(PermanentProviderError):
    """An answer failed a check before it was trusted (docs/architecture.md, rule 7): a job id
    another clip holds, a size or length other than asked, a status or content type that makes
    no sense."""


class ClipTimeoutError(PermanentProviderError):
    """A clip did not reach a terminal state before its deadline."""


class BudgetExceededError(SoraflowError):
    """What a run can pay exceeds the budget (or a spend cap); nothing has been created."""

    def __init__(self, estimate_usd: float, budget_usd: float, detail: str | None = None):
        self.estimate_usd = estimate_usd
        self.budget_usd = budget_usd
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"estimated cost ${estimate_usd:.2f} exceeds the budget ${budget_usd:.2f}{why}; "
            "nothing was created (raise --budget or shorten the storyboard)"
        )


class SpendCapError(SoraflowError):
    """A create would exceed a spend cap (per day or month, overall or per endpoint), or the caps
    are not valid amounts; the clip was not created."""

    def __init__(self, message: str, *, cap_usd=None, counted_usd=None, price_usd=None):
        self.cap_usd, self.counted_usd, self.price_usd = cap_usd, counted_usd, price_usd
        super().__init__(message)


class InvalidBudgetError(SoraflowError):
    """A budget that is not a finite amount of USD of at least 0; nothing has been created."""

    def __init__(self, budget: object):
        self.budget = budget
        super().__init__(f"budget {budget!r} is not allowed: give a finite amount of USD, 0 or more (e.g. 5 or 12.50)")


class MediaError(SoraflowError):
    """A clip or film failed validation or assembly; names the file and ffmpeg's message."""


class StorageError(SoraflowError):
    """An object could not be stored or verified."""


class InvalidSettingError(SoraflowError):
    """A setting (a ``SORAFLOW_*`` variable, or a command's option) has a value soraflow cannot
    use: the message names the variable, shows its value (never a secret's) and what is allowed,
    on one line."""


class LedgerError(SoraflowError):
    """The job ledger cannot be opened or used; names the ledger (never its credentials)."""
