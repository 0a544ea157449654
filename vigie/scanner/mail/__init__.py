"""The mail transport family, run once per registered domain.

Check IDs: ``mail.starttls.missing``, ``mail.tls.weak``, ``mail.cert.invalid``,
``mail.mta_sts.missing``, ``mail.mta_sts.invalid``, ``mail.mta_sts.testing``,
``mail.tlsrpt.missing``, ``mail.dane.invalid``, ``mail.dane.missing``,
``mail.null_mx.missing``; and ``scan.timeout``, ``scan.error``,
``scan.out_of_scope`` for probes that could not be made (a failed lookup is
never read as a missing record).

A domain receives mail when it has MX records (RFC 5321 §5.1) or the
registry calls it a mail domain (then, without MX, the domain itself is the
implicit MX). Its MX hosts (``mail.max_mx_hosts``, each with
``mail.max_addresses_per_host`` addresses) are asked EHLO on
``mail.smtp_port``; after STARTTLS the TLS family's machinery enumerates
protocols and suites and collects the certificate chains, judged against
the MX host name. MTA-STS (RFC 8461), TLS-RPT (RFC 8460) and DANE (RFC 7672)
are read through the configured resolvers.

DANE counts only for DNSSEC-validated data (RFC 7672 §2.1-§2.2, RFC 6698
§4.1): the MX RRset and each ``_25._tcp.<mx>`` TLSA RRset are secure when the
resolver set the AD bit, or else when vigie validates them itself with the
DNS family's code (``vigie.scanner.dns.lookup_validation``: an RRSIG over the
RRset verifies with a key of the signing zone that the DS at its parent
authenticates). Signatures alone never count. An insecure MX RRset: DANE is
not used (RFC 7672 §2.2.1), nothing is judged. With a secure MX RRset, an
insecure TLSA RRset (unsigned zone, island without DS) is as good as none
(``mail.dane.missing``); a bogus one (signed but not validating: bad or
expired signature, stale DS) makes validating senders defer the mail
(RFC 7672 §2.1.1): ``mail.dane.invalid``, with the validation failure as
evidence.
A domain that neither receives nor sends mail should say so (RFC 7505).
"""

from __future__ import annotations

from vigie.model import Family, FamilyResult, Finding
from vigie.scanner.lookups import bare, lookup_failed, probe_failed
from vigie.scanner.mail._judge import mail_findings
from vigie.scanner.mail._observe import MailObservation, observe_domain
from vigie.scanner.mail._records import (
    SpfStance,
    Tlsa,
    association,
    is_null_mx,
    mail_hosts,
    mx_pattern_matches,
    parse_mx,
    parse_sts_policy,
    select_sts_record,
    select_tlsrpt_record,
    spf_stance,
    tlsa_matches,
)
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer

PROBLEM_IDS = frozenset({"scan.timeout", "scan.error", "scan.out_of_scope"})

__all__ = [
    "MailObservation",
    "SpfStance",
    "Tlsa",
    "association",
    "check_mail",
    "is_null_mx",
    "mail_findings",
    "mx_pattern_matches",
    "null_mx_findings",
    "parse_mx",
    "parse_sts_policy",
    "select_sts_record",
    "select_tlsrpt_record",
    "spf_stance",
    "tlsa_matches",
]


def null_mx_findings(domain: str, spf_txt: list[str]) -> list[Finding]:
    """``mail.null_mx.missing`` for a domain without MX that sends no mail: RFC 7505 §3-§4
    asks a domain that accepts no mail to publish a null MX, and ``v=spf1 -all`` says it
    sends none. An SPF record that authorises senders says the domain sends mail (no
    finding); no SPF record, or one that authorises no one without rejecting
    (``~all``, ``?all``), leaves it open to forged mail."""
    stance = spf_stance(spf_txt)
    if stance in (SpfStance.SENDS_NONE, SpfStance.SENDS):
        return []
    spf = "no SPF record" if stance is SpfStance.NONE else "an SPF record without -all"
    evidence = {
        "reason": f"no MX record, no null MX (MX 0 .) and {spf}",
        "spf_records": [r for r in spf_txt if r.lower().startswith("v=spf1")],
        "publish": [f"{domain}. MX 0 .", f'{domain}. TXT "v=spf1 -all"'],
    }
    return [Finding(check_id="mail.null_mx.missing", domain=domain, evidence=evidence)]


async def check_mail(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    """Every mail transport check that applies to one registered domain."""
    name = bare(domain)
    result = FamilyResult(family=Family.MAIL)
    mx = await ctx.resolver.lookup(name, "MX", dnssec=True)
    if mx.failed:
        result.add(lookup_failed(name, "mail:mx", mx))
        result.complete = False
        return result
    records = parse_mx(mx.records)
    if is_null_mx(records) or mx.outcome is Answer.NXDOMAIN:
        return result  # "this domain accepts no mail" (RFC 7505), or no such name
    hosts = mail_hosts(records)
    if not hosts:
        if not mail_domain:
            result.extend(await _null_mx_checks(ctx, name))
            result.complete = not any(f.check_id in PROBLEM_IDS for f in result.findings)
            return result
        hosts = [name]  # RFC 5321 §5.1: without MX, the domain is its own (implicit) MX
    observation = await observe_domain(ctx, name, mx, hosts)
    result.extend(mail_findings(observation))
    result.complete = not any(f.check_id in PROBLEM_IDS for f in result.findings)
    return result


async def _null_mx_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    """A domain without MX: only one with an address is an implicit MX that senders try
    (RFC 5321 §5.1, RFC 7505 §1), which is when internet.nl asks for a null MX
    (``do_mail_get_servers``: no MX, but A or AAAA)."""
    addresses = await ctx.resolver.resolve_addresses(name)
    if addresses.failed:
        timed_out = addresses.outcome is Answer.TIMEOUT
        return [probe_failed(name, "mail:address", timed_out, addresses.detail or "lookup failed")]
    if not addresses.addresses:
        return []
    txt = await ctx.resolver.lookup(name, "TXT")
    if txt.failed:
        return [lookup_failed(name, "mail:spf", txt)]
    return null_mx_findings(name, list(txt.records))
