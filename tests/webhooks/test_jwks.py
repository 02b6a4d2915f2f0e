"""fal's signing keys: read from its JWKS over HTTP, cached for their age, read again when a
signature verifies with none of them (a rotated key), never more than once per interval."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from soraflow.simulator import Simulator, SimulatorConfig
from soraflow.simulator.webhooks import JWKS_PATH
from soraflow.webhooks.jwks import JwksKeys, JwksUnavailable, parse_jwks


@pytest.fixture
def sim(tmp_path):
    with Simulator(SimulatorConfig(cache_dir=str(tmp_path))) as s:
        yield s


def test_a_rotated_key_is_read_again_at_most_once_per_interval(sim):
    keys = JwksKeys(sim.url + JWKS_PATH, min_refresh_seconds=0.5)
    old = sim.state.webhooks.fal_key
    assert asyncio.run(keys.verify(b"m", old.sign(b"m"))) and keys.fetches == 1
    assert asyncio.run(keys.verify(b"m", old.sign(b"m"))) and keys.fetches == 1  # cached

    sim.state.webhooks.fal_key = new = Ed25519PrivateKey.generate()  # fal rotates its key
    assert not asyncio.run(keys.verify(b"m", new.sign(b"m")))  # just read: not again so soon
    forged = Ed25519PrivateKey.generate()
    assert not any(asyncio.run(keys.verify(b"m", forged.sign(b"m"))) for _ in range(20))
    assert keys.fetches == 1  # a flood of forgeries asked fal for nothing
    time.sleep(0.6)
    assert asyncio.run(keys.verify(b"m", new.sign(b"m"))) and keys.fetches == 2  # read again: the new key verifies
    assert not asyncio.run(keys.verify(b"m", old.sign(b"m")))  # the old one is gone with its JWKS


def test_keys_older_than_their_age_are_read_again(sim):
    keys = JwksKeys(sim.url + JWKS_PATH, max_age=0.2, min_refresh_seconds=0)
    key = sim.state.webhooks.fal_key
    asyncio.run(keys.verify(b"m", key.sign(b"m")))
    time.sleep(0.3)
    assert asyncio.run(keys.verify(b"m", key.sign(b"m"))) and keys.fetches == 2


def test_no_keys_no_belief():
    unreachable = JwksKeys("http://127.0.0.1:9/.well-known/jwks.json", timeout=2)
    with pytest.raises(JwksUnavailable):
        asyncio.run(unreachable.verify(b"m", b"\0" * 64))
    with pytest.raises(JwksUnavailable, match="no Ed25519 key"):
        parse_jwks({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, {"kty": "OKP", "crv": "Ed25519", "x": "c2hvcnQ"}]})
    with pytest.raises(JwksUnavailable, match="not a JWKS"):
        parse_jwks(["keys"])
