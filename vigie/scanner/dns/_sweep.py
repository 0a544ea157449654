"""What the DNS family keeps for one sweep, and the zone that holds a name.

The sweep state (``ctx.shared["dns"]``) holds, per sweep and event loop, the
zone reports, the DNSSEC observations and chain verdicts, and the relevant
CAA set of each name, each worked out once (:func:`once_per_sweep`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dns.exception
import dns.name

from vigie.model import Finding
from vigie.scanner.dns._dnssec import DnssecObservation, ZoneKeys
from vigie.scanner.dns._zone import CaaSearch
from vigie.scanner.lookups import bare
from vigie.scanner.probe_context import ProbeContext, cancel_tasks_of_this_loop
from vigie.scanner.resolve import Answer, Lookup, absolute_name

SHARED_KEY = "dns"
T = TypeVar("T")
PROBLEM_IDS = frozenset({"scan.timeout", "scan.error"})
Observed = tuple[DnssecObservation | None, Lookup | None]


@dataclass(frozen=True)
class ZoneReport:
    """Zone-level findings (``domain`` = the apex), computed once per zone and sweep."""

    zone: str  # absolute, lower case
    findings: tuple[Finding, ...]
    transferred_names: tuple[str, ...] = ()  # names leaked by a successful AXFR

    @property
    def complete(self) -> bool:
        return not any(f.check_id in PROBLEM_IDS for f in self.findings)


@dataclass
class DnsSweepState:
    """What the DNS family remembers during one sweep (``ctx.shared["dns"]``)."""

    registered: frozenset[str] | None = None  # every registered domain, when the engine told
    zones: dict[str, asyncio.Task[ZoneReport]] = field(default_factory=dict)
    keys: dict[str, asyncio.Task[ZoneKeys]] = field(default_factory=dict)  # DNSSEC chains
    above: dict[str, asyncio.Task[ZoneKeys]] = field(default_factory=dict)  # chain above a zone
    observed: dict[str, asyncio.Task[Observed]] = field(default_factory=dict)  # DNSKEY/SOA/DS
    caa: dict[str, asyncio.Task[CaaSearch]] = field(default_factory=dict)  # RelevantCAASet

    async def aclose(self) -> None:
        tasks = (self.zones, self.keys, self.above, self.observed, self.caa)
        await cancel_tasks_of_this_loop([t for table in tasks for t in table.values()])


def sweep_state(ctx: ProbeContext) -> DnsSweepState:
    return ctx.shared_state(SHARED_KEY, DnsSweepState)


def remember_registered_domains(ctx: ProbeContext, domains: Iterable[str]) -> None:
    """Tell the DNS family every registered domain (not only those swept now).

    Zone findings then go under the zone apex when it is registered, and are
    not repeated under each of its registered subdomains.
    """
    sweep_state(ctx).registered = frozenset(bare(domain) for domain in domains)


async def once_per_sweep(
    tasks: dict[str, asyncio.Task[T]], key: str, work: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """The result of ``work()`` for ``key``, started at most once per sweep and event loop."""
    task = tasks.get(key)
    # A context reused across event loops (one asyncio.run per job) starts afresh.
    if task is None or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(work())
        tasks[key] = task
    # Shielded: a domain whose deadline passes must not cancel the work for the others.
    return await asyncio.shield(task)


# --- the zone of a name ----------------------------------------------------------


def parent_name(name: str) -> str:
    return dns.name.from_text(name).parent().to_text()


def _is_within(name: str, zone: str) -> bool:
    return dns.name.from_text(name).is_subdomain(dns.name.from_text(zone))


async def find_zone(ctx: ProbeContext, name: str) -> tuple[str | None, Lookup | None]:
    """The apex of the zone that holds ``name`` (absolute), or the lookup that failed."""
    try:
        candidate = absolute_name(name)
        dns.name.from_text(candidate)
    except dns.exception.DNSException as exc:
        return None, Lookup(name, "SOA", Answer.SERVFAIL, detail=f"not a valid DNS name: {exc}")
    while candidate != ".":
        soa = await ctx.resolver.lookup(candidate, "SOA")
        if soa.cnames or soa.cname_loop:  # an alias is never a zone apex
            candidate = parent_name(candidate)
            continue
        if soa.outcome is Answer.OK:
            return candidate, None
        if soa.failed:
            return None, soa
        if soa.zone not in ("", ".") and _is_within(candidate, soa.zone):
            return soa.zone, None  # the negative answer named its zone
        candidate = parent_name(candidate)
    return None, Lookup(name, "SOA", Answer.SERVFAIL, detail="no zone apex found below the root")
