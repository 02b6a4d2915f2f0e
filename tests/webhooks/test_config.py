"""The receiver's configuration: a webhook secret is registered as a secret where it is read
(from its variable or its Prefect Secret block), so no message can carry it, whole or its key
part alone."""

from __future__ import annotations

import pytest

from soraflow.errors import CatalogError, SoraflowError
from soraflow.models import load_catalog
from soraflow.redaction import redact_text
from soraflow.simulator.webhooks import new_secret
from soraflow.webhooks import receiver_endpoints

MODELS = """
endpoints:
  openai: {webhooks: {url: https://hooks.example.com/webhooks/openai, secret_env: TEST_WEBHOOK_SECRET}}
  gateway:
    base_url: http://127.0.0.1:4000/v1
    auth: none
    webhooks: {url: https://hooks.example.com/webhooks/gateway, secret_block: gateway-webhook-secret}
"""


def test_a_webhook_secret_read_from_its_variable_or_its_block_is_redacted_from_every_message():
    from_env, from_block = new_secret(), new_secret()
    for secret in (from_env, from_block):  # not yet read: nothing to redact
        assert secret in redact_text(f"echoed {secret}")

    endpoints = receiver_endpoints(load_catalog(text=MODELS), {"TEST_WEBHOOK_SECRET": from_env},
                                   read_block={"gateway-webhook-secret": from_block}.__getitem__)

    assert set(endpoints) == {"openai", "gateway"}
    assert endpoints["gateway"].secret_source == "the Prefect Secret block 'gateway-webhook-secret'"
    for secret in (from_env, from_block):
        key = secret.removeprefix("whsec_")
        for text in (f"an endpoint echoed {secret}", f"the key part {key} alone"):
            assert secret not in redact_text(text) and key not in redact_text(text)
        # every SoraflowError's message is redacted as it is raised
        assert key not in str(SoraflowError(f"gateway said: bad signature with {secret}"))
    assert all(secret not in repr(e) for e in endpoints.values() for secret in (from_env, from_block))


def test_a_secret_without_its_prefix_is_refused_without_being_shown():
    bare = new_secret().removeprefix("whsec_")
    with pytest.raises(CatalogError) as err:
        receiver_endpoints(load_catalog(text=MODELS), {"TEST_WEBHOOK_SECRET": bare}, read_block=lambda name: new_secret())
    assert "does not start with whsec_" in str(err.value) and "$TEST_WEBHOOK_SECRET" in str(err.value)
    assert bare not in str(err.value)
