"""What every check family receives from the engine: the probe context.

A family module exposes one coroutine (see ``scanner/families.py``) that takes
a :class:`ProbeContext` and what the port stage saw, and returns a
:class:`~vigie.model.FamilyResult`. Families never write to the database and
never contact an address without :meth:`ProbeContext.require_in_scope`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from vigie.config import Settings
from vigie.model import Family, FamilyResult, Finding, HostTarget
from vigie.scanner.resolve import Resolver
from vigie.scanner.scope import ScopeGuard


class RateLimiter:
    """A token bucket: new connections and nmap probes per second (one per process and
    configuration, see :func:`process_budget`).

    ``burst`` tokens may be spent at once; the bucket refills at ``rate_per_s``.
    An analyst's scan of one agency fits in the burst and is not held back; a
    national sweep empties it within seconds and then runs at the rate. Over
    any window of T seconds at most ``burst + rate_per_s * T`` are spent.
    """

    def __init__(
        self, rate_per_s: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_per_s = rate_per_s
        self._capacity = max(burst, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()
        self._lock = threading.Lock()  # a Celery worker may run tasks on threads

    def reserve(self, count: float = 1.0) -> float:
        """Spend ``count`` tokens; the seconds until they are paid for (0: at once).

        Tokens may be spent ahead (the bucket goes into debt): whoever reserves
        next waits for that debt too, so concurrent callers queue fairly.
        """
        with self._lock:
            now = self._clock()
            refilled = self._tokens + (now - self._updated) * self.rate_per_s
            self._tokens = min(self._capacity, refilled) - count
            self._updated = now
            return max(0.0, -self._tokens / self.rate_per_s)

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


@functools.cache
def process_budget(rate_per_s: float, burst_s: float) -> RateLimiter:
    """The process's rate budget for one configuration.

    One bucket for every sweep this process runs: a Celery worker taking batch
    after batch, or the scheduler's nightly sweeps, get one burst between them,
    not a fresh one with each.
    """
    return RateLimiter(rate_per_s, burst=rate_per_s * burst_s)


@contextmanager
def until_done(
    registry: dict[HostTarget, asyncio.Future[None]], target: HostTarget, *, keep: bool = False
) -> Iterator[None]:
    """``registry[target]`` is a future set when the block ends; then the entry is
    dropped, or, with ``keep``, left (done) for whoever asks later."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    registry[target] = done
    try:
        yield
    finally:
        if not keep and registry.get(target) is done:
            del registry[target]
        done.set_result(None)


class SweepState(Protocol):
    """A family's sweep-wide state: built with no argument, closed when the sweep ends."""

    async def aclose(self) -> None: ...


StateT = TypeVar("StateT", bound=SweepState)


async def cancel_tasks_of_this_loop(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the unfinished tasks of the running loop and wait for them (a Celery
    worker runs one loop per batch: another loop's tasks are not ours to await)."""
    loop = asyncio.get_running_loop()
    pending = [t for t in tasks if not t.done() and t.get_loop() is loop]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class ProbeContext:
    """Shared, sweep-wide state handed to every family coroutine."""

    settings: Settings
    scope: ScopeGuard
    resolver: Resolver
    rate: RateLimiter
    # Sweep-wide resources a family owns (an httpx pool, a TLS scanner...),
    # keyed by the family's name; created lazily by the family, closed by
    # the engine through ``closers`` when the sweep ends.
    shared: dict[str, object] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Hosts the engine is scanning now, each with a future set when it is done: a
    # family may wait (bounded) for what the others will learn (TLS intermediates).
    hosts_in_flight: dict[HostTarget, asyncio.Future[None]] = field(default_factory=dict)
    _per_host: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, scope: ScopeGuard | None = None) -> ProbeContext:
        guard = scope or ScopeGuard.from_cidrs(settings.scope.allow, settings.scope.deny)
        return cls(
            settings=settings,
            scope=guard,
            resolver=Resolver.from_settings(settings),
            rate=process_budget(settings.scan.max_rate_per_s, settings.scan.rate_burst_s),
        )

    def require_in_scope(self, address: str) -> None:
        """Raise ``ScopeViolation`` unless ``address`` may be contacted."""
        self.scope.require(address)

    def shared_state(self, key: str, kind: type[StateT]) -> StateT:
        """The sweep-wide ``kind()`` a family keeps under ``key``, created at first use
        and closed (its ``aclose``) when the sweep ends."""
        state = self.shared.get(key)
        if not isinstance(state, kind):
            state = kind()
            self.shared[key] = state
            self.closers.append(state.aclose)
        return state

    def in_flight(self, target: HostTarget) -> AbstractContextManager[None]:
        """Mark ``target`` as being scanned until the block ends."""
        return until_done(self.hosts_in_flight, target)

    async def aclose(self) -> None:
        """Close every shared resource the families registered."""
        while self.closers:
            await self.closers.pop()()

    @asynccontextmanager
    async def connection(self, address: str) -> AsyncIterator[None]:
        """Hold one of the host's connection slots, after the scope guard and rate limit.

        Wrap every network exchange with a target in this, so that the per-host
        connection cap and the sweep-wide rate hold for every family.
        """
        self.require_in_scope(address)
        slots = self._per_host.get(address)
        if slots is None:
            slots = asyncio.Semaphore(self.settings.scan.connections_per_host)
            self._per_host[address] = slots
        async with slots:
            await self.rate.wait()
            yield


def scan_problem(
    target: HostTarget,
    check_id: str,
    probe: str,
    detail: str,
    port: int | None = None,
) -> Finding:
    """A ``scan.timeout`` / ``scan.error`` finding that says which probe failed.

    No external standard: these are vigie's own account of what it could not
    observe, so a missing finding is never read as a pass (the family is marked
    incomplete and the grade says so).
    """
    return Finding(
        check_id=check_id,
        domain=target.domain,
        ip=target.ip or None,
        port=port,
        discriminator=probe,
        evidence={"probe": probe, "detail": detail[:2000]},
    )


log = logging.getLogger("vigie.scanner")


def check_failed(target: HostTarget, check: str, port: int | None = None) -> Finding:
    """The ``scan.error`` for a check that raised (call it in an ``except`` block):
    it names the check, carries the trace, and marks its family incomplete.
    No external standard: vigie's own account of a check it could not run."""
    log.warning("check raised", extra={"check": check, "domain": target.domain, "ip": target.ip})
    return scan_problem(target, "scan.error", f"check:{check}", traceback.format_exc(), port)


def run_checks(
    target: HostTarget, *checks: tuple[Any, ...], port: int | None = None
) -> list[Finding]:
    """Run pure checks one by one, each given as ``(function, *arguments)``: the findings
    of all of them. One that raises (a value no parser foresaw) becomes a ``scan.error``
    naming it, and the others' findings are kept: a server cannot hide its weaknesses
    by sending something odd to one check."""
    found: list[Finding] = []
    for function, *arguments in checks:
        try:
            findings: Iterable[Finding] = function(*arguments)
            found.extend(findings)
        except Exception:
            name = getattr(getattr(function, "func", function), "__name__", repr(function))
            found.append(check_failed(target, name, port))
    return found


def empty_result(family: Family) -> FamilyResult:
    return FamilyResult(family=family)
