"""The signer from settings: a development chain that c2pa signs with, the key registered as a
secret where it is read, and every unusable signer refused with what is wrong."""

from __future__ import annotations

import stat
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from soraflow import provenance
from soraflow.redaction import redact_text, registered_secret_names
from soraflow.settings import Settings


def settings(**kw) -> Settings:
    return Settings(**{f"provenance_{k}": v for k, v in kw.items()})


def pem_body(path) -> str:
    return "".join(line for line in path.read_text().splitlines() if not line.startswith("-----"))


def test_a_development_chain_is_marked_untrusted_signs_and_its_key_is_a_secret(dev_chain):
    assert stat.S_IMODE(dev_chain.private_key.stat().st_mode) == 0o600
    leaf, root = x509.load_pem_x509_certificates(dev_chain.chain.read_bytes())
    assert "UNTRUSTED" in leaf.subject.rfc4514_string() and "UNTRUSTED" in leaf.issuer.rfc4514_string()
    assert leaf.issuer == root.subject and x509.load_pem_x509_certificate(dev_chain.root.read_bytes()) == root
    assert dev_chain.environment() == {
        "SORAFLOW_PROVENANCE_CERT_CHAIN": str(dev_chain.chain), "SORAFLOW_PROVENANCE_PRIVATE_KEY": str(dev_chain.private_key)
    }
    credentials = provenance.load_credentials(settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key))
    assert credentials.alg == "es256" and "UNTRUSTED" in credentials.subject
    assert credentials.identity == provenance.signer_identity(settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key))
    assert "BEGIN" not in repr(credentials)
    # read, so registered: any message that would quote the key loses it, whole or in its base64 body
    body = pem_body(dev_chain.private_key)
    assert body not in redact_text(f"error: {body}") and dev_chain.private_key.read_text() not in redact_text(dev_chain.private_key.read_text())


def test_dev_cert_does_not_replace_a_chain_unless_forced(dev_chain):
    with pytest.raises(provenance.ProvenanceError, match="already holds soraflow-dev-root.pem, soraflow-dev-chain.pem, soraflow-dev-signer.key: pass --force"):
        provenance.make_dev_chain(dev_chain.chain.parent)


def test_no_signer_configured_is_none_and_a_half_configured_one_is_refused(dev_chain):
    assert provenance.load_credentials(Settings()) is None and provenance.signer_identity(Settings()) is None
    with pytest.raises(provenance.ProvenanceError, match="half configured: SORAFLOW_PROVENANCE_PRIVATE_KEY .or _PRIVATE_KEY_SECRET. not set"):
        provenance.load_credentials(settings(cert_chain=dev_chain.chain))
    with pytest.raises(provenance.ProvenanceError, match="half configured: SORAFLOW_PROVENANCE_CERT_CHAIN not set"):
        provenance.load_credentials(settings(private_key=dev_chain.private_key))


def test_each_unusable_signer_is_refused_saying_what_is_wrong(dev_chain, tmp_path):
    other = provenance.make_dev_chain(tmp_path / "other")
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(dev_chain.private_key.read_bytes(), None)
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    cases = [
        (settings(cert_chain=tmp_path / "missing.pem", private_key=dev_chain.private_key), "missing.pem is not a file"),
        (settings(cert_chain=not_pem, private_key=dev_chain.private_key), "holds no PEM certificate"),
        (settings(cert_chain=dev_chain.chain, private_key=not_pem), "not a PEM private key"),
        (settings(cert_chain=dev_chain.chain, private_key=encrypted), "the private key is encrypted"),
        (settings(cert_chain=dev_chain.chain, private_key=other.private_key), "is not the signing certificate's"),
        (settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key, signing_alg="es384"),
         "SORAFLOW_PROVENANCE_SIGNING_ALG=es384 does not fit this EC secp256r1 key; allowed for it: es256"),
    ]
    for configured, message in cases:
        assert message in (provenance.credentials_problem(configured) or ""), message
        with pytest.raises(provenance.ProvenanceError, match=message.replace(".", r"\.").replace("(", r"\(")):
            provenance.load_credentials(configured)


