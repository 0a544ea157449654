"""The IPv6 family, run once per registered domain, as internet.nl tests it.

Check IDs: ``ipv6.web.missing``, ``ipv6.web.unreachable``, ``ipv6.ns.missing``;
and ``scan.timeout``, ``scan.error``, ``scan.out_of_scope`` for probes that
could not be made.

- The web host is the registered name itself, as internet.nl's web test
  takes the name it is given (``checks/tasks/ipv6.py``: ``do_web(url)``, no
  ``www.`` added; a registry lists ``www.`` names it wants judged). A name
  with no address at all (a bare mail domain) is no web host: nothing to judge.
- Reachability: a TCP connection to one of ``ipv6.web_ports`` (80, 443) on
  each AAAA address (RFC 8200 hosts must be reachable on the addresses they
  publish, RFC 3596 §2.2). Every address passes the scope guard; an address
  this scanner has no route to is a scan error, never "unreachable".
- Name servers: the AAAA records of the zone's NS names (RFC 3901 §3 asks
  for at least one IPv6-reachable authoritative server). Reported under the
  zone apex when it is a registered domain (as the DNS family does).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
from dataclasses import dataclass
from typing import Any

from vigie.errors import ScopeViolation
from vigie.model import Family, FamilyResult, Finding, HostTarget
from vigie.scanner.connection import close_quietly
from vigie.scanner.dns import MAX_NAMESERVERS, find_zone, sweep_state
from vigie.scanner.lookups import bare, lookup_failed
from vigie.scanner.probe_context import ProbeContext, scan_problem
from vigie.scanner.resolve import Lookup

PROBLEM_IDS = frozenset({"scan.timeout", "scan.error", "scan.out_of_scope"})
# The scanner itself cannot reach IPv6 (no route, no address): no verdict on the target.
NO_LOCAL_ROUTE = frozenset(
    {errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EHOSTUNREACH}
)


@dataclass(frozen=True)
class PortAttempt:
    port: int
    outcome: str  # "open", "refused", "timeout", "no route", or an error name

    @property
    def answered(self) -> bool:
        return self.outcome == "open"


async def connect(ip: str, port: int, timeout_s: float) -> PortAttempt:
    """One TCP handshake, closed at once."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(ip, port)
    except TimeoutError:
        return PortAttempt(port, "timeout")
    except ConnectionRefusedError:
        return PortAttempt(port, "refused")
    except OSError as exc:
        if exc.errno in NO_LOCAL_ROUTE:
            return PortAttempt(port, "no route")
        return PortAttempt(port, f"{type(exc).__name__}: {exc}"[:200])
    await close_quietly(writer)
    return PortAttempt(port, "open")


def _addresses(lookup: Lookup, version: int) -> list[str]:
    found = []
    for record in lookup.records:
        try:
            address = ipaddress.ip_address(record)
        except ValueError:
            continue
        if address.version == version:
            found.append(str(address))
    return found


def web_findings(
    domain: str, host: str, ipv4: list[str], attempts: dict[str, list[PortAttempt]]
) -> list[Finding]:
    """``ipv6.web.missing`` without AAAA (RFC 3596 §2.1); ``ipv6.web.unreachable`` per AAAA
    address on which no web port accepts a TCP connection (RFC 9293 §3.5: a refused or
    unanswered SYN), as internet.nl tests web servers (pure: the attempts are given)."""
    if not attempts:
        evidence: dict[str, Any] = {
            "web_host": host,
            "ipv4_addresses": ipv4,
            "reason": f"{host} has no AAAA record",
        }
        return [
            Finding(
                check_id="ipv6.web.missing", domain=domain, discriminator=host, evidence=evidence
            )
        ]
    findings = []
    for ip, tried in attempts.items():
        if any(a.answered for a in tried) or any(a.outcome == "no route" for a in tried):
            continue
        evidence = {
            "web_host": host,
            "address": ip,
            "ports": {str(a.port): a.outcome for a in tried},
            "ipv4_addresses": ipv4,
        }
        findings.append(
            Finding(
                check_id="ipv6.web.unreachable",
                domain=domain,
                ip=ip,
                discriminator=host,
                evidence=evidence,
            )
        )
    return findings


