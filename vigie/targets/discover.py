"""Subdomain discovery: the applications agencies forgot to register.

Three sources, under each registered domain:

- ``axfr``: the names a zone transfer gives away, where a name server allows it;
- ``wordlist``: common labels tried through the configured resolvers, at a
  bounded rate; a wildcard zone is detected first (random labels that resolve)
  so that its synthesised answers do not flood the list;
- ``ct``: a certificate-transparency export file (JSON as public CT search
  services export it: ``name_value`` fields, several names per field separated
  by newlines, ``*.`` wildcards).

Discovered names become registry rows with status ``candidate`` and their
source (names from a zone transfer or a certificate log that resolve to no
address too: a dangling alias is a takeover risk). The sweep takes only active domains, so a candidate is never scanned
until ``vigie targets approve`` makes it one. Names whose addresses lie outside
the scope are recorded with their addresses and flagged, never scanned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from sqlmodel import Session, col, select

from vigie import event_loop
from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import Domain, DomainStatus
from vigie.errors import NotFoundError, UsageError
from vigie.scanner.dns import find_zone, zone_transfer_names
from vigie.scanner.probe_context import ProbeContext, RateLimiter
from vigie.scanner.resolve import Answer, Lookup
from vigie.targets.importer import normalise_domain

WILDCARD_PROBES = 2  # random labels asked to tell a wildcard zone


class Source(str, Enum):
    AXFR = "axfr"
    WORDLIST = "wordlist"
    CT = "ct"


# When several sources find a name, the first of these is recorded.
SOURCE_PRIORITY = (Source.AXFR, Source.WORDLIST, Source.CT)


@dataclass(frozen=True)
class DiscoveredName:
    """A name found under a registered domain, with what it resolved to."""

    name: str
    source: str
    addresses: tuple[str, ...]
    in_scope: bool  # at least one address may be scanned (once approved)
    parent: str = ""  # the registered domain it was found under


@dataclass
class DiscoveryReport:
    names: list[DiscoveredName] = field(default_factory=list)
    wildcards: dict[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # domain -> its wildcard's addresses
    wildcard_hits: int = 0  # wordlist names dropped as wildcard answers
    unresolved: list[str] = field(default_factory=list)  # AXFR/CT names without address
    problems: list[str] = field(default_factory=list)  # lookups that failed or timed out


# --- inputs (pure) --------------------------------------------------------------------


def _clean_name(raw: str) -> str | None:
    text = raw.strip().lower().rstrip(".")
    text = text.removeprefix("*.")
    if not text or "@" in text or "*" in text:
        return None
    try:
        return normalise_domain(text)
    except ValueError:
        return None


def parse_ct_export(text: str) -> list[str]:
    """The host names in a CT export (a JSON array, or one JSON object per line).

    Each ``name_value`` may hold several names separated by newlines; a
    ``*.`` wildcard stands for its base name; e-mail addresses are ignored.
    """
    try:
        data = json.loads(text)
        entries = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UsageError(f"not a CT export (JSON): {exc}") from None
    names: dict[str, None] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key in ("name_value", "common_name"):
            value = entry.get(key)
            if not isinstance(value, str):
                continue
            for raw in value.splitlines():
                name = _clean_name(raw)
                if name is not None:
                    names[name] = None
    return list(names)


def read_ct_file(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return parse_ct_export(text)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None


def parse_wordlist(text: str) -> list[str]:
    """Labels, one per line; blank lines and ``#`` comments skipped; invalid labels dropped."""
    labels: dict[str, None] = {}
    for line in text.splitlines():
        label = line.split("#", 1)[0].strip().lower().strip(".")
        if label and _clean_name(f"{label}.example") is not None:
            labels[label] = None
    return list(labels)


def default_wordlist() -> list[str]:
    text = resources.files("vigie").joinpath("data/subdomains.txt").read_text(encoding="utf-8")
    return parse_wordlist(text)


