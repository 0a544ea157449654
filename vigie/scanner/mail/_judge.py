"""A mail domain's observation -> findings (pure).

Certificate defects count for senders only where something makes them verify
(RFC 8461 §4.2 for MTA-STS ``enforce``, RFC 7672 §3 for DANE): elsewhere
opportunistic TLS (RFC 3207 §4.1, RFC 7435) still encrypts, and
``mail.cert.invalid`` is recorded with severity info.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509

from vigie.model import Finding, HostTarget, Severity, utcnow
from vigie.scanner.dns import Security
from vigie.scanner.lookups import bare, clip, lookup_failed
from vigie.scanner.mail._observe import (
    AddressObservation,
    HostObservation,
    MailObservation,
    StsObservation,
)
from vigie.scanner.mail._records import (
    DANE_EE,
    DANE_TA,
    USAGE_NAMES,
    Tlsa,
    judge_dane,
    select_tlsrpt_record,
    tlsa_matches,
    unlisted_hosts,
)
from vigie.scanner.probe_context import scan_problem
from vigie.scanner.resolve import Answer
from vigie.scanner.tls import (
    CertificatePolicy,
    Protocol,
    certificate_problems,
    describe,
    weakness_of,
)

WEAK_PROTOCOLS = (Protocol.SSL_2_0, Protocol.SSL_3_0, Protocol.TLS_1_0, Protocol.TLS_1_1)
# The certificate defects that make a verifying sender refuse the MX (RFC 8461 §4.2,
# RFC 6125): dates, trust path, host name. Weak keys and hashes are the TLS family's.
CERT_PROBLEMS = {
    "tls.cert.expired": "expired",
    "tls.cert.not_yet_valid": "not yet valid",
    "tls.cert.self_signed": "self-signed",
    "tls.cert.untrusted": "untrusted (no path to a trusted root)",
    "tls.cert.incomplete_chain": "incomplete chain (intermediate not sent)",
    "tls.cert.hostname_mismatch": "does not name the MX host",
}
# What DANE-TA(2) still checks on the leaf (RFC 7672 §3.2.2-§3.2.3): names and dates.
DANE_TA_CHECKS = frozenset(
    {"tls.cert.expired", "tls.cert.not_yet_valid", "tls.cert.hostname_mismatch"}
)


def _finding(
    domain: str,
    check_id: str,
    evidence: dict[str, Any],
    *,
    ip: str | None = None,
    port: int | None = None,
    discriminator: str = "",
    severity: Severity | None = None,
) -> Finding:
    return Finding(
        check_id=check_id,
        domain=domain,
        ip=ip,
        port=port,
        discriminator=discriminator,
        evidence=evidence,
        severity=severity,
    )


# --- MTA-STS and TLS-RPT ------------------------------------------------------------------------


def sts_findings(domain: str, sts: StsObservation, hosts: Sequence[str]) -> list[Finding]:
    """``mail.mta_sts.missing`` / ``.invalid`` / ``.testing`` (RFC 8461 §3.1-§3.3, §4.1, §5)."""
    if sts.txt.failed:
        return [lookup_failed(domain, "mail:mta-sts", sts.txt)]
    txt = [clip(r) for r in sts.txt.records]
    if sts.record.record is None:
        if any(r.startswith("v=STSv1") for r in sts.txt.records):
            evidence = {"txt_records": txt, "reason": sts.record.problem}
            return [_finding(domain, "mail.mta_sts.invalid", evidence, discriminator="txt")]
        evidence = {"record": f"_mta-sts.{domain}", "reason": sts.record.problem}
        return [_finding(domain, "mail.mta_sts.missing", evidence)]
    fetch = sts.fetch
    if fetch is None:
        return []
    if fetch.out_of_scope:
        detail = f"policy host addresses out of scope: {', '.join(fetch.out_of_scope)}"
        return [_problem(domain, "scan.out_of_scope", "mail:mta-sts-policy", detail)]
    if fetch.text is None and (fetch.timed_out or not fetch.problem):
        check_id = "scan.timeout" if fetch.timed_out else "scan.error"
        detail = fetch.problem or f"mta-sts.{domain} could not be resolved"
        return [_problem(domain, check_id, "mail:mta-sts-policy", detail)]
    base: dict[str, Any] = {"txt_record": clip(sts.record.record), "policy_url": fetch.url}
    if fetch.text is None:
        evidence = {**base, "reason": fetch.problem}
        return [_finding(domain, "mail.mta_sts.invalid", evidence, discriminator="policy")]
    policy = sts.policy
    if policy is None:
        return []
    facts: dict[str, Any] = {
        **base,
        "mode": policy.mode,
        "max_age": policy.max_age,
        "mx_patterns": list(policy.mx),
    }
    if not policy.valid:
        evidence = {**facts, "reason": "malformed policy", "errors": list(policy.errors)}
        return [_finding(domain, "mail.mta_sts.invalid", evidence, discriminator="policy")]
    if policy.mode == "none":
        evidence = {**facts, "reason": "policy mode none: MTA-STS is switched off"}
        return [_finding(domain, "mail.mta_sts.missing", evidence)]
    findings = []
    missing = unlisted_hosts(policy, hosts)
    if missing:
        evidence = {**facts, "reason": "MX hosts not listed by the policy", "unlisted_mx": missing}
        findings.append(_finding(domain, "mail.mta_sts.invalid", evidence, discriminator="mx"))
    if policy.mode == "testing":
        findings.append(_finding(domain, "mail.mta_sts.testing", facts))
    return findings


def enforced_hosts(sts: StsObservation, hosts: Sequence[str]) -> set[str]:
    """MX hosts an ``enforce`` policy makes senders verify (RFC 8461 §4.1-§4.2)."""
    policy = sts.policy
    if sts.record.record is None or policy is None or not policy.valid or policy.mode != "enforce":
        return set()
    return set(hosts) - set(unlisted_hosts(policy, hosts))


def tlsrpt_findings(domain: str, observation: MailObservation) -> list[Finding]:
    """``mail.tlsrpt.missing``: no single valid ``v=TLSRPTv1`` record at ``_smtp._tls`` (RFC 8460 §3)."""
    lookup = observation.tlsrpt
    if lookup.failed:
        return [lookup_failed(domain, "mail:tlsrpt", lookup)]
    verdict = select_tlsrpt_record(lookup.records)
    if verdict.record is not None:
        return []
    evidence = {
        "record": f"_smtp._tls.{domain}",
        "reason": verdict.problem,
        "txt_records": [clip(r) for r in lookup.records],
    }
    return [_finding(domain, "mail.tlsrpt.missing", evidence)]


# --- MX hosts -----------------------------------------------------------------------------------


def _problem(
    domain: str, check_id: str, probe: str, detail: str, ip: str = "", port: int | None = None
) -> Finding:
    return scan_problem(HostTarget(domain=domain, ip=ip), check_id, probe, clip(detail), port)


def _tlsa_records(host: HostObservation) -> list[Tlsa]:
    return [r for r in (Tlsa.parse(text) for text in host.tlsa.records) if r is not None]


def dane_active(observation: MailObservation, host: HostObservation) -> bool:
    """RFC 7672 §2.2: DANE applies when the MX RRset and the host's TLSA RRset are both
    DNSSEC-secure (RFC 7672 §2.1, validated by the resolver or by vigie, see
    :func:`~vigie.scanner.mail._observe.dnssec_security`) and a TLSA record is usable."""
    return (
        observation.mx_secure
        and host.tlsa.outcome is Answer.OK
        and host.tlsa_security.secure
        and any(r.usable for r in _tlsa_records(host))
    )


def tlsa_findings(observation: MailObservation, host: HostObservation) -> list[Finding]:
    """What the TLSA RRset of one MX host says before any certificate is seen.

    RFC 7672 §2.2.1: with an insecure MX RRset, senders do not look for TLSA
    records: nothing to judge. With a secure one (RFC 7672 §2.2, RFC 6698 §4.1):
    - a bogus TLSA RRset (signed, the parent's DS says it must validate, and it
      does not: bad or expired RRSIG, unsigned, stale DS) makes validating
      senders defer the mail (RFC 7672 §2.1.1): ``mail.dane.invalid``;
    - no TLSA RRset, or an insecure one (the host's zone unsigned or an island
      without DS: RFC 7672 §2.2.2 treats its records as absent), means DANE
      does not apply to the host: ``mail.dane.missing``, as internet.nl asks;
    - a lookup that failed, or a validation vigie could not finish, is a scan
      problem, never a verdict.
    """
    domain, security = observation.domain, host.tlsa_security
    tlsa_name = f"_{observation.port}._tcp.{host.host}"
    if not observation.mx_secure:
        if host.tlsa.failed and security.security is not Security.BOGUS:
            return [lookup_failed(domain, f"mail:tlsa {host.host}", host.tlsa)]
        return []
    base = {"mx_host": host.host, "tlsa_name": tlsa_name, "zone": bare(security.zone)}
    if security.security is Security.BOGUS:
        evidence = {
            **base,
            "tlsa_records": [clip(r) for r in host.tlsa.records or security.records],
            "reason": f"the TLSA RRset does not validate (DNSSEC bogus): {security.reason}",
            "validated_by": security.by,
        }
        return [_finding(domain, "mail.dane.invalid", evidence, discriminator=host.host)]
    if host.tlsa.failed:
        return [lookup_failed(domain, f"mail:tlsa {host.host}", host.tlsa)]
    if host.tlsa.outcome is not Answer.OK:
        reason = "the domain is DNSSEC-signed but this MX host publishes no TLSA record"
        evidence = {"mx_host": host.host, "tlsa_name": tlsa_name, "reason": reason}
        return [_finding(domain, "mail.dane.missing", evidence, discriminator=host.host)]
    if security.security is Security.INSECURE:
        reason = f"the TLSA records are not DNSSEC-secure, senders ignore them: {security.reason}"
        evidence = {**base, "tlsa_records": [clip(r) for r in host.tlsa.records], "reason": reason}
        return [_finding(domain, "mail.dane.missing", evidence, discriminator=host.host)]
    if security.security is Security.INDETERMINATE:
        detail = f"DNSSEC validation of {tlsa_name} TLSA: {security.reason}"
        return [_problem(domain, "scan.error", f"mail:tlsa {host.host}", detail)]
    return []


def host_findings(
    observation: MailObservation, host: HostObservation, enforced: bool
) -> list[Finding]:
    """Findings of one MX host: its TLSA RRset (:func:`tlsa_findings`), then each address
    (:func:`address_findings`).

    ``mail.dane.missing``: no DNSSEC-secure TLSA RRset at ``_25._tcp.<mx host>``
    (RFC 7672 §2.2), so senders cannot authenticate the server and fall back to
    unauthenticated opportunistic TLS (RFC 7672 §1.3, RFC 7435).
    """
    domain = observation.domain
    findings: list[Finding] = []
    if host.resolution.failed:
        findings.append(
            _problem(
                domain,
                "scan.timeout" if host.resolution.outcome is Answer.TIMEOUT else "scan.error",
                f"mail:mx-address {host.host}",
                host.resolution.detail or host.resolution.outcome.value,
            )
        )
    findings += tlsa_findings(observation, host)
    dane = dane_active(observation, host)
    records = _tlsa_records(host) if dane else []
    reached = any(not a.dialogue.error for a in host.addresses if a.in_scope)
    for address in host.addresses:
        if address.dialogue.no_route and reached:
            continue  # an IPv6 address this scanner cannot reach, the host answered on another
        findings += address_findings(observation, host.host, address, enforced, records)
    return findings


def address_findings(
    observation: MailObservation,
    host: str,
    address: AddressObservation,
    enforced: bool,
    tlsa: Sequence[Tlsa],
) -> list[Finding]:
    """One MX address: ``mail.starttls.missing`` (no STARTTLS keyword in the EHLO reply,
    RFC 3207 §4, or no handshake after it), ``mail.tls.weak``, ``mail.cert.invalid``
    (RFC 8461 §4.2, RFC 6125) and ``mail.dane.invalid`` (RFC 7672 §3: with usable TLSA
    records, every chain served must match one of them)."""
    domain, port, ip = observation.domain, observation.port, address.ip
    where: dict[str, Any] = {"ip": ip, "port": port, "discriminator": host}
    if not address.in_scope:
        return [
            _problem(
                domain, "scan.out_of_scope", f"mail:smtp {host}", f"{ip} is out of scope", ip, port
            )
        ]
    dialogue = address.dialogue
    if dialogue.error:
        check_id = "scan.timeout" if dialogue.timed_out else "scan.error"
        return [_problem(domain, check_id, f"mail:smtp {host}", dialogue.error, ip, port)]
    base: dict[str, Any] = {"mx_host": host, "greeting": clip(dialogue.greeting)}
    if not dialogue.offers_starttls:
        evidence = {
            **base,
            "ehlo_keywords": list(dialogue.keywords),
            "reason": "STARTTLS not in the EHLO reply",
        }
        return [_finding(domain, "mail.starttls.missing", evidence, **where)]
    tls = address.tls
    if tls is None:
        return []
    findings: list[Finding] = []
    for timed_out, check_id in ((True, "scan.timeout"), (False, "scan.error")):
        problems = [p for p in tls.problems if p.timed_out is timed_out]
        if problems:
            detail = "; ".join(f"{p.probe}: {p.detail}" for p in problems)
            findings.append(_problem(domain, check_id, f"mail:starttls {host}", detail, ip, port))
    if not tls.answered_handshake:
        if not tls.problems:
            evidence = {
                **base,
                "reason": "STARTTLS is offered but no TLS handshake succeeds after it",
            }
            findings.append(_finding(domain, "mail.starttls.missing", evidence, **where))
        return findings
    findings += _weak_findings(domain, host, tls.accepted_protocols, tls, where)
    findings += _certificate_findings(domain, host, address, enforced, tlsa, where)
    findings += _dane_findings(domain, address, tlsa, base, where)
    return findings


def _dane_findings(
    domain: str,
    address: AddressObservation,
    tlsa: Sequence[Tlsa],
    base: dict[str, Any],
    where: dict[str, Any],
) -> list[Finding]:
    """``mail.dane.invalid``: RFC 7672 §3: with usable TLSA records, every chain the
    address served must match one of them, or validating senders defer the mail."""
    if not tlsa:
        return []
    verdict = judge_dane(tlsa, [v.sent for v in address.verdicts])
    if not verdict.unmatched_chains:
        return []
    evidence = {
        **base,
        "tlsa_records": [r.text for r in verdict.records],
        "served_certificates": [describe(chain[0]) for chain in verdict.unmatched_chains],
        "reason": "no usable TLSA record matches the certificate chain served",
    }
    return [_finding(domain, "mail.dane.invalid", evidence, **where)]


def _opportunistic_anonymous(suite: str) -> bool:
    """An anonymous (EC)DH suite with a real cipher: no authentication, but on port 25 that
    is what opportunistic TLS is (RFC 7435 §1, RFC 7672 §1.3); Postfix offers them by
    default (TLS_README, "smtpd_tls_ciphers"). Verifying senders never negotiate them."""
    return "_anon_" in suite and weakness_of(suite.replace("_anon_", "_")) is None


def _weak_findings(
    domain: str, host: str, accepted: Sequence[Protocol], tls: Any, where: dict[str, Any]
) -> list[Finding]:
    """``mail.tls.weak``: SSL 2/3, TLS 1.0/1.1 or weak suites after STARTTLS (RFC 8996, RFC 7525 §4)."""
    protocols = [p.value for p in accepted if p in WEAK_PROTOCOLS]
    suites: dict[str, str] = {}
    for result in tls.suites.values():
        for suite in result.accepted_cipher_suites:
            reason = weakness_of(suite.cipher_suite.name)
            if reason is not None and not _opportunistic_anonymous(suite.cipher_suite.name):
                suites[suite.cipher_suite.name] = reason
    if not protocols and not suites:
        return []
    evidence = {
        "mx_host": host,
        "weak_protocols": protocols,
        "weak_suites": [f"{name} ({reason})" for name, reason in sorted(suites.items())][:50],
        "accepted_protocols": [p.value for p in accepted],
    }
    return [_finding(domain, "mail.tls.weak", evidence, **where)]


def _dane_usage(tlsa: Sequence[Tlsa], chain: Sequence[x509.Certificate]) -> int | None:
    """The usage of a usable TLSA record that authenticates ``chain`` (DANE-EE first)."""
    matched = {record.usage for record in tlsa if tlsa_matches(record, chain)}
    return next((usage for usage in (DANE_EE, DANE_TA) if usage in matched), None)


def _certificate_findings(
    domain: str,
    host: str,
    address: AddressObservation,
    enforced: bool,
    tlsa: Sequence[Tlsa],
    where: dict[str, Any],
) -> list[Finding]:
    """``mail.cert.invalid``, judged against the MX host name (RFC 8461 §4.2, RFC 6125).

    Under DANE the TLSA records replace the CA: a chain a DANE-EE record matches has no
    name, date or trust to check (RFC 7672 §3.1.1); one a DANE-TA record matches keeps
    its names and dates (RFC 7672 §3.1.2, §3.2.2-§3.2.3). MTA-STS ``enforce`` senders
    check everything (RFC 8461 §4.2). Nobody else verifies: severity info.
    """
    policy = CertificatePolicy(host, utcnow(), 0)
    defects: dict[str, list[dict[str, Any]]] = {}
    under_dane_ta = False
    for verdict in address.verdicts:
        usage = _dane_usage(tlsa, verdict.sent) if tlsa else None
        for check_id, _ in certificate_problems(verdict, policy):
            if check_id not in CERT_PROBLEMS:
                continue
            if not enforced and usage == DANE_EE:
                continue
            if not enforced and usage == DANE_TA and check_id not in DANE_TA_CHECKS:
                continue
            under_dane_ta |= usage == DANE_TA
            defects.setdefault(check_id, []).append(describe(verdict.leaf))
    if not defects:
        return []
    if enforced:
        severity, verified_by = None, "MTA-STS enforce"
    elif under_dane_ta:
        severity, verified_by = None, "DANE-TA"
    else:
        severity = Severity.INFO
        verified_by = "nobody: opportunistic TLS" if not tlsa else "DANE (no TLSA record matches)"
    certificates = [cert for certs in defects.values() for cert in certs]
    evidence = {
        "mx_host": host,
        "problems": [CERT_PROBLEMS[c] for c in CERT_PROBLEMS if c in defects],
        "verified_by": verified_by,
        "certificates": list({c["sha256"]: c for c in certificates}.values()),
        "dane_usages": sorted({USAGE_NAMES.get(r.usage, str(r.usage)) for r in tlsa}),
    }
    return [_finding(domain, "mail.cert.invalid", evidence, severity=severity, **where)]


def mail_findings(observation: MailObservation) -> list[Finding]:
    """Every mail transport finding of one receiving domain."""
    domain = observation.domain
    hosts = [h.host for h in observation.hosts] + list(observation.skipped_hosts)
    findings = sts_findings(domain, observation.sts, hosts)
    findings += tlsrpt_findings(domain, observation)
    enforced = enforced_hosts(observation.sts, hosts)
    for host in observation.hosts:
        findings += host_findings(observation, host, host.host in enforced)
    return findings
