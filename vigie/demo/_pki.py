"""The demonstration network's certificates: a demo CA and one leaf per TLS case.

Generated afresh at every run, so that "expired" and "valid" are relative to
today. EC P-256 keys are quick to make; the legacy application gets an RSA
key so that it can also accept suites without forward secrecy (RSA key
exchange), as old servers do.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vigie.model import utcnow

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

CA_NAME = "Autorité de certification de démonstration vigie"
CA_ORGANISATION = "CERT de démonstration"


class CertificateKind(str, Enum):
    """How a demo application's certificate is (mis)issued."""

    VALID = "valid"  # issued by the demo CA, valid for 90 days
    EXPIRED = "expired"  # issued by the demo CA, expired a month ago
    SELF_SIGNED = "self_signed"  # signed by its own key


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedFiles:
    """A leaf certificate and its key, written where an ssl.SSLContext can load them."""

    certificate: Path
    key: Path


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


def _serial() -> int:
    return x509.random_serial_number()


def make_authority(now: datetime | None = None) -> Authority:
    """A fresh demo root CA (EC P-256, two years)."""
    now = now or utcnow()
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(CA_NAME, CA_ORGANISATION)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def _validity(kind: CertificateKind, now: datetime) -> tuple[datetime, datetime]:
    if kind is CertificateKind.EXPIRED:
        return now - timedelta(days=400), now - timedelta(days=35)
    return now - timedelta(days=1), now + timedelta(days=90)


def issue_leaf(
    authority: Authority,
    names: list[str],
    address: str,
    kind: CertificateKind,
    *,
    rsa_key: bool = False,
    now: datetime | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """A server certificate for ``names`` (and ``address``) of the given kind."""
    now = now or utcnow()
    key: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    subject = _name(names[0])
    self_signed = kind is CertificateKind.SELF_SIGNED
    issuer = subject if self_signed else authority.certificate.subject
    signer: PrivateKey = key if self_signed else authority.key
    not_before, not_after = _validity(kind, now)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if not self_signed:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    return key, builder.sign(signer, hashes.SHA256())


def write_leaf(
    directory: Path, stem: str, key: PrivateKey, certificate: x509.Certificate
) -> IssuedFiles:
    """Write ``stem.pem`` (certificate) and ``stem.key`` (key, owner-only) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return IssuedFiles(cert_path, key_path)
