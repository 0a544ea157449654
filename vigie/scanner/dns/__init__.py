"""The DNS and mail-domain check family, run once per registered domain.

Check IDs: ``dns.spf.missing``, ``dns.spf.permissive``, ``dns.spf.invalid``,
``dns.dmarc.missing``, ``dns.dmarc.policy_none``, ``dns.dmarc.invalid``,
``dns.dmarc.partial``, ``dns.caa.missing``, ``dns.caa.no_issue_restriction``,
``dns.dnssec.missing``, ``dns.dnssec.invalid``, ``dns.axfr_open``,
``dns.dangling_cname``, ``dns.lame_delegation``, ``dns.ns_unresolvable``;
and ``scan.timeout``, ``scan.error``, ``scan.out_of_scope`` for probes that
could not be made. A timeout, a SERVFAIL or a REFUSED is never read as a
missing record.

Every query goes through the configured resolvers (``ctx.resolver``), except
the SOA and AXFR questions put to a zone's own name servers, which pass the
scope guard first (a name server that is a configured resolver is
infrastructure and always reachable).

Other families use the names in ``__all__`` only: ``find_zone``,
``sweep_state`` and ``MAX_NAMESERVERS`` (IPv6: a zone's name servers), and
``lookup_validation`` / ``validate_rrset`` (mail: is an MX or TLSA RRset
DNSSEC-secure, by the resolver's AD bit or by vigie's own validation of the
signing zone's chain from the trust anchors, see ``_validate`` and ``_chain``);
``load_trust_anchors`` reads the ``dns.trust_anchors`` file (preflight).
"""

from __future__ import annotations

from vigie.scanner.dns._chain import load_trust_anchors, zone_keys
from vigie.scanner.dns._dnssec import (
    DnssecObservation,
    Security,
    Validation,
    ZoneKeys,
    chain_keys,
    dnssec_findings,
    rrset_validation,
    trusted_keys,
)
from vigie.scanner.dns._family import (
    MAX_NAMESERVERS,
    check_domain,
    zone_report,
    zone_transfer_names,
)
from vigie.scanner.dns._mail import dmarc_findings, organisational_domain, parse_dmarc
from vigie.scanner.dns._probes import transfer_zone
from vigie.scanner.dns._spf import Sender, evaluate_spf, parse_spf, spf_findings
from vigie.scanner.dns._sweep import (
    DnsSweepState,
    ZoneReport,
    find_zone,
    remember_registered_domains,
    sweep_state,
)
from vigie.scanner.dns._validate import lookup_validation, validate_rrset
from vigie.scanner.dns._zone import caa_findings, judge_soa_response, parse_caa

__all__ = [
    "MAX_NAMESERVERS",
    "DnsSweepState",
    "DnssecObservation",
    "Security",
    "Sender",
    "Validation",
    "ZoneKeys",
    "ZoneReport",
    "caa_findings",
    "chain_keys",
    "check_domain",
    "dmarc_findings",
    "dnssec_findings",
    "evaluate_spf",
    "find_zone",
    "judge_soa_response",
    "load_trust_anchors",
    "lookup_validation",
    "organisational_domain",
    "parse_caa",
    "parse_dmarc",
    "parse_spf",
    "remember_registered_domains",
    "rrset_validation",
    "spf_findings",
    "sweep_state",
    "transfer_zone",
    "trusted_keys",
    "validate_rrset",
    "zone_keys",
    "zone_report",
    "zone_transfer_names",
]
