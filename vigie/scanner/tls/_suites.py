"""Protocol, cipher suite and Diffie-Hellman checks: sslyze suite results -> findings.

Check IDs: ``tls.protocol.sslv2``, ``tls.protocol.sslv3``,
``tls.protocol.tls1_0``, ``tls.protocol.tls1_1``, ``tls.protocol.no_tls1_3``,
``tls.cipher.weak``, ``tls.cipher.no_forward_secrecy``, ``tls.dh.weak``.

Suites are judged by their IANA (RFC) names, which sslyze reports for every
protocol; the names spell out the key exchange and the cipher.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import gmpy2
from nassl.ephemeral_key_info import DhEphemeralKeyInfo
from sslyze import CipherSuitesScanResult

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._common import first_items, tls_finding
from vigie.scanner.tls._model import Endpoint, Protocol, RefusedDhKey

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
    """One finding per legacy protocol accepted, and ``no_tls1_3`` when TLS 1.3 was refused.

    SSL 2.0 is prohibited (RFC 6176), SSL 3.0 too (RFC 7568), TLS 1.0 and 1.1 are
    deprecated (RFC 8996); RFC 9325 §3.1.1: servers SHOULD support TLS 1.3.
    """
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
    """One finding per weak suite and per suite without forward secrecy (discriminator: the suite).

    - ``tls.cipher.weak``: NULL, anonymous, EXPORT, DES, 3DES (RFC 9325 §4.1: MUST
      NOT be negotiated) and RC4 (RFC 7465);
    - ``tls.cipher.no_forward_secrecy``: RSA key transport or static (EC)DH (RFC 9325
      §4.1 and §4.2; RFC 10015 deprecates them in TLS 1.2).
    """
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


# GMP's probable-prime test (mpz_probab_prime_p: trial division, Baillie-PSW, then
# Miller-Rabin rounds up to this count); FIPS 186-5 Appendix B.3 asks for fewer rounds than
# this for numbers of 1024 bits and more. A 2048-bit safe-prime check takes a few ms.
_PRIME_TEST_ROUNDS = 25


def is_probable_prime(n: int) -> bool:
    """False means composite (GMP's Baillie-PSW and Miller-Rabin, through gmpy2)."""
    return n > 1 and bool(gmpy2.is_prime(n, _PRIME_TEST_ROUNDS))


@functools.lru_cache(maxsize=64)
def dh_group_problem(prime: int) -> str | None:
    """What is wrong with a DH modulus of at least the minimum size; None: a safe prime.

    RFC 5246 §7.4.3 makes ``dh_p`` a prime modulus: a composite one is no group
    at all (the discrete logarithm splits over its factors). RFC 7919 §5.1: the
    only check a peer can make of the other's public value, 1 < Y < p-1, keeps
    it out of small subgroups only when p is a safe prime (p = 2q + 1, q prime),
    as every group of RFC 7919 and RFC 3526 is; with another prime, p - 1 has
    small factors whose subgroups leak the exponent of a server that reuses it
    (the small-subgroup attacks of Valenta et al., NDSS 2017, which badssl's
    dh-small-subgroup site serves). Groups are cached: servers share a few.
    """
    if not is_probable_prime(prime):
        return "the modulus p is not prime"
    if not is_probable_prime((prime - 1) // 2):
        return "the modulus p is not a safe prime ((p-1)/2 is not prime): small subgroups"
    return None


def dh_findings(target: HostTarget, endpoint: Endpoint, suites: SuiteResults) -> list[Finding]:
    """``tls.dh.weak`` once per endpoint: a finite-field DH group under 2048 bits, or one whose
    modulus is not a safe prime (:func:`dh_group_problem`).

    NIST SP 800-57 Part 1 Rev. 5 Table 2: 2048-bit FFC gives 112 bits of security,
    the minimum; the DH group is read from the ServerKeyExchange (RFC 5246 §7.4.3).
    A group OpenSSL's client refused as too small (:class:`RefusedDhKey`: under
    1024 bits, badssl.com's dh480 and dh512) is weak without being read.
    """
    weak: list[tuple[int | None, str, str]] = []
    problems: set[str] = set()
    for protocol in Protocol:
        result = suites.get(protocol)
        for accepted in result.accepted_cipher_suites if result else []:
            key = accepted.ephemeral_key
            if not isinstance(key, DhEphemeralKeyInfo):
                continue
            problem = None
            if isinstance(key, RefusedDhKey):
                problem = (
                    f"a group under {key.size} bits: the TLS client refused it"
                    " (OpenSSL: dh key too small)"
                )
            elif key.size < MIN_DH_BITS:
                problem = f"a {key.size}-bit group, under {MIN_DH_BITS} bits"
            elif key.prime:
                problem = dh_group_problem(int.from_bytes(key.prime, "big"))
            if problem is not None:
                problems.add(problem)
                read = None if isinstance(key, RefusedDhKey) else key.size
                weak.append((read, accepted.cipher_suite.name, protocol.value))
    if not weak:
        return []
    evidence: dict[str, object] = {
        "minimum_bits": MIN_DH_BITS,
        "problems": sorted(problems),
        "suites": first_items(sorted({f"{name} ({protocol})" for _, name, protocol in weak})),
    }
    sizes = [size for size, _, _ in weak if size is not None]
    if sizes:
        evidence["dh_bits"] = min(sizes)
    return [tls_finding(target, endpoint, "tls.dh.weak", evidence)]
