"""The sweep engine: resolve, guard scope, scan ports, run the families, stream results.

For each domain job: its A/AAAA records through the configured resolvers;
the scope guard on every address before any packet (out of scope: a
``scan.out_of_scope`` result and nothing sent); the port stage (nmap, many
addresses per run, then a light identification of each open port); the
host families (service, TLS, HTTP) concurrently under one per-host
deadline, then the derived families (software, vuln) on their results; the DNS family once per domain. Each host's result goes to the
observer as soon as it is finished and is not kept, so memory stays flat
however many hosts a sweep has.

Bounds: ``scan.concurrency`` hosts probed at once; ``scan.host_deadline_s``
per host (and for the DNS family of a domain); connections per host and the
sweep's rate through :meth:`ProbeContext.connection`; a host that keeps
failing probes is given up on (``scan.backoff_after_failures``).

This is the one place that catches bare ``Exception``: a family that raises
becomes a ``scan.error`` finding with the trace, and the sweep goes on.
Scan problems of every family of a host are gathered in its ``scan`` family
result, which is always complete, so that a problem that goes away is
resolved by the store; a family with a problem is marked incomplete, so that
nothing of it is resolved on the strength of a failed probe.

Check IDs (scan problems): ``scan.out_of_scope``, ``scan.unreachable``,
``scan.timeout``, ``scan.error``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from vigie.model import (
    SCANNABLE_FAMILIES,
    Family,
    FamilyResult,
    Finding,
    HostResult,
    HostTarget,
    OpenPort,
    utcnow,
)
from vigie.scanner.connection import host_health
from vigie.scanner.ports import NMAP_PARALLEL_RUNS, NmapPortStage, PortScan, fallback_ports
from vigie.scanner.probe_context import ProbeContext, scan_problem
from vigie.scanner.resolve import Answer, Resolution
from vigie.scanner.scope import ScopeDecision
from vigie.scanner.service import open_port_findings

log = logging.getLogger("vigie.scanner.engine")

OUT_OF_SCOPE = "scan.out_of_scope"
UNREACHABLE = "scan.unreachable"
TIMEOUT = "scan.timeout"
ERROR = "scan.error"

# Identification of the open ports may use at most this share of the host deadline;
# the families need the rest.
IDENTIFY_SHARE = 0.5
# nmap batches per lane that hosts waiting for a probing slot may fill ahead.
PORT_SCAN_AHEAD_BATCHES = 2

HostCheck = Callable[[ProbeContext, HostTarget, list[OpenPort]], Awaitable[FamilyResult]]
DomainCheck = Callable[[ProbeContext, str, bool], Awaitable[FamilyResult]]
# A derived family runs after the host families, on what they found (software, vuln).
DerivedCheck = Callable[
    [ProbeContext, HostTarget, list[OpenPort], Mapping[Family, FamilyResult]],
    Awaitable[FamilyResult],
]


@dataclass(frozen=True)
class DomainJob:
    """One registered domain to sweep."""

    domain: str  # ASCII (IDNA) name
    agency: str = ""
    mail_domain: bool = False  # the registry says it is a mail domain (DNS also checks MX)
    families: frozenset[Family] = frozenset(SCANNABLE_FAMILIES)
    # Resume: addresses whose host scan already finished in this run;
    # "" = the domain's own part (DNS family, resolution) finished.
    done_hosts: frozenset[str] = frozenset()
    # The networks the agency's mandate names (CIDRs): when set, only addresses inside
    # them (and inside the sweep's scope) are probed.
    networks: tuple[str, ...] = ()


class EngineObserver(Protocol):
    def hosts_planned(self, count: int) -> None:
        """More host results are coming (called as resolution adds hosts)."""

    def host_done(self, result: HostResult) -> None:
        """One host is finished (the caller stores it here)."""


class PortStage(Protocol):
    """What the engine needs from the port stage (``NmapPortStage``; fakes in tests)."""

    async def scan(self, ip: str) -> PortScan: ...

    async def identify(self, ip: str, scan: PortScan) -> list[OpenPort]: ...

    async def aclose(self) -> None: ...


@dataclass
class EngineStats:
    domains: int = 0
    hosts: int = 0  # host results handed to the observer (domain-level ones included)
    findings: int = 0
    out_of_scope: int = 0
    elapsed_s: float = 0.0


@dataclass
class _Domain:
    """A domain's own part: resolution problems and the DNS family."""

    job: DomainJob
    target: HostTarget
    resolution: list[Finding] = field(default_factory=list)
    addresses: tuple[str, ...] = ()


