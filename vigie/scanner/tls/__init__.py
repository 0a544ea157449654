"""The TLS check family, built on sslyze (the only place vigie imports it).

Check IDs: ``tls.missing``, ``tls.protocol.sslv2``, ``tls.protocol.sslv3``,
``tls.protocol.tls1_0``, ``tls.protocol.tls1_1``, ``tls.protocol.no_tls1_3``,
``tls.cipher.weak``, ``tls.cipher.no_forward_secrecy``, ``tls.dh.weak``,
``tls.cert.expired``, ``tls.cert.not_yet_valid``, ``tls.cert.expiring_soon``,
``tls.cert.self_signed``, ``tls.cert.untrusted``, ``tls.cert.hostname_mismatch``,
``tls.cert.incomplete_chain``, ``tls.cert.weak_key``, ``tls.cert.weak_signature``,
``tls.vuln.heartbleed``, ``tls.vuln.robot``, ``tls.vuln.ccs_injection``,
``tls.renegotiation.insecure``, ``tls.compression``; and ``scan.timeout``,
``scan.error``, ``scan.out_of_scope`` for probes that could not answer.

The engine calls :func:`check_tls` once per (domain, address) after the port
stage. TLS is scanned on ports the port stage marked as TLS and on 443, 8443,
465, 993, 995 and 636; STARTTLS on 25 and 587 (SMTP), 143 (IMAP), 110 (POP3).
The domain (IDNA 2008 A-labels) is the SNI and the name certificates must
cover (on STARTTLS endpoints, or one of its MX hosts at that address);
connections go to the address only. All hosts of a sweep share one thread
pool and the trust anchors (``ctx.shared["tls"]``), never each other's
certificates: a host gets the same verdicts alone or in a sweep. See
``_resources`` and ``_probe`` for how suites are enumerated with few connections,
``_certificates`` and ``_verify`` for chain trust, ``_names`` for host names.

Other families (mail: TLS after STARTTLS on MX hosts) use only the names in
``__all__``: the endpoint model, ``sweep_of`` and ``CountingRunner`` to run
handshakes on the sweep's pool, ``server_location``, ``enumerate_by_elimination``
and ``problem_from`` to enumerate an endpoint, ``evaluate_chain``,
``certificate_problems``, ``describe`` and ``issued_by`` to judge certificates.
"""

from __future__ import annotations

from vigie.scanner.tls._certificates import (
    CertificateIndex,
    CertificatePolicy,
    ChainVerdict,
    Trust,
    TrustAnchors,
    certificate_findings,
    certificate_problems,
    describe,
    evaluate_chain,
    issued_by,
)
from vigie.scanner.tls._family import CountingRunner, check_tls, endpoint_findings
from vigie.scanner.tls._mail import MailExchangers, lookup_exchangers
from vigie.scanner.tls._model import (
    Endpoint,
    EndpointObservation,
    ProbeProblem,
    Protocol,
    StartTls,
    Vulnerabilities,
)
from vigie.scanner.tls._names import covers_hostname, is_public_suffix, name_matches, to_ace
from vigie.scanner.tls._ports import endpoints_to_scan, tls_missing_findings
from vigie.scanner.tls._probe import (
    EQUIVALENT_SSLYZE_COMMANDS,
    enumerate_by_elimination,
    problem_from,
    server_location,
)
from vigie.scanner.tls._resources import TlsSweep, load_trust, sweep_of
from vigie.scanner.tls._suites import (
    cipher_findings,
    dh_findings,
    dh_group_problem,
    has_forward_secrecy,
    protocol_findings,
    weakness_of,
)
from vigie.scanner.tls._verify import verifier_refusal
from vigie.scanner.tls._vulns import vulnerability_findings

__all__ = [
    "EQUIVALENT_SSLYZE_COMMANDS",
    "CertificateIndex",
    "CertificatePolicy",
    "ChainVerdict",
    "CountingRunner",
    "Endpoint",
    "EndpointObservation",
    "MailExchangers",
    "ProbeProblem",
    "Protocol",
    "StartTls",
    "TlsSweep",
    "Trust",
    "TrustAnchors",
    "Vulnerabilities",
    "certificate_findings",
    "certificate_problems",
    "check_tls",
    "cipher_findings",
    "covers_hostname",
    "describe",
    "dh_findings",
    "dh_group_problem",
    "endpoint_findings",
    "endpoints_to_scan",
    "enumerate_by_elimination",
    "evaluate_chain",
    "has_forward_secrecy",
    "is_public_suffix",
    "issued_by",
    "load_trust",
    "lookup_exchangers",
    "name_matches",
    "problem_from",
    "protocol_findings",
    "server_location",
    "sweep_of",
    "tls_missing_findings",
    "to_ace",
    "verifier_refusal",
    "vulnerability_findings",
    "weakness_of",
]
