"""Certificate checks: the chains a server sent -> findings.

Check IDs: ``tls.cert.expired``, ``tls.cert.not_yet_valid``,
``tls.cert.expiring_soon``, ``tls.cert.self_signed``, ``tls.cert.untrusted``,
``tls.cert.hostname_mismatch``, ``tls.cert.incomplete_chain``,
``tls.cert.weak_key``, ``tls.cert.weak_signature``.

Each question is answered on its own, so that one defect gives one finding.
Trust ("would a client accept this chain", RFC 5280 §6) is the verdict of
``cryptography.x509.verification`` (see ``_verify``: EKU, basic constraints,
name constraints, path length), asked at a time inside the leaf's validity and
for a name the leaf presents, since dates and names have their own checks.
vigie's own path builder remains to explain which defect a refused chain has
(self-signed, missing intermediate, unknown CA), and to judge the chains the
verifier cannot (MD5/SHA-1 signatures, leaves without subjectAltName).

Trust anchors are one store: certifi's copy of the Mozilla root program
(``tls.trust_store = "mozilla"``), or the system's bundle, plus the
deployment's extra CA file. Neither bundle carries Mozilla's
"distrust after" dates, so a root that Mozilla distrusts only for
certificates issued after a date is trusted for all of them.

Incomplete chain, decided from the chain alone, so that a host gets the same
verdict scanned alone or in a sweep (RFC 8446 §4.4.2 / RFC 5246 §7.4.2: the
server sends the certificates up to, and optionally including, the root):

1. a path to an anchor through the certificates sent: no chain defect;
2. else, through the sent ones plus the intermediates of the extra CA file
   (configuration, never what other hosts sent): ``incomplete_chain``, with
   the missing intermediates named;
3. else, when the top of what was sent (following issuers from the leaf) is
   not self-issued and its issuer is no anchor, the chain stops short of any
   root. It is ``incomplete_chain`` when the server sent nothing above its
   leaf (the certificate list must carry the issuers, RFC 8446 §4.4.2, and a
   lone leaf under an unknown issuer is the classic forgotten intermediate),
   or when that top certificate names where its issuer is published
   (Authority Information Access caIssuers, RFC 5280 §4.2.2.1, required in
   subscriber certificates by CA/B BR §7.1.2.7.7; vigie reports the URL and
   never fetches it: no traffic outside the scope);
4. else ``untrusted`` (intermediates sent that lead to an unknown CA, a root
   nobody trusts) or ``self_signed``.

Before all of these: a chain that holds, or is issued by, a root whose private
key was published (``vigie/data/tls/compromised_roots.pem``: Superfish,
eDellRoot, DSDTestProvider, webpack-dev-server's and preact-cli's CAs,
blocked by browsers through Mozilla OneCRL and Chrome CRLSet, and badssl.com's
"MITM software" test root, which Chrome names as interception) is
``untrusted``, whatever the stores say: anyone can issue under it. This holds
for a lone leaf too, which would otherwise be ``incomplete_chain``.

A lone leaf signed directly by a private root is thus ``incomplete_chain``
(the server did not send the certificate its clients need), not
``untrusted``: without the issuer, no rule can tell a private root from a
forgotten intermediate, and this choice is the one that needs nothing but
the chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import AuthorityInformationAccessOID

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._common import first_items, short, tls_finding
from vigie.scanner.tls._model import Endpoint
from vigie.scanner.tls._names import covers_hostname, dns_names, ip_names
from vigie.scanner.tls._verify import leaf_profile_problem, verifier_refusal

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

    def __iter__(self) -> Iterator[x509.Certificate]:
        for same_subject in self._by_subject.values():
            yield from same_subject.values()

    def __contains__(self, cert: object) -> bool:
        if not isinstance(cert, x509.Certificate):
            return False
        return fingerprint(cert) in self._by_subject.get(cert.subject, {})

    def __len__(self) -> int:
        return sum(len(same) for same in self._by_subject.values())


@dataclass(eq=False)
class TrustAnchors:
    """Trusted roots, each with the names of the stores that hold it."""

    roots: CertificateIndex = field(default_factory=CertificateIndex)
    stores_of: dict[str, list[str]] = field(default_factory=dict)

    def add(self, cert: x509.Certificate, store: str) -> None:
        self.roots.add(cert)
        stores = self.stores_of.setdefault(fingerprint(cert), [])
        if store not in stores:
            stores.append(store)
        self.__dict__.pop("store", None)

    @functools.cached_property
    def store(self) -> verification.Store:
        """The same anchors as a ``cryptography`` verification store (built once)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return verification.Store(list(self.roots))

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
    ca_issuers: tuple[str, ...] = ()  # AIA caIssuers URLs of the top certificate sent
    refusal: str = ""  # why a client refuses a path that reaches an anchor

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