class SweepEngine:
    """Runs domain jobs under the sweep's bounds and streams host results to an observer."""

    def __init__(
        self,
        ctx: ProbeContext,
        *,
        host_families: Mapping[Family, HostCheck] | None = None,
        domain_families: Mapping[Family, DomainCheck] | None = None,
        domain_check: DomainCheck | None = None,
        port_stage: PortStage | None = None,
        derived_families: Mapping[Family, DerivedCheck] | None = None,
    ) -> None:
        self.ctx = ctx
        from vigie.scanner.families import DERIVED_FAMILIES, DERIVED_INPUTS

        if derived_families is None:
            derived_families = DERIVED_FAMILIES if host_families is None else {}
        self._derived_families = dict(derived_families)
        self._derived_inputs = DERIVED_INPUTS
        if host_families is None:
            from vigie.scanner.families import HOST_FAMILIES

            host_families = HOST_FAMILIES
        self._host_families = dict(host_families)
        if domain_check is not None:  # a test's stand-in for every domain family
            domain_families = {Family.DNS: domain_check}
        if domain_families is None:
            from vigie.scanner.families import DOMAIN_FAMILIES

            domain_families = DOMAIN_FAMILIES
        self._domain_families = dict(domain_families)
        self._port_stage: PortStage = port_stage or NmapPortStage(ctx)
        scan = ctx.settings.scan
        self._deadline_s = scan.host_deadline_s
        self._probing = asyncio.Semaphore(scan.concurrency)
        # Domains in flight: the hosts being probed, plus enough waiting ones to keep
        # both nmap lanes busy two batches ahead (100 hosts: port scan span 1.41 -> 0.42 s).
        ahead = PORT_SCAN_AHEAD_BATCHES * NMAP_PARALLEL_RUNS * scan.nmap_batch_size
        self._domain_slots = asyncio.Semaphore(scan.concurrency + ahead)

    async def run(self, jobs: Iterable[DomainJob], observer: EngineObserver) -> EngineStats:
        """Sweep ``jobs`` (consumed lazily); each host result goes to ``observer``."""
        stats = EngineStats()
        started = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    await self._domain_slots.acquire()
                    group.create_task(self._domain_slot(job, observer, stats))
        except BaseExceptionGroup as failures:
            # An observer that cannot store results (or a bug) stops the sweep: say why
            # plainly, with the first error itself (task groups nest: domain, then sweep).
            first: BaseException = failures
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from failures
        finally:
            await self._port_stage.aclose()
            await self.ctx.aclose()
            stats.elapsed_s = time.monotonic() - started
        return stats

    async def _domain_slot(
        self, job: DomainJob, observer: EngineObserver, stats: EngineStats
    ) -> None:
        try:
            await self._scan_domain(job, observer, stats)
        finally:
            self._domain_slots.release()

    # --- a domain ----------------------------------------------------------------

    async def _scan_domain(
        self, job: DomainJob, observer: EngineObserver, stats: EngineStats
    ) -> None:
        stats.domains += 1
        domain = _Domain(job, HostTarget(job.domain, "", job.agency))
        own_part = "" not in job.done_hosts
        if own_part:
            observer.hosts_planned(1)
        derived = [f for f in self._derived_families if f in job.families]
        inputs = self._derived_inputs if derived else frozenset()
        families = [f for f in self._host_families if f in job.families or f in inputs]
        families += derived
        async with asyncio.TaskGroup() as group:
            domain_tasks: dict[Family, asyncio.Task[FamilyResult]] = {}
            if own_part:
                for family in self._domain_families:
                    if family in job.families:
                        domain_tasks[family] = group.create_task(
                            self._domain_family(family, domain)
                        )
            await self._resolve(domain)
            hosts = [ip for ip in domain.addresses if ip not in job.done_hosts] if families else []
            if hosts:
                observer.hosts_planned(len(hosts))
            for ip in hosts:
                target = HostTarget(job.domain, ip, job.agency)
                group.create_task(self._host(target, families, observer, stats, job.networks))
            if own_part:
                group.create_task(self._finish_domain(domain, domain_tasks, observer, stats))

    async def _resolve(self, domain: _Domain) -> None:
        """A and AAAA through the configured resolvers; a failure becomes a scan finding."""
        name = domain.job.domain
        try:
            async with asyncio.timeout(self._deadline_s):
                resolution = await self.ctx.resolver.resolve_addresses(name)
        except TimeoutError:
            detail = f"no A/AAAA answer within {self._deadline_s:g}s"
            domain.resolution.append(scan_problem(domain.target, TIMEOUT, "resolve", detail))
            return
        except Exception:
            detail = traceback.format_exc()
            domain.resolution.append(scan_problem(domain.target, ERROR, "resolve", detail))
            return
        domain.addresses = resolution.addresses
        problem = resolution_problem(domain.target, resolution)
        if problem is not None:
            domain.resolution.append(problem)
        if resolution.truncated:
            log.warning(
                "address list truncated", extra={"domain": name, "kept": len(resolution.addresses)}
            )

    async def _domain_family(self, family: Family, domain: _Domain) -> FamilyResult:
        """A family that runs once per domain (DNS, mail, IPv6), under its own deadline."""
        async with self._probing:
            deadline = asyncio.get_running_loop().time() + self._deadline_s
            check = self._domain_families[family](
                self.ctx, domain.job.domain, domain.job.mail_domain
            )
            return await run_family(family, domain.target, check, deadline)

    async def _finish_domain(
        self,
        domain: _Domain,
        domain_tasks: Mapping[Family, asyncio.Task[FamilyResult]],
        observer: EngineObserver,
        stats: EngineStats,
    ) -> None:
        result = HostResult(target=domain.target)
        for family, task in domain_tasks.items():
            result.families[family] = await task
        result.families[Family.SCAN] = FamilyResult(Family.SCAN, list(domain.resolution))
        self._emit(finalised(result), observer, stats)

    # --- a host ------------------------------------------------------------------

    async def _host(
        self,
        target: HostTarget,
        families: list[Family],
        observer: EngineObserver,
        stats: EngineStats,
        networks: tuple[str, ...] = (),
    ) -> None:
        decision = self.ctx.scope.decide(target.ip)
        if decision is ScopeDecision.IN_SCOPE and networks and not in_networks(target.ip, networks):
            decision = ScopeDecision.OUTSIDE_MANDATE
        if decision is not ScopeDecision.IN_SCOPE:
            stats.out_of_scope += 1
            self._emit(finalised(out_of_scope_result(target, decision)), observer, stats)
            return
        try:
            with self.ctx.in_flight(target):
                result = await self._scan_host(target, families)
        except Exception:
            result = HostResult(target=target)
            result.families[Family.SCAN] = FamilyResult(
                Family.SCAN, [scan_problem(target, ERROR, "engine", traceback.format_exc())]
            )
            for family in families:
                result.families[family] = FamilyResult(family, complete=False)
        self._emit(finalised(result), observer, stats)

    async def _scan_host(self, target: HostTarget, families: list[Family]) -> HostResult:
        result = HostResult(target=target)
        scan_family = FamilyResult(Family.SCAN)
        result.families[Family.SCAN] = scan_family
        # nmap batches addresses: waiting for a batch is not probing and uses no slot.
        scan = await self._port_stage.scan(target.ip)
        async with self._probing:
            result.started_at = utcnow()
            deadline = asyncio.get_running_loop().time() + self._deadline_s
            if scan.problem_id:
                detail = f"{scan.problem} ({scan.command})" if scan.command else scan.problem
                scan_family.add(scan_problem(target, scan.problem_id, "nmap", detail))
                for family in families:
                    result.families[family] = FamilyResult(family, complete=False)
                return result
            ports, identified = await self._identify(target, scan, deadline)
            result.open_ports = ports
            if not scan.open_ports:
                scan_family.add(unreachable(target, scan))
            if host_health(self.ctx, target.ip).given_up:
                scan_family.add(gave_up(target, self.ctx.settings.scan.backoff_after_failures))
                for family in families:
                    result.families[family] = FamilyResult(family, complete=False)
            else:
                checks = [
                    run_family(
                        family,
                        target,
                        self._host_families[family](self.ctx, target, ports),
                        deadline,
                    )
                    for family in families
                    if family in self._host_families
                ]
                for family_result in await asyncio.gather(*checks):
                    result.families[family_result.family] = family_result
                for family in families:
                    if family in self._derived_families:
                        check = self._derived_families[family](
                            self.ctx, target, ports, dict(result.families)
                        )
                        result.families[family] = await run_family(family, target, check, deadline)
                for family_result in result.families.values():
                    family_result.observed.clear()  # read; not kept with the result
            if not identified:
                detail = "identifying the open ports used up its share of the host deadline"
                scan_family.add(scan_problem(target, TIMEOUT, "identify", detail))
                for family in families:
                    result.families[family].complete = False
        if Family.SERVICE in families:
            include_open_ports(result.families[Family.SERVICE], target, ports, scan)
        return result

    async def _identify(
        self, target: HostTarget, scan: PortScan, deadline: float
    ) -> tuple[list[OpenPort], bool]:
        """The identified open ports, and whether identification finished in its budget."""
        if not scan.open_ports:
            return [], True
        budget_end = asyncio.get_running_loop().time() + self._deadline_s * IDENTIFY_SHARE
        try:
            async with asyncio.timeout_at(min(deadline, budget_end)):
                return await self._port_stage.identify(target.ip, scan), True
        except TimeoutError:
            return fallback_ports(scan), False

    def _emit(self, result: HostResult, observer: EngineObserver, stats: EngineStats) -> None:
        stats.hosts += 1
        stats.findings += len(result.findings)
        observer.host_done(result)


