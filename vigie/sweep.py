"""The sweep service: registry -> engine -> store, with a lock and resume.

Called the same way by the CLI, the scheduler and the Celery workers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col, select

from vigie import event_loop
from vigie.config import Settings
from vigie.db.locks import HeldLock, describe, try_lock
from vigie.db.session import session_scope
from vigie.db.store import (
    LifecyclePolicy,
    RecordOutcome,
    finished_hosts,
    record_host_result,
    serialise_hosts,
)
from vigie.db.tables import Domain, DomainStatus, Lock, RunStatus, ScanRun
from vigie.errors import StorageError, SweepInterrupted, SweepLocked, UsageError
from vigie.model import (
    SCANNABLE_FAMILIES,
    Family,
    HostResult,
    utcnow,
)
from vigie.targets.planning import SweepPlan, plan_sweep, selected_domains

if TYPE_CHECKING:
    # The scanner (sslyze, nmap, httpx) loads only when a sweep really runs,
    # so that every other command starts fast.
    from vigie.scanner.engine import DomainJob
    from vigie.vulns import MatchIndex

log = logging.getLogger("vigie.sweep")

SWEEP_LOCK = "sweep"
HEARTBEAT_EVERY_S = 30.0
COMMIT_EVERY_HOSTS = 25
COMMIT_EVERY_S = 1.0
STORE_ATTEMPTS = 5
RECONNECT_FOR_S = 60.0  # a PostgreSQL restart; then the sweep stops (StorageError)

HostHook = Callable[[Session, HostResult, RecordOutcome], None]


@dataclass(frozen=True)
class SweepRequest:
    domains: tuple[str, ...] = ()
    agency: str | None = None
    all_domains: bool = False
    families: frozenset[Family] = frozenset(SCANNABLE_FAMILIES)
    source: str = "cli"
    resume: bool = False
    vantage: str = "default"


@dataclass
class SweepSummary:
    run_id: int
    hosts_planned: int = 0
    hosts_done: int = 0
    findings_seen: int = 0
    new: int = 0
    reopened: int = 0
    resolved: int = 0
    not_authorised: list[str] = field(default_factory=list)
    postponed: list[str] = field(default_factory=list)
    status: str = RunStatus.COMPLETED
    elapsed_s: float = 0.0
    # Why the vulnerability data is not to be trusted (too old, none), or "".
    vulns_note: str = ""


class SweepProgress:
    """Receives progress; the CLI renders it with rich, the scheduler logs it."""

    def planned(self, total: int) -> None:
        """The number of hosts known so far (grows while names resolve)."""

    def advanced(self, result: HostResult, outcome: RecordOutcome) -> None:
        """One host finished and was stored."""


# --- locks -------------------------------------------------------------------
#
# Full sweeps (``--all``) exclude each other through the "sweep" lock; every run,
# full or on demand, holds its own "run-<id>" lock while it runs, so that
# ``--resume`` takes only a run nobody is running. Both are system locks
# (vigie/db/locks.py): a holder killed with -9, reaped or not, holds nothing.


def _lock_row(settings: Settings, name: str) -> Lock | None:
    try:
        with session_scope(settings) as session:
            return session.get(Lock, name)
    except Exception:  # the row is only for the message
        return None


def acquire_lock(settings: Settings, name: str = SWEEP_LOCK) -> HeldLock:
    """Take the named lock or raise SweepLocked naming who holds it."""
    held = try_lock(settings, name)
    if held is None:
        row = _lock_row(settings, name)
        who = f" ({describe(row)})" if row is not None else ""
        raise SweepLocked(f"another sweep is running{who}; this one was not started")
    now = utcnow()
    try:
        with session_scope(settings) as session:
            row = session.get(Lock, name) or Lock(name=name, holder=held.holder)
            row.holder = held.holder
            row.acquired_at = now
            row.heartbeat_at = now
            session.add(row)
    except BaseException:
        held.release()
        raise
    return held


def heartbeat_lock(settings: Settings, held: HeldLock) -> None:
    """Refresh the lock row's heartbeat (for people: the lock itself needs none)."""
    with session_scope(settings) as session:
        row = session.get(Lock, held.name)
        if row is not None and row.holder == held.holder:
            row.heartbeat_at = utcnow()
            session.add(row)