def ca_issuers(cert: x509.Certificate) -> tuple[str, ...]:
    """The Authority Information Access caIssuers URLs of ``cert`` (RFC 5280 §4.2.2.1)."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        short(str(description.access_location.value))
        for description in access
        if description.access_method == AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    )


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@functools.cache
def compromised_roots() -> tuple[x509.Certificate, ...]:
    """Roots whose private keys are public (bundled data; see the module docstring)."""
    pem = resources.files("vigie").joinpath("data/tls/compromised_roots.pem").read_bytes()
    with warnings.catch_warnings():  # DSDTestProvider's serial number is negative
        warnings.simplefilter("ignore")
        return tuple(x509.load_pem_x509_certificates(pem))


@functools.cache
def _compromised_keys() -> dict[bytes, x509.Certificate]:
    return {_spki(root): root for root in compromised_roots()}


def compromised_issuer(chain: Sequence[x509.Certificate]) -> str:
    """The name of a published-key root that is in ``chain`` or issued its top; "" if none."""
    roots = compromised_roots()
    keys = _compromised_keys()
    for cert in chain:
        root = keys.get(_spki(cert))
        if root is not None:
            return short(root.subject.rfc4514_string())
    top = top_sent(chain)
    for root in roots:
        if issued_by(top, root):
            return short(root.subject.rfc4514_string())
    return ""


def top_sent(chain: Sequence[x509.Certificate]) -> x509.Certificate:
    """The last certificate reached from the leaf by following issuers among those sent."""
    current, seen = chain[0], {fingerprint(chain[0])}
    while not is_self_issued(current):
        issuer = next(
            (c for c in chain[1:] if fingerprint(c) not in seen and issued_by(current, c)), None
        )
        if issuer is None:
            break
        seen.add(fingerprint(issuer))
        current = issuer
    return current


_VERIFIER_NOISE = (
    "validation failed: ",
    "candidates exhausted: ",
    "Python extension validator failed: ",
    "ValueError: ",
)


def client_refusal(
    path: Sequence[x509.Certificate],
    offered: Sequence[x509.Certificate],
    anchors: TrustAnchors,
    now: dt.datetime,
) -> str:
    """Why a client would refuse ``path`` (leaf .. anchor) built from ``offered``; "" if not.

    cryptography's verifier answers (``_verify``, RFC 5280 §6), except where it
    cannot: a path with an MD5/SHA-1 signature, a leaf without subjectAltName,
    or a version 1 anchor (no extensions at all: cryptography requires
    basicConstraints on every CA, OpenSSL takes a self-signed v1 certificate as
    one) gets the leaf's own EKU and basic constraints checked. A version 3
    root without basicConstraints stays refused, as OpenSSL refuses it for
    the sslserver purpose.
    """
    leaf = path[0]
    if len(path) == 1:  # the leaf is an anchor itself: pinned by configuration
        return ""
    weak = any(weak_signature_hash(cert) is not None for cert in path[:-1])
    v1_anchor = path[-1].version is x509.Version.v1  # no extensions at all
    if weak or v1_anchor or not (dns_names(leaf) or ip_names(leaf)):
        return leaf_profile_problem(leaf) or ""
    refusal = verifier_refusal(leaf, offered, anchors.store, now)
    if refusal is None:
        return ""
    for noise in _VERIFIER_NOISE:
        refusal = refusal.replace(noise, "")
    return short(refusal)


def evaluate_chain(
    sent: Sequence[x509.Certificate],
    anchors: TrustAnchors,
    known_intermediates: CertificateIndex,
    now: dt.datetime,
) -> ChainVerdict:
    """Decide trust for a chain as sent (leaf first), independently of the leaf's dates and name.

    ``known_intermediates`` are configured ones (the extra CA file), never
    learned from other hosts: the verdict depends on this chain alone. See the
    module docstring for the incomplete-chain rule.
    """
    chain = tuple(sent)
    leaf = chain[0]
    compromised = compromised_issuer(chain)
    if compromised:
        why = f"issued under {compromised}, a root whose private key is public"
        return ChainVerdict(chain, Trust.UNTRUSTED, refusal=why)
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
            top = top_sent(chain)
            urls = ca_issuers(top)
            cut = not is_self_issued(top) and not anchors.roots.named(top.issuer)
            if cut and (urls or top is leaf):
                return ChainVerdict(chain, Trust.INCOMPLETE, ca_issuers=urls)
            return ChainVerdict(chain, Trust.UNTRUSTED)
        missing = tuple(cert for cert in path.intermediates if cert not in as_sent)
    stores = tuple(anchors.stores_of.get(fingerprint(path.anchor), ()))
    full_path = (leaf, *path.intermediates, path.anchor)
    refusal = client_refusal(full_path, (*chain[1:], *missing), anchors, now)
    if refusal:
        return ChainVerdict(chain, Trust.UNTRUSTED, full_path, stores, missing, refusal=refusal)
    trust = Trust.INCOMPLETE if missing else Trust.TRUSTED
    return ChainVerdict(chain, trust, full_path, stores, missing)


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
        "sans": first_items(dns_names(cert) + [str(ip) for ip in ip_names(cert)]),
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
    # Names of which the leaf must cover one; None: the hostname. () : none can be
    # named (a failed MX lookup), so the name is not judged.
    reference_names: tuple[str, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.hostname,) if self.reference_names is None else self.reference_names


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


def certificate_problems(
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
        untrusted: dict[str, Any] = {"certificates_sent": len(verdict.sent)}
        if verdict.refusal:  # reaches an anchor, but a client refuses the path
            untrusted["refused_because"] = verdict.refusal
        else:
            untrusted["unknown_issuer"] = short(top_sent(verdict.sent).issuer.rfc4514_string())
        problems.append(("tls.cert.untrusted", untrusted))
    elif verdict.trust is Trust.INCOMPLETE:
        incomplete: dict[str, Any] = {"certificates_sent": len(verdict.sent)}
        if verdict.missing:
            missing = [short(cert.subject.rfc4514_string()) for cert in verdict.missing]
            incomplete["missing_intermediates"] = missing
        else:
            top = top_sent(verdict.sent)
            incomplete["missing_issuer"] = short(top.issuer.rfc4514_string())
            if verdict.ca_issuers:
                incomplete["ca_issuers"] = list(verdict.ca_issuers)
        problems.append(("tls.cert.incomplete_chain", incomplete))
    names = policy.names
    if names and not any(covers_hostname(leaf, name) for name in names):
        mismatch: dict[str, Any] = {"hostname": policy.hostname}
        if policy.reference_names is not None:
            mismatch["accepted_names"] = list(names)
        problems.append(("tls.cert.hostname_mismatch", mismatch))
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
    """One finding per defect and endpoint, listing every certificate (RSA, ECDSA...) that has it.

    - ``tls.cert.expired`` / ``tls.cert.not_yet_valid``: the validity period
      (RFC 5280 §4.1.2.5, checked in path validation §6.1.3 (a)(2));
      ``tls.cert.expiring_soon``: notAfter within the configured window;
    - ``tls.cert.self_signed``: a leaf that is its own issuer (RFC 5280 §6.1: a path
      ends at a trust anchor, which a server cannot make itself);
    - ``tls.cert.untrusted``: no path to the trust store that a web client accepts
      (RFC 5280 §6.1, decided by cryptography's web-PKI verifier: EKU, CA flag,
      name constraints), or a root whose private key is public;
    - ``tls.cert.incomplete_chain``: the server omits intermediates (RFC 8446
      §4.4.2, RFC 5246 §7.4.2: the server sends the chain up to the root);
    - ``tls.cert.hostname_mismatch``: no subjectAltName DNS-ID covers the name
      (RFC 9525 §6.3, RFC 6125 §6.4; the subject CN is not consulted);
    - ``tls.cert.weak_key``: under 112 bits of security (NIST SP 800-57 Part 1
      Rev. 5 Table 2: RSA 2048, EC 224; vigie asks 256 for EC);
    - ``tls.cert.weak_signature``: MD5 (RFC 6151) or SHA-1 (RFC 6194; CA/Browser
      Forum Baseline Requirements §7.1.3.2).
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    extras: dict[str, dict[str, Any]] = {}
    for verdict in verdicts:
        for check_id, extra in certificate_problems(verdict, policy):
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