# --- results ---------------------------------------------------------------------


async def run_family(
    family: Family, target: HostTarget, check: Awaitable[FamilyResult], deadline: float
) -> FamilyResult:
    """Await one family until ``deadline``; overrun and exceptions become scan findings."""
    probe = f"family:{family.value}"
    try:
        async with asyncio.timeout_at(deadline):
            result = await check
    except TimeoutError:
        detail = f"the {family.value} checks did not finish within the host deadline"
        return FamilyResult(family, [scan_problem(target, TIMEOUT, probe, detail)], complete=False)
    except Exception:
        problem = scan_problem(target, ERROR, probe, traceback.format_exc())
        return FamilyResult(family, [problem], complete=False)
    result.family = family
    return result


def resolution_problem(target: HostTarget, resolution: Resolution) -> Finding | None:
    """A scan finding for a name that did not resolve (None when it resolved or has no address)."""
    if resolution.outcome is Answer.TIMEOUT:
        return scan_problem(target, TIMEOUT, "resolve", resolution.detail or "DNS timeout")
    if resolution.outcome in (Answer.SERVFAIL, Answer.NXDOMAIN):
        detail = f"{resolution.outcome.value}: {resolution.detail}".rstrip(": ")
        return scan_problem(target, ERROR, "resolve", detail)
    return None


