"""The DNS family: which checks run for a registered domain, and the per-sweep zone cache.

Mail checks (SPF, DMARC) run on domains that have MX records or are marked
as mail domains; the dangling-CNAME check on every domain; zone checks
(AXFR, DNSSEC, lame delegation, unresolvable name servers) once per zone
and sweep, reported under the zone apex when it is a registered domain, else
under each scanned domain of that zone. CAA is judged per name (RFC 8659 §3:
the climb starts at the name itself), each name's climb computed once per
sweep; a name whose relevant CAA set is its registered parent's is judged
with that parent.

Check IDs emitted here: ``dns.dangling_cname``, ``scan.timeout`` and
``scan.error`` (a lookup that failed: never read as a missing record); the
others come from ``_mail`` and ``_zone``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace

from vigie.model import Family, FamilyResult, Finding, HostTarget
from vigie.scanner.dns._chain import observe_dnssec, parent_keys
from vigie.scanner.dns._dnssec import Security, dnssec_findings
from vigie.scanner.dns._mail import dmarc_findings, is_dmarc_record, organisational_domain
from vigie.scanner.dns._probes import (
    ask_delegation,
    nameserver_port,
    nameserver_slot,
    probe_address,
    transfer_zone,
)
from vigie.scanner.dns._spf import evaluate_spf, spf_findings
from vigie.scanner.dns._sweep import (
    PROBLEM_IDS,
    ZoneReport,
    find_zone,
    once_per_sweep,
    parent_name,
    sweep_state,
)
from vigie.scanner.dns._zone import (
    CaaSearch,
    NameServer,
    caa_findings,
    nameserver_findings,
    ns_unresolvable_findings,
)
from vigie.scanner.lookups import bare, lookup_failed, probe_failed
from vigie.scanner.probe_context import ProbeContext, run_checks
from vigie.scanner.resolve import Answer, Lookup, absolute_name

MAX_NAMESERVERS = 13  # more NS names than the root has is a broken zone; probe these
MAX_PARENT_SERVERS = 4  # parent-zone servers asked for the delegation
SPF_BUDGET_LIFETIMES = 4  # an SPF evaluation gets this many resolver lifetimes in all


async def zone_report(ctx: ProbeContext, zone: str) -> ZoneReport:
    """The zone checks of ``zone`` (absolute name), run at most once per sweep."""
    key = absolute_name(zone)
    return await once_per_sweep(sweep_state(ctx).zones, key, lambda: _check_zone(ctx, key))


async def check_domain(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    """Every DNS check that applies to one registered domain."""
    name = bare(domain)
    result = FamilyResult(family=Family.DNS)
    zone, failure = await find_zone(ctx, name)
    if failure is not None:
        result.add(lookup_failed(name, "dns:soa", failure))
    parts = await asyncio.gather(
        _mail_checks(ctx, name, mail_domain),
        _cname_checks(ctx, name),
        _zone_checks(ctx, name, zone),
        _caa_checks(ctx, name),
    )
    for findings in parts:
        result.extend(findings)
    result.complete = not any(f.check_id in PROBLEM_IDS for f in result.findings)
    return result


# --- mail ---------------------------------------------------------------------------


async def _mail_checks(ctx: ProbeContext, name: str, mail_domain: bool) -> list[Finding]:
    mx = await ctx.resolver.lookup(name, "MX")
    findings: list[Finding] = []
    if mx.failed:
        findings.append(lookup_failed(name, "dns:mx", mx))
        if not mail_domain:
            return findings  # whether it receives mail is unknown: judge nothing
    if not (mail_domain or mx.records):
        return findings
    spf, dmarc = await asyncio.gather(_spf_checks(ctx, name), _dmarc_checks(ctx, name))
    return findings + spf + dmarc


async def _spf_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    """RFC 7208 §4: check_host() over the whole include/redirect tree, time-bounded."""
    budget = ctx.settings.dns.lifetime_s * SPF_BUDGET_LIFETIMES
    try:
        async with asyncio.timeout(budget):
            evaluation = await evaluate_spf(name, ctx.resolver.lookup)
    except TimeoutError:
        return [probe_failed(name, "dns:spf", True, f"SPF evaluation not done in {budget:g}s")]
    if evaluation.result == "temperror" and evaluation.failure is not None:
        return [lookup_failed(name, "dns:spf", evaluation.failure)]
    return run_checks(HostTarget(name, ""), (spf_findings, evaluation))


async def _dmarc_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    """RFC 7489 §6.6.3 policy discovery: the domain, then its organisational domain (§3.2)."""
    own = await ctx.resolver.lookup(f"_dmarc.{name}", "TXT")
    if own.failed:
        return [lookup_failed(name, "dns:dmarc", own)]
    organisational: tuple[str, list[str]] | None = None
    org = organisational_domain(name)
    if org and org != name and not any(is_dmarc_record(r) for r in own.records):
        parent = await ctx.resolver.lookup(f"_dmarc.{org}", "TXT")
        if parent.failed:
            return [lookup_failed(name, "dns:dmarc", parent)]
        organisational = (org, list(parent.records))
    return run_checks(HostTarget(name, ""), (dmarc_findings, name, own.records, organisational))


# --- dangling CNAME ---------------------------------------------------------------


async def _cname_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    answer = await ctx.resolver.lookup(name, "A")
    if answer.failed:
        # A loop, a timeout or SERVFAIL along the chain: the target's fate is unknown.
        return [lookup_failed(name, "dns:cname", answer)]
    return run_checks(HostTarget(name, ""), (dangling_cname_findings, name, answer))


def dangling_cname_findings(name: str, answer: Lookup) -> list[Finding]:
    """``dns.dangling_cname``: the name is an alias (RFC 1034 §3.6.2) whose chain ends in
    a name that does not exist (NXDOMAIN, RFC 2308 §2.1): whoever registers that name
    receives the alias's traffic (a subdomain takeover)."""
    if answer.outcome is not Answer.NXDOMAIN or not answer.cnames:
        return []
    chain = [name, *(bare(target) for target in answer.cnames)]
    evidence = {
        "cname_chain": chain,
        "missing_target": chain[-1],
        "reason": f"{chain[-1]} does not exist (NXDOMAIN): whoever registers it receives {name}'s traffic",
    }
    return [
        Finding(check_id="dns.dangling_cname", domain=name, discriminator=name, evidence=evidence)
    ]


