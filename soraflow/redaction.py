"""Credentials out of every URL and message soraflow prints, logs, stores or raises.

**By value.** Every secret the process resolves (an endpoint's key, a Secret block's value, a
token, a webhook or signing secret) is registered with ``register_secret`` where it is read.
``redact_text`` then removes it, and its URL-encoded and base64 forms, from any text: an endpoint
may echo the key it received in its error message, and that message must not reach a log, a
state, the ledger or the terminal. This is the one place secrets are registered.

**Everything that leaves the process.** ``install_redaction()``, called once where a process
starts (the CLI, a flow run on a worker, the simulator server), makes every log record (its
message, arguments and traceback, whichever handler sends it: Prefect's API and console
handlers, the SDKs' loggers, uvicorn) and everything written to stdout and stderr pass
through the redaction. ``register_url_credentials`` registers what a URL carries (its userinfo
password, its signed or credential query values) where such a URL is read; ``redact_data``
removes secrets from data about to be stored or published (artifacts, events, JSON columns).

**Inside URLs.** Two kinds of secret travel inside URLs: userinfo (``http://user:secret@host/v1``, a gateway's
basic auth) and signed query parameters (a presigned S3 link carries the access key id in
``X-Amz-Credential``, its signature, and with temporary credentials the session token in
``X-Amz-Security-Token``). ``redact_url`` drops both from one URL; ``redact_text`` does it to
every URL inside a message, which is how errors from SDKs and endpoints are made safe before
they become a Prefect state, a log line or a terminal line. Every ``SoraflowError`` passes its
message through ``redact_text`` when it is raised.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import traceback
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

# scheme://userinfo@ : the userinfo is everything up to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s@'\"<>]+)@")
# Query parameters that carry a credential or a signature (AWS SigV4/SigV2, Azure SAS, GCS,
# and the generic names gateways use).
_SIGNED_PARAM = re.compile(
    r"(?<=[?&])(?P<name>(?:X-Amz-(?:Credential|Signature|Security-Token)|X-Goog-(?:Credential|Signature)|"
    r"AWSAccessKeyId|Signature|x-amz-security-token|sig|api[-_]?key|access[-_]?token|token|key)=)"
    r"(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)
REDACTED = "REDACTED"
# Shorter values are not registered: removing every "abc" from every message would garble it,
# and no real credential is this short.
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_secrets: dict[str, str] = {}  # each registered form -> the name it was registered under
_pattern: re.Pattern[str] | None = None


def _forms(value: str) -> set[str]:
    """``value`` as it may appear in text: raw, URL-encoded, and base64 (standard and URL-safe,
    with and without padding)."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote_plus(value, safe="")}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def register_secret(value: str | bytes | None, name: str = "secret") -> str | bytes | None:
    """Remember ``value`` as a secret of this process (``name`` says what it is, never shown
    with it) and return it unchanged, so a read can be wrapped: ``key = register_secret(env[...])``.
    ``None``, empty and too-short values are returned as they are and not registered."""
    global _pattern
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if not text or len(text) < MIN_SECRET_LENGTH:
        return value
    forms = _forms(text)
    with _lock:
        if all(f in _secrets for f in forms):
            return value
        for form in forms:
            _secrets.setdefault(form, name)
        # longest first: a secret that contains another is removed whole
        _pattern = re.compile("|".join(re.escape(f) for f in sorted(_secrets, key=len, reverse=True)))
    return value