def release_lock(settings: Settings, held: HeldLock) -> None:
    try:
        with session_scope(settings) as session:
            row = session.get(Lock, held.name)
            if row is not None and row.holder == held.holder:
                session.delete(row)
    except Exception as exc:  # a database fault must not keep the system lock
        log.warning("lock row not removed", extra={"lock": held.name, "reason": str(exc)[:200]})
    finally:
        held.release()


@contextmanager
def sweep_lock(settings: Settings, name: str = SWEEP_LOCK) -> Iterator[HeldLock]:
    held = acquire_lock(settings, name)
    try:
        yield held
    finally:
        release_lock(settings, held)


def run_lock_name(run_id: int) -> str:
    return f"run-{run_id}"


# --- running ----------------------------------------------------------------


class _StoringObserver:
    """Receives host results from the engine and writes them in small batches."""

    def __init__(
        self,
        settings: Settings,
        run_id: int,
        agency_ids: dict[str, int | None],
        policy: LifecyclePolicy,
        source: str,
        summary: SweepSummary,
        progress: SweepProgress,
        lock_holder: HeldLock | None,
        after_host: HostHook | None,
    ) -> None:
        self.settings = settings
        self.run_id = run_id
        self.agency_ids = agency_ids
        self.policy = policy
        self.source = source
        self.summary = summary
        self.progress = progress
        self.lock_holder = lock_holder
        self.after_host = after_host
        self._pending: list[HostResult] = []
        self._planned_delta = 0
        self._last_commit = time.monotonic()
        self._last_heartbeat = time.monotonic()

    def hosts_planned(self, count: int) -> None:
        self.summary.hosts_planned += count
        self._planned_delta += count
        self.progress.planned(self.summary.hosts_planned)

    def host_done(self, result: HostResult) -> None:
        self._pending.append(result)
        if (
            len(self._pending) >= COMMIT_EVERY_HOSTS
            or time.monotonic() - self._last_commit >= COMMIT_EVERY_S
        ):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        outcomes = self._store(batch)
        for result, outcome in outcomes:
            self.summary.hosts_done += 1
            self.summary.findings_seen += outcome.seen
            self.summary.new += len(outcome.new)
            self.summary.reopened += len(outcome.reopened)
            self.summary.resolved += len(outcome.resolved)
            log.info(
                "host scanned",
                extra={
                    "domain": result.target.domain,
                    "ip": result.target.ip,
                    "findings": outcome.seen,
                    "new": len(outcome.new),
                    "run_id": self.run_id,
                },
            )
            self.progress.advanced(result, outcome)
        self._last_commit = time.monotonic()
        if (
            self.lock_holder is not None
            and time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY_S
        ):
            try:
                heartbeat_lock(self.settings, self.lock_holder)
            except DBAPIError as exc:  # the row is for people; the lock needs no heartbeat
                log.warning("lock heartbeat not stored", extra={"reason": str(exc.orig)})
            self._last_heartbeat = time.monotonic()

    def _store(self, batch: list[HostResult]) -> list[tuple[HostResult, RecordOutcome]]:
        """Record ``batch`` in one transaction. Retried when a concurrent writer got there
        first (a finding created by both at once: the unique fingerprint refuses one), and
        while a PostgreSQL server restarts (up to ``RECONNECT_FOR_S``); any other refusal
        (read-only, out of space) stops the sweep with a StorageError."""
        attempt = 0
        give_up_at = time.monotonic() + RECONNECT_FOR_S
        while True:
            attempt += 1
            try:
                outcomes = self._store_once(batch)
            except DBAPIError as exc:
                if _conflict(exc) and attempt < STORE_ATTEMPTS:
                    log.info("store retried", extra={"attempt": attempt, "reason": str(exc.orig)})
                    time.sleep(0.05 * attempt)
                    continue
                if _disconnected(exc) and time.monotonic() < give_up_at:
                    log.warning(
                        "database unreachable, retrying", extra={"reason": str(exc.orig)[:200]}
                    )
                    time.sleep(min(2.0, 0.25 * attempt))
                    continue
                raise storage_error(exc) from exc
            self._planned_delta = 0
            return outcomes

    def _store_once(self, batch: list[HostResult]) -> list[tuple[HostResult, RecordOutcome]]:
        with session_scope(self.settings) as session:
            # First a write: on SQLite it takes the write lock for the whole batch.
            session.execute(
                sa.update(ScanRun)
                .where(col(ScanRun.id) == self.run_id)
                .values(
                    hosts_done=col(ScanRun.hosts_done) + len(batch),
                    hosts_planned=col(ScanRun.hosts_planned) + self._planned_delta,
                )
            )
            domains = {r.target.domain for r in batch}
            domains.update(f.domain for r in batch for f in r.findings)
            serialise_hosts(session, domains)
            outcomes = []
            for result in batch:
                outcome = record_host_result(
                    session,
                    result,
                    run_id=self.run_id,
                    agency_id=self.agency_ids.get(result.target.domain),
                    policy=self.policy,
                    source=self.source,
                )
                outcomes.append((result, outcome))
                if self.after_host is not None:
                    self.after_host(session, result, outcome)
            session.execute(
                sa.update(ScanRun)
                .where(col(ScanRun.id) == self.run_id)
                .values(
                    findings_count=col(ScanRun.findings_count) + sum(o.seen for _, o in outcomes)
                )
            )
        return outcomes


