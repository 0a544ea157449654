"""The DNS family's check IDs, each with the function(s) that produce it."""

from __future__ import annotations

from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.dns import _dnssec, _family, _mail, _spf, _zone

CHECKS: ChecksTable = {
    "dns.axfr_open": (_zone.nameserver_findings,),
    "dns.lame_delegation": (_zone.nameserver_findings,),
    "dns.ns_unresolvable": (_zone.ns_unresolvable_findings,),
    "dns.dnssec.missing": (_dnssec.dnssec_findings,),
    "dns.dnssec.invalid": (_dnssec.dnssec_findings,),
    "dns.spf.missing": (_spf.spf_findings,),
    "dns.spf.permissive": (_spf.spf_findings,),
    "dns.spf.invalid": (_spf.spf_findings,),
    "dns.dmarc.missing": (_mail.dmarc_findings,),
    "dns.dmarc.policy_none": (_mail.dmarc_findings,),
    "dns.dmarc.invalid": (_mail.dmarc_findings,),
    "dns.dmarc.partial": (_mail.dmarc_findings,),
    "dns.caa.missing": (_zone.caa_findings,),
    "dns.caa.no_issue_restriction": (_zone.caa_findings,),
    "dns.dangling_cname": (_family.dangling_cname_findings,),
}