def in_networks(address: str, networks: tuple[str, ...]) -> bool:
    """``address`` lies in one of ``networks`` (CIDRs already validated at registration)."""
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def out_of_scope_result(target: HostTarget, decision: ScopeDecision) -> HostResult:
    """Only the scope finding: nothing was sent to the address.

    No external standard: ``scan.out_of_scope`` records vigie's own scope rule
    (private, loopback and reserved ranges, RFC 6890, refused unless allowed).
    """
    where = (
        "outside the networks of the agency's mandate"
        if decision is ScopeDecision.OUTSIDE_MANDATE
        else "outside the allowed scope"
    )
    finding = Finding(
        check_id=OUT_OF_SCOPE,
        domain=target.domain,
        ip=target.ip,
        evidence={
            "address": target.ip,
            "decision": decision.value,
            "detail": f"{target.domain} resolves to {target.ip}, {where}; nothing was sent to it",
        },
    )
    result = HostResult(target=target)
    result.families[Family.SCAN] = FamilyResult(Family.SCAN, [finding])
    return result


def not_authorised_result(domain: str, agency: str, reason: str) -> HostResult:
    """``scan.not_authorised``: the planner refused the domain (no valid mandate), so
    nothing was sent; the result goes to the store like any other. No external
    standard: the mandate register is the CERT's own legal basis for scanning."""
    target = HostTarget(domain=domain, ip="", agency=agency)
    finding = Finding(check_id="scan.not_authorised", domain=domain, evidence={"reason": reason})
    result = HostResult(target=target)
    result.families[Family.SCAN] = FamilyResult(family=Family.SCAN, findings=[finding])
    result.finished_at = utcnow()
    return result