def register_url_credentials(url: str | None, name: str = "URL credential") -> str | None:
    """Register the credentials ``url`` carries (its userinfo password, the values of its signed
    or credential query parameters) and return it unchanged: where a URL is read from a setting,
    a variable or a user's file, so an endpoint that echoes what it got removes nothing but them."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:  # a malformed port or bracket: nothing can be told apart in it
        return url
    if password:
        register_secret(unquote(password), f"{name} (userinfo)")
        # HTTP clients send userinfo as ``Authorization: Basic base64(user:password)``: the pair's
        # base64 forms are registered with it
        register_secret(f"{unquote(username or '')}:{unquote(password)}", f"{name} (userinfo)")
    for key, value in parse_qsl(parts.query, keep_blank_values=False):
        if _SIGNED_PARAM.search(f"?{key}={value or 'x'}"):
            register_secret(value, f"{name} ({key})")
    return url


def registered_secret_names() -> set[str]:
    """What kinds of secret are registered (names only: for tests and diagnostics)."""
    with _lock:
        return set(_secrets.values())


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret, in each of its forms, replaced by REDACTED."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None and text else text


def redact_url(url: str | None) -> str:
    """``url`` without userinfo, query or fragment: what may be shown of an endpoint."""
    if not url:
        return ""
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port or bracket: show none of it rather than guess
        return redact_text(str(url))
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` without any registered secret (by value), without the userinfo of any URL, and
    with signed query values replaced."""
    text = redact_secrets(text)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m.group("scheme"), text)
    return _SIGNED_PARAM.sub(lambda m: m.group("name") + REDACTED, text)


def redact_data(value: Any) -> Any:
    """``value`` with every string in it (dict keys and values, list items) redacted as
    ``redact_text`` does: JSON-like data about to be stored or published."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v) for v in value) if isinstance(value, list) else tuple(redact_data(v) for v in value)
    return value


# --- every text that leaves the process -----------------------------------------------------


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """A log record made safe to send anywhere: its message, arguments, traceback and stack.

    The arguments are redacted one by one where that is enough, so the record keeps its shape
    (uvicorn's access formatter unpacks them); otherwise the message is formatted and replaced.
    A traceback is formatted here, redacted, and kept as text only: a handler that renders the
    exception object itself (a rich traceback) would print what the exception holds unredacted.
    """
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a record whose arguments do not fit: logging reports it later
        message = None
    if message is not None and redact_text(message) != message:
        clean_msg = redact_text(record.msg) if isinstance(record.msg, str) else record.msg
        args = record.args
        if isinstance(args, tuple):
            clean_args: Any = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, Mapping):
            clean_args = {k: redact_text(v) if isinstance(v, str) else v for k, v in args.items()}
        else:
            clean_args = args
        record.msg, record.args = clean_msg, clean_args
        try:
            still = record.getMessage()
        except Exception:  # noqa: BLE001
            still = message
        if redact_text(still) != still:  # a secret inside an argument that is not a string
            record.msg, record.args = redact_text(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = redact_text(text)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


class RedactingStream:
    """A text stream that removes registered secrets (by value) from what is written to it.

    Only by value: URL userinfo and signed links are redacted where a message is made, and a
    command may print a credential-free URL whole. Everything else is the wrapped stream's.
    """

    def __init__(self, stream):
        self.unredacted = stream

    def write(self, text: str) -> int:
        self.unredacted.write(redact_secrets(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unredacted, name)


_factory_installed = False


def install_redaction() -> None:
    """Redact everything this process sends out: every log record at its making (so every
    handler, Prefect's API handler included, sends it clean) and every write to stdout and
    stderr. One call where a process starts; calling it again is harmless (streams replaced
    since, as a test runner does, are wrapped then)."""
    global _factory_installed
    with _lock:
        if not _factory_installed:
            previous = logging.getLogRecordFactory()

            def make_record(*args, **kwargs) -> logging.LogRecord:
                return redact_record(previous(*args, **kwargs))

            logging.setLogRecordFactory(make_record)
            _factory_installed = True
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, RedactingStream):
                setattr(sys, name, RedactingStream(stream))


def unredacted(stream):
    """The stream under ``install_redaction``'s wrapper: only for output that must carry a
    credential on purpose (``soraflow link`` prints presigned URLs)."""
    return stream.unredacted if isinstance(stream, RedactingStream) else stream


__all__ = [
    "REDACTED",
    "RedactingStream",
    "install_redaction",
    "redact_data",
    "redact_record",
    "redact_secrets",
    "redact_text",
    "redact_url",
    "register_secret",
    "register_url_credentials",
    "registered_secret_names",
    "unredacted",
]