# --- zone checks ----------------------------------------------------------------------


async def _zone_checks(ctx: ProbeContext, name: str, zone: str | None) -> list[Finding]:
    if zone is None:
        return []
    apex = bare(zone)
    registered = sweep_state(ctx).registered
    if apex != name and registered is not None and apex in registered:
        return []  # reported with the apex's own scan
    report = await zone_report(ctx, zone)
    return [replace(finding, domain=name) for finding in report.findings]


async def _check_zone(ctx: ProbeContext, zone: str) -> ZoneReport:
    dnssec, (servers, names) = await asyncio.gather(
        _dnssec_checks(ctx, zone), _nameserver_checks(ctx, zone)
    )
    return ZoneReport(zone=zone, findings=tuple(dnssec + servers), transferred_names=names)


# --- CAA, per name ---------------------------------------------------------------------


async def relevant_caa(ctx: ProbeContext, name: str) -> CaaSearch:
    """RelevantCAASet(name) of RFC 8659 §3, worked out once per name and sweep.

    CAA(X) is the answer to a CAA query for X that follows CNAME (and DNAME)
    aliases (RFC 1034 §4.3.2); when it is empty the search goes on at
    Parent(X) -- the parent of the name asked, not of the alias target --
    up to, not including, the root. Climbs share their upper steps: the
    names a sweep checks under one parent ask for the parent's CAA once.
    """
    key = absolute_name(name)
    return await once_per_sweep(sweep_state(ctx).caa, key, lambda: _relevant_caa(ctx, key))


async def _relevant_caa(ctx: ProbeContext, name: str) -> CaaSearch:
    if name == ".":
        return CaaSearch(None)
    caa = await ctx.resolver.lookup(name, "CAA")
    if caa.failed:
        # Timeout, SERVFAIL, REFUSED or a CNAME loop: the relevant set is unknown.
        return CaaSearch(None, checked=(name,), failure=caa)
    if caa.outcome is Answer.OK and caa.records:
        return CaaSearch(name, caa.records, (name,), alias=caa.owner if caa.cnames else "")
    above = await relevant_caa(ctx, parent_name(name))
    return replace(above, checked=(name, *above.checked))


async def _caa_checks(ctx: ProbeContext, name: str) -> list[Finding]:
    """The CAA verdict on one checked name (RFC 8659 §3): its own climb decides.

    When the climb passes a registered domain above the name before it ends,
    the name's relevant set (or the failed lookup) is that domain's, judged
    and reported with its own scan. A lookup that fails on the way leaves the
    relevant set unknown: a scan problem, never ``dns.caa.missing``.
    """
    search = await relevant_caa(ctx, name)
    registered = sweep_state(ctx).registered
    if registered is not None and any(bare(up) in registered for up in search.checked[1:]):
        return []  # inherited from a registered parent: reported under it
    if search.failure is not None:
        return [lookup_failed(name, "dns:caa", search.failure)]
    return run_checks(HostTarget(name, ""), (caa_findings, absolute_name(name), search))


async def _dnssec_checks(ctx: ProbeContext, zone: str) -> list[Finding]:
    """The zone's DNSSEC, judged along the chain of trust from the configured anchors
    (RFC 4035 §5: each DNSKEY RRset authenticated by a DS its validated parent signed)."""
    if zone.count(".") < 2:
        return []  # a top-level domain: the registry's business, not an agency's
    (observation, failure), parent = await asyncio.gather(
        observe_dnssec(ctx, zone), parent_keys(ctx, zone)
    )
    if observation is None:
        assert failure is not None
        return [lookup_failed(bare(zone), f"dns:{failure.rdtype.lower()}", failure)]
    if parent.chain and parent.security is Security.INDETERMINATE:
        # The chain above could not be had: the zone's verdict is unknown, not a finding.
        return [probe_failed(bare(zone), "dns:dnssec-chain", parent.timed_out, parent.reason)]
    return run_checks(HostTarget(bare(zone), ""), (dnssec_findings, observation, parent))


