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
