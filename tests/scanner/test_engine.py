"""The sweep engine: bounds, deadlines, failures as findings, scope, streaming, resume.

Most tests use a fake family registry, a fake port stage and a fake resolver
that do no I/O, so that what is tested is the engine's scheduling. The
network tests at the end run the real port stage (nmap), a real DNS server
(Knot) and real listeners on 127.0.2.x, and prove that an address outside
the scope never receives a packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.dns_server import Faults, free_port, start_faulty_proxy, start_zone_server
from tests.scanner.service_servers import redis
from vigie.config import Settings
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget, OpenPort
from vigie.scanner.connection import host_health
from vigie.scanner.engine import (
    PORT_SCAN_AHEAD_BATCHES,
    DomainJob,
    SweepEngine,
    finalised,
    scan_jobs,
)
from vigie.scanner.ports import NMAP_PARALLEL_RUNS, PortScan
from vigie.scanner.probe_context import ProbeContext, RateLimiter, scan_problem
from vigie.scanner.resolve import Answer, Resolution
from vigie.scanner.scope import ScopeGuard
from vigie.scanner.service import check_services

IN_SCOPE = "127.0.2.10"
ALSO_IN_SCOPE = "127.0.2.11"
OUT_OF_SCOPE = "127.0.2.99"


# --- fakes -----------------------------------------------------------------------


class FakeResolver:
    def __init__(self, answers: dict[str, Resolution]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve_addresses(self, name: str) -> Resolution:
        self.asked.append(name)
        return self.answers.get(name) or Resolution(name, (), Answer.NXDOMAIN, detail="NXDOMAIN")


def resolves(name: str, *addresses: str) -> Resolution:
    return Resolution(name, tuple(addresses), Answer.OK)


@dataclass
class FakePortStage:
    ports: dict[str, list[OpenPort]] = field(default_factory=dict)
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)
    scanned: list[str] = field(default_factory=list)
    identify_delay_s: float = 0.0
    closed: bool = False

    async def scan(self, ip: str) -> PortScan:
        self.scanned.append(ip)
        check_id, detail = self.problems.get(ip, ("", ""))
        opened = tuple(p.port for p in self.ports.get(ip, []))
        return PortScan(ip, opened, ports_scanned=5, problem_id=check_id, problem=detail)

    async def identify(self, ip: str, scan: PortScan) -> list[OpenPort]:
        await asyncio.sleep(self.identify_delay_s)
        return list(self.ports.get(ip, []))

    async def aclose(self) -> None:
        self.closed = True


class Recorder:
    """An observer that keeps what it is told (tests only: the real one stores and forgets)."""

    def __init__(self) -> None:
        self.results: list[HostResult] = []
        self.planned = 0

    def hosts_planned(self, count: int) -> None:
        self.planned += count

    def host_done(self, result: HostResult) -> None:
        self.results.append(result)

    def one(self, domain: str, ip: str) -> HostResult:
        matches = [r for r in self.results if (r.target.domain, r.target.ip) == (domain, ip)]
        assert len(matches) == 1, f"{len(matches)} results for {domain}/{ip}"
        return matches[0]


def settings(**scan: object) -> Settings:
    values: dict[str, object] = {"host_deadline_s": 5, "probe_timeout_s": 1, **scan}
    return Settings.model_validate(
        {"scope": {"allow": [f"{IN_SCOPE}/32", f"{ALSO_IN_SCOPE}/32"]}, "scan": values}
    )


def context(answers: dict[str, Resolution], **scan: object) -> ProbeContext:
    config = settings(**scan)
    return ProbeContext(
        settings=config,
        scope=ScopeGuard.from_cidrs(config.scope.allow),
        resolver=FakeResolver(answers),  # type: ignore[arg-type]
        rate=RateLimiter(10_000),
    )


def found(result: HostResult) -> set[str]:
    return {f.check_id for f in result.findings}


async def empty_service(
    ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]
) -> FamilyResult:
    return FamilyResult(Family.SERVICE)


async def quiet_dns(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    return FamilyResult(Family.DNS)


def run(engine: SweepEngine, jobs: list[DomainJob] | Iterator[DomainJob]) -> Recorder:
    recorder = Recorder()
    asyncio.run(engine.run(jobs, recorder))
    return recorder


# --- scope ------------------------------------------------------------------------


def test_an_address_out_of_scope_gets_only_the_scope_finding_and_no_probe() -> None:
    # Given a name resolving to one address in scope and one outside it
    ctx = context({"mixed.ml": resolves("mixed.ml", IN_SCOPE, OUT_OF_SCOPE)})
    stage = FakePortStage(ports={IN_SCOPE: [OpenPort(22, "ssh")]})
    probed: list[str] = []

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        probed.append(target.ip)
        return FamilyResult(Family.SERVICE)

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    # When it is swept
    recorder = run(engine, [DomainJob("mixed.ml", families=frozenset({Family.SERVICE}))])
    # Then the outside address was neither port-scanned nor probed
    assert stage.scanned == [IN_SCOPE]
    assert probed == [IN_SCOPE]
    # And its result holds only scan.out_of_scope, with the address and the decision
    outside = recorder.one("mixed.ml", OUT_OF_SCOPE)
    assert list(outside.families) == [Family.SCAN]
    (finding,) = outside.findings
    assert finding.check_id == "scan.out_of_scope"
    assert finding.evidence["address"] == OUT_OF_SCOPE
    assert finding.evidence["decision"] == "special"
    # And the address in scope got no scan finding about scope
    assert "scan.out_of_scope" not in found(recorder.one("mixed.ml", IN_SCOPE))


# --- deadlines and failures -----------------------------------------------------------


def test_a_family_that_overruns_the_host_deadline_becomes_scan_timeout() -> None:
    # Given a TLS family that never finishes and a service family that does
    ctx = context({"slow.ml": resolves("slow.ml", IN_SCOPE)}, host_deadline_s=0.5)
    stage = FakePortStage(ports={IN_SCOPE: [OpenPort(443, "http", tls=True)]})

    async def hanging(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    engine = SweepEngine(
        ctx,
        host_families={Family.SERVICE: empty_service, Family.TLS: hanging},
        domain_check=quiet_dns,
        port_stage=stage,
    )
    # When the host is swept
    started = time.monotonic()
    recorder = run(engine, [DomainJob("slow.ml", families=frozenset({Family.SERVICE, Family.TLS}))])
    elapsed = time.monotonic() - started
    # Then the sweep ended at the deadline, with the host reported
    assert elapsed < 3
    host = recorder.one("slow.ml", IN_SCOPE)
    # And the TLS family is incomplete, its overrun a scan.timeout in the scan family
    assert host.families[Family.TLS].complete is False
    assert host.families[Family.TLS].findings == []
    (timeout,) = host.families[Family.SCAN].findings
    assert (timeout.check_id, timeout.evidence["probe"]) == ("scan.timeout", "family:tls")
    # And the service family finished (its inventory is there), the scan family is complete
    assert host.families[Family.SERVICE].complete is True
    assert found(host) == {"scan.timeout", "service.open_port"}
    assert host.families[Family.SCAN].complete is True


def test_a_family_that_raises_becomes_scan_error_with_the_trace() -> None:
    # Given a service family with a bug
    ctx = context({"bug.ml": resolves("bug.ml", IN_SCOPE)})
    stage = FakePortStage(ports={IN_SCOPE: [OpenPort(6379, "redis"), OpenPort(22, "ssh")]})

    async def broken(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        raise ZeroDivisionError("a bug in a check")

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: broken}, domain_check=quiet_dns, port_stage=stage
    )
    # When the host is swept
    recorder = run(engine, [DomainJob("bug.ml", families=frozenset({Family.SERVICE}))])
    # Then the host is still reported: a scan.error with the trace, the family incomplete
    host = recorder.one("bug.ml", IN_SCOPE)
    errors = [f for f in host.findings if f.check_id == "scan.error"]
    assert len(errors) == 1
    assert "ZeroDivisionError: a bug in a check" in errors[0].evidence["detail"]
    assert errors[0].evidence["probe"] == "family:service"
    assert host.families[Family.SERVICE].complete is False
    # And the port inventory is reported anyway
    inventory = {
        (f.port, f.discriminator) for f in host.findings if f.check_id == "service.open_port"
    }
    assert inventory == {(6379, "tcp/6379"), (22, "tcp/22")}
    assert found(host) == {"scan.error", "service.open_port"}


def test_scan_problems_reported_inside_a_family_make_it_incomplete_and_move_to_scan() -> None:
    # Given a family result that reports a probe timeout but claims to be complete
    target = HostTarget("x.ml", IN_SCOPE)
    result = HostResult(target=target)
    timeout = scan_problem(target, "scan.timeout", "http:get", "no answer", 80)
    real = Finding("http.hsts.missing", "x.ml", IN_SCOPE, 443)
    result.families[Family.HTTP] = FamilyResult(Family.HTTP, [timeout, real], complete=True)
    # When the engine finalises it
    finalised(result)
    # Then the timeout sits in the (complete) scan family and the HTTP family is incomplete
    assert result.families[Family.SCAN].findings == [timeout]
    assert result.families[Family.SCAN].complete is True
    assert result.families[Family.HTTP].findings == [real]
    assert result.families[Family.HTTP].complete is False
    assert result.finished_at is not None


def test_a_host_without_open_ports_is_unreachable_and_its_families_still_complete() -> None:
    # Given an address where nothing listens
    ctx = context({"dead.ml": resolves("dead.ml", IN_SCOPE)})
    engine = SweepEngine(
        ctx,
        host_families={Family.SERVICE: check_services},  # no port: it sends nothing
        domain_check=quiet_dns,
        port_stage=FakePortStage(),
    )
    # When it is swept
    recorder = run(engine, [DomainJob("dead.ml", families=frozenset({Family.SERVICE}))])
    # Then it gets scan.unreachable and nothing else, the service family complete
    host = recorder.one("dead.ml", IN_SCOPE)
    assert found(host) == {"scan.unreachable"}
    assert host.families[Family.SERVICE].complete is True
    assert host.findings[0].evidence["ports_scanned"] == 5


def test_a_failed_port_scan_leaves_every_family_incomplete() -> None:
    # Given nmap timing out on the address
    ctx = context({"flaky.ml": resolves("flaky.ml", IN_SCOPE)})
    stage = FakePortStage(problems={IN_SCOPE: ("scan.timeout", "nmap host timeout")})
    called: list[str] = []

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        called.append(target.ip)
        return FamilyResult(Family.SERVICE)

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    # When it is swept
    recorder = run(engine, [DomainJob("flaky.ml", families=frozenset({Family.SERVICE}))])
    # Then no family ran, and none can resolve anything
    host = recorder.one("flaky.ml", IN_SCOPE)
    assert called == []
    assert host.families[Family.SERVICE].complete is False
    assert found(host) == {"scan.timeout"}
    assert host.findings[0].evidence["probe"] == "nmap"
    assert "scan.unreachable" not in found(host)


def test_a_host_that_keeps_failing_is_not_probed_further() -> None:
    # Given a host whose probes already failed as often as the back-off allows
    ctx = context({"tarpit.ml": resolves("tarpit.ml", IN_SCOPE)}, backoff_after_failures=2)
    for _ in range(2):
        host_health(ctx, IN_SCOPE).failed()
    called: list[str] = []

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        called.append(target.ip)
        return FamilyResult(Family.SERVICE)

    stage = FakePortStage(ports={IN_SCOPE: [OpenPort(8081, "http")]})
    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    # When it is swept
    recorder = run(engine, [DomainJob("tarpit.ml", families=frozenset({Family.SERVICE}))])
    # Then the families did not run; a scan.timeout says why; the inventory stays
    host = recorder.one("tarpit.ml", IN_SCOPE)
    assert called == []
    assert found(host) == {"scan.timeout", "service.open_port"}
    backoff = next(f for f in host.findings if f.check_id == "scan.timeout")
    assert backoff.evidence["probe"] == "backoff"
    assert host.families[Family.SERVICE].complete is False


def test_identification_that_overruns_its_budget_leaves_the_families_incomplete() -> None:
    # Given open ports whose identification takes longer than half the host deadline
    ctx = context({"slowid.ml": resolves("slowid.ml", IN_SCOPE)}, host_deadline_s=0.4)
    stage = FakePortStage(ports={IN_SCOPE: [OpenPort(22, "ssh")]}, identify_delay_s=10)
    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: empty_service}, domain_check=quiet_dns, port_stage=stage
    )
    # When the host is swept
    recorder = run(engine, [DomainJob("slowid.ml", families=frozenset({Family.SERVICE}))])
    # Then the ports are named from their numbers and the families cannot resolve anything
    host = recorder.one("slowid.ml", IN_SCOPE)
    assert host.open_ports == [OpenPort(22, "ssh")]
    assert host.families[Family.SERVICE].complete is False
    assert found(host) == {"scan.timeout", "service.open_port"}


# --- concurrency and streaming -----------------------------------------------------------


def test_no_more_hosts_are_probed_at_once_than_the_concurrency_bound() -> None:
    # Given 20 domains and a concurrency of 3
    names = [f"d{i}.ml" for i in range(20)]
    ctx = context(
        {n: resolves(n, IN_SCOPE if i % 2 else ALSO_IN_SCOPE) for i, n in enumerate(names)},
        concurrency=3,
    )
    stage = FakePortStage(
        ports={IN_SCOPE: [OpenPort(80, "http")], ALSO_IN_SCOPE: [OpenPort(80, "http")]}
    )
    running = 0
    peak = 0

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return FamilyResult(Family.SERVICE)

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    # When they are swept
    recorder = run(engine, [DomainJob(n, families=frozenset({Family.SERVICE})) for n in names])
    # Then at most 3 hosts were probed at once, and the bound was used
    assert peak == 3
    # And every planned host was reported: one address and one domain part per name
    assert recorder.planned == len(recorder.results) == 40


def test_results_stream_to_the_observer_as_each_host_finishes() -> None:
    # Given a slow host that only finishes once the fast one has been reported
    ctx = context(
        {"fast.ml": resolves("fast.ml", IN_SCOPE), "slow.ml": resolves("slow.ml", ALSO_IN_SCOPE)}
    )
    stage = FakePortStage(
        ports={IN_SCOPE: [OpenPort(80, "http")], ALSO_IN_SCOPE: [OpenPort(80, "http")]}
    )
    fast_reported = asyncio.Event()

    class Watching(Recorder):
        def host_done(self, result: HostResult) -> None:
            super().host_done(result)
            if result.target.ip == IN_SCOPE:
                fast_reported.set()

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        if target.ip == ALSO_IN_SCOPE:
            await asyncio.wait_for(
                fast_reported.wait(), 2
            )  # would time out if results were held back
        return FamilyResult(Family.SERVICE)

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    recorder = Watching()
    # When both are swept
    asyncio.run(
        engine.run(
            [DomainJob(d, families=frozenset({Family.SERVICE})) for d in ("slow.ml", "fast.ml")],
            recorder,
        )
    )
    # Then the slow host finished normally, after the fast one had been handed over
    slow = recorder.one("slow.ml", ALSO_IN_SCOPE)
    assert found(slow) == {"service.open_port"}
    order = [r.target.domain for r in recorder.results if r.target.ip]
    assert order == ["fast.ml", "slow.ml"]


def test_jobs_are_consumed_lazily_so_memory_stays_flat() -> None:
    # Given a long stream of jobs and small bounds
    ctx = context({}, concurrency=2, nmap_batch_size=3)
    pulled = 0
    finished = 0
    most_in_flight = 0

    def jobs() -> Iterator[DomainJob]:
        nonlocal pulled, most_in_flight
        for index in range(200):
            pulled += 1
            most_in_flight = max(most_in_flight, pulled - finished)
            yield DomainJob(f"n{index}.ml", families=frozenset({Family.SERVICE}))

    class Counting(Recorder):
        def host_done(self, result: HostResult) -> None:
            nonlocal finished
            finished += 1  # each name only has its domain part (it does not resolve)

    engine = SweepEngine(
        ctx,
        host_families={Family.SERVICE: empty_service},
        domain_check=quiet_dns,
        port_stage=FakePortStage(),
    )
    # When the sweep runs
    recorder = Counting()
    asyncio.run(engine.run(jobs(), recorder))
    # Then all were swept, never more than the domain bound at once: the hosts being
    # probed plus two nmap batches per lane waiting
    assert finished == 200
    assert most_in_flight <= 2 + PORT_SCAN_AHEAD_BATCHES * NMAP_PARALLEL_RUNS * 3 + 1


def test_hosts_waiting_for_a_probing_slot_are_port_scanned_ahead() -> None:
    # Given 40 domains, two probing slots, nmap batches of 3 and slow families
    names = [f"d{i}.ml" for i in range(40)]
    ctx = context(
        {n: resolves(n, f"127.0.4.{i + 1}") for i, n in enumerate(names)},
        concurrency=2,
        nmap_batch_size=3,
    )
    ctx.scope = ScopeGuard.from_cidrs(["127.0.4.0/24"])
    stage = FakePortStage()
    asked_before_first_result: list[int] = []

    async def service(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
        await asyncio.sleep(0.05)
        return FamilyResult(Family.SERVICE)

    class Watching(Recorder):
        def host_done(self, result: HostResult) -> None:
            super().host_done(result)
            if result.target.ip and not asked_before_first_result:
                asked_before_first_result.append(len(stage.scanned))

    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: service}, domain_check=quiet_dns, port_stage=stage
    )
    recorder = Watching()
    asyncio.run(
        engine.run([DomainJob(n, families=frozenset({Family.SERVICE})) for n in names], recorder)
    )
    # Then, while the first two hosts were probed, the port stage was already asked
    # for enough addresses to keep both nmap lanes two batches ahead
    ahead = PORT_SCAN_AHEAD_BATCHES * NMAP_PARALLEL_RUNS * 3
    assert asked_before_first_result == [2 + ahead]
    # And every host was swept once
    assert sorted(stage.scanned) == sorted(f"127.0.4.{i + 1}" for i in range(40))
    assert len([r for r in recorder.results if r.target.ip]) == 40


# --- the domain's own part -------------------------------------------------------------------


def test_the_dns_family_runs_once_per_domain_as_a_host_without_address() -> None:
    # Given a domain with two addresses
    ctx = context({"two.ml": resolves("two.ml", IN_SCOPE, ALSO_IN_SCOPE)})
    calls: list[tuple[str, bool]] = []

    async def dns_check(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
        calls.append((domain, mail_domain))
        return FamilyResult(Family.DNS, [Finding("dns.caa.missing", domain)])

    engine = SweepEngine(
        ctx,
        host_families={Family.SERVICE: empty_service},
        domain_check=dns_check,
        port_stage=FakePortStage(),
    )
    # When it is swept with every family
    recorder = run(engine, [DomainJob("two.ml", agency="Agence", mail_domain=True)])
    # Then the DNS family ran once, reported under the domain with no address
    assert calls == [("two.ml", True)]
    domain_part = recorder.one("two.ml", "")
    assert domain_part.target.agency == "Agence"
    assert found(domain_part) == {"dns.caa.missing"}
    assert domain_part.families[Family.SCAN].complete is True
    assert {r.target.ip for r in recorder.results} == {"", IN_SCOPE, ALSO_IN_SCOPE}


def test_a_dns_family_that_raises_becomes_scan_error_of_the_domain() -> None:
    ctx = context({"dnsbug.ml": resolves("dnsbug.ml")})

    async def dns_check(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
        raise NotImplementedError

    engine = SweepEngine(ctx, host_families={}, domain_check=dns_check, port_stage=FakePortStage())
    recorder = run(engine, [DomainJob("dnsbug.ml", families=frozenset({Family.DNS}))])
    domain_part = recorder.one("dnsbug.ml", "")
    assert found(domain_part) == {"scan.error"}
    assert domain_part.families[Family.DNS].complete is False
    assert "NotImplementedError" in domain_part.findings[0].evidence["detail"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Answer.NXDOMAIN, "scan.error"),
        (Answer.SERVFAIL, "scan.error"),
        (Answer.TIMEOUT, "scan.timeout"),
    ],
)
def test_a_name_that_does_not_resolve_is_recorded_and_nothing_is_probed(
    outcome: Answer, expected: str
) -> None:
    ctx = context({"gone.ml": Resolution("gone.ml", (), outcome, detail="what the resolver said")})
    stage = FakePortStage()
    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: empty_service}, domain_check=quiet_dns, port_stage=stage
    )
    recorder = run(engine, [DomainJob("gone.ml")])
    assert stage.scanned == []
    assert [r.target.ip for r in recorder.results] == [""]
    (problem,) = recorder.one("gone.ml", "").findings
    assert problem.check_id == expected
    assert problem.evidence["probe"] == "resolve"
    assert "what the resolver said" in problem.evidence["detail"]


def test_resume_skips_what_the_interrupted_run_finished() -> None:
    # Given a run that already stored the domain part and one of two addresses
    ctx = context({"half.ml": resolves("half.ml", IN_SCOPE, ALSO_IN_SCOPE)})
    dns_calls: list[str] = []

    async def dns_check(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
        dns_calls.append(domain)
        return FamilyResult(Family.DNS)

    stage = FakePortStage()
    engine = SweepEngine(
        ctx, host_families={Family.SERVICE: empty_service}, domain_check=dns_check, port_stage=stage
    )
    # When it is resumed
    recorder = run(engine, [DomainJob("half.ml", done_hosts=frozenset({"", IN_SCOPE}))])
    # Then only the unfinished address is scanned, and the DNS family is not run again
    assert dns_calls == []
    assert stage.scanned == [ALSO_IN_SCOPE]
    assert [r.target.ip for r in recorder.results] == [ALSO_IN_SCOPE]
    assert recorder.planned == 1


def test_the_sweep_closes_the_shared_resources_when_it_ends() -> None:
    ctx = context({})
    closed: list[str] = []

    async def closer() -> None:
        closed.append("pool")

    ctx.closers.append(closer)
    stage = FakePortStage()
    engine = SweepEngine(ctx, host_families={}, domain_check=quiet_dns, port_stage=stage)
    run(engine, [])
    assert closed == ["pool"]
    assert stage.closed is True


# --- real resolution, real nmap, real listeners ----------------------------------------------------

RESOLVER = "127.0.2.53"
ZONE = "engine.test"


class Listener:
    """Accepts connections on one address and a few ports and counts them."""

    def __init__(self, address: str, ports: tuple[int, ...]) -> None:
        self.connections: list[int] = []
        self._sockets = []
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(16)
            sock.settimeout(0.05)
            self._sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for sock in self._sockets:
                with contextlib.suppress(TimeoutError, OSError):
                    connection, _ = sock.accept()
                    self.connections.append(sock.getsockname()[1])
                    connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for sock in self._sockets:
            sock.close()


@pytest.fixture(scope="module")
def zone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Knot serving engine.test: names pointing in and out of scope."""
    folder = tmp_path_factory.mktemp("engine-dns")
    port = free_port([RESOLVER])
    zone = f"""$ORIGIN {ZONE}.
$TTL 300
@       IN SOA ns hostmaster 1 3600 600 86400 300
@       IN NS  ns
ns      IN A   {RESOLVER}
cache   IN A   {IN_SCOPE}
split   IN A   {IN_SCOPE}
split   IN A   {OUT_OF_SCOPE}
outside IN A   {OUT_OF_SCOPE}
slow    IN A   {ALSO_IN_SCOPE}
"""
    with start_zone_server(folder, RESOLVER, port, {ZONE: zone}) as server:
        yield server.resolver


