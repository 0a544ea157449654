"""TLS family: the pure checks on constructed sslyze results, and the wiring on real servers.

Real servers (nginx, ``openssl s_server`` and aiosmtpd on 127.0.4.x, see
``tls_fixtures``): the good chain (trusted through ``tls.extra_ca_file``),
expired, not yet valid, expiring soon, self-signed, untrusted CA, hostname
mismatch, missing intermediate, RSA-1024 key, SHA-1 and MD5 signatures,
TLS 1.0 and 1.1 (Debian's OpenSSL 3 serves them at ``@SECLEVEL=0``), a suite
without forward secrecy, 1024-bit DHE, no TLS 1.3, NULL and anonymous suites,
client-initiated renegotiation (``s_server -client_renegotiation``), SMTP
STARTTLS, plain HTTP on 443, a closed port and a silent port.

Mapping only, because Debian's OpenSSL 3 cannot serve them: SSL 2.0 and 3.0
(built without them), EXPORT, RC4, DES and 3DES suites (removed, or not built:
no ``enable-weak-ssl-ciphers``), TLS compression (built without zlib), insecure
legacy renegotiation (OpenSSL always implements RFC 5746), and Heartbleed, CCS
injection and ROBOT (OpenSSL 3 is not vulnerable). Those tests build sslyze's
own result objects.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, OpenSslEvpPkeyEnum
from sslyze import (
    CipherSuiteAcceptedByServer,
    CipherSuitesScanResult,
    CompressionScanResult,
    HeartbleedScanResult,
    OpenSslCcsInjectionScanResult,
    RobotScanResult,
    RobotScanResultEnum,
    SessionRenegotiationScanResult,
    TlsVersionEnum,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server

import vigie.scanner.tls as tls
from tests.scanner.tls_fixtures import (
    CA_ISSUERS_URL,
    DAY,
    NOW,
    NginxFarm,
    Pki,
    TlsCase,
    address,
    host,
    make_ca,
    make_leaf,
    rsa_key,
    silent_listener,
    smtp_server,
    standard_cases,
)
from tests.servers import require_program, running
from vigie.config import ScanSettings, ScopeSettings, Settings, TlsSettings
from vigie.model import Family, FamilyResult, HostTarget, OpenPort, Severity
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.tls import (
    CertificateIndex,
    CertificatePolicy,
    Endpoint,
    EndpointObservation,
    ProbeProblem,
    Protocol,
    StartTls,
    Trust,
    TrustAnchors,
    Vulnerabilities,
    certificate_findings,
    check_tls,
    cipher_findings,
    covers_hostname,
    dh_findings,
    endpoint_findings,
    endpoints_to_scan,
    evaluate_chain,
    has_forward_secrecy,
    protocol_findings,
    tls_missing_findings,
    vulnerability_findings,
    weakness_of,
)
from vigie.scanner.tls._model import RefusedDhKey
from vigie.scanner.tls._probe import (
    Offer,
    answered_by_enumeration,
    eliminate,
    server_location,
    suite_groups,
)

TARGET = HostTarget("www.vigie.test", "127.0.4.1")
HTTPS = Endpoint(443)
Found = set[tuple[str, str]]


def found(result: FamilyResult) -> Found:
    return {(f.check_id, f.discriminator) for f in result.findings}


def settings(extra_ca_file: Path | None = None, **tls_options: Any) -> Settings:
    return Settings(
        scope=ScopeSettings(allow=["127.0.4.0/24"]),
        # The sweep-wide rate limit would dominate a loopback test: lift it.
        scan=ScanSettings(max_rate_per_s=100_000, probe_timeout_s=2),
        tls=TlsSettings(extra_ca_file=extra_ca_file, **tls_options),
    )


def scan(cfg: Settings, targets: list[tuple[HostTarget, list[int]]]) -> list[FamilyResult]:
    """Run check_tls for every target concurrently in one sweep context, as the engine does."""

    async def sweep() -> list[FamilyResult]:
        ctx = ProbeContext.from_settings(cfg)
        try:
            return list(
                await asyncio.gather(
                    *(check_tls(ctx, t, [OpenPort(p) for p in ports]) for t, ports in targets)
                )
            )
        finally:
            await ctx.aclose()

    return asyncio.run(sweep())


# --- pure checks: suites and protocols ------------------------------------------------------


def suite(protocol: Protocol, openssl_name: str) -> CipherSuiteAcceptedByServer:
    known = CipherSuitesRepository.get_cipher_suite_with_openssl_name(protocol.sslyze, openssl_name)
    return CipherSuiteAcceptedByServer(cipher_suite=known, ephemeral_key=None)


def accepted(protocol: Protocol, *suites: CipherSuiteAcceptedByServer) -> CipherSuitesScanResult:
    return CipherSuitesScanResult(protocol.sslyze, list(suites), [])


@pytest.mark.parametrize(
    ("name", "weak", "forward_secret"),
    [
        ("TLS_AES_128_GCM_SHA256", None, True),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", None, True),
        ("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", None, True),
        ("TLS_RSA_WITH_AES_128_CBC_SHA", None, False),
        ("TLS_RSA_WITH_NULL_SHA256", "NULL encryption", False),
        ("TLS_ECDH_anon_WITH_AES_128_CBC_SHA", "anonymous key exchange (no authentication)", True),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "EXPORT-grade cryptography", False),
        ("TLS_RSA_WITH_RC4_128_SHA", "RC4", False),
        ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "3DES", False),
        ("TLS_DHE_RSA_WITH_DES_CBC_SHA", "DES", True),
        ("SSL_CK_RC4_128_WITH_MD5", "RC4", False),
        ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "3DES", False),
        ("TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", None, False),
        ("TLS_PSK_WITH_AES_128_CBC_SHA", None, False),
    ],
)
def test_suite_names_are_classified(name: str, weak: str | None, forward_secret: bool) -> None:
    assert weakness_of(name) == weak
    assert has_forward_secrecy(name) is forward_secret


def test_ssl2_and_ssl3_map_to_their_findings() -> None:
    """Mapping only: Debian's OpenSSL 3 is built without SSL 2.0 and SSL 3.0."""
    suites = {
        Protocol.SSL_2_0: accepted(Protocol.SSL_2_0, suite(Protocol.SSL_2_0, "RC4-MD5")),
        Protocol.SSL_3_0: accepted(Protocol.SSL_3_0, suite(Protocol.SSL_3_0, "AES128-SHA")),
        Protocol.TLS_1_0: accepted(Protocol.TLS_1_0),
        Protocol.TLS_1_3: accepted(Protocol.TLS_1_3),
    }
    findings = protocol_findings(TARGET, HTTPS, suites)
    assert {f.check_id for f in findings} == {
        "tls.protocol.sslv2",
        "tls.protocol.sslv3",
        "tls.protocol.no_tls1_3",
    }
    sslv2 = next(f for f in findings if f.check_id == "tls.protocol.sslv2")
    assert sslv2.evidence["accepted_suites"] == ["SSL_CK_RC4_128_WITH_MD5"]


