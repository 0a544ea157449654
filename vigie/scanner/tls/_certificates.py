"""Certificate checks: the chains a server sent -> findings.

Check IDs: ``tls.cert.expired``, ``tls.cert.not_yet_valid``,
``tls.cert.expiring_soon``, ``tls.cert.self_signed``, ``tls.cert.untrusted``,
``tls.cert.hostname_mismatch``, ``tls.cert.incomplete_chain``,
``tls.cert.weak_key``, ``tls.cert.weak_signature``.

Each question is answered on its own, so that one defect gives one finding:
trust is decided by building a path to a trusted root whatever the leaf's
dates, name and signature hash (those have their own checks), which is why
vigie builds the path itself instead of using a verifier that rejects the
whole chain for the first defect it meets (cryptography's verifier, which
sslyze uses, also refuses SHA-1 signatures outright).

A chain that does not reach a trusted root is ``incomplete`` when adding
intermediates vigie knows from elsewhere (the extra CA file, or what other
servers of the sweep sent) completes it, and ``untrusted`` otherwise.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._common import first_items, short, tls_finding
from vigie.scanner.tls._model import Endpoint

MAX_PATH_LENGTH = 8  # intermediates between a leaf and its root; real chains use 1-3
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: same names and its own key verifies its signature."""
    return is_self_issued(cert) and issued_by(cert, cert)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` names and signed ``cert`` (any hash, MD5 and SHA-1 included)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        if weak_signature_hash(cert) is not None:
            return _verify_weak_signature(cert, issuer)
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _verify_weak_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """cryptography's certificate check refuses MD5 and SHA-1; its primitives still verify them."""
    key, algorithm = issuer.public_key(), cert.signature_hash_algorithm
    if algorithm is None:
        return False
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    elif isinstance(key, dsa.DSAPublicKey):
        key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)
    else:
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.version == x509.Version.v1  # old v1 CA certificates carry no extensions


def _valid_at(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


class CertificateIndex:
    """Certificates looked up by subject name, without duplicates."""

    def __init__(self, certs: Iterable[x509.Certificate] = ()) -> None:
        self._by_subject: dict[x509.Name, dict[str, x509.Certificate]] = {}
        for cert in certs:
            self.add(cert)

    def add(self, cert: x509.Certificate) -> bool:
        """Add ``cert``; True when it was not known before."""
        same_subject = self._by_subject.setdefault(cert.subject, {})
        key = fingerprint(cert)
        if key in same_subject:
            return False
        same_subject[key] = cert
        return True

    def named(self, subject: x509.Name) -> list[x509.Certificate]:
        return list(self._by_subject.get(subject, {}).values())

    def __contains__(self, cert: object) -> bool:
        if not isinstance(cert, x509.Certificate):
            return False
        return fingerprint(cert) in self._by_subject.get(cert.subject, {})

    def __len__(self) -> int:
        return sum(len(same) for same in self._by_subject.values())


@dataclass
class TrustAnchors:
    """Trusted roots, each with the names of the stores that hold it."""

    roots: CertificateIndex = field(default_factory=CertificateIndex)
    stores_of: dict[str, list[str]] = field(default_factory=dict)

    def add(self, cert: x509.Certificate, store: str) -> None:
        self.roots.add(cert)
        stores = self.stores_of.setdefault(fingerprint(cert), [])
        if store not in stores:
            stores.append(store)

    @classmethod
    def from_stores(cls, stores: Mapping[str, Sequence[x509.Certificate]]) -> TrustAnchors:
        anchors = cls()
        for store, certs in stores.items():
            for cert in certs:
                anchors.add(cert, store)
        return anchors


class Trust(str, Enum):
    TRUSTED = "trusted"
    SELF_SIGNED = "self_signed"
    INCOMPLETE = "incomplete_chain"  # trusted once a known intermediate is added
    UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class ChainVerdict:
    """How one chain sent by a server relates to the trusted roots."""

    sent: tuple[x509.Certificate, ...]  # leaf first
    trust: Trust
    path: tuple[x509.Certificate, ...] = ()  # leaf .. anchor, when one was found
    anchor_stores: tuple[str, ...] = ()
    missing: tuple[x509.Certificate, ...] = ()  # intermediates the server should have sent

    @property
    def leaf(self) -> x509.Certificate:
        return self.sent[0]


@dataclass(frozen=True)
class _Path:
    intermediates: tuple[x509.Certificate, ...]
    anchor: x509.Certificate


def _find_path(
    cert: x509.Certificate,
    sources: Sequence[CertificateIndex],
    anchors: TrustAnchors,
    now: dt.datetime,
    seen: frozenset[str],
) -> _Path | None:
    """A path from ``cert`` up to an anchor through the ``sources`` intermediates (depth-first)."""
    for anchor in anchors.roots.named(cert.issuer):
        if issued_by(cert, anchor):
            return _Path((), anchor)
    if len(seen) > MAX_PATH_LENGTH:
        return None
    for issuer in [c for source in sources for c in source.named(cert.issuer)]:
        key = fingerprint(issuer)
        if key in seen or not _is_ca(issuer) or not _valid_at(issuer, now):
            continue
        if not issued_by(cert, issuer):
            continue
        if issuer in anchors.roots:  # an intermediate some store trusts directly
            return _Path((), issuer)
        above = _find_path(issuer, sources, anchors, now, seen | {key})
        if above is not None:
            return _Path((issuer, *above.intermediates), above.anchor)
    return None


def evaluate_chain(
    sent: Sequence[x509.Certificate],
    anchors: TrustAnchors,
    known_intermediates: CertificateIndex,
    now: dt.datetime,
) -> ChainVerdict:
    """Decide trust for a chain as sent (leaf first), independently of the leaf's dates and name."""
    chain = tuple(sent)
    leaf = chain[0]
    if leaf in anchors.roots:
        stores = tuple(anchors.stores_of.get(fingerprint(leaf), ()))
        return ChainVerdict(chain, Trust.TRUSTED, (leaf,), stores)
    if is_self_signed(leaf):
        return ChainVerdict(chain, Trust.SELF_SIGNED, (leaf,))
    as_sent = CertificateIndex(chain[1:])
    path = _find_path(leaf, [as_sent], anchors, now, frozenset({fingerprint(leaf)}))
    missing: tuple[x509.Certificate, ...] = ()
    if path is None:
        sources = [as_sent, known_intermediates]
        path = _find_path(leaf, sources, anchors, now, frozenset({fingerprint(leaf)}))
        if path is None:
            return ChainVerdict(chain, Trust.UNTRUSTED)
        missing = tuple(cert for cert in path.intermediates if cert not in as_sent)
    stores = tuple(anchors.stores_of.get(fingerprint(path.anchor), ()))
    full_path = (leaf, *path.intermediates, path.anchor)
    trust = Trust.INCOMPLETE if missing else Trust.TRUSTED
    return ChainVerdict(chain, trust, full_path, stores, missing)


# --- host names ---------------------------------------------------------------------------


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]


def _ip_names(cert: x509.Certificate) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if not isinstance(ip, ipaddress.IPv4Network | ipaddress.IPv6Network)
    ]


def _common_names(cert: x509.Certificate) -> list[str]:
    return [
        str(attribute.value).lower().rstrip(".")
        for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]


def _name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125: exact match, or ``*`` as the whole left-most label covering exactly one label."""
    if pattern == hostname:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    head, dot, rest = hostname.partition(".")
    return bool(dot) and bool(head) and rest == suffix and suffix.count(".") >= 1


def _ace(hostname: str) -> str:
    name = hostname.lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def covers_hostname(cert: x509.Certificate, hostname: str) -> bool:
    """Does ``cert`` cover ``hostname`` (a DNS name or an IP literal)?

    DNS names are matched against the SAN; the subject CN counts only when the
    certificate has no DNS SAN at all, as OpenSSL and RFC 6125 do.
    """
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if address is not None:
        return address in _ip_names(cert)
    name = _ace(hostname)
    patterns = _dns_names(cert) or _common_names(cert)
    return any(_name_matches(pattern, name) for pattern in patterns)


# --- keys and signatures ------------------------------------------------------------------


def weak_key(cert: x509.Certificate) -> str | None:
    """ "RSA 1024" when the public key is under the minimum, else None."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"RSA {key.key_size}"
    if isinstance(key, dsa.DSAPublicKey) and key.key_size < MIN_RSA_BITS:
        return f"DSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < MIN_EC_BITS:
        return f"EC {key.curve.name}"
    return None


def _key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        kind = "RSA" if isinstance(key, rsa.RSAPublicKey) else "DSA"
        return f"{kind} {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__.removeprefix("_").removesuffix("PublicKey")


def weak_signature_hash(cert: x509.Certificate) -> str | None:
    """ "MD5" or "SHA-1" when ``cert`` is signed with one of them."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return None
    if isinstance(algorithm, hashes.MD5):
        return "MD5"
    if isinstance(algorithm, hashes.SHA1):
        return "SHA-1"
    return None


def _signed_certificates(verdict: ChainVerdict) -> list[x509.Certificate]:
    """Certificates whose signature matters: the path without its anchor, or what was sent.

    A root's signature on itself protects nothing, so self-signed certificates
    (including a self-signed leaf) are left out.
    """
    certs = list(verdict.path[:-1]) if verdict.path else list(verdict.sent)
    return [cert for cert in certs if not is_self_issued(cert)]


# --- evidence and findings ----------------------------------------------------------------


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """What a person needs to find and replace a certificate."""
    try:
        signature = cert.signature_algorithm_oid._name
    except AttributeError:
        signature = cert.signature_algorithm_oid.dotted_string
    return {
        "subject": short(cert.subject.rfc4514_string()),
        "issuer": short(cert.issuer.rfc4514_string()),
        "sans": first_items(_dns_names(cert) + [str(ip) for ip in _ip_names(cert)]),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": fingerprint(cert),
        "key": _key_description(cert),
        "signature_algorithm": signature,
    }


@dataclass(frozen=True)
class CertificatePolicy:
    """The inputs of the date and name checks."""

    hostname: str
    now: dt.datetime
    expiry_warning_days: int


def _validity_problem(
    cert: x509.Certificate, policy: CertificatePolicy
) -> tuple[str, dict[str, Any]] | None:
    if policy.now > cert.not_valid_after_utc:
        return "tls.cert.expired", {
            "expired_days_ago": (policy.now - cert.not_valid_after_utc).days
        }
    if policy.now < cert.not_valid_before_utc:
        return "tls.cert.not_yet_valid", {
            "valid_in_days": (cert.not_valid_before_utc - policy.now).days
        }
    left = cert.not_valid_after_utc - policy.now
    if left <= dt.timedelta(days=policy.expiry_warning_days):
        return "tls.cert.expiring_soon", {
            "days_left": left.days,
            "warning_days": policy.expiry_warning_days,
        }
    return None


def _verdict_problems(
    verdict: ChainVerdict, policy: CertificatePolicy
) -> list[tuple[str, dict[str, Any]]]:
    """(check ID, extra evidence) for each defect of one chain."""
    leaf = verdict.leaf
    problems: list[tuple[str, dict[str, Any]]] = []
    validity = _validity_problem(leaf, policy)
    if validity is not None:
        problems.append(validity)
    if verdict.trust is Trust.SELF_SIGNED:
        problems.append(("tls.cert.self_signed", {}))
    elif verdict.trust is Trust.UNTRUSTED:
        top = verdict.sent[-1]
        problems.append(
            (
                "tls.cert.untrusted",
                {
                    "unknown_issuer": short(top.issuer.rfc4514_string()),
                    "certificates_sent": len(verdict.sent),
                },
            )
        )
    elif verdict.trust is Trust.INCOMPLETE:
        missing = [short(cert.subject.rfc4514_string()) for cert in verdict.missing]
        problems.append(
            (
                "tls.cert.incomplete_chain",
                {"missing_intermediates": missing, "certificates_sent": len(verdict.sent)},
            )
        )
    if not covers_hostname(leaf, policy.hostname):
        problems.append(("tls.cert.hostname_mismatch", {"hostname": policy.hostname}))
    key = weak_key(leaf)
    if key is not None:
        problems.append(("tls.cert.weak_key", {"weak_key": key}))
    weak_signed = [(cert, weak_signature_hash(cert)) for cert in _signed_certificates(verdict)]
    signed = [
        {"subject": short(cert.subject.rfc4514_string()), "hash": alg}
        for cert, alg in weak_signed
        if alg
    ]
    if signed:
        problems.append(("tls.cert.weak_signature", {"weak_signatures": signed}))
    return problems


def certificate_findings(
    target: HostTarget,
    endpoint: Endpoint,
    verdicts: Sequence[ChainVerdict],
    policy: CertificatePolicy,
) -> list[Finding]:
    """One finding per defect and endpoint, listing every certificate (RSA, ECDSA...) that has it."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    extras: dict[str, dict[str, Any]] = {}
    for verdict in verdicts:
        for check_id, extra in _verdict_problems(verdict, policy):
            grouped.setdefault(check_id, []).append(describe(verdict.leaf))
            extras.setdefault(check_id, extra)
    findings = []
    for check_id, certs in grouped.items():
        evidence = {**extras[check_id], "certificates": certs}
        trust_stores = [verdict.anchor_stores for verdict in verdicts if verdict.anchor_stores]
        if check_id not in ("tls.cert.self_signed", "tls.cert.untrusted") and trust_stores:
            evidence["trusted_by"] = list(trust_stores[0])
        findings.append(tls_finding(target, endpoint, check_id, evidence))
    return findings