def real_settings(resolver: str, **scan: object) -> Settings:
    return Settings.model_validate(
        {
            "scope": {"allow": [f"{IN_SCOPE}/32", f"{ALSO_IN_SCOPE}/32"]},
            "dns": {"resolvers": [resolver], "timeout_s": 1, "lifetime_s": 2},
            "scan": {
                "ports": [22, 6379, 8081],
                "host_deadline_s": 10,
                "probe_timeout_s": 1,
                **scan,
            },
        }
    )


@pytest.mark.network
def test_tripwire_nothing_reaches_an_address_outside_scope(
    zone_server: str, tmp_path: Path
) -> None:
    # Given a real open Redis in scope and a listener outside scope on every scanned port
    jobs = [
        DomainJob(f"{name}.{ZONE}", families=frozenset({Family.SERVICE, Family.DNS}))
        for name in ("cache", "split", "outside")
    ]
    ctx = ProbeContext.from_settings(real_settings(zone_server))
    tripwire = Listener(OUT_OF_SCOPE, (22, 6379, 8081))
    try:
        with redis(tmp_path, IN_SCOPE):
            # When the names are swept by the real engine (nmap, service probes, DNS family)
            results = asyncio.run(scan_jobs(ctx, jobs))
    finally:
        tripwire.close()
    # Then not one connection reached the outside address
    assert tripwire.connections == []
    # And each name pointing outside got scan.out_of_scope for that address
    by_host = {(r.target.domain, r.target.ip): r for r in results}
    for name in ("split", "outside"):
        assert found(by_host[(f"{name}.{ZONE}", OUT_OF_SCOPE)]) == {"scan.out_of_scope"}
    # And the address in scope was really scanned: its open Redis found through the names
    for name in ("cache", "split"):
        host = by_host[(f"{name}.{ZONE}", IN_SCOPE)]
        assert {"service.database.no_auth", "service.database.exposed"} <= found(host)
        assert [p.port for p in host.open_ports] == [6379]
        inventory = next(f for f in host.findings if f.check_id == "service.open_port")
        assert inventory.evidence["nmap"] == "6379/tcp open redis (syn-ack)"
    # And every domain got its own part (DNS family, resolution)
    assert {d for d, ip in by_host if ip == ""} == {
        f"{n}.{ZONE}" for n in ("cache", "split", "outside")
    }


