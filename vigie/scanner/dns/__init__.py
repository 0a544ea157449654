"""The DNS and mail-domain check family, run once per registered domain.

Check IDs: ``dns.spf.missing``, ``dns.spf.permissive``, ``dns.dmarc.missing``,
``dns.dmarc.policy_none``, ``dns.caa.missing``, ``dns.dnssec.missing``,
``dns.axfr_open``, ``dns.dangling_cname``, ``dns.lame_delegation``,
``dns.ns_unresolvable``; and ``scan.timeout``, ``scan.error``,
``scan.out_of_scope`` for probes that could not be made. A timeout or a
SERVFAIL is never read as a missing record.

Every query goes through the configured resolvers (``ctx.resolver``), except
the SOA and AXFR questions put to a zone's own name servers, which pass the
scope guard first (a name server that is a configured resolver is
infrastructure and always reachable).
"""

from __future__ import annotations

from vigie.scanner.dns._family import (
    DnsSweepState,
    ZoneReport,
    check_domain,
    find_zone,
    remember_registered_domains,
    zone_report,
    zone_transfer_names,
)
from vigie.scanner.dns._mail import dmarc_findings, parse_dmarc, parse_spf, spf_findings
from vigie.scanner.dns._probes import transfer_zone
from vigie.scanner.dns._zone import caa_findings, dnssec_findings, judge_soa_response

__all__ = [
    "DnsSweepState",
    "ZoneReport",
    "caa_findings",
    "check_domain",
    "dmarc_findings",
    "dnssec_findings",
    "find_zone",
    "judge_soa_response",
    "parse_dmarc",
    "parse_spf",
    "remember_registered_domains",
    "spf_findings",
    "transfer_zone",
    "zone_report",
    "zone_transfer_names",
]