def load_wordlist(path: Path | None) -> list[str]:
    if path is None:
        return default_wordlist()
    try:
        return parse_wordlist(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def is_under(name: str, parent: str) -> bool:
    """``name`` is a proper subdomain of ``parent``."""
    return name.endswith("." + parent)


def is_application_name(name: str) -> bool:
    """Service labels (``_dmarc``, ``_sip._tcp``) and wildcards are not applications."""
    return not any(label.startswith("_") or label == "*" for label in name.split("."))


def is_wildcard_answer(addresses: Iterable[str], wildcard: Sequence[str]) -> bool:
    """The name resolved only to what the zone's wildcard gives every name."""
    found = set(addresses)
    return bool(wildcard) and bool(found) and found <= set(wildcard)


# --- resolution ---------------------------------------------------------------------------


def _addresses(lookups: Iterable[Lookup]) -> list[str]:
    found: dict[str, None] = {}
    for lookup in lookups:
        for record in lookup.records:
            try:
                found[str(ipaddress.ip_address(record))] = None
            except ValueError:
                continue
    return list(found)


@dataclass(frozen=True)
class _Resolved:
    name: str
    addresses: tuple[str, ...]
    problem: str = ""


class _Resolution:
    """Resolves names through the resolvers with a bounded rate and concurrency."""

    def __init__(self, ctx: ProbeContext) -> None:
        self.ctx = ctx
        self.rate = RateLimiter(ctx.settings.dns.discovery_rate_per_s)
        self.slots = asyncio.Semaphore(ctx.settings.dns.discovery_concurrency)

    async def _lookup(self, name: str, rdtype: str) -> Lookup:
        await self.rate.wait()
        return await self.ctx.resolver.lookup(name, rdtype)

    async def resolve(self, name: str) -> _Resolved:
        async with self.slots:
            a = await self._lookup(name, "A")
            if a.outcome is Answer.NXDOMAIN:
                return _Resolved(name, ())
            aaaa = await self._lookup(name, "AAAA")
        addresses = _addresses((a, aaaa))[: self.ctx.settings.dns.max_addresses]
        failed = next((x for x in (a, aaaa) if x.failed), None)
        if failed is not None and not addresses:
            return _Resolved(name, (), f"{name}: {failed.outcome.value}: {failed.detail}"[:300])
        return _Resolved(name, tuple(addresses))

    async def resolve_all(self, names: Iterable[str]) -> dict[str, _Resolved]:
        results = await asyncio.gather(*(self.resolve(n) for n in names))
        return {result.name: result for result in results}


async def detect_wildcard(resolution: _Resolution, parent: str) -> tuple[str, ...]:
    """The addresses random names under ``parent`` resolve to (empty: no wildcard)."""
    probes = [f"vigie-{secrets.token_hex(6)}.{parent}" for _ in range(WILDCARD_PROBES)]
    results = await resolution.resolve_all(probes)
    return tuple(sorted({a for r in results.values() for a in r.addresses}))


# --- discovery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoveryPlan:
    """What to look for, under which registered domains."""

    parents: tuple[str, ...]
    wordlist: tuple[str, ...] = ()
    ct_names: tuple[str, ...] = ()
    axfr: bool = True
    known: frozenset[str] = frozenset()  # names already in the registry: not candidates


async def discover(ctx: ProbeContext, plan: DiscoveryPlan) -> DiscoveryReport:
    """Find candidate names under every parent of ``plan``."""
    report = DiscoveryReport()
    resolution = _Resolution(ctx)
    for parent in plan.parents:
        await _discover_under(ctx, resolution, parent, plan, report)
    report.names.sort(key=lambda n: n.name)
    return report


async def _discover_under(
    ctx: ProbeContext,
    resolution: _Resolution,
    parent: str,
    plan: DiscoveryPlan,
    report: DiscoveryReport,
) -> None:
    found: dict[str, Source] = {}
    if plan.axfr:
        for name in await _transferred_names(ctx, parent):
            found.setdefault(name, Source.AXFR)
    for label in plan.wordlist:
        found.setdefault(f"{label}.{parent}", Source.WORDLIST)
    for name in plan.ct_names:
        if is_under(name, parent):
            found.setdefault(name, Source.CT)
    wanted = {
        name: source
        for name, source in found.items()
        if name not in plan.known and is_application_name(name) and name != parent
    }
    wildcard = await detect_wildcard(resolution, parent) if plan.wordlist else ()
    if wildcard:
        report.wildcards[parent] = wildcard
    resolved = await resolution.resolve_all(wanted)
    for name, source in sorted(wanted.items()):
        result = resolved[name]
        if result.problem:
            report.problems.append(result.problem)
            continue
        if not result.addresses:
            if source is not Source.WORDLIST:
                # A name the zone or a certificate gives away that resolves to nothing (a
                # dangling alias, a mail-only name) is still the agency's: a candidate
                # without address, whose DNS a sweep watches once it is approved.
                report.unresolved.append(name)
                report.names.append(DiscoveredName(name, source.value, (), False, parent))
            continue
        if source is Source.WORDLIST and is_wildcard_answer(result.addresses, wildcard):
            report.wildcard_hits += 1
            continue
        in_scope = any(ctx.scope.allows(address) for address in result.addresses)
        report.names.append(DiscoveredName(name, source.value, result.addresses, in_scope, parent))


async def _transferred_names(ctx: ProbeContext, parent: str) -> list[str]:
    zone, _ = await find_zone(ctx, parent)
    if zone is None:
        return []
    names = await zone_transfer_names(ctx, zone)
    cleaned = (_clean_name(name) for name in names if is_application_name(name.rstrip(".")))
    return [name for name in cleaned if name is not None and is_under(name, parent)]


# --- the registry side ------------------------------------------------------------------------


@dataclass
class StoreSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # already candidates: addresses refreshed


def registered_parents(session: Session, names: Sequence[str]) -> list[Domain]:
    """The active registered domains to discover under: ``names``, or all of them."""
    active = select(Domain).where(Domain.status == DomainStatus.ACTIVE).order_by(col(Domain.name))
    if not names:
        return list(session.exec(active))
    wanted = []
    for raw in names:
        try:
            wanted.append(normalise_domain(raw))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    rows = {d.name: d for d in session.exec(active.where(col(Domain.name).in_(wanted)))}
    missing = [name for name in wanted if name not in rows]
    if missing:
        raise NotFoundError("not active registered domains: " + ", ".join(missing))
    return [rows[name] for name in wanted]


def store_candidates(session: Session, names: Sequence[DiscoveredName]) -> StoreSummary:
    """Record discovered names as candidates; registered or rejected names are left alone."""
    summary = StoreSummary()
    wanted = [n.name for n in names] + [n.parent for n in names]
    rows = {d.name: d for d in session.exec(select(Domain).where(col(Domain.name).in_(wanted)))}
    for found in names:
        row = rows.get(found.name)
        if row is None:
            parent = rows.get(found.parent)
            row = Domain(
                name=found.name,
                agency_id=parent.agency_id if parent else None,
                status=DomainStatus.CANDIDATE,
                source=found.source,
                discovered_from=found.parent or None,
                discovered_addresses=list(found.addresses),
            )
            rows[found.name] = row
            summary.added.append(found.name)
        elif row.status == DomainStatus.CANDIDATE:
            row.discovered_addresses = list(found.addresses)
            summary.updated.append(found.name)
        else:
            continue
        session.add(row)
    session.flush()
    return summary


def approve_candidates(
    session: Session, *, name: str | None = None, source: str | None = None
) -> list[str]:
    """Make candidates active domains: one by ``name``, or all found by ``source``."""
    if (name is None) == (source is None):
        raise UsageError("approve one NAME or --all-from SOURCE")
    query = select(Domain).where(Domain.status == DomainStatus.CANDIDATE)
    if name is not None:
        try:
            wanted = normalise_domain(name)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        rows = list(session.exec(query.where(Domain.name == wanted)))
        if not rows:
            raise NotFoundError(f"{wanted} is not a discovery candidate")
    else:
        rows = list(session.exec(query.where(Domain.source == source).order_by(col(Domain.name))))
    for row in rows:
        row.status = DomainStatus.ACTIVE
        session.add(row)
    session.flush()
    return [row.name for row in rows]


# --- the service the CLI calls ------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoveryRequest:
    domains: tuple[str, ...] = ()
    wordlist: Path | None = None  # None: the built-in list
    use_wordlist: bool = True
    ct_file: Path | None = None
    axfr: bool = True
    store: bool = True


def run_discovery(
    settings: Settings, request: DiscoveryRequest
) -> tuple[DiscoveryReport, StoreSummary]:
    """Discover under the requested registered domains and store the candidates."""
    wordlist = tuple(load_wordlist(request.wordlist)) if request.use_wordlist else ()
    ct_names = tuple(read_ct_file(request.ct_file)) if request.ct_file else ()
    with session_scope(settings) as session:
        parents = tuple(d.name for d in registered_parents(session, request.domains))
        # Existing candidates are found again, to refresh their addresses.
        known = frozenset(
            session.exec(select(Domain.name).where(Domain.status != DomainStatus.CANDIDATE))
        )
    plan = DiscoveryPlan(parents, wordlist, ct_names, request.axfr, known)
    report = event_loop.run(_discover_with_context(settings, plan), settings)
    summary = StoreSummary()
    if request.store and report.names:
        with session_scope(settings) as session:
            summary = store_candidates(session, report.names)
    return report, summary


async def _discover_with_context(settings: Settings, plan: DiscoveryPlan) -> DiscoveryReport:
    ctx = ProbeContext.from_settings(settings)
    try:
        return await discover(ctx, plan)
    finally:
        await ctx.aclose()