@pytest.mark.network
def test_resolution_goes_through_the_configured_resolver_and_failures_are_findings(
    zone_server: str,
) -> None:
    # Given a resolver proxy that drops every question about one name and fails another
    host, port = zone_server.split(":")
    faults = Faults(drop=frozenset({f"lost.{ZONE}."}), servfail=frozenset({f"broken.{ZONE}."}))
    with start_faulty_proxy("127.0.2.54", int(port), (host, int(port)), faults) as proxy:
        ctx = ProbeContext.from_settings(real_settings(proxy.resolver_entry))
        jobs = [
            DomainJob(f"{name}.{ZONE}", families=frozenset({Family.SERVICE}))
            for name in ("lost", "broken", "missing", "slow")
        ]
        engine = SweepEngine(
            ctx, host_families={Family.SERVICE: empty_service}, port_stage=FakePortStage()
        )
        recorder = run(engine, jobs)
    # Then every question went to the configured resolver
    asked = {name for name, _type, _proto in proxy.queries}
    assert {f"{n}.{ZONE}." for n in ("lost", "broken", "missing", "slow")} <= asked
    # And a dropped question is a timeout, a failure and a missing name are errors
    expected = {"lost": "scan.timeout", "broken": "scan.error", "missing": "scan.error"}
    for name, check_id in expected.items():
        assert found(recorder.one(f"{name}.{ZONE}", "")) == {check_id}
    # And the name that resolves got its address scanned
    assert found(recorder.one(f"slow.{ZONE}", ALSO_IN_SCOPE)) == {"scan.unreachable"}
