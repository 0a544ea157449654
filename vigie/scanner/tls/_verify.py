"""Would a TLS client accept this chain? ``cryptography.x509.verification`` decides.

cryptography's verifier implements RFC 5280 §6 path validation under the
CA/Browser Forum Baseline Requirements profile. vigie uses it as the verdict
for what its own path builder does not check: the extended key usage of the
leaf (BR §7.1.2.7.10: ``id-kp-serverAuth``; a leaf with EKU but without it is
refused), a leaf marked CA (RFC 5280 §4.2.1.9, BR §7.1.2.7.8: ``cA`` must not
be asserted in a subscriber certificate), the basic constraints and key usage
of every issuer (RFC 5280 §6.1.4 (k), (n)), name constraints
(RFC 5280 §4.2.1.10) and path length (§4.2.1.9).

Its web-PKI profile also refuses what browsers and OpenSSL accept, and what
vigie reports with its own checks. Those rules are relaxed, so that one
defect gives one finding:

- no AuthorityKeyIdentifier (BR profile only; RFC 5280 §4.2.1.1 makes it a
  SHOULD for self-issued roots, clients find issuers by name);
- a critical subjectAltName next to a non-empty subject, a CA without key
  usage, a missing SubjectKeyIdentifier: profile rules no client enforces;
- the validation time is taken inside the leaf's validity window (dates are
  ``tls.cert.expired`` / ``tls.cert.not_yet_valid``), and the subject is a
  name the leaf presents (the name is ``tls.cert.hostname_mismatch``).

Two questions stay with vigie's builder, because cryptography cannot ask
them: chains signed with MD5 or SHA-1 (the verifier refuses the algorithm
outright; ``tls.cert.weak_signature`` reports it) and leaves without a
subjectAltName (the server verifier requires one; such a leaf names no host,
RFC 9110 §4.3.4, which ``tls.cert.hostname_mismatch`` reports). For those, the leaf's EKU and basic constraints are
checked here directly (:func:`leaf_profile_problem`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

_SERVER_AUTH_OK = (ExtendedKeyUsageOID.SERVER_AUTH,)
E = TypeVar("E", bound=x509.ExtensionType)


def _leaf_not_ca(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.BasicConstraints | None
) -> None:
    """RFC 5280 §4.2.1.9, BR §7.1.2.7.8: a subscriber certificate is not a CA."""
    if ext is not None and ext.ca:
        raise ValueError("basicConstraints.cA must not be asserted in a server certificate")


def _leaf_server_auth(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
) -> None:
    """RFC 5280 §4.2.1.12, BR §7.1.2.7.10: when EKU is present it must allow serverAuth."""
    if ext is not None and not any(oid in _SERVER_AUTH_OK for oid in ext):
        raise ValueError("extended key usage does not include serverAuth")


def _issuer_is_ca(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.BasicConstraints
) -> None:
    """RFC 5280 §6.1.4 (k): an issuer in the path must assert cA."""
    if not ext.ca:
        raise ValueError("issuer certificate is not a CA (basicConstraints.cA is false)")


def _issuer_may_sign(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.KeyUsage | None
) -> None:
    """RFC 5280 §6.1.4 (n): when key usage is present, keyCertSign must be set."""
    if ext is not None and not ext.key_cert_sign:
        raise ValueError("issuer key usage does not allow certificate signing")


def _issuer_server_auth(
    _policy: verification.Policy, _cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
) -> None:
    """BR §7.1.2.2.5 / Mozilla policy §5.3: an EKU on an issuer constrains what it may issue
    (an e-mail-only intermediate cannot vouch for a server)."""
    allowed = (*_SERVER_AUTH_OK, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
    if ext is not None and not any(oid in allowed for oid in ext):
        raise ValueError("issuer extended key usage does not include serverAuth")


def _policies() -> tuple[verification.ExtensionPolicy, verification.ExtensionPolicy]:
    any_ = verification.Criticality.AGNOSTIC
    ca = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, any_, _issuer_is_ca)
        .may_be_present(x509.KeyUsage, any_, _issuer_may_sign)
        .may_be_present(x509.ExtendedKeyUsage, any_, _issuer_server_auth)
    )
    ee = (
        verification.ExtensionPolicy.permit_all()
        .require_present(x509.SubjectAlternativeName, any_, None)
        .may_be_present(x509.BasicConstraints, any_, _leaf_not_ca)
        .may_be_present(x509.ExtendedKeyUsage, any_, _leaf_server_auth)
    )
    return ca, ee


def presented_subject(leaf: x509.Certificate) -> verification.Subject | None:
    """A name the leaf itself presents, so that the verifier's name check always passes."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for name in san.get_values_for_type(x509.DNSName):
        candidate = "x" + name[1:] if name.startswith("*.") else name
        try:
            return x509.DNSName(candidate)
        except ValueError:
            continue
    for ip in san.get_values_for_type(x509.IPAddress):
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return x509.IPAddress(ip)
    return None


def validation_time(leaf: x509.Certificate, now: dt.datetime) -> dt.datetime:
    """``now``, moved inside the leaf's validity window (its dates have their own checks)."""
    return min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)


def verifier_refusal(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    store: verification.Store,
    now: dt.datetime,
) -> str | None:
    """cryptography's verdict on ``leaf``: None when a client would accept it, else why not.

    ``intermediates`` are the untrusted certificates the path may use; the
    anchors are ``store``. The subject is a name the leaf presents: call only
    for a leaf with a subjectAltName (see :func:`presented_subject`).
    """
    subject = presented_subject(leaf)
    if subject is None:
        return "the certificate presents no usable subjectAltName"
    ca_policy, ee_policy = _policies()
    builder = (
        verification.PolicyBuilder()
        .store(store)
        .time(validation_time(leaf, now))
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    )
    try:
        builder.build_server_verifier(subject).verify(leaf, list(intermediates))
    except verification.VerificationError as error:
        return str(error).split(" (encountered processing", 1)[0]
    return None


def _extension(cert: x509.Certificate, kind: type[E]) -> E | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def leaf_profile_problem(leaf: x509.Certificate) -> str | None:
    """The leaf's own EKU and basic constraints, where the verifier cannot be asked."""
    try:
        constraints = _extension(leaf, x509.BasicConstraints)
        usage = _extension(leaf, x509.ExtendedKeyUsage)
        _leaf_not_ca(None, leaf, constraints)  # type: ignore[arg-type]
        _leaf_server_auth(None, leaf, usage)  # type: ignore[arg-type]
    except ValueError as error:  # a refused profile, or extensions no client can parse
        return str(error)
    return None
