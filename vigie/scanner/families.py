"""The one registry of check families: what each observes, whether it runs per host or
per domain, and the table of its check IDs with the function that produces each.

Host families run once per (domain, address) after the port stage; domain
families run once per registered domain (with ``mail_domain`` telling whether
the registry calls it a mail domain). That is an attribute of the entry, not a
second code path: the engine reads ``HOST_FAMILIES`` and ``DOMAIN_FAMILIES``,
both derived from ``FAMILIES``. Adding a family is an import and one entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

from vigie.model import Family, FamilyResult, HostTarget, OpenPort
from vigie.scanner import dns, engine, http, ipv6, mail, probe_context, service, software, tls
from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.dns.checks import CHECKS as DNS_CHECKS
from vigie.scanner.http.checks import CHECKS as HTTP_CHECKS
from vigie.scanner.ipv6.checks import CHECKS as IPV6_CHECKS
from vigie.scanner.mail.checks import CHECKS as MAIL_CHECKS
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service.checks import CHECKS as SERVICE_CHECKS
from vigie.scanner.software.checks import SOFTWARE_CHECKS, VULN_CHECKS
from vigie.scanner.tls.checks import CHECKS as TLS_CHECKS

HostCheck = Callable[[ProbeContext, HostTarget, list[OpenPort]], Awaitable[FamilyResult]]
DomainCheck = Callable[[ProbeContext, str, bool], Awaitable[FamilyResult]]
DerivedCheck = Callable[
    [ProbeContext, HostTarget, list[OpenPort], Mapping[Family, FamilyResult]],
    Awaitable[FamilyResult],
]


class RunsPer(str, Enum):
    HOST = "host"  # once per (domain, address), after the port stage
    DOMAIN = "domain"  # once per registered domain
    HOST_RESULTS = "host-results"  # once per host, after the host families, on their results


@dataclass(frozen=True)
class FamilyEntry:
    family: Family
    runs_per: RunsPer
    observe: Callable[..., Awaitable[FamilyResult]]  # HostCheck or DomainCheck, per runs_per
    checks: ChecksTable


# Scan problems are the engine's (and the planner's): no family of their own runs them.
SCAN_CHECKS: ChecksTable = {
    "scan.unreachable": (engine.unreachable,),
    "scan.out_of_scope": (engine.out_of_scope_result,),
    "scan.not_authorised": (engine.not_authorised_result,),
    "scan.timeout": (probe_context.scan_problem,),
    "scan.error": (probe_context.scan_problem, probe_context.check_failed),
}

FAMILIES: tuple[FamilyEntry, ...] = (
    FamilyEntry(Family.SERVICE, RunsPer.HOST, service.check_services, SERVICE_CHECKS),
    FamilyEntry(Family.TLS, RunsPer.HOST, tls.check_tls, TLS_CHECKS),
    FamilyEntry(Family.HTTP, RunsPer.HOST, http.check_http, HTTP_CHECKS),
    FamilyEntry(Family.DNS, RunsPer.DOMAIN, dns.check_domain, DNS_CHECKS),
    FamilyEntry(Family.MAIL, RunsPer.DOMAIN, mail.check_mail, MAIL_CHECKS),
    FamilyEntry(Family.IPV6, RunsPer.DOMAIN, ipv6.check_ipv6, IPV6_CHECKS),
    # In this order: the vulnerabilities are those of the software identified.
    FamilyEntry(Family.SOFTWARE, RunsPer.HOST_RESULTS, software.check_software, SOFTWARE_CHECKS),
    FamilyEntry(Family.VULN, RunsPer.HOST_RESULTS, software.check_vulns, VULN_CHECKS),
)
# What the families run on host results read: asking for one runs these too.
DERIVED_INPUTS: frozenset[Family] = frozenset({Family.SERVICE, Family.HTTP})

HOST_FAMILIES: dict[Family, HostCheck] = {
    entry.family: cast(HostCheck, entry.observe)
    for entry in FAMILIES
    if entry.runs_per is RunsPer.HOST
}
DOMAIN_FAMILIES: dict[Family, DomainCheck] = {
    entry.family: cast(DomainCheck, entry.observe)
    for entry in FAMILIES
    if entry.runs_per is RunsPer.DOMAIN
}
DERIVED_FAMILIES: dict[Family, DerivedCheck] = {
    entry.family: cast(DerivedCheck, entry.observe)
    for entry in FAMILIES
    if entry.runs_per is RunsPer.HOST_RESULTS
}


def check_registry() -> Mapping[str, tuple[Callable[..., Any], ...]]:
    """Every check ID vigie can report, with the function(s) producing it."""
    table: dict[str, tuple[Callable[..., Any], ...]] = dict(SCAN_CHECKS)
    for entry in FAMILIES:
        table.update(entry.checks)
    return table
