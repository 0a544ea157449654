"""Protocol, cipher suite and Diffie-Hellman checks: sslyze suite results -> findings.

Check IDs: ``tls.protocol.sslv2``, ``tls.protocol.sslv3``,
``tls.protocol.tls1_0``, ``tls.protocol.tls1_1``, ``tls.protocol.no_tls1_3``,
``tls.cipher.weak``, ``tls.cipher.no_forward_secrecy``, ``tls.dh.weak``.

Suites are judged by their IANA (RFC) names, which sslyze reports for every
protocol; the names spell out the key exchange and the cipher.
"""

from __future__ import annotations

from collections.abc import Mapping

from nassl.ephemeral_key_info import DhEphemeralKeyInfo
from sslyze import CipherSuitesScanResult

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._common import first_items, tls_finding
from vigie.scanner.tls._model import Endpoint, Protocol

SuiteResults = Mapping[Protocol, CipherSuitesScanResult]

PROTOCOL_CHECKS: dict[Protocol, str] = {
    Protocol.SSL_2_0: "tls.protocol.sslv2",
    Protocol.SSL_3_0: "tls.protocol.sslv3",
    Protocol.TLS_1_0: "tls.protocol.tls1_0",
    Protocol.TLS_1_1: "tls.protocol.tls1_1",
}
MIN_DH_BITS = 2048

# Name fragments of the suites CHECKS.md calls weak, with the reason shown to people.
# Order matters: "3DES" before "DES", so a 3DES suite is reported as 3DES.
_WEAK_FRAGMENTS: tuple[tuple[str, str], ...] = (
    ("_WITH_NULL_", "NULL encryption"),
    ("_anon_", "anonymous key exchange (no authentication)"),
    ("EXPORT", "EXPORT-grade cryptography"),
    ("_RC4_", "RC4"),
    ("3DES", "3DES"),
    ("DES_192_EDE3", "3DES"),
    ("_DES_", "DES"),
    ("DES40", "DES"),
)
# Key exchanges with an ephemeral secret, as the part of the name before "_WITH_".
_EPHEMERAL_KEY_EXCHANGES = ("DHE_", "ECDHE_", "DH_anon", "ECDH_anon")


def weakness_of(suite_name: str) -> str | None:
    """Why ``suite_name`` is weak (NULL, anonymous, EXPORT, RC4, DES, 3DES), or None."""
    for fragment, reason in _WEAK_FRAGMENTS:
        if fragment in suite_name:
            return reason
    return None


def key_exchange_of(suite_name: str) -> str:
    """The key exchange named in an IANA suite name; TLS 1.3 suites say "(EC)DHE"."""
    if "_WITH_" not in suite_name:
        return "(EC)DHE"  # TLS 1.3: TLS_AES_128_GCM_SHA256 and friends are always ephemeral
    prefix = suite_name.split("_WITH_", 1)[0]
    if prefix.startswith("SSL_CK_"):
        return "RSA"  # SSL 2.0 has only RSA key transport
    return prefix.removeprefix("TLS_").removeprefix("SSL_")


def has_forward_secrecy(suite_name: str) -> bool:
    kex = key_exchange_of(suite_name)
    return kex == "(EC)DHE" or kex.startswith(_EPHEMERAL_KEY_EXCHANGES)


def _accepted_names(result: CipherSuitesScanResult) -> list[str]:
    return sorted(accepted.cipher_suite.name for accepted in result.accepted_cipher_suites)


def _protocols_by_suite(suites: SuiteResults) -> dict[str, list[str]]:
    by_suite: dict[str, list[str]] = {}
    for protocol in Protocol:
        result = suites.get(protocol)
        for accepted in result.accepted_cipher_suites if result else []:
            by_suite.setdefault(accepted.cipher_suite.name, []).append(protocol.value)
    return by_suite


def protocol_findings(
    target: HostTarget, endpoint: Endpoint, suites: SuiteResults
) -> list[Finding]:
    """One finding per legacy protocol accepted, and ``no_tls1_3`` when TLS 1.3 was refused."""
    findings = []
    for protocol, check_id in PROTOCOL_CHECKS.items():
        result = suites.get(protocol)
        if result is not None and result.accepted_cipher_suites:
            evidence = {
                "protocol": protocol.value,
                "accepted_suites": first_items(_accepted_names(result)),
            }
            findings.append(tls_finding(target, endpoint, check_id, evidence))
    accepted = [p for p in Protocol if p in suites and suites[p].accepted_cipher_suites]
    tls13 = suites.get(Protocol.TLS_1_3)
    if accepted and tls13 is not None and not tls13.accepted_cipher_suites:
        evidence = {
            "highest_protocol": accepted[-1].value,
            "accepted_protocols": [p.value for p in accepted],
        }
        findings.append(tls_finding(target, endpoint, "tls.protocol.no_tls1_3", evidence))
    return findings


def cipher_findings(target: HostTarget, endpoint: Endpoint, suites: SuiteResults) -> list[Finding]:
    """One finding per weak suite and per suite without forward secrecy (discriminator: the suite)."""
    findings = []
    for name, protocols in sorted(_protocols_by_suite(suites).items()):
        reason = weakness_of(name)
        if reason is not None:
            evidence = {"suite": name, "reason": reason, "protocols": protocols}
            findings.append(tls_finding(target, endpoint, "tls.cipher.weak", evidence, name))
        if not has_forward_secrecy(name):
            evidence = {
                "suite": name,
                "key_exchange": key_exchange_of(name),
                "protocols": protocols,
            }
            findings.append(
                tls_finding(target, endpoint, "tls.cipher.no_forward_secrecy", evidence, name)
            )
    return findings


def dh_findings(target: HostTarget, endpoint: Endpoint, suites: SuiteResults) -> list[Finding]:
    """``tls.dh.weak`` once per endpoint when any finite-field DH group is under 2048 bits."""
    weak: list[tuple[int, str, str]] = []
    for protocol in Protocol:
        result = suites.get(protocol)
        for accepted in result.accepted_cipher_suites if result else []:
            key = accepted.ephemeral_key
            if isinstance(key, DhEphemeralKeyInfo) and key.size < MIN_DH_BITS:
                weak.append((key.size, accepted.cipher_suite.name, protocol.value))
    if not weak:
        return []
    evidence = {
        "dh_bits": min(size for size, _, _ in weak),
        "minimum_bits": MIN_DH_BITS,
        "suites": first_items(sorted({f"{name} ({protocol})" for _, name, protocol in weak})),
    }
    return [tls_finding(target, endpoint, "tls.dh.weak", evidence)]