async def _nameserver_checks(ctx: ProbeContext, zone: str) -> tuple[list[Finding], tuple[str, ...]]:
    ns, delegated = await asyncio.gather(
        ctx.resolver.lookup(zone, "NS"), _delegation_nameservers(ctx, zone)
    )
    if ns.failed:
        return [lookup_failed(bare(zone), "dns:ns", ns)], ()
    listed = {absolute_name(record) for record in ns.records}
    if not listed:
        detail = f"the zone apex {bare(zone)} answered without NS records"
        return [probe_failed(bare(zone), "dns:ns", False, detail)], ()
    names = sorted(listed | delegated)[:MAX_NAMESERVERS]
    servers = await asyncio.gather(
        *(_examine_nameserver(ctx, zone, n, _listed_by(n, listed, delegated)) for n in names)
    )
    findings: list[Finding] = []
    leaked: set[str] = set()
    for server in servers:
        findings.extend(_nameserver_problems(zone, server))
        for probe in server.probes:
            if probe.transfer is not None:
                leaked.update(probe.transfer.names)
    return findings, tuple(sorted(leaked))


def _listed_by(name: str, listed: set[str], delegated: frozenset[str]) -> tuple[str, ...]:
    return tuple(by for by, names in (("zone", listed), ("parent", delegated)) if name in names)


async def _delegation_nameservers(ctx: ProbeContext, zone: str) -> frozenset[str]:
    """The NS names the parent zone's servers delegate ``zone`` to (best effort).

    The delegation is what the registry publishes; a lame server listed only
    there is invisible in the zone's own NS records.
    """
    if zone.count(".") < 2:
        return frozenset()  # a top-level domain: the parent is the root
    parent, failure = await find_zone(ctx, parent_name(zone))
    if parent is None or failure is not None:
        return frozenset()
    parent_ns = await ctx.resolver.lookup(parent, "NS")
    addresses: list[str] = []
    for name in sorted(parent_ns.records)[:MAX_PARENT_SERVERS]:
        found = await ctx.resolver.lookup(name, "A")
        addresses.extend(_addresses(found)[:1])
    answers = await asyncio.gather(*(ask_delegation(ctx, zone, ip) for ip in addresses))
    return frozenset(absolute_name(n) for names in answers if names for n in names)


def _nameserver_problems(zone: str, server: NameServer) -> list[Finding]:
    findings = run_checks(
        HostTarget(bare(zone), ""),
        (ns_unresolvable_findings, zone, server),
        (nameserver_findings, zone, server),
    )
    if not server.probes and not findings:
        failed = server.a if server.a.failed else server.aaaa
        if failed.failed:
            findings.append(
                lookup_failed(bare(zone), f"dns:ns-address {bare(server.name)}", failed)
            )
    return findings


def _addresses(lookup: Lookup) -> list[str]:
    found = []
    for record in lookup.records:
        try:
            found.append(str(ipaddress.ip_address(record)))
        except ValueError:
            continue
    return found


async def _examine_nameserver(
    ctx: ProbeContext, zone: str, ns: str, listed_by: tuple[str, ...]
) -> NameServer:
    a, aaaa = await asyncio.gather(ctx.resolver.lookup(ns, "A"), ctx.resolver.lookup(ns, "AAAA"))
    # IPv4 first: a scanner without IPv6 would otherwise call every server silent.
    addresses = _addresses(a) or _addresses(aaaa)
    cap = ctx.settings.dns.max_addresses
    probes = await asyncio.gather(*(probe_address(ctx, zone, ns, ip) for ip in addresses[:cap]))
    return NameServer(ns, a, aaaa, tuple(probes), tuple(addresses[cap:]), listed_by)


# --- for discovery ----------------------------------------------------------------------


async def zone_transfer_names(ctx: ProbeContext, zone: str) -> tuple[str, ...]:
    """The names a zone's own name servers give away by AXFR (empty when all refuse).

    Each address passes the scope guard (configured resolvers excepted); the
    first transfer that succeeds is used.
    """
    ns = await ctx.resolver.lookup(zone, "NS")
    for name in sorted(absolute_name(record) for record in ns.records)[:MAX_NAMESERVERS]:
        found = await ctx.resolver.lookup(name, "A")
        for ip in _addresses(found)[: ctx.settings.dns.max_addresses]:
            port, infrastructure = nameserver_port(ctx, ip)
            if not infrastructure and not ctx.scope.allows(ip):
                continue
            async with nameserver_slot(ctx, ip, infrastructure):
                transfer = await transfer_zone(
                    ip, port, zone, ctx.settings.dns.timeout_s, ctx.settings.dns.axfr_lifetime_s
                )
            if transfer.allowed:
                return transfer.names
    return ()
