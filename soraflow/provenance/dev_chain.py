"""A development certificate chain for C2PA signing, made locally and plainly marked untrusted.

A root made here and a signing certificate it issues (ES256, P-256), in the shape the C2PA
certificate profile asks (the signer's certificate: not a CA, digitalSignature, an extended key
usage, subject and authority key identifiers). No trust list knows the root, so `soraflow verify`
and every C2PA reader say the film is intact but its signer untrusted; the names say
"UNTRUSTED" and "development" wherever a reader shows the signer. It is for trying signing
out, never for publishing: a film's credentials are worth what its certificate is worth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..terminal import printable
from .errors import ProvenanceError

ORGANIZATION = "soraflow development certificate - UNTRUSTED, not for publishing"
ROOT_NAME = "soraflow development root (UNTRUSTED)"
SIGNER_NAME = "soraflow development signer (UNTRUSTED)"
ROOT_FILE = "soraflow-dev-root.pem"
CHAIN_FILE = "soraflow-dev-chain.pem"
KEY_FILE = "soraflow-dev-signer.key"


@dataclass(frozen=True)
class DevChain:
    root: Path  # the root certificate (a trust anchor for `soraflow verify --trust-anchors`, on this machine only)
    chain: Path  # the signer's certificate, then the root
    private_key: Path  # the signer's key (readable by this user only)
    expires: datetime

    def environment(self) -> dict[str, str]:
        """The settings that make renders sign with this chain."""
        return {"SORAFLOW_PROVENANCE_CERT_CHAIN": str(self.chain), "SORAFLOW_PROVENANCE_PRIVATE_KEY": str(self.private_key)}


def make_dev_chain(directory: str | Path, *, days: int = 90, force: bool = False) -> DevChain:
    """Write a root, a chain and a key into ``directory`` (made if needed). Refuses to replace an
    existing chain unless ``force``: films signed with it would no longer match a new root."""
    if not 1 <= days <= 825:
        raise ProvenanceError(f"--days {days} is not allowed: 1 to 825 days")
    folder = Path(directory).expanduser().resolve()
    paths = [folder / ROOT_FILE, folder / CHAIN_FILE, folder / KEY_FILE]
    if not force and (existing := [p.name for p in paths if p.exists()]):
        raise ProvenanceError(f"{printable(str(folder), 200)} already holds {', '.join(existing)}: pass --force to replace them")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProvenanceError(f"cannot make the folder {printable(str(folder), 200)}: {err.strerror or err}") from None
    if not folder.is_dir():
        raise ProvenanceError(f"{printable(str(folder), 200)} is not a folder")

    now = datetime.now(timezone.utc)
    start, end = now - timedelta(minutes=5), now + timedelta(days=days)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name(ROOT_NAME))
        .issuer_name(_name(ROOT_NAME))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNER_NAME))
        .issuer_name(root.subject)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        # C2PA asks the signer's certificate for an extended key usage it lists; email protection is one
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(paths[0], root.public_bytes(pem), mode=0o644)
    _write(paths[1], signer.public_bytes(pem) + root.public_bytes(pem), mode=0o644)
    key = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(paths[2], key, mode=0o600)
    return DevChain(root=paths[0], chain=paths[1], private_key=paths[2], expires=end)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
    ])


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Written under a temporary name with its mode from the start (a key is never readable by
    others, not even for a moment), then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ProvenanceError(f"cannot write {printable(str(path), 200)}: {err.strerror or err}") from None


__all__ = ["CHAIN_FILE", "DevChain", "KEY_FILE", "ROOT_FILE", "make_dev_chain"]
