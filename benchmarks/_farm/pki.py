"""One certificate authority and a certificate per farm host (``cryptography``).

Key generation is what costs time, so the hosts of one profile share a key
(one ECDSA P-256, one RSA 2048); each host still gets its own certificate
naming it, signed by the farm CA, except the ``sloppy`` hosts, which sign
their own. The CA file is what vigie is told to trust (``tls.extra_ca_file``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from _farm.hosts import FarmHost, Profile

NOW = dt.datetime.now(dt.UTC)
LEAF_VALIDITY = dt.timedelta(days=365)

# RFC 2409 section 6.2, the 1024-bit MODP group: the legacy hosts' weak DH
# group, a fixed prime so that no slow parameter generation is needed.
MODP_1024_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


@dataclass(frozen=True)
class FarmPki:
    """Where the farm's certificate material lies."""

    ca_file: Path
    ec_key_file: Path
    rsa_key_file: Path
    dh1024_file: Path
    folder: Path

    def cert_file(self, host: FarmHost) -> Path:
        return self.folder / "certs" / f"host-{host.index}.pem"

    def key_file(self, host: FarmHost) -> Path:
        return self.ec_key_file if host.profile is Profile.MODERN else self.rsa_key_file


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vigie benchmark farm"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = _name("vigie benchmark CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
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


def _make_leaf(
    host: FarmHost,
    public_key: CertificatePublicKeyTypes,
    issuer_name: x509.Name,
    signing_key: CertificateIssuerPrivateKeyTypes,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(host.name))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + LEAF_VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host.name), x509.IPAddress(ipaddress.IPv4Address(host.ip))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(signing_key, hashes.SHA256())
    )


def _dh_pem(prime: int) -> bytes:
    numbers = dh.DHParameterNumbers(prime, 2)
    return numbers.parameters().parameter_bytes(
        serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3
    )


def build_pki(folder: Path, hosts: list[FarmHost]) -> FarmPki:
    """Write the CA, the shared keys, a certificate per host and the DH groups."""
    (folder / "certs").mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _make_ca(ca_key)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = FarmPki(
        ca_file=folder / "ca.pem",
        ec_key_file=folder / "ec.key",
        rsa_key_file=folder / "rsa.key",
        dh1024_file=folder / "dh1024.pem",
        folder=folder,
    )
    pki.ca_file.write_bytes(_cert_pem(ca))
    pki.ec_key_file.write_bytes(_key_pem(ec_key))
    pki.rsa_key_file.write_bytes(_key_pem(rsa_key))
    pki.dh1024_file.write_bytes(_dh_pem(MODP_1024_PRIME))
    for host in hosts:
        if host.profile is Profile.SLOPPY:
            leaf = _make_leaf(host, rsa_key.public_key(), _name(host.name), rsa_key)
        elif host.profile is Profile.MODERN:
            leaf = _make_leaf(host, ec_key.public_key(), ca.subject, ca_key)
        else:
            leaf = _make_leaf(host, rsa_key.public_key(), ca.subject, ca_key)
        pki.cert_file(host).write_bytes(_cert_pem(leaf))
    return pki
