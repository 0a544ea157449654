"""Scale-out: Celery workers over Redis running the same per-host scan job.

``vigie scan --all --distributed`` creates the run and enqueues one task per
small batch of domains on the vantage's queue; ``vigie worker`` consumes it.
Tasks are acknowledged late and idempotent: a redelivered batch skips the
hosts already stored for the run and upserts the rest by fingerprint, so no
finding is duplicated.

A lost worker costs a lease, not the broker's visibility timeout: each batch
has a row (``RunBatch``) that its worker renews every ``celery.batch_lease_s``
/ 6 seconds while it scans. Every worker (a thread in its main process) and the
process following the run look for batches whose lease lapsed, that is, whose
worker was killed or whose machine is gone, and queue them again at once. A
batch is claimed before it is scanned, so a copy of it (the broker's own late
redelivery) does nothing. The batch that finishes last completes the run.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from celery import Celery
from celery.signals import worker_ready
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from vigie.config import Settings, load_settings
from vigie.db.session import dispose_engines, session_scope
from vigie.db.store import finished_hosts
from vigie.db.tables import BatchStatus, RunBatch, RunStatus, ScanRun
from vigie.model import Family, utcnow

log = logging.getLogger("vigie.workers")

app = Celery("vigie")
_settings: Settings | None = None
# Worker processes sharing this machine's rate budget (``vigie worker --concurrency``).
_rate_share = 1

DEFAULT_VANTAGE = "default"
FOLLOW_POLL_S = 1.0


def queue_for(vantage: str) -> str:
    return f"vigie.{vantage}"


def _with_password(url: str, settings: Settings) -> str:
    password = settings.celery.password
    if password is None:
        return url
    parsed = make_url(url)
    if parsed.password is not None:
        return url
    return parsed.set(password=password.get_secret_value()).render_as_string(hide_password=False)


def configure(settings: Settings) -> Celery:
    """Point the Celery app at the configured broker; called by CLI and worker."""
    global _settings
    _settings = settings
    broker = _with_password(settings.celery.broker_url, settings)
    app.conf.update(
        broker_url=broker,
        result_backend=_with_password(
            settings.celery.result_backend or settings.celery.broker_url, settings
        ),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.celery.visibility_timeout_s,
            # Sweep for messages of lost workers at a pace that matches the
            # timeout, instead of kombu's default of every ~100 s.
            "unacked_restore_interval": max(1, min(10, settings.celery.visibility_timeout_s // 2)),
            "unacked_restore_throttle": 1,
        },
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    return app


def _worker_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = per_process_settings(load_settings(), _rate_share)
        configure(_settings)
    return _settings


def per_process_settings(settings: Settings, processes: int) -> Settings:
    """``settings`` for one of ``processes`` worker processes: each gets its share of
    ``scan.max_rate_per_s``, so the machine as a whole keeps to the configured rate."""
    if processes <= 1:
        return settings
    scan = settings.scan.model_copy(
        update={"max_rate_per_s": settings.scan.max_rate_per_s / processes}
    )
    return settings.model_copy(update={"scan": scan})


@app.task(name="vigie.scan_batch", bind=True, acks_late=True, max_retries=5)  # type: ignore[untyped-decorator]
def scan_batch(
    self: Any,
    run_id: int,
    jobs: list[dict[str, Any]],
    agency_ids: dict[str, int | None],
    vantage: str,
    batch_id: int | None = None,
) -> int:
    """Scan a batch of domains for run ``run_id`` and store the results; idempotent."""
    settings = _worker_settings()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if batch_id is not None and not claim_batch(settings, batch_id, worker):
        return 0  # done, or in the hands of a live worker: this copy is not needed
    with _Lease(settings, batch_id, worker):
        hosts = _scan(settings, run_id, jobs, agency_ids, vantage)
    if batch_id is not None:
        finish_batch(settings, run_id, batch_id)
    return hosts


def _scan(
    settings: Settings,
    run_id: int,
    jobs: list[dict[str, Any]],
    agency_ids: dict[str, int | None],
    vantage: str,
) -> int:
    from vigie.scanner.engine import DomainJob
    from vigie.sweep import execute_jobs

    with session_scope(settings) as session:
        done = finished_hosts(session, run_id)
    domain_jobs = [
        DomainJob(
            domain=job["domain"],
            agency=job["agency"],
            mail_domain=job["mail_domain"],
            families=frozenset(Family(f) for f in job["families"]),
            done_hosts=frozenset(done.get(job["domain"], set())),
            networks=tuple(job.get("networks", ())),
        )
        for job in jobs
    ]
    summary = execute_jobs(
        settings, run_id, domain_jobs, agency_ids, source="distributed", vantage=vantage
    )
    return summary.hosts_done


# --- batch leases --------------------------------------------------------------------


def _stale_before(settings: Settings) -> Any:
    return utcnow() - timedelta(seconds=settings.celery.batch_lease_s)


def claim_batch(settings: Settings, batch_id: int, worker: str) -> bool:
    """Take batch ``batch_id`` for ``worker``: False when it is done or another live worker
    holds it (one conditional UPDATE: two workers never both win)."""
    with session_scope(settings) as session:
        claimed = session.execute(
            sa.update(RunBatch)
            .where(col(RunBatch.id) == batch_id)
            .where(
                sa.or_(
                    col(RunBatch.status) == BatchStatus.QUEUED,
                    sa.and_(
                        col(RunBatch.status) == BatchStatus.RUNNING,
                        col(RunBatch.heartbeat_at) < _stale_before(settings),
                    ),
                )
            )
            .values(
                status=BatchStatus.RUNNING,
                worker=worker,
                heartbeat_at=utcnow(),
                attempts=col(RunBatch.attempts) + 1,
            )
        )
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


class _Lease:
    """Renew the batch's lease while it is scanned (a thread: the scan may block the loop)."""

    def __init__(self, settings: Settings, batch_id: int | None, worker: str) -> None:
        self.settings = settings
        self.batch_id = batch_id
        self.worker = worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> None:
        if self.batch_id is not None:
            self._thread = threading.Thread(target=self._renew, name="vigie-lease", daemon=True)
            self._thread.start()

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _renew(self) -> None:
        every = self.settings.celery.batch_lease_s / 6
        while not self._stop.wait(every):
            try:
                with session_scope(self.settings) as session:
                    session.execute(
                        sa.update(RunBatch)
                        .where(col(RunBatch.id) == self.batch_id)
                        .where(col(RunBatch.worker) == self.worker)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception as exc:  # the database is away: the lease may lapse, batch redone
                log.warning("batch lease not renewed", extra={"reason": str(exc)[:300]})


def finish_batch(settings: Settings, run_id: int, batch_id: int) -> None:
    """Mark the batch done; the last one completes the run (once: a conditional UPDATE)."""
    with session_scope(settings) as session:
        session.execute(
            sa.update(RunBatch)
            .where(col(RunBatch.id) == batch_id)
            .values(status=BatchStatus.DONE, heartbeat_at=utcnow())
        )
    complete_if_done(settings, run_id)


def complete_if_done(settings: Settings, run_id: int) -> bool:
    from vigie.sweep import record_run_grades

    with session_scope(settings) as session:
        left = session.exec(
            select(sa.func.count())
            .select_from(RunBatch)
            .where(col(RunBatch.run_id) == run_id)
            .where(col(RunBatch.status) != BatchStatus.DONE)
        ).one()
        if left:
            return False
        completed = session.execute(
            sa.update(ScanRun)
            .where(col(ScanRun.id) == run_id)
            .where(col(ScanRun.status) != RunStatus.COMPLETED)
            .values(status=RunStatus.COMPLETED, finished_at=utcnow())
        )
        if completed.rowcount:  # type: ignore[attr-defined]
            record_run_grades(session, run_id, settings)
            log.info("distributed run finished", extra={"run_id": run_id})
    return True


def requeue_lapsed(settings: Settings, run_id: int | None = None) -> list[int]:
    """Queue again every batch whose worker stopped renewing its lease; their ids."""
    requeued = []
    with session_scope(settings) as session:
        query = (
            select(RunBatch)
            .where(col(RunBatch.status) == BatchStatus.RUNNING)
            .where(col(RunBatch.heartbeat_at) < _stale_before(settings))
        )
        if run_id is not None:
            query = query.where(col(RunBatch.run_id) == run_id)
        lapsed = list(session.exec(query))
    for batch in lapsed:
        with session_scope(settings) as session:
            taken = session.execute(
                sa.update(RunBatch)
                .where(col(RunBatch.id) == batch.id)
                .where(col(RunBatch.status) == BatchStatus.RUNNING)
                .where(col(RunBatch.heartbeat_at) == batch.heartbeat_at)
                .values(status=BatchStatus.QUEUED, worker=None, queued_at=utcnow())
            )
            if not taken.rowcount:  # type: ignore[attr-defined]
                continue  # renewed after all, or another reaper queued it
        _send_batch(batch)
        assert batch.id is not None
        requeued.append(batch.id)
        log.warning(
            "batch of a lost worker queued again",
            extra={"run_id": batch.run_id, "batch": batch.number, "worker": batch.worker},
        )
    return requeued


def _send_batch(batch: RunBatch) -> None:
    payload = batch.payload
    scan_batch.apply_async(
        args=(batch.run_id, payload["jobs"], payload["agency_ids"], payload["vantage"]),
        kwargs={"batch_id": batch.id},
        queue=queue_for(payload["vantage"]),
    )


def _reaper(settings: Settings, stop: threading.Event) -> None:
    every = settings.celery.batch_lease_s / 3
    while not stop.wait(every):
        try:
            requeue_lapsed(settings)
        except Exception as exc:
            log.warning("lapsed batches not checked", extra={"reason": str(exc)[:300]})


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_reaper(**_: Any) -> None:
    """Every worker watches for the batches of lost workers, even while idle."""
    settings = _worker_settings()
    threading.Thread(
        target=_reaper, args=(settings, threading.Event()), name="vigie-reaper", daemon=True
    ).start()


@app.task(name="vigie.finish_run", acks_late=True)  # type: ignore[untyped-decorator]
def finish_run(_results: list[int], run_id: int) -> None:
    """Complete a run whose batches are all done (kept for messages queued before leases)."""
    complete_if_done(_worker_settings(), run_id)


def _job_payload(job: Any) -> dict[str, Any]:
    data = asdict(job)
    data["families"] = sorted(f.value for f in job.families)
    data.pop("done_hosts", None)
    return data


def run_distributed_sweep(
    settings: Settings,
    request: Any,
    *,
    wait: bool = True,
    console: Console | None = None,
    timeout_s: float | None = None,
) -> Any:
    """Create the run, enqueue its batches, and follow it until done (unless ``wait`` is False)."""
    from vigie.sweep import sweep_lock

    # The same lock as embedded sweeps: full sweeps of cron, the scheduler and a
    # person never overlap; on-demand runs need none. With ``wait=False`` it covers
    # the enqueuing only.
    if not request.all_domains:
        return _enqueue_and_follow(
            settings, request, wait=wait, console=console, timeout_s=timeout_s
        )
    with sweep_lock(settings):
        return _enqueue_and_follow(
            settings, request, wait=wait, console=console, timeout_s=timeout_s
        )


def _enqueue_and_follow(
    settings: Settings,
    request: Any,
    *,
    wait: bool,
    console: Console | None,
    timeout_s: float | None,
) -> Any:
    from vigie.sweep import SweepSummary, plan_distributed_run

    configure(settings)
    started = time.monotonic()
    run_id, plan = plan_distributed_run(settings, request)
    summary = SweepSummary(run_id=run_id, postponed=plan.postponed)
    summary.not_authorised = [r.target.domain for r in plan.refused]
    if any(job.families & {Family.SOFTWARE, Family.VULN} for job in plan.jobs):
        from vigie.vulns.store import sweep_data_note

        vuln_checks = any(Family.VULN in job.families for job in plan.jobs)
        summary.vulns_note = sweep_data_note(settings, vuln_checks=vuln_checks)
        if summary.vulns_note:
            log.warning(summary.vulns_note)  # as the embedded sweep does: on stderr, for cron
    size = settings.celery.batch_size
    batches = [plan.jobs[i : i + size] for i in range(0, len(plan.jobs), size)]
    queue = queue_for(request.vantage)
    rows = []
    with session_scope(settings) as session:
        for number, batch in enumerate(batches):
            payload = {
                "jobs": [_job_payload(j) for j in batch],
                "agency_ids": plan.agency_ids,
                "vantage": request.vantage,
            }
            row = RunBatch(run_id=run_id, number=number, payload=payload)
            session.add(row)
            rows.append(row)
    for row in rows:
        _send_batch(row)
    complete_if_done(settings, run_id)  # nothing to scan: complete now
    if console is not None:
        console.print(f"run #{run_id}: {len(batches)} batches enqueued on {queue}")
    if not wait:
        summary.status = RunStatus.RUNNING
        return summary
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        with session_scope(settings) as session:
            run = session.get(ScanRun, run_id)
            assert run is not None
            summary.hosts_done = run.hosts_done
            summary.hosts_planned = run.hosts_planned
            summary.findings_seen = run.findings_count
            status = run.status
        if status == RunStatus.COMPLETED:
            break
        if deadline is not None and time.monotonic() > deadline:
            status = RunStatus.RUNNING
            break
        requeue_lapsed(settings, run_id)
        time.sleep(FOLLOW_POLL_S)
    summary.status = status
    summary.elapsed_s = time.monotonic() - started
    return summary


def run_worker(
    settings: Settings, vantage: str, concurrency: int | None = None, loglevel: str = "INFO"
) -> None:
    """Run a Celery worker consuming the vantage's queue (blocks)."""
    global _rate_share
    processes = concurrency or settings.celery.worker_concurrency
    _rate_share = processes  # the prefork children inherit it
    configure(settings)
    dispose_engines()  # connections must not be shared across the prefork children
    app.worker_main(
        [
            "worker",
            "--queues",
            queue_for(vantage),
            "--concurrency",
            str(processes),
            "--loglevel",
            loglevel,
            "--hostname",
            f"vigie-{vantage}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )
