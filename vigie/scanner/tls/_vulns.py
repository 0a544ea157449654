"""Vulnerability checks: sslyze's verdicts -> findings.

Check IDs: ``tls.vuln.heartbleed``, ``tls.vuln.robot``,
``tls.vuln.ccs_injection``, ``tls.renegotiation.insecure``,
``tls.compression``.
"""

from __future__ import annotations

from typing import Any

from sslyze import RobotScanResultEnum

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._common import tls_finding
from vigie.scanner.tls._model import Endpoint, Vulnerabilities

# A weak oracle still lets a patient attacker decrypt or sign: both count.
ROBOT_VULNERABLE = frozenset(
    {RobotScanResultEnum.VULNERABLE_STRONG_ORACLE, RobotScanResultEnum.VULNERABLE_WEAK_ORACLE}
)


def vulnerability_findings(
    target: HostTarget, endpoint: Endpoint, found: Vulnerabilities
) -> list[Finding]:
    """One finding per vulnerability sslyze confirmed on ``endpoint``.

    - ``tls.vuln.heartbleed``: CVE-2014-0160, an over-read in the heartbeat
      extension (RFC 6520 §4 requires the length to be checked);
    - ``tls.vuln.ccs_injection``: CVE-2014-0224 (ChangeCipherSpec accepted early,
      against RFC 5246 §7.1);
    - ``tls.vuln.robot``: a Bleichenbacher padding oracle on RSA key transport
      (CVE-2017-13099 and siblings; RFC 8446 Appendix E.8);
    - ``tls.renegotiation.insecure``: renegotiation without RFC 5746's
      renegotiation_info, or client-initiated renegotiation (RFC 9325 §3.5);
    - ``tls.compression``: TLS-level compression (CRIME, RFC 7457 §2.6; RFC 9325
      §3.3: MUST NOT be used).
    """
    findings = []
    if found.heartbleed is not None and found.heartbleed.is_vulnerable_to_heartbleed:
        findings.append(tls_finding(target, endpoint, "tls.vuln.heartbleed", {"heartbleed": True}))
    if found.ccs_injection is not None and found.ccs_injection.is_vulnerable_to_ccs_injection:
        cve = {"cve": "CVE-2014-0224"}
        findings.append(tls_finding(target, endpoint, "tls.vuln.ccs_injection", cve))
    if found.robot is not None and found.robot.robot_result in ROBOT_VULNERABLE:
        oracle = {"robot_result": found.robot.robot_result.value}
        findings.append(tls_finding(target, endpoint, "tls.vuln.robot", oracle))
    reneg = found.renegotiation
    if reneg is not None and (
        reneg.is_vulnerable_to_client_renegotiation_dos or not reneg.supports_secure_renegotiation
    ):
        evidence: dict[str, Any] = {
            "client_initiated_accepted": reneg.is_vulnerable_to_client_renegotiation_dos,
            "client_renegotiations": reneg.client_renegotiations_success_count,
            "secure_renegotiation": reneg.supports_secure_renegotiation,
        }
        findings.append(tls_finding(target, endpoint, "tls.renegotiation.insecure", evidence))
    if found.compression is not None and found.compression.supports_compression:
        findings.append(
            tls_finding(target, endpoint, "tls.compression", {"compression": "DEFLATE"})
        )
    return findings
