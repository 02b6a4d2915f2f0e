"""URLs and messages lose their credentials: userinfo and signed query parameters."""

from __future__ import annotations

from soraflow.errors import ModelUnavailableError, StorageError, TransientProviderError
from soraflow.redaction import redact_text, redact_url
from soraflow.settings import Settings

PRESIGNED = (
    "https://bucket.s3.amazonaws.com/films/film.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIACANARY0000000001%2F20261129%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261129T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzCANARYTOKEN&X-Amz-Signature=abc123"
)


def test_redact_url_keeps_scheme_host_port_and_path_only():
    assert redact_url("http://user:s3cret@gateway.local:4000/v1?key=abc#x") == "http://gateway.local:4000/v1"
    assert redact_url("http://[::1]:8080/v1") == "http://[::1]:8080/v1"
    assert redact_url(None) == ""


def test_redact_text_removes_userinfo_and_signed_parameters_inside_messages():
    text = f"could not reach http://user:s3cret@gateway.local/v1 ('http://a:b@h'); link {PRESIGNED}"
    cleaned = redact_text(text)
    for secret in ("s3cret", "a:b@", "AKIACANARY0000000001", "CANARYTOKEN", "abc123"):
        assert secret not in cleaned
    assert "http://gateway.local/v1" in cleaned and "X-Amz-Credential=REDACTED" in cleaned
    assert redact_text("clip-key=abc, seconds=4") == "clip-key=abc, seconds=4"  # not a URL's query


def test_every_soraflow_error_is_redacted_when_made():
    err = ModelUnavailableError("sora-2", "model sora-2 is not offered at http://user:s3cret@gw.local/v1")
    assert "s3cret" not in str(err) and "http://gw.local/v1" in str(err)
    err = TransientProviderError("reset by http://u:p@gw.local", code="connection").for_shot("s00")
    assert "u:p@" not in str(err) and "u:p@" not in err.provider_message
    assert "CANARYTOKEN" not in str(StorageError(f"could not fetch {PRESIGNED}"))


def test_an_endpoint_is_shown_without_userinfo(monkeypatch):
    from soraflow.models import builtin_catalog, route_endpoints
    from soraflow.providers import connect

    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:s3cret@gw.local:4000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-k")
    route = route_endpoints(builtin_catalog(), Settings().environment).route("openai")
    assert route.identity == "http://gw.local:4000/v1" and "s3cret" not in route.model_dump_json()
    connection = connect(route, Settings().environment)
    assert connection.where == "openai (http://gw.local:4000/v1)" and "sk-k" not in repr(connection)


def test_a_registered_secret_is_removed_by_value_in_each_of_its_forms():
    import base64
    from urllib.parse import quote

    from soraflow.redaction import register_secret, registered_secret_names

    key = "sk-echo/canary+7d2e9f1a=="
    assert register_secret(key, "test key") == key
    echoed = (
        f"key={key} not found in db; header {quote(key, safe='')}; basic {base64.b64encode(key.encode()).decode()}; "
        f"urlsafe {base64.urlsafe_b64encode(key.encode()).decode().rstrip('=')}"
    )
    cleaned = redact_text(echoed)
    assert key not in cleaned and quote(key, safe="") not in cleaned and "c2stZWNob" not in cleaned, cleaned
    assert cleaned.startswith("key=REDACTED not found in db")
    assert "test key" in registered_secret_names()
    # an error made from an endpoint's answer loses it too
    assert key not in str(TransientProviderError(f"401: invalid api key {key}", code="auth"))


def test_short_or_empty_values_are_not_secrets_to_remove():
    from soraflow.redaction import register_secret

    assert register_secret("", "empty") == "" and register_secret(None, "none") is None
    register_secret("abc", "short")
    assert redact_text("abc abcdef") == "abc abcdef"


# --- credentials inside URLs, data, and everything that leaves the process ------------------------