def self_signed(tmp_path, *, expired: bool = False, eku: bool = True):
    """A certificate made by hand: expired, or without what the C2PA profile asks (c2pa refuses it when signing)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand made")])
    now = datetime.now(timezone.utc)
    start, end = (now - timedelta(days=10), now - timedelta(days=1)) if expired else (now - timedelta(days=1), now + timedelta(days=1))
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
    cert = builder.not_valid_before(start).not_valid_after(end).sign(key, hashes.SHA256())
    chain, key_file = tmp_path / f"hand-{expired}.pem", tmp_path / f"hand-{expired}.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return settings(cert_chain=chain, private_key=key_file)


def test_an_expired_certificate_and_one_c2pa_refuses_are_caught_before_signing(tmp_path):
    assert "expired on" in provenance.credentials_problem(self_signed(tmp_path, expired=True))
    # cryptography finds nothing wrong with it; c2pa's own signing of a tiny image does
    assert provenance.credentials_problem(self_signed(tmp_path)) == "c2pa cannot sign with this certificate chain and key: Signature: the certificate is invalid"


def test_a_key_in_a_prefect_secret_block_is_read_through_the_callers_reader_and_registered(dev_chain):
    configured = settings(cert_chain=dev_chain.chain, private_key_secret="c2pa-key")
    pem = dev_chain.private_key.read_text()
    asked = []

    def read_secret(name: str) -> str:
        asked.append(name)
        return pem

    assert provenance.load_credentials(configured, read_secret).identity == provenance.signer_identity(configured)
    assert asked == ["c2pa-key"]
    assert provenance.credentials_problem(configured) is None  # the CLI, without a reader: only the chain is checked

    def missing(name: str) -> str:
        raise ValueError("no such block")

    assert provenance.credentials_problem(configured, missing) == "the Prefect Secret block 'c2pa-key' holding the private key cannot be read (ValueError)"
    with pytest.raises(provenance.ProvenanceError, match="in the Prefect Secret block 'c2pa-key', which only a flow run reads"):
        provenance.load_credentials(configured)


def test_an_encrypted_key_signs_with_its_password_and_neither_password_nor_key_can_reach_a_message(dev_chain, tmp_path):
    password = f"c2pa-canary-password-{uuid.uuid4().hex[:8]}"
    key = serialization.load_pem_private_key(dev_chain.private_key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(password.encode()))
    )
    assert redact_text(password) == password  # not yet read, so not yet a secret

    credentials = provenance.load_credentials(settings(cert_chain=dev_chain.chain, private_key=encrypted, private_key_password=password))
    assert credentials.identity == provenance.signer_identity(settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key))
    assert b"ENCRYPTED" not in credentials.private_key  # c2pa gets the key decrypted in memory (the probe signed with it)
    # the password, the encrypted file and the key decrypted from it: each registered where it is read or made
    decrypted_body = "".join(l for l in credentials.private_key.decode().splitlines() if not l.startswith("-----"))
    for secret in (password, pem_body(encrypted), decrypted_body, credentials.private_key.decode().strip()):
        assert secret not in redact_text(f"error: {secret}")
    assert "C2PA signing key password" in registered_secret_names()
    assert password not in repr(Settings(provenance_private_key_password=password))

    # a wrong password and a password for a key that is not encrypted: refused, saying which, the password never shown
    wrong = f"wrong-password-{uuid.uuid4().hex[:8]}"
    with pytest.raises(provenance.ProvenanceError, match="cannot be decrypted with SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD") as refused:
        provenance.load_credentials(settings(cert_chain=dev_chain.chain, private_key=encrypted, private_key_password=wrong))
    assert wrong not in str(refused.value) and wrong not in redact_text(f"echoed: {wrong}")
    assert "the private key is not encrypted: unset the password" in provenance.credentials_problem(
        settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key, private_key_password=password)
    )
    assert "set its password in SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD" in provenance.credentials_problem(
        settings(cert_chain=dev_chain.chain, private_key=encrypted)
    )


def test_a_time_stamp_authoritys_password_is_registered_where_the_signer_is_read(dev_chain):
    password = f"tsa-canary-{uuid.uuid4().hex[:8]}"
    credentials = provenance.load_credentials(
        settings(cert_chain=dev_chain.chain, private_key=dev_chain.private_key, tsa_url=f"http://stamper:{password}@127.0.0.1:9/tsa"),
        probe=False,
    )
    assert credentials.tsa_url.endswith("/tsa") and password not in redact_text(f"c2pa: could not reach {password}")
