"""The certificates the fal dialect is served with: fal-client speaks https only.

At start the simulator makes a throwaway certificate authority and one server certificate it
signs (ECDSA P-256, valid for a day), for the loopback names and for fal's fixed storage hosts
(``rest.fal.ai``, ``v3.fal.media``), which its proxy (proxy.py) tunnels to it. The CA's file is
what a client trusts (``SSL_CERT_FILE``, or an endpoint's ``ca_file``); its key never leaves
memory, so nothing else can be signed with it.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# fal-client's hosts that no variable moves (client.REST_URL, client.CDN_URL).
STORAGE_HOSTS = ("rest.fal.ai", "v3.fal.media")
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class ServerCertificate:
    ca_file: Path  # the CA a client trusts
    cert_file: Path  # the server's chain (leaf, then CA)
    key_file: Path  # the server's key


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "soraflow simulator"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(folder: Path, host: str) -> ServerCertificate:
    """A new CA and a server certificate for ``host``, loopback and fal's storage hosts, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("soraflow simulator CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in (*LOOPBACK_NAMES, *STORAGE_HOSTS)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOOPBACK_IPS]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = ServerCertificate(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    files.ca_file.write_bytes(ca.public_bytes(pem))
    files.cert_file.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    files.key_file.touch(mode=0o600)
    files.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files