async def _web_host(ctx: ProbeContext, name: str) -> tuple[str, Lookup, Lookup] | Finding | None:
    """The name's A and AAAA lookups; None when it has neither (no web host)."""
    a, aaaa = await asyncio.gather(
        ctx.resolver.lookup(name, "A"), ctx.resolver.lookup(name, "AAAA")
    )
    for lookup in (a, aaaa):
        if lookup.failed:
            return lookup_failed(name, f"ipv6:web {name}", lookup)
    if a.records or aaaa.records:
        return name, a, aaaa
    return None


async def _try_address(ctx: ProbeContext, ip: str) -> list[PortAttempt]:
    settings = ctx.settings.ipv6
    attempts = []
    for port in settings.web_ports:
        async with ctx.connection(ip):
            attempt = await connect(ip, port, settings.connect_timeout_s)
        attempts.append(attempt)
        if attempt.answered:
            break
    return attempts


async def _web_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    found = await _web_host(ctx, name)
    if found is None or isinstance(found, Finding):
        return [found] if found is not None else []
    host, a, aaaa = found
    ipv6 = _addresses(aaaa, 6)[: ctx.settings.dns.max_addresses]
    findings: list[Finding] = []
    in_scope = []
    for ip in ipv6:
        try:
            ctx.require_in_scope(ip)
            in_scope.append(ip)
        except ScopeViolation as error:
            target = HostTarget(domain=name, ip=ip)
            findings.append(
                scan_problem(target, "scan.out_of_scope", f"ipv6:web {host}", str(error))
            )
    tried = await asyncio.gather(*(_try_address(ctx, ip) for ip in in_scope))
    attempts = dict(zip(in_scope, tried, strict=True))
    for ip, outcomes in attempts.items():
        if any(o.outcome == "no route" for o in outcomes) and not any(o.answered for o in outcomes):
            detail = f"this scanner has no IPv6 route to {ip}: reachability unknown"
            findings.append(
                scan_problem(HostTarget(name, ip), "scan.error", f"ipv6:web {host}", detail)
            )
    if ipv6 and not in_scope:
        return findings  # AAAA present, none probed: no verdict
    findings += web_findings(name, host, _addresses(a, 4), attempts)
    return findings


def ns_findings(zone: str, name: str, aaaa: dict[str, Lookup]) -> list[Finding]:
    """``ipv6.ns.missing`` when no name server of the zone has an AAAA record (RFC 3901 §3)."""
    failed = [lookup for lookup in aaaa.values() if lookup.failed]
    if failed:
        return [lookup_failed(name, f"ipv6:ns {bare(failed[0].name)}", failed[0])]
    if not aaaa or any(lookup.records for lookup in aaaa.values()):
        return []
    evidence = {
        "zone": bare(zone),
        "nameservers": sorted(bare(ns) for ns in aaaa),
        "reason": "no name server of the zone has an IPv6 address",
    }
    return [
        Finding(
            check_id="ipv6.ns.missing", domain=name, discriminator=bare(zone), evidence=evidence
        )
    ]


async def _ns_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    zone, failure = await find_zone(ctx, name)
    if failure is not None:
        return [lookup_failed(name, "ipv6:soa", failure)]
    if zone is None:
        return []
    registered = sweep_state(ctx).registered
    if bare(zone) != name and registered is not None and bare(zone) in registered:
        return []  # reported with the apex's own scan
    ns = await ctx.resolver.lookup(zone, "NS")
    if ns.failed:
        return [lookup_failed(name, "ipv6:ns", ns)]
    names = sorted({record.lower() for record in ns.records})[:MAX_NAMESERVERS]
    lookups = await asyncio.gather(*(ctx.resolver.lookup(n, "AAAA") for n in names))
    return ns_findings(zone, name, dict(zip(names, lookups, strict=True)))


async def check_ipv6(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    """The IPv6 checks of one registered domain (``mail_domain`` does not change them)."""
    name = bare(domain)
    result = FamilyResult(family=Family.IPV6)
    web, ns = await asyncio.gather(_web_checks(ctx, name), _ns_checks(ctx, name))
    result.extend([*web, *ns])
    result.complete = not any(f.check_id in PROBLEM_IDS for f in result.findings)
    return result


__all__ = ["PortAttempt", "check_ipv6", "connect", "ns_findings", "web_findings"]