def test_no_tls13_needs_tls13_tested_and_refused() -> None:
    tls12 = {
        Protocol.TLS_1_2: accepted(
            Protocol.TLS_1_2, suite(Protocol.TLS_1_2, "ECDHE-RSA-AES128-GCM-SHA256")
        )
    }
    assert protocol_findings(TARGET, HTTPS, tls12) == []  # TLS 1.3 not established either way
    refused = {**tls12, Protocol.TLS_1_3: accepted(Protocol.TLS_1_3)}
    assert [f.check_id for f in protocol_findings(TARGET, HTTPS, refused)] == [
        "tls.protocol.no_tls1_3"
    ]


def test_export_rc4_des_3des_suites_are_weak() -> None:
    """Mapping only: OpenSSL 3 has no EXPORT, RC4, DES or 3DES suites to serve."""
    names = ["EXP-RC4-MD5", "RC4-SHA", "DES-CBC-SHA", "DES-CBC3-SHA", "ECDHE-RSA-AES128-SHA"]
    suites = {
        Protocol.TLS_1_0: accepted(Protocol.TLS_1_0, *(suite(Protocol.TLS_1_0, n) for n in names))
    }
    assert {(f.check_id, f.discriminator) for f in cipher_findings(TARGET, HTTPS, suites)} == {
        ("tls.cipher.weak", "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        ("tls.cipher.weak", "TLS_RSA_WITH_RC4_128_SHA"),
        ("tls.cipher.weak", "TLS_RSA_WITH_DES_CBC_SHA"),
        ("tls.cipher.weak", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
        ("tls.cipher.no_forward_secrecy", "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_RC4_128_SHA"),
        ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_DES_CBC_SHA"),
        ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    }


def _dhe(bits: int) -> CipherSuiteAcceptedByServer:
    key = DhEphemeralKeyInfo(
        type=OpenSslEvpPkeyEnum.DH,
        size=bits,
        public_bytes=bytearray(),
        prime=bytearray(),
        generator=bytearray(b"\x02"),
    )
    known = CipherSuitesRepository.get_cipher_suite_with_openssl_name(
        TlsVersionEnum.TLS_1_2, "DHE-RSA-AES128-GCM-SHA256"
    )
    return CipherSuiteAcceptedByServer(cipher_suite=known, ephemeral_key=key)


def test_dh_groups_under_2048_bits_are_weak() -> None:
    weak = {Protocol.TLS_1_2: accepted(Protocol.TLS_1_2, _dhe(1024))}
    strong = {Protocol.TLS_1_2: accepted(Protocol.TLS_1_2, _dhe(2048))}
    [finding] = dh_findings(TARGET, HTTPS, weak)
    assert (finding.check_id, finding.evidence["dh_bits"]) == ("tls.dh.weak", 1024)
    assert dh_findings(TARGET, HTTPS, strong) == []


# --- pure checks: vulnerabilities -----------------------------------------------------------


@pytest.mark.parametrize(
    ("vulnerabilities", "expected"),
    [
        (Vulnerabilities(heartbleed=HeartbleedScanResult(True)), {"tls.vuln.heartbleed"}),
        (
            Vulnerabilities(ccs_injection=OpenSslCcsInjectionScanResult(True)),
            {"tls.vuln.ccs_injection"},
        ),
        (
            Vulnerabilities(robot=RobotScanResult(RobotScanResultEnum.VULNERABLE_STRONG_ORACLE)),
            {"tls.vuln.robot"},
        ),
        (
            Vulnerabilities(robot=RobotScanResult(RobotScanResultEnum.VULNERABLE_WEAK_ORACLE)),
            {"tls.vuln.robot"},
        ),
        (
            Vulnerabilities(
                robot=RobotScanResult(RobotScanResultEnum.UNKNOWN_INCONSISTENT_RESULTS)
            ),
            set(),
        ),
        (
            Vulnerabilities(renegotiation=SessionRenegotiationScanResult(False, False, 0)),
            {"tls.renegotiation.insecure"},
        ),
        (
            Vulnerabilities(renegotiation=SessionRenegotiationScanResult(True, True, 10)),
            {"tls.renegotiation.insecure"},
        ),
        (Vulnerabilities(renegotiation=SessionRenegotiationScanResult(True, False, 0)), set()),
        (Vulnerabilities(compression=CompressionScanResult(True)), {"tls.compression"}),
        (
            Vulnerabilities(
                HeartbleedScanResult(False),
                OpenSslCcsInjectionScanResult(False),
                RobotScanResult(RobotScanResultEnum.NOT_VULNERABLE_NO_ORACLE),
                SessionRenegotiationScanResult(True, False, 0),
                CompressionScanResult(False),
            ),
            set(),
        ),
    ],
)
def test_vulnerability_verdicts_map_to_findings(
    vulnerabilities: Vulnerabilities, expected: set[str]
) -> None:
    """Mapping only: no OpenSSL 3 server is vulnerable, compresses, or lacks secure renegotiation."""
    assert {f.check_id for f in vulnerability_findings(TARGET, HTTPS, vulnerabilities)} == expected


def test_enumeration_answers_the_probes_sslyze_would_skip() -> None:
    tls13_only = {p: accepted(p) for p in Protocol}
    tls13_only[Protocol.TLS_1_3] = accepted(
        Protocol.TLS_1_3, suite(Protocol.TLS_1_3, "TLS_AES_128_GCM_SHA256")
    )
    known = answered_by_enumeration(tls13_only, TlsVersionEnum.TLS_1_3)
    assert set(known) == {"heartbleed", "ccs_injection", "robot", "renegotiation", "compression"}
    with_rsa = dict(tls13_only)
    with_rsa[Protocol.TLS_1_2] = accepted(Protocol.TLS_1_2, suite(Protocol.TLS_1_2, "AES128-SHA"))
    assert set(answered_by_enumeration(with_rsa, TlsVersionEnum.TLS_1_3)) == {
        "heartbleed",
        "ccs_injection",
    }
    unfinished = {p: r for p, r in tls13_only.items() if p is not Protocol.TLS_1_0}
    assert set(answered_by_enumeration(unfinished, TlsVersionEnum.TLS_1_3)) == {
        "heartbleed",
        "ccs_injection",
    }


# --- pure checks: certificates --------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def anchors_of(pki: Pki) -> TrustAnchors:
    return TrustAnchors.from_stores({"test": [pki.root.cert]})


def test_chain_trust_is_judged_apart_from_dates_and_names(pki: Pki) -> None:
    anchors, none = anchors_of(pki), CertificateIndex()
    expired = pki.leaf("a.test", not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    assert (
        evaluate_chain([expired.cert, pki.intermediate.cert], anchors, none, NOW).trust
        is Trust.TRUSTED
    )
    mismatch = pki.leaf("elsewhere.test")
    verdict = evaluate_chain([mismatch.cert, pki.intermediate.cert], anchors, none, NOW)
    assert (verdict.trust, verdict.anchor_stores) == (Trust.TRUSTED, ("test",))
    assert [c.subject for c in verdict.path] == [
        mismatch.cert.subject,
        pki.intermediate.cert.subject,
        pki.root.cert.subject,
    ]


def test_self_signed_untrusted_and_incomplete_chains(pki: Pki) -> None:
    anchors = anchors_of(pki)
    self_signed = make_leaf(["s.test"], pki.server_key, None).cert
    assert (
        evaluate_chain([self_signed], anchors, CertificateIndex(), NOW).trust is Trust.SELF_SIGNED
    )
    trusted_self = TrustAnchors.from_stores({"pinned": [self_signed]})
    assert (
        evaluate_chain([self_signed], trusted_self, CertificateIndex(), NOW).trust is Trust.TRUSTED
    )
    alone = pki.leaf("i.test").cert
    # A lone leaf whose issuer nobody holds: the server left out what its clients need.
    verdict = evaluate_chain([alone], anchors, CertificateIndex(), NOW)
    assert (verdict.trust, verdict.missing, verdict.ca_issuers) == (Trust.INCOMPLETE, (), ())
    verdict = evaluate_chain([alone], anchors, CertificateIndex([pki.intermediate.cert]), NOW)
    assert (verdict.trust, verdict.missing) == (Trust.INCOMPLETE, (pki.intermediate.cert,))
    foreign = make_leaf(["u.test"], pki.server_key, pki.other_intermediate).cert
    chain = [foreign, pki.other_intermediate.cert]
    assert (
        evaluate_chain(chain, anchors, CertificateIndex([pki.intermediate.cert]), NOW).trust
        is Trust.UNTRUSTED
    )


def test_expired_intermediate_breaks_the_path(pki: Pki) -> None:
    old_ca = make_ca("old intermediate", rsa_key(), issuer=pki.root)
    leaf = make_leaf(["o.test"], pki.server_key, old_ca).cert
    later = NOW + 4000 * DAY  # past the intermediate's notAfter
    assert (
        evaluate_chain([leaf, old_ca.cert], anchors_of(pki), CertificateIndex(), later).trust
        is Trust.UNTRUSTED
    )


@pytest.mark.parametrize(
    ("names", "hostname", "covered"),
    [
        (["www.vigie.test"], "WWW.vigie.test.", True),
        (["*.vigie.test"], "www.vigie.test", True),
        (["*.vigie.test"], "vigie.test", False),
        (["*.vigie.test"], "a.www.vigie.test", False),
        (["*.test"], "vigie.test", False),  # no wildcard over a whole public suffix label
        (["other.test"], "www.vigie.test", False),
        (["xn--bcher-kva.test"], "bücher.test", True),
    ],
)
def test_host_names_follow_rfc_6125(
    names: list[str], hostname: str, covered: bool, pki: Pki
) -> None:
    cert = make_leaf(names, pki.server_key, pki.intermediate).cert
    assert covers_hostname(cert, hostname) is covered


def test_common_name_never_counts(pki: Pki) -> None:
    # Given a leaf naming its host only in the subject's CN (no subjectAltName)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "cn.vigie.test")]))
        .issuer_name(pki.intermediate.cert.subject)
        .public_key(pki.server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
    )
    cert = builder.sign(pki.intermediate.key, hashes.SHA256())  # type: ignore[arg-type]
    # Then it covers no name (RFC 9110 §4.3.4: "a reference identity of type CN-ID MUST NOT
    # be used by clients"; RFC 9525 drops the CN-ID), as cryptography's web-PKI verifier
    # refuses it for that name
    store = verification.Store([pki.root.cert])
    verifier = verification.PolicyBuilder().store(store).time(NOW)
    with pytest.raises(verification.VerificationError):
        verifier.build_server_verifier(x509.DNSName("cn.vigie.test")).verify(
            cert, [pki.intermediate.cert]
        )
    assert not covers_hostname(cert, "cn.vigie.test")
    assert not covers_hostname(
        make_leaf(["san.vigie.test"], pki.server_key, pki.intermediate).cert, "cn.vigie.test"
    )


def test_certificate_findings_group_every_deployment(pki: Pki) -> None:
    anchors = anchors_of(pki)
    rsa = pki.leaf("www.vigie.test", not_after=NOW - DAY).cert
    other = make_leaf(["www.vigie.test"], rsa_key(), pki.intermediate, not_after=NOW - 2 * DAY).cert
    verdicts = [
        evaluate_chain([c, pki.intermediate.cert], anchors, CertificateIndex(), NOW)
        for c in (rsa, other)
    ]
    policy = CertificatePolicy("www.vigie.test", NOW, 30)
    [finding] = certificate_findings(TARGET, HTTPS, verdicts, policy)
    assert finding.check_id == "tls.cert.expired"
    sha256 = [c.fingerprint(hashes.SHA256()).hex() for c in (rsa, other)]
    assert [c["sha256"] for c in finding.evidence["certificates"]] == sha256
    assert finding.evidence["trusted_by"] == ["test"]


# --- pure checks: ports, tls.missing, problems -----------------------------------------------


def test_endpoints_cover_tls_ports_and_starttls() -> None:
    ports = [OpenPort(p) for p in (22, 25, 80, 110, 143, 443, 465, 587, 636, 993, 995, 8443)]
    ports.append(OpenPort(4443, service="https", tls=True))
    assert endpoints_to_scan(ports) == [
        Endpoint(25, StartTls.SMTP),
        Endpoint(110, StartTls.POP3),
        Endpoint(143, StartTls.IMAP),
        Endpoint(443),
        Endpoint(465),
        Endpoint(587, StartTls.SMTP),
        Endpoint(636),
        Endpoint(993),
        Endpoint(995),
        Endpoint(4443),
        Endpoint(8443),
    ]


def _observation(
    endpoint: Endpoint, *, handshake: bool, problems: tuple[ProbeProblem, ...] = ()
) -> EndpointObservation:
    suites = (
        {
            Protocol.TLS_1_3: accepted(
                Protocol.TLS_1_3, suite(Protocol.TLS_1_3, "TLS_AES_128_GCM_SHA256")
            )
        }
        if handshake
        else {}
    )
    return EndpointObservation(endpoint, speaks_tls=handshake, suites=suites, problems=problems)


def test_tls_missing_needs_http_and_no_web_handshake() -> None:
    http = [OpenPort(80, service="http", banner="HTTP/1.1 200 OK")]
    smtp = _observation(Endpoint(25, StartTls.SMTP), handshake=True)
    [missing] = tls_missing_findings(TARGET, http, [smtp])  # STARTTLS on 25 is not HTTPS
    assert (missing.check_id, missing.port, missing.evidence["tls_ports_tried"]) == (
        "tls.missing",
        80,
        [],
    )
    assert tls_missing_findings(TARGET, http, [_observation(HTTPS, handshake=True)]) == []
    timeout = ProbeProblem("tls.handshake", True, "no answer")
    assert (
        tls_missing_findings(
            TARGET, http, [_observation(HTTPS, handshake=False, problems=(timeout,))]
        )
        == []
    )
    assert tls_missing_findings(TARGET, [OpenPort(80, service="ssh")], []) == []
    # a port named "http" from its number alone, that never answered, is no web application
    assert tls_missing_findings(TARGET, [OpenPort(80, service="http")], []) == []


def test_probe_problems_become_scan_findings() -> None:
    problems = (
        ProbeProblem("tls.suites.TLSv1.2", True, "ConnectionToServerTimedOut: timed out"),
        ProbeProblem("tls.heartbleed", False, "OSError: reset"),
    )
    observation = _observation(HTTPS, handshake=True, problems=problems)
    policy = CertificatePolicy(TARGET.domain, NOW, 30)
    findings = endpoint_findings(TARGET, observation, [], policy)
    assert {(f.check_id, f.discriminator) for f in findings} == {
        ("scan.timeout", "tls:443"),
        ("scan.error", "tls:443"),
    }


def test_public_names_are_exported() -> None:
    assert sorted(tls.__all__) == sorted(set(tls.__all__))
    for name in tls.__all__:
        assert hasattr(tls, name), name


# --- real servers ---------------------------------------------------------------------------


@dataclass
class Farm:
    """Every standard case served by one nginx; the sweep over them runs once, inside a test."""

    pki: Pki
    cases: dict[str, TlsCase]
    results: dict[str, FamilyResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)  # TLS jobs (connections) per address

    def result(self, name: str) -> FamilyResult:
        if not self.results:
            self._sweep()
        return self.results[name]

    def _sweep(self) -> None:
        cfg = settings(self.pki.extra_ca_file())

        def heard(port: int) -> OpenPort:
            # As the port stage names it: every case's port 80 answers plain HTTP.
            if port == 80:
                return OpenPort(80, service="http", banner="HTTP/1.1 200 OK")
            return OpenPort(port)

        async def timed(ctx: ProbeContext, case: TlsCase) -> tuple[str, FamilyResult, float]:
            start = time.monotonic()
            target = HostTarget(case.domain, case.ip)
            result = await check_tls(ctx, target, [heard(p) for p in case.open_ports])
            return case.name, result, time.monotonic() - start

        async def sweep() -> None:
            ctx = ProbeContext.from_settings(cfg)
            try:
                for name, result, seconds in await asyncio.gather(
                    *(timed(ctx, c) for c in self.cases.values())
                ):
                    self.results[name], self.seconds[name] = result, seconds
                self.jobs = dict(tls.sweep_of(ctx).jobs_per_server)
            finally:
                await ctx.aclose()

        asyncio.run(sweep())


@pytest.fixture(scope="module")
def farm(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    cases = standard_cases(pki)
    nginx = NginxFarm(
        tmp_path_factory.mktemp("nginx"), [site for case in cases for site in case.sites]
    )
    with nginx.run():
        yield Farm(pki, {case.name: case for case in cases})


CASE_NAMES = [
    "good", "expired", "future", "expiring", "self-signed", "untrusted", "mismatch", "incomplete",
    "weak-key", "sha1", "md5", "legacy", "rsa-kex", "dh-1024", "tls12-only", "weak-suites",
    "plain-on-443", "http-only",
]  # fmt: skip


@pytest.mark.network
@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_misconfiguration_gives_exactly_its_findings(farm: Farm, name: str) -> None:
    # Given one server per misconfiguration, all scanned together in one sweep
    result = farm.result(name)
    # Then exactly the expected (check ID, discriminator) pairs fire, nothing else
    assert found(result) == farm.cases[name].expected
    assert result.family is Family.TLS and result.complete


@pytest.mark.network
def test_well_configured_server_has_nothing_above_info(farm: Farm) -> None:
    findings = farm.result("good").findings
    assert all((f.severity or Severity.INFO) <= Severity.INFO for f in findings)
    assert [f for f in findings if f.check_id.startswith("tls.")] == []


@pytest.mark.network
def test_evidence_names_the_certificate_and_the_suites(farm: Farm) -> None:
    [expired] = farm.result("expired").findings
    [cert] = expired.evidence["certificates"]
    assert cert["subject"] == "CN=expired.vigie.test,O=vigie tests"
    assert cert["sans"] == ["expired.vigie.test"]
    assert cert["issuer"] == "CN=vigie test intermediate,O=vigie tests"
    assert dt.datetime.fromisoformat(cert["not_after"]) < dt.datetime.now(dt.UTC)
    assert len(cert["sha256"]) == 64 and expired.evidence["trusted_by"] == ["extra CA file"]
    legacy = {f.check_id: f for f in farm.result("legacy").findings}
    assert legacy["tls.protocol.tls1_0"].evidence["accepted_suites"] == [
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    ]
    assert legacy["tls.protocol.no_tls1_3"].evidence["highest_protocol"] == "TLSv1.2"
    [incomplete] = farm.result("incomplete").findings
    assert incomplete.evidence["missing_issuer"] == "CN=vigie test intermediate,O=vigie tests"
    assert incomplete.evidence["ca_issuers"] == [CA_ISSUERS_URL]


@pytest.mark.network
def test_suites_are_enumerated_with_few_connections(farm: Farm) -> None:
    farm.result("good")
    # sslyze's per-suite enumeration opens about 540 connections per server; elimination
    # needs one per accepted suite and one per protocol, plus the vulnerability probes.
    tls_hosts = {c.ip for c in farm.cases.values() if 443 in c.open_ports}
    assert set(farm.jobs) == tls_hosts
    assert farm.jobs[farm.cases["good"].ip] <= 20
    assert max(farm.jobs.values()) <= 30
    assert all(seconds < 10 for seconds in farm.seconds.values())


EQUIVALENCE_CASES = ["good", "legacy", "rsa-kex", "dh-1024", "weak-suites", "tls12-only", "sha1"]


@pytest.mark.network
@pytest.mark.slow
def test_sslyze_per_suite_enumeration_gives_identical_verdicts(farm: Farm) -> None:
    # Given the same servers scanned with sslyze's one-connection-per-suite commands
    cases = [farm.cases[name] for name in EQUIVALENCE_CASES]
    targets = [(HostTarget(c.domain, c.ip), c.open_ports) for c in cases]

    def connections(mode: str) -> tuple[list[Found], int]:
        cfg = settings(farm.pki.extra_ca_file(), suite_enumeration=mode)

        async def sweep() -> tuple[list[FamilyResult], int]:
            ctx = ProbeContext.from_settings(cfg)
            results = await asyncio.gather(
                *(check_tls(ctx, t, [OpenPort(p) for p in ports]) for t, ports in targets)
            )
            jobs = sum(tls.sweep_of(ctx).jobs_per_server.values())
            await ctx.aclose()
            return list(results), jobs

        results, jobs = asyncio.run(sweep())
        weak_dh.append(
            [f.evidence for r in results for f in r.findings if f.check_id == "tls.dh.weak"]
        )
        return [found(r) for r in results], jobs

    weak_dh: list[list[Any]] = []
    per_suite, per_suite_jobs = connections("per_suite")
    elimination, elimination_jobs = connections("elimination")
    # Then both give the very same findings, and elimination needs far fewer connections
    assert per_suite == elimination == [c.expected for c in cases]
    assert elimination_jobs * 10 < per_suite_jobs
    # And the same DH evidence: every DHE suite at 1024 bits, measured or taken from the
    # completed handshake of its kind
    assert weak_dh[0] == weak_dh[1]
    assert weak_dh[0][0]["dh_bits"] == 1024 and len(weak_dh[0][0]["suites"]) >= 6


@pytest.mark.network
def test_after_one_complete_handshake_of_a_kind_the_others_stop_at_the_certificate(
    farm: Farm,
) -> None:
    # Given the 1024-bit DH server: one ECDHE and three DHE suites in TLS 1.0
    case = farm.cases["dh-1024"]
    location, network = server_location(
        case.domain, case.ip, HTTPS, settings(farm.pki.extra_ca_file())
    )
    info = ServerConnectivityInfo(
        location, network, check_connectivity_to_server(location, network)
    )
    group = next(g for g in suite_groups() if g.protocol is Protocol.TLS_1_0)
    offers: list[tuple[bool, Any]] = []

    async def run(job: Any) -> Any:
        offer = await asyncio.to_thread(job)
        if isinstance(offer, Offer):
            offers.append((offer.stopped_early, offer.chosen))
        return offer

    outcome = asyncio.run(eliminate(run, info, group))
    # Then each accepted suite is found, every DHE one with the server's 1024-bit group
    dhe = [a for a in outcome.accepted if "_DHE_" in a.cipher_suite.name]
    assert len(outcome.accepted) == 4 and len(dhe) == 3
    assert all(
        isinstance(a.ephemeral_key, DhEphemeralKeyInfo) and a.ephemeral_key.size == 1024
        for a in dhe
    )
    # And one handshake per key exchange kind was completed (the ECDHE one, the DHE one);
    # at least two DHE picks stopped at the certificate; at most one was redone alone
    completed = [chosen for early, chosen in offers if not early and chosen]
    stopped = [chosen for early, chosen in offers if early]
    assert len(completed) == 2 and len(stopped) >= 2
    assert len(offers) <= 6  # four picks, at most one redone, one refusal


@pytest.mark.network
def test_missing_intermediate_listed_in_the_ca_file_is_an_incomplete_chain(farm: Farm) -> None:
    # Given the server that omits its intermediate, scanned alone
    case = farm.cases["incomplete"]
    target = (HostTarget(case.domain, case.ip), case.open_ports)
    # When the extra CA file lists the intermediate, Then it is named as missing
    [with_file] = scan(settings(farm.pki.extra_ca_file(with_intermediate=True)), [target])
    assert found(with_file) == {("tls.cert.incomplete_chain", "")}
    [finding] = with_file.findings
    assert finding.evidence["missing_intermediates"] == ["CN=vigie test intermediate,O=vigie tests"]
    # When only the root is known, the leaf's caIssuers URL still says an intermediate is
    # missing: the same verdict alone as in the sweep
    [alone] = scan(settings(farm.pki.extra_ca_file()), [target])
    assert found(alone) == {("tls.cert.incomplete_chain", "")} == farm.cases["incomplete"].expected


@pytest.mark.network
def test_client_initiated_renegotiation_on_openssl_s_server(pki: Pki, tmp_path: Path) -> None:
    # Given openssl s_server accepting client-initiated renegotiation (TLS 1.2, ECDHE suites)
    openssl = require_program("openssl")
    ip = address(41)
    leaf = pki.leaf(host("reneg"))
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    (tmp_path / "leaf.key").write_bytes(leaf.key_pem)
    (tmp_path / "chain.pem").write_bytes(pki.intermediate.pem)
    argv = [
        openssl, "s_server", "-accept", f"{ip}:443", "-cert", str(tmp_path / "leaf.pem"),
        "-key", str(tmp_path / "leaf.key"), "-cert_chain", str(tmp_path / "chain.pem"),
        "-client_renegotiation", "-no_tls1_3", "-cipher", "ECDHE+AESGCM", "-www", "-quiet",
    ]  # fmt: skip
    with running(argv, listen=(ip, 443), log=tmp_path / "s_server.log"):
        # When scanned one connection at a time (s_server serves one client at once)
        cfg = settings(pki.extra_ca_file(), connections_per_server=1)
        [result] = scan(cfg, [(HostTarget(host("reneg"), ip), [443])])
    # Then renegotiation is reported, with the absent TLS 1.3
    assert found(result) == {("tls.renegotiation.insecure", ""), ("tls.protocol.no_tls1_3", "")}
    reneg = next(f for f in result.findings if f.check_id == "tls.renegotiation.insecure")
    assert reneg.evidence["client_initiated_accepted"] and reneg.evidence["secure_renegotiation"]


@pytest.mark.network
def test_smtp_starttls_is_scanned(pki: Pki, tmp_path: Path) -> None:
    # Given a real SMTP server offering STARTTLS with an expired certificate on port 25,
    # and another without STARTTLS on port 587
    ip = address(40)
    chain = pki.chain(host("mail"), not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    with smtp_server(ip, 25, chain, tmp_path), smtp_server(ip, 587, None, tmp_path):
        [result] = scan(settings(pki.extra_ca_file()), [(HostTarget(host("mail"), ip), [25, 587])])
    # Then the certificate behind STARTTLS is judged, and the port without STARTTLS is no failure
    assert found(result) == {("tls.cert.expired", "")}
    [expired] = result.findings
    assert (expired.port, expired.evidence["starttls"]) == (25, "smtp")
    assert result.complete


@pytest.mark.network
def test_closed_port_is_a_scan_error(pki: Pki) -> None:
    # Given a port the port stage reported open, where nothing listens any more
    [result] = scan(
        settings(pki.extra_ca_file()), [(HostTarget(host("closed"), address(42)), [80, 443])]
    )
    # Then the failure is recorded, nothing else is concluded (no tls.missing either)
    assert found(result) == {("scan.error", "tls:443")}
    assert not result.complete


@pytest.mark.network
def test_silent_port_is_a_scan_timeout(pki: Pki) -> None:
    # Given a port that accepts connections and never answers
    ip = address(43)
    with silent_listener(ip, 443):
        cfg = settings(pki.extra_ca_file()).model_copy(
            update={"scan": ScanSettings(max_rate_per_s=100_000, probe_timeout_s=1)}
        )
        [result] = scan(cfg, [(HostTarget(host("silent"), ip), [80, 443])])
    assert found(result) == {("scan.timeout", "tls:443")}
    assert not result.complete


def test_out_of_scope_address_is_not_contacted() -> None:
    # Given an address outside the allowed ranges
    outside = HostTarget("www.example.org", "127.0.9.1")
    [result] = scan(settings(), [(outside, [443])])
    # Then nothing is sent and the family says why
    assert found(result) == {("scan.out_of_scope", "tls")}
    assert not result.complete


def test_dh_group_the_client_refused_is_weak() -> None:
    # Given a DHE suite the server chose and OpenSSL's client refused ("dh key too small":
    # under 1024 bits, OpenSSL's floor at every security level), its group unread
    refused = CipherSuiteAcceptedByServer(
        cipher_suite=_dhe(2048).cipher_suite, ephemeral_key=RefusedDhKey.unread()
    )
    suites = {Protocol.TLS_1_2: accepted(Protocol.TLS_1_2, refused)}
    # Then the group is weak, and the evidence says it is under 1024 bits
    [finding] = dh_findings(TARGET, HTTPS, suites)
    assert finding.check_id == "tls.dh.weak"
    assert "dh_bits" not in finding.evidence
    assert any("under 1024 bits" in p for p in finding.evidence["problems"])