def unreachable(target: HostTarget, scan: PortScan) -> Finding:
    """``scan.unreachable``: no port answered and the host did not answer nmap's host
    discovery. No external standard: vigie's own account of a host it could not see."""
    return Finding(
        check_id=UNREACHABLE,
        domain=target.domain,
        ip=target.ip,
        evidence={
            "address": target.ip,
            "ports_scanned": scan.ports_scanned,
            "open_ports": 0,
            "detail": "no scanned TCP port accepted a connection",
            "scan": scan.command,
        },
    )


def gave_up(target: HostTarget, failures: int) -> Finding:
    detail = f"{failures} probes in a row failed: the host was not probed any further"
    return scan_problem(target, TIMEOUT, "backoff", detail)


def include_open_ports(
    service: FamilyResult, target: HostTarget, ports: list[OpenPort], scan: PortScan
) -> None:
    """The port inventory, even when the service probes failed, with nmap's line as evidence."""
    inventory = {f.fingerprint: f for f in open_port_findings(target, ports, scan.excerpt)}
    kept = [f for f in service.findings if f.fingerprint not in inventory]
    service.findings = kept + list(inventory.values())


def finalised(result: HostResult) -> HostResult:
    """Gather every scan problem into the (always complete) scan family; stamp the end."""
    scan = result.families.setdefault(Family.SCAN, FamilyResult(Family.SCAN))
    seen = {f.fingerprint for f in scan.findings}
    for family, family_result in result.families.items():
        if family is Family.SCAN:
            continue
        kept: list[Finding] = []
        for finding in family_result.findings:
            if finding.family is not Family.SCAN:
                kept.append(finding)
                continue
            if finding.check_id in (TIMEOUT, ERROR):
                family_result.complete = False  # a failed probe never resolves anything
            if finding.fingerprint not in seen:
                seen.add(finding.fingerprint)
                scan.add(finding)
        family_result.findings = kept
    scan.complete = True
    result.finished_at = utcnow()
    return result


async def scan_jobs(ctx: ProbeContext, jobs: Iterable[DomainJob]) -> list[HostResult]:
    """Sweep a small batch and return its results (tests, one Celery batch)."""
    collected = _Collector()
    await SweepEngine(ctx).run(jobs, collected)
    return collected.results


class _Collector:
    def __init__(self) -> None:
        self.results: list[HostResult] = []
        self.planned = 0

    def hosts_planned(self, count: int) -> None:
        self.planned += count

    def host_done(self, result: HostResult) -> None:
        self.results.append(result)
