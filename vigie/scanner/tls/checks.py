"""The TLS family's check IDs, each with the function(s) that produce it."""

from __future__ import annotations

from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.tls import _certificates, _ports, _suites, _vulns

_CERTIFICATE = (_certificates.certificate_findings,)

CHECKS: ChecksTable = {
    "tls.missing": (_ports.tls_missing_findings,),
    "tls.protocol.sslv2": (_suites.protocol_findings,),
    "tls.protocol.sslv3": (_suites.protocol_findings,),
    "tls.protocol.tls1_0": (_suites.protocol_findings,),
    "tls.protocol.tls1_1": (_suites.protocol_findings,),
    "tls.protocol.no_tls1_3": (_suites.protocol_findings,),
    "tls.cipher.weak": (_suites.cipher_findings,),
    "tls.cipher.no_forward_secrecy": (_suites.cipher_findings,),
    "tls.dh.weak": (_suites.dh_findings,),
    "tls.cert.expired": _CERTIFICATE,
    "tls.cert.not_yet_valid": _CERTIFICATE,
    "tls.cert.expiring_soon": _CERTIFICATE,
    "tls.cert.self_signed": _CERTIFICATE,
    "tls.cert.untrusted": _CERTIFICATE,
    "tls.cert.hostname_mismatch": _CERTIFICATE,
    "tls.cert.incomplete_chain": _CERTIFICATE,
    "tls.cert.weak_key": _CERTIFICATE,
    "tls.cert.weak_signature": _CERTIFICATE,
    "tls.vuln.heartbleed": (_vulns.vulnerability_findings,),
    "tls.vuln.robot": (_vulns.vulnerability_findings,),
    "tls.vuln.ccs_injection": (_vulns.vulnerability_findings,),
    "tls.renegotiation.insecure": (_vulns.vulnerability_findings,),
    "tls.compression": (_vulns.vulnerability_findings,),
}