def _conflict(exc: DBAPIError) -> bool:
    """A conflict with a concurrent writer (unique key, deadlock, serialisation)."""
    if isinstance(exc, IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in ("40001", "40P01")


def _disconnected(exc: DBAPIError) -> bool:
    """The database server went away (restart, network): worth reconnecting to."""
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    # psycopg's "connection refused" / "server closed the connection" carry no SQLSTATE.
    return type(exc.orig).__module__.startswith("psycopg") and isinstance(exc, OperationalError)


def storage_error(exc: DBAPIError) -> StorageError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return StorageError(
        f"the database refused this sweep's results ({reason}); the run is not complete. "
        "Hosts stored until now are kept: once the database is writable again, "
        "'vigie scan --resume' finishes the run"
    )


def lifecycle_policy(settings: Settings, vantage: str = "default") -> LifecyclePolicy:
    """The configuration's lifecycle rules; severities changed by analysts in the console
    (vigie.severity) win over ``findings.severity_overrides``."""
    from vigie.severity import live_overrides

    with session_scope(settings) as session:
        overrides = {**settings.findings.severity_overrides, **live_overrides(session)}
    return LifecyclePolicy(
        resolve_after_scans=settings.findings.resolve_after_scans,
        severity_overrides=overrides,
        due_days=settings.grading.due_days,
        vantage=vantage,
    )


def _resumable_runs(session: Session) -> list[tuple[int, bool]]:
    """(id, full sweep) of the unfinished embedded runs, newest first."""
    rows = session.exec(
        select(ScanRun.id, ScanRun.full_sweep)
        .where(col(ScanRun.status).in_([RunStatus.RUNNING, RunStatus.INTERRUPTED]))
        .where(ScanRun.distributed == False)  # noqa: E712
        .order_by(col(ScanRun.id).desc())
    )
    return [(run_id, bool(full)) for run_id, full in rows if run_id is not None]


def _claim_interrupted_run(settings: Settings, locks: list[HeldLock], use_lock: bool) -> int:
    """The newest unfinished run nobody is running, with its locks (added to ``locks``)."""
    with session_scope(settings) as session:
        candidates = _resumable_runs(session)
    for run_id, full_sweep in candidates:
        # A full sweep resumes under the sweep lock, like the sweep it finishes.
        sweep = acquire_lock(settings) if full_sweep and use_lock else None
        held = try_lock(settings, run_lock_name(run_id))
        if held is not None:
            with session_scope(settings) as session:
                run = session.get(ScanRun, run_id)
                unfinished = run is not None and run.status != RunStatus.COMPLETED
            if unfinished:
                locks.extend(lock for lock in (sweep, held) if lock is not None)
                return run_id
            held.release()
        if sweep is not None:
            release_lock(settings, sweep)
    raise UsageError(
        "there is no interrupted sweep to resume (unfinished runs are running now)"
        if candidates
        else "there is no interrupted sweep to resume"
    )


def run_sweep(
    settings: Settings,
    request: SweepRequest,
    progress: SweepProgress | None = None,
    after_host: HostHook | None = None,
    *,
    use_lock: bool = True,
) -> SweepSummary:
    """Sweep what ``request`` selects; resume an interrupted run with ``request.resume``.

    Only full sweeps (``all_domains``) exclude each other (SweepLocked); a scan of
    named domains or of one agency runs at once, beside a sweep in progress.
    """
    started = time.monotonic()
    locks: list[HeldLock] = []
    completed = False
    try:
        opened = _open_run(settings, request, locks, use_lock)
        summary = SweepSummary(run_id=opened.run_id, postponed=opened.plan.postponed)
        summary.not_authorised = [r.target.domain for r in opened.plan.refused]
        sweep_held = next((lock for lock in locks if lock.name == SWEEP_LOCK), None)
        completed = _execute_run(
            settings, opened, summary, progress or SweepProgress(), after_host, sweep_held
        )
        summary.elapsed_s = time.monotonic() - started
        return summary
    finally:
        for held in reversed(locks):
            if held.name == SWEEP_LOCK:
                release_lock(settings, held)
            else:
                held.release(forget=completed)


@dataclass(frozen=True)
class _OpenedRun:
    """A run row stored and locked, with what it will scan."""

    run_id: int
    request: SweepRequest
    plan: SweepPlan
    full_sweep: bool


def _open_run(
    settings: Settings, request: SweepRequest, locks: list[HeldLock], use_lock: bool
) -> _OpenedRun:
    """Take the locks, store the run (new, or the interrupted one resumed) and plan it."""
    resumed_id: int | None = None
    if request.resume:
        resumed_id = _claim_interrupted_run(settings, locks, use_lock)
    elif request.all_domains and use_lock:
        locks.append(acquire_lock(settings))
    with session_scope(settings) as session:
        run, request, done = _resumed_run(session, request, resumed_id)
        domains = selected_domains(
            session, request.domains, agency=request.agency, all_domains=request.all_domains
        )
        if run is None:
            run = ScanRun(
                source=request.source,
                families=sorted(f.value for f in request.families),
                domains=[d.name for d in domains],
                vantage=request.vantage,
                full_sweep=request.all_domains,
            )
        session.add(run)
        session.flush()
        assert run.id is not None
        if resumed_id is None:
            # Taken before the run is committed: no --resume can see it unlocked.
            held = try_lock(settings, run_lock_name(run.id))
            assert held is not None, "a new run's lock is free"
            locks.append(held)
        plan = plan_sweep(session, settings, domains, request.families, done)
        return _OpenedRun(run.id, request, plan, run.full_sweep)


def _resumed_run(
    session: Session, request: SweepRequest, resumed_id: int | None
) -> tuple[ScanRun | None, SweepRequest, dict[str, set[str]]]:
    """The interrupted run to finish, the request it was, and its finished hosts."""
    if resumed_id is None:
        return None, request, {}
    run = session.get(ScanRun, resumed_id)
    assert run is not None
    request = SweepRequest(
        domains=tuple(run.domains),
        families=frozenset(Family(f) for f in run.families),
        source=request.source,
        resume=True,
        vantage=run.vantage,
    )
    run.status = RunStatus.RUNNING
    return run, request, finished_hosts(session, resumed_id)


def _execute_run(
    settings: Settings,
    opened: _OpenedRun,
    summary: SweepSummary,
    progress: SweepProgress,
    after_host: HostHook | None,
    sweep_held: HeldLock | None,
) -> bool:
    """Scan the planned jobs and close the run; whether it completed."""
    status = RunStatus.COMPLETED
    failed = False
    try:
        execute_jobs(
            run_settings(settings, opened.full_sweep),
            opened.run_id,
            opened.plan.jobs,
            opened.plan.agency_ids,
            source=opened.request.source,
            vantage=opened.request.vantage,
            progress=progress,
            lock_holder=sweep_held,
            after_host=after_host,
            refused=opened.plan.refused,
            summary=summary,
        )
    except BaseException:
        status = RunStatus.INTERRUPTED
        failed = True
        raise
    finally:
        if opened.plan.postponed and status == RunStatus.COMPLETED:
            status = RunStatus.INTERRUPTED  # the postponed hosts are resumed later
        try:
            _close_run(settings, opened.run_id, status)
        except DBAPIError as exc:
            # The run stays "running" in the database: --resume takes it.
            status = RunStatus.INTERRUPTED
            if not failed:
                raise storage_error(exc) from exc
            log.warning(
                "run status not stored", extra={"run_id": opened.run_id, "reason": str(exc.orig)}
            )
        summary.status = status
        drain = getattr(after_host, "drain", None)
        if drain is not None:
            drain()  # urgent alerts still in flight, unless the mail server stalls
    return status == RunStatus.COMPLETED


def _close_run(settings: Settings, run_id: int, status: str) -> None:
    """Store the run's final status (and its grades once complete)."""
    with session_scope(settings) as session:
        stored = session.get(ScanRun, run_id)
        assert stored is not None
        stored.status = status
        stored.finished_at = utcnow() if status == RunStatus.COMPLETED else None
        session.add(stored)
        if status == RunStatus.COMPLETED:
            record_run_grades(session, run_id, settings)


def run_settings(settings: Settings, full_sweep: bool) -> Settings:
    """``settings`` with the run's part of ``scan.max_rate_per_s``: a full sweep keeps
    ``1 - scan.on_demand_rate_share`` of it, an on-demand scan that share."""
    share = settings.scan.on_demand_rate_share
    part = 1 - share if full_sweep else share
    scan = settings.scan.model_copy(update={"max_rate_per_s": settings.scan.max_rate_per_s * part})
    return settings.model_copy(update={"scan": scan})


def record_run_grades(session: Session, run_id: int, settings: Settings) -> None:
    """Grade every application once its run is complete (grade history per run)."""
    from vigie.grading import record_grades

    record_grades(session, run_id, settings)


def execute_jobs(
    settings: Settings,
    run_id: int,
    jobs: list[DomainJob],
    agency_ids: dict[str, int | None],
    *,
    source: str,
    vantage: str,
    progress: SweepProgress | None = None,
    lock_holder: HeldLock | None = None,
    after_host: HostHook | None = None,
    refused: list[HostResult] | None = None,
    summary: SweepSummary | None = None,
) -> SweepSummary:
    """Run the engine over ``jobs`` for run ``run_id`` and store each host as it finishes.

    The one per-host scan job, shared by the embedded sweep and the Celery
    workers. Whatever finished is stored even when the sweep is interrupted.
    """
    summary = summary or SweepSummary(run_id=run_id)
    observer = _StoringObserver(
        settings,
        run_id,
        agency_ids,
        lifecycle_policy(settings, vantage),
        source,
        summary,
        progress or SweepProgress(),
        lock_holder,
        after_host,
    )
    try:
        for result in refused or []:
            observer.host_done(result)
        _run_engine(settings, jobs, observer, summary)
    finally:
        observer.flush()
    return summary


def plan_distributed_run(settings: Settings, request: SweepRequest) -> tuple[int, SweepPlan]:
    """Create a distributed run and its plan; the refused domains are stored at once."""
    with session_scope(settings) as session:
        domains = selected_domains(
            session, request.domains, agency=request.agency, all_domains=request.all_domains
        )
        run = ScanRun(
            source=request.source,
            families=sorted(f.value for f in request.families),
            domains=[d.name for d in domains],
            vantage=request.vantage,
            distributed=True,
            full_sweep=request.all_domains,
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        run_id = run.id
        plan = plan_sweep(session, settings, domains, request.families, {})
    if plan.refused:
        execute_jobs(
            settings,
            run_id,
            [],
            plan.agency_ids,
            source=request.source,
            vantage=request.vantage,
            refused=plan.refused,
        )
    return run_id, plan


def vulnerability_index(
    settings: Settings, jobs: list[DomainJob], summary: SweepSummary
) -> MatchIndex | None:
    """The read-only match index the vuln and software families use, loaded once per
    sweep (None when no job asks for them); its age goes on the summary."""
    if not any(job.families & {Family.SOFTWARE, Family.VULN} for job in jobs):
        return None
    from vigie.vulns import data_note
    from vigie.vulns.store import load_match_index

    index = load_match_index(settings)
    summary.vulns_note = data_note(
        index.sources,
        utcnow(),
        settings.vulns.max_age_days,
        vuln_checks=any(Family.VULN in job.families for job in jobs),
    )
    if summary.vulns_note:
        log.warning(summary.vulns_note)  # the scheduler's and the workers' sweeps say it too
    return index


def _run_engine(
    settings: Settings,
    jobs: list[DomainJob],
    observer: _StoringObserver,
    summary: SweepSummary | None = None,
) -> None:
    if not jobs:
        return
    from vigie.scanner.dns import remember_registered_domains
    from vigie.scanner.engine import SweepEngine
    from vigie.scanner.probe_context import ProbeContext

    with session_scope(settings) as session:
        registered = list(
            session.exec(select(Domain.name).where(Domain.status == DomainStatus.ACTIVE))
        )
    index = vulnerability_index(settings, jobs, summary or SweepSummary(run_id=0))
    if index is not None and index.empty:
        # No data: the vuln family is not run (and resolves nothing) until some is imported.
        jobs = [replace(job, families=job.families - {Family.VULN}) for job in jobs]

    async def main() -> None:
        ctx = ProbeContext.from_settings(settings)
        if index is not None:
            ctx.shared["vulns.index"] = index  # read-only, shared by every host
        # Zone findings go under the zone's apex when the apex is registered.
        remember_registered_domains(ctx, registered)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        terminated = threading.Event()

        def on_sigterm() -> None:
            terminated.set()
            if task is not None:
                task.cancel()

        installed = False
        if threading.current_thread() is threading.main_thread():
            try:
                loop.add_signal_handler(signal.SIGTERM, on_sigterm)
                installed = True
            except (NotImplementedError, RuntimeError):
                installed = False
        try:
            await SweepEngine(ctx).run(jobs, observer)
        except asyncio.CancelledError:
            if terminated.is_set():
                raise SweepInterrupted(
                    "sweep stopped by SIGTERM; finished hosts are stored: 'vigie scan --resume' finishes it"
                ) from None
            raise
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)

    with _sweep_runtime():
        event_loop.run(main(), settings)


# The TLS worker threads and the event loop take turns holding the GIL; forcing a
# turn every 5 ms (Python's default) cost about 5 % of a sweep's CPU in thread switches.
SWEEP_SWITCH_INTERVAL_S = 0.05


@contextmanager
def _sweep_runtime() -> Iterator[None]:
    """Fewer forced GIL turns; what exists before the sweep (modules, settings) is frozen
    out of the collector's way. The collection thresholds stay Python's: raised, they
    let cyclic garbage pile up (peak memory at 300 hosts 185 -> 313 MB) for no gain."""
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWEEP_SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)