def test_a_urls_userinfo_password_and_credential_query_values_are_registered_where_it_is_read():
    from soraflow.redaction import register_url_credentials

    url = "https://gw-user:gw%2Bpass-71c3@prices.example/list.json?token=tok-9f2e41aa&region=eu"
    assert register_url_credentials(url, "pricing source") == url
    said = "fetching failed: password gw+pass-71c3 rejected; token tok-9f2e41aa expired; region eu"
    assert redact_text(said) == "fetching failed: password REDACTED rejected; token REDACTED expired; region eu"
    import base64

    basic = base64.b64encode(b"gw-user:gw+pass-71c3").decode()  # the header a client makes of the userinfo
    assert redact_text(f"Authorization: Basic {basic}") == "Authorization: Basic REDACTED"
    assert register_url_credentials("not a url") == "not a url" and register_url_credentials(None) is None


def test_redact_data_reaches_every_string_of_json_like_data():
    from soraflow.redaction import redact_data, register_secret

    register_secret("sk-data-canary-55e1", "test")
    data = {"reason": "key sk-data-canary-55e1 refused", "n": 3, "rows": [("a", "sk-data-canary-55e1"), None], "sk-data-canary-55e1": 1}
    assert redact_data(data) == {"reason": "key REDACTED refused", "n": 3, "rows": [("a", "REDACTED"), None], "REDACTED": 1}


def test_a_log_record_is_redacted_in_its_message_arguments_and_traceback():
    import logging

    from soraflow.redaction import redact_record, register_secret

    key = "sk-log-canary-0a7d3e"
    register_secret(key, "test")
    # arguments redacted one by one: the record keeps its shape (uvicorn's access log unpacks them)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, '%s - "%s %s" %d', ("127.0.0.1", "GET", f"/v1?k={key}", 401), None)
    redact_record(record)
    assert record.args == ("127.0.0.1", "GET", "/v1?k=REDACTED", 401) and key not in record.getMessage()
    # a secret inside an argument that is no string: the message is formatted and replaced
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", (ValueError(f"bad key {key}"),), None)
    redact_record(record)
    assert record.getMessage() == "failed: bad key REDACTED" and record.args == ()
    try:
        raise RuntimeError(f"answer was {key}") from KeyError(key)
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    redact_record(record)
    # the traceback is kept as redacted text only: a handler rendering the exception object
    # itself (a rich traceback) would print it whole
    assert record.exc_info is None and "RuntimeError: answer was REDACTED" in record.exc_text and key not in record.exc_text
    formatted = logging.Formatter().format(record)
    assert "boom" in formatted and "KeyError" in formatted and key not in formatted


def test_install_redaction_covers_every_handler_and_both_streams(capsys):
    import io
    import logging
    import sys

    from soraflow.redaction import RedactingStream, install_redaction, register_secret, unredacted

    key = "sk-installed-canary-2b4f"
    register_secret(key, "test")
    install_redaction()
    install_redaction()  # harmless twice
    assert isinstance(sys.stdout, RedactingStream) and not isinstance(sys.stdout.unredacted, RedactingStream)
    buffer = io.StringIO()
    logger = logging.getLogger("soraflow.tests.installed")
    handler = logging.StreamHandler(buffer)
    logger.addHandler(handler)
    try:
        logger.warning("an SDK said %s", f"invalid key {key}")
        logger.warning(f"http://user:{key}@gateway.local/v1 refused")
    finally:
        logger.removeHandler(handler)
    print(f"printed {key}")
    sys.stderr.write(f"written {key}\n")
    unredacted(sys.stdout).write(f"on purpose {key}\n")  # soraflow link's presigned URLs
    out, err = capsys.readouterr()
    assert buffer.getvalue() == "an SDK said invalid key REDACTED\nhttp://gateway.local/v1 refused\n"
    assert "printed REDACTED" in out and f"on purpose {key}" in out and err == "written REDACTED\n"


def test_a_terminal_line_never_shows_part_of_a_registered_key():
    from soraflow.redaction import register_secret
    from soraflow.terminal import printable

    key = "sk-terminal-canary-" + "9" * 60
    register_secret(key, "test")
    shown = printable(f"error {key} at the end", 40)
    assert "canary" not in shown and "REDACTED" in printable(f"error {key}")
