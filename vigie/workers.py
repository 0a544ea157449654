"""Scale-out: Celery workers over Redis running the same per-host scan job.

``vigie scan --all --distributed`` creates the run and enqueues one task per
small batch of domains on the vantage's queue; ``vigie worker`` consumes it.
Tasks are acknowledged late and idempotent: a worker killed mid-task leads to
a redelivery, which skips the hosts already stored for the run and upserts
the rest by fingerprint, so no finding is duplicated.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from typing import Any

from celery import Celery, chord
from rich.console import Console
from sqlalchemy.engine import make_url

from vigie.config import Settings, load_settings
from vigie.db.session import dispose_engines, session_scope
from vigie.db.store import finished_hosts
from vigie.db.tables import RunStatus, ScanRun
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
) -> int:
    """Scan a batch of domains for run ``run_id`` and store the results; idempotent."""
    from vigie.scanner.engine import DomainJob
    from vigie.sweep import execute_jobs

    settings = _worker_settings()
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


@app.task(name="vigie.finish_run", acks_late=True)  # type: ignore[untyped-decorator]
def finish_run(_results: list[int], run_id: int) -> None:
    """Chord callback: every batch of the run is stored."""
    from vigie.sweep import record_run_grades

    settings = _worker_settings()
    with session_scope(settings) as session:
        run = session.get(ScanRun, run_id)
        if run is not None and run.status != RunStatus.COMPLETED:
            run.status = RunStatus.COMPLETED
            run.finished_at = utcnow()
            session.add(run)
            record_run_grades(session, run_id, settings)
    log.info("distributed run finished", extra={"run_id": run_id})


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
    size = settings.celery.batch_size
    batches = [plan.jobs[i : i + size] for i in range(0, len(plan.jobs), size)]
    queue = queue_for(request.vantage)
    if batches:
        header = [
            scan_batch.si(
                run_id, [_job_payload(j) for j in batch], plan.agency_ids, request.vantage
            ).set(queue=queue)
            for batch in batches
        ]
        chord(header)(finish_run.s(run_id).set(queue=queue))
    else:
        finish_run.apply(args=([], run_id))
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
