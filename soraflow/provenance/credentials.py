"""The C2PA signer: a PEM certificate chain and its private key, from settings.

The chain is public and always a file (``SORAFLOW_PROVENANCE_CERT_CHAIN``, the signer's
certificate first). The private key is a file (``SORAFLOW_PROVENANCE_PRIVATE_KEY``) or a Prefect
Secret block (``SORAFLOW_PROVENANCE_PRIVATE_KEY_SECRET``), which the caller reads (the core has
no Prefect) and passes in as ``read_secret``; it may be encrypted, with its password in
``SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD`` (c2pa takes only an unencrypted PEM, so the key is
decrypted in memory). The key, its password and the decrypted key are registered as secrets
where they are read or made, so no message, log or state can carry them.

A signer is checked before anything is paid: the files read and parse, the key is the
certificate's, the algorithm fits the key, the certificate is within its dates, and c2pa itself
signs a tiny image with it (c2pa refuses chains outside the C2PA certificate profile only when
signing).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ..redaction import register_secret
from ..settings import Settings
from ..terminal import printable
from . import signer_configured
from .errors import ProvenanceError

# A signing key file or Secret block is small; anything bigger is not one.
_MAX_PEM_BYTES = 256 * 1024
_CURVE_ALGS = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


@dataclass(frozen=True)
class SigningCredentials:
    """What signs the film. Never a task parameter, a result or a log line: built where it is used."""

    cert_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    alg: str = "es256"
    tsa_url: str | None = None

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.cert_chain)[0]

    @property
    def identity(self) -> str:
        """The signer's certificate's SHA-256 fingerprint: another certificate signs the film again."""
        return identity_of(self.cert_chain)

    @property
    def subject(self) -> str:
        return self.leaf.subject.rfc4514_string()

    def signer(self, *, with_timestamp: bool = True) -> c2pa.Signer:
        """A new c2pa signer for one signing (the caller closes it). ``with_timestamp``: ask the
        time-stamp authority, when one is configured."""
        info = c2pa.C2paSignerInfo(self.alg, self.cert_chain, self.private_key, self.tsa_url if with_timestamp else None)
        try:
            return c2pa.Signer.from_info(info)
        except c2pa.C2paError as err:
            raise ProvenanceError(f"c2pa refuses the signing certificate or key: {err}") from None


def identity_of(cert_chain: bytes) -> str:
    leaf = x509.load_pem_x509_certificates(cert_chain)[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def signer_identity(settings: Settings) -> str | None:
    """The configured signer's identity from its chain file alone (no key is read): None when no
    signer is configured, ``"unreadable"`` when the chain cannot be read (nothing matches that)."""
    if not signer_configured(settings):
        return None
    try:
        return identity_of(_read_pem(settings.provenance_cert_chain, "certificate chain"))
    except (ProvenanceError, ValueError):
        return "unreadable"


def load_credentials(settings: Settings, read_secret: Callable[[str], str] | None = None, *, probe: bool = True) -> SigningCredentials | None:
    """The configured signer, checked; None when none is configured. Raises ProvenanceError
    saying what is wrong. ``read_secret(name)``: a Prefect Secret block's value (the caller's);
    without it a key kept in a block cannot be loaded here (ProvenanceError says so)."""
    if not signer_configured(settings):
        return None
    missing = []
    if not settings.provenance_cert_chain:
        missing.append("SORAFLOW_PROVENANCE_CERT_CHAIN")
    if not (settings.provenance_private_key or settings.provenance_private_key_secret):
        missing.append("SORAFLOW_PROVENANCE_PRIVATE_KEY (or _PRIVATE_KEY_SECRET)")
    if missing:
        raise ProvenanceError(f"the C2PA signer is half configured: {' and '.join(missing)} not set")
    chain = _read_pem(settings.provenance_cert_chain, "certificate chain")
    if settings.provenance_private_key:
        key = _read_pem(settings.provenance_private_key, "private key", secret=True)
    else:
        key = _key_from_block(settings.provenance_private_key_secret, read_secret)
    if settings.provenance_private_key_password is not None:
        key = _decrypted(key, settings.provenance_private_key_password.get_secret_value())
    tsa_url = settings.provenance_tsa_url or None
    if tsa_url and (tsa_password := urlsplit(tsa_url).password):  # a time-stamp authority behind basic auth
        register_secret(unquote(tsa_password), "C2PA time-stamp authority password")
    credentials = SigningCredentials(chain, key, settings.provenance_signing_alg, tsa_url)
    check(credentials, probe=probe)
    return credentials


def credentials_problem(settings: Settings, read_secret: Callable[[str], str] | None = None) -> str | None:
    """Why the configured signer cannot sign, or None (also None when none is configured).
    Without ``read_secret`` a key kept in a Secret block is not checked (only the chain is)."""
    if read_secret is None and settings.provenance_private_key_secret and not settings.provenance_private_key:
        if not settings.provenance_cert_chain:
            return "the C2PA signer is half configured: SORAFLOW_PROVENANCE_CERT_CHAIN not set"
        try:
            _certificates(_read_pem(settings.provenance_cert_chain, "certificate chain"))
        except ProvenanceError as err:
            return str(err)
        return None
    try:
        load_credentials(settings, read_secret)
    except ProvenanceError as err:
        return str(err)
    return None


def _decrypted(pem: bytes, password: str) -> bytes:
    """``pem`` decrypted with ``password``, as unencrypted PKCS#8 PEM (what c2pa reads), registered
    as a secret like the key it came from. A key that is not encrypted is refused: a password
    set for it is a mistake worth saying."""
    register_secret(password, "C2PA signing key password")
    try:
        key = serialization.load_pem_private_key(pem, password=password.encode("utf-8"))
    except TypeError:
        raise ProvenanceError(
            "SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD is set but the private key is not encrypted: unset the password"
        ) from None
    except ValueError as err:
        raise ProvenanceError(
            "the private key cannot be decrypted with SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD (wrong password?)"
            if "password" in str(err).lower() or "decrypt" in str(err).lower()
            else "the private key is not a PEM private key (PKCS#8 or traditional) cryptography can read"
        ) from None
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _register_key(plain)
    return plain


def check(credentials: SigningCredentials, *, probe: bool = True) -> None:
    """Raise ProvenanceError unless ``credentials`` can sign now."""
    certs = _certificates(credentials.cert_chain)
    leaf = certs[0]
    now = datetime.now(timezone.utc)
    if leaf.not_valid_after_utc <= now:
        raise ProvenanceError(f"the signing certificate {printable(leaf.subject.rfc4514_string(), 200)} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if leaf.not_valid_before_utc > now:
        raise ProvenanceError(f"the signing certificate is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    try:
        key = serialization.load_pem_private_key(credentials.private_key, password=None)
    except (ValueError, TypeError) as err:
        encrypted = "encrypted" in str(err).lower() or "password" in str(err).lower()
        raise ProvenanceError(
            "the private key is encrypted: set its password in SORAFLOW_PROVENANCE_PRIVATE_KEY_PASSWORD, or give it unencrypted "
            "(kept safe as a file only this user reads, or in a Prefect Secret block)"
            if encrypted else "the private key is not a PEM private key (PKCS#8 or traditional) cryptography can read"
        ) from None
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ProvenanceError("the private key is not the signing certificate's (the chain's first certificate): they must be a pair")
    fits = _algs_for(key)
    if credentials.alg not in fits:
        raise ProvenanceError(
            f"SORAFLOW_PROVENANCE_SIGNING_ALG={credentials.alg} does not fit this {_key_kind(key)} key; allowed for it: {', '.join(fits) or 'none (C2PA takes EC P-256/384/521, RSA-PSS or Ed25519)'}"
        )
    if probe:
        _probe(credentials)


def _probe(credentials: SigningCredentials) -> None:
    """c2pa signs a 1x1 PNG in memory with these credentials (no time-stamp request is sent)."""
    builder = c2pa.Builder({"claim_generator_info": [{"name": "soraflow signer check"}], "title": "check"})
    try:
        builder.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CREATION)
        with credentials.signer(with_timestamp=False) as signer:
            builder.sign(signer, "image/png", io.BytesIO(_tiny_png()), io.BytesIO())
    except c2pa.C2paError as err:
        raise ProvenanceError(f"c2pa cannot sign with this certificate chain and key: {err}") from None
    finally:
        builder.close()


def _tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b"")


def _algs_for(key) -> list[str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = _CURVE_ALGS.get(key.curve.name)
        return [alg] if alg else []
    if isinstance(key, rsa.RSAPrivateKey):
        return ["ps256", "ps384", "ps512"]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ["ed25519"]
    return []


def _key_kind(key) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"EC {key.curve.name}"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return type(key).__name__


def _certificates(chain: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError:
        certs = []
    if not certs:
        raise ProvenanceError("the certificate chain holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return certs


def _read_pem(path: Path | None, what: str, *, secret: bool = False) -> bytes:
    shown = printable(str(path), 200)
    try:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ProvenanceError(f"the {what} {shown} is not a file")
        if p.stat().st_size > _MAX_PEM_BYTES:
            raise ProvenanceError(f"the {what} {shown} is larger than {_MAX_PEM_BYTES // 1024} KB: not a PEM file")
        data = p.read_bytes()
    except OSError as err:
        raise ProvenanceError(f"the {what} {shown} cannot be read: {err.strerror or type(err).__name__}") from None
    if secret:
        _register_key(data)
    return data


def _key_from_block(name: str | None, read_secret: Callable[[str], str] | None) -> bytes:
    if read_secret is None:
        raise ProvenanceError(f"the private key is in the Prefect Secret block {name!r}, which only a flow run reads")
    try:
        value = read_secret(name)
    except Exception as err:  # noqa: BLE001 - a missing block or no Prefect server: named, no value shown
        raise ProvenanceError(f"the Prefect Secret block {name!r} holding the private key cannot be read ({type(err).__name__})") from None
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    _register_key(data)
    return data


def _register_key(pem: bytes) -> None:
    """The key as text, and its base64 body on one line (how a PEM may be quoted elsewhere)."""
    text = pem.decode("utf-8", "replace")
    register_secret(text.strip(), "C2PA signing key")
    body = "".join(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("-----"))
    register_secret(body, "C2PA signing key")
    for line in text.splitlines():  # each 64-character line of the body on its own
        if not line.startswith("-----"):
            register_secret(line.strip(), "C2PA signing key")


__all__ = ["SigningCredentials", "check", "credentials_problem", "identity_of", "load_credentials", "signer_identity"]
