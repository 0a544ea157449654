"""The scheduler daemon (``vigie schedule run``): the nightly sweep and the digests.

APScheduler 3.x, its job store in vigie's own database, one job per
``schedule.*`` cron expression (in ``schedule.timezone``), with ``coalesce``
(a backlog of missed runs becomes one), a misfire grace time
(``schedule.misfire_grace_s``, honoured across restarts) and one instance of
each job at a time.

The sweep job runs in a child process: a sweep is long and heavy, and its
engine stops cleanly on an interrupt, which a thread cannot receive. It
first resumes an interrupted sweep, if there is one, then sweeps every
registered domain. The database lock of :mod:`vigie.sweep` keeps it from
running beside a sweep started by cron or by hand: the loser logs and skips.

SIGTERM (or SIGINT) stops the daemon cleanly: no new job starts, a running
sweep is interrupted (finished hosts are stored, the others are resumed by the
next sweep) and a notify run finishes the message it is sending.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter
from sqlmodel import col, select

from vigie.config import Settings
from vigie.db.session import get_engine, session_scope
from vigie.db.tables import RunStatus, ScanRun
from vigie.errors import ConfigError, StorageError, SweepLocked, UsageError
from vigie.logs import configure_logging

log = logging.getLogger("vigie.scheduler")

JOBS_TABLE = "apscheduler_jobs"
SWEEP_JOB = "vigie-sweep"
NOTIFY_JOB = "vigie-notify"

# Exit codes of the sweep child process.
SWEEP_DONE = 0
SWEEP_LOCKED = 3
SWEEP_STOPPED = 4

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: 0 and 7 = Sunday


# --- triggers -------------------------------------------------------------------


def cron_trigger(expression: str, timezone: str) -> BaseTrigger:
    """The trigger of a standard 5-field cron expression.

    Not ``CronTrigger.from_crontab``: in APScheduler 3.x it reads day-of-week 0
    as Monday where cron means Sunday. The expression is expanded by croniter
    (the validator of the configuration) and weekdays passed by name. When both
    day-of-month and day-of-week are restricted, cron fires on either: two
    triggers joined by OR.
    """
    try:
        fields, _ = croniter.expand(expression)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{expression!r} is not a cron expression: {exc}") from None
    zone = ZoneInfo(timezone)
    minute, hour, day, month, weekday = (_field(values) for values in fields)
    weekday = _weekday_names(fields[4])
    if day != "*" and weekday != "*":
        return OrTrigger(
            [
                CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=zone),
                CronTrigger(
                    minute=minute, hour=hour, month=month, day_of_week=weekday, timezone=zone
                ),
            ]
        )
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=weekday, timezone=zone
    )


def _field(values: list[Any]) -> str:
    return "*" if values == ["*"] else ",".join(str(v) for v in values)


def _weekday_names(values: list[Any]) -> str:
    if values == ["*"]:
        return "*"
    return ",".join(dict.fromkeys(_WEEKDAYS[int(v) % 7] for v in values))


# --- the jobs --------------------------------------------------------------------


@dataclass
class _Runtime:
    """What the running daemon's jobs need. Jobs are stored by reference without
    arguments, so no setting (and no secret) is ever pickled into the job store."""

    settings: Settings | None = None
    child: BaseProcess | None = None  # the sweep's process while it runs
    stopping: threading.Event = field(default_factory=threading.Event)


_runtime = _Runtime()


def sweep_job() -> None:
    """APScheduler job: run the sweep in a child process and log how it ended."""
    settings = _settings()
    if _runtime.stopping.is_set():
        return
    process = multiprocessing.get_context("spawn").Process(
        target=_sweep_child, args=(settings,), name="vigie-sweep"
    )
    process.start()
    _runtime.child = process
    try:
        process.join()
    finally:
        _runtime.child = None
    code = process.exitcode
    if code == SWEEP_DONE:
        log.info("scheduled sweep finished")
    elif code == SWEEP_LOCKED:
        log.warning("scheduled sweep skipped: another sweep holds the lock")
    else:
        log.warning(
            "scheduled sweep stopped before the end; the next sweep resumes it",
            extra={"exit_code": code},
        )


def notify_job() -> None:
    """APScheduler job: queue the due digests and deliver the outbox."""
    from vigie.notify import NotifyLocked, run_notify

    try:
        report = run_notify(_settings())
    except NotifyLocked as exc:
        log.warning("scheduled notify skipped", extra={"reason": str(exc)})
        return
    delivery = report.delivery
    log.info(
        "scheduled notify finished",
        extra={
            "queued": len(report.queued),
            "sent": len(delivery.sent) if delivery else 0,
            "deferred": len(delivery.deferred) if delivery else 0,
            "failed": len(delivery.failed) if delivery else 0,
        },
    )


def _settings() -> Settings:
    if _runtime.settings is None:
        raise RuntimeError("the scheduler's jobs run only inside 'vigie schedule run'")
    return _runtime.settings


def _sweep_child(settings: Settings) -> None:
    """The sweep child's main: its own session, so a terminal's Ctrl-C reaches only the daemon."""
    os.setsid()
    configure_logging(settings.log.level, settings.log.json_format)
    try:
        run_sweep_job(settings)
    except SweepLocked as exc:
        log.warning("sweep not started", extra={"reason": str(exc)})
        sys.exit(SWEEP_LOCKED)
    except KeyboardInterrupt:
        # The daemon's stop request; run_sweep marked the run interrupted.
        sys.exit(SWEEP_STOPPED)
    except StorageError as exc:  # the database refused the results: a sentence, no traceback
        log.error("sweep stopped", extra={"reason": str(exc)})
        sys.exit(exc.exit_code)
    sys.exit(SWEEP_DONE)


def run_sweep_job(settings: Settings) -> list[int]:
    """Resume an interrupted sweep if any, then sweep every registered domain; the run ids.

    Raises SweepLocked when another sweep holds the lock.
    """
    from vigie.notify import urgent_alert_hook
    from vigie.sweep import SweepRequest, run_sweep

    hook = urgent_alert_hook(settings)
    runs: list[int] = []
    if settings.schedule.distributed:
        from vigie.workers import run_distributed_sweep

        request = SweepRequest(all_domains=True, source="scheduler")
        runs.append(run_distributed_sweep(settings, request, wait=True).run_id)
    else:
        if interrupted_run_exists(settings):
            try:
                resumed = run_sweep(
                    settings, SweepRequest(resume=True, source="scheduler"), None, hook
                )
            except UsageError as exc:  # the unfinished runs are running in other processes
                log.info("nothing to resume", extra={"reason": str(exc)})
            else:
                runs.append(resumed.run_id)
                log.info("interrupted sweep resumed", extra={"run_id": resumed.run_id})
        summary = run_sweep(
            settings, SweepRequest(all_domains=True, source="scheduler"), None, hook
        )
        runs.append(summary.run_id)
    # Each run recorded its grades as it completed (vigie.sweep._close_run): once, there.
    return runs


def interrupted_run_exists(settings: Settings) -> bool:
    with session_scope(settings) as session:
        return (
            session.exec(
                select(ScanRun.id)
                .where(col(ScanRun.status).in_([RunStatus.RUNNING, RunStatus.INTERRUPTED]))
                .where(col(ScanRun.distributed).is_(False))
            ).first()
            is not None
        )


# --- the scheduler -----------------------------------------------------------------


def job_triggers(settings: Settings) -> dict[str, BaseTrigger]:
    timezone = settings.schedule.timezone
    return {
        SWEEP_JOB: cron_trigger(settings.schedule.sweep, timezone),
        NOTIFY_JOB: cron_trigger(settings.schedule.notify, timezone),
    }


_JOBS = {
    SWEEP_JOB: ("vigie.scheduler:sweep_job", "sweep every registered domain"),
    NOTIFY_JOB: ("vigie.scheduler:notify_job", "send the agency digests"),
}


def build_scheduler(
    settings: Settings,
    *,
    scheduler_class: type[BaseScheduler] = BlockingScheduler,
    triggers: Mapping[str, BaseTrigger] | None = None,
    now: datetime | None = None,
) -> BaseScheduler:
    """A scheduler with the sweep and notify jobs, stored in vigie's database (not started)."""
    _runtime.settings = settings
    _runtime.stopping.clear()
    zone = ZoneInfo(settings.schedule.timezone)
    scheduler = scheduler_class(
        jobstores={
            "default": SQLAlchemyJobStore(engine=get_engine(settings), tablename=JOBS_TABLE)
        },
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": settings.schedule.misfire_grace_s,
        },
        timezone=zone,
    )
    stored = stored_next_runs(settings)
    now = now or datetime.now(UTC)
    for job_id, trigger in (triggers or job_triggers(settings)).items():
        func, name = _JOBS[job_id]
        options: dict[str, Any] = {}
        missed = stored.get(job_id)
        if missed is not None and missed < now:
            # Down when it was due: keep that time, so the grace time decides whether it runs.
            options["next_run_time"] = missed
        scheduler.add_job(func, trigger, id=job_id, name=name, replace_existing=True, **options)
    return scheduler


def stored_next_runs(settings: Settings) -> dict[str, datetime]:
    """The next run time of each job as the job store holds it (empty before the first start)."""
    engine = get_engine(settings)
    if not sa.inspect(engine).has_table(JOBS_TABLE):
        return {}
    table = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.id, table.c.next_run_time)).all()
    return {
        str(job_id): datetime.fromtimestamp(float(when), UTC)
        for job_id, when in rows
        if when is not None
    }


def run_scheduler(settings: Settings) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    scheduler = build_scheduler(settings)
    _share_logging()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        _runtime.stopping.set()
        child = _runtime.child
        if child is not None and child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGINT)  # the sweep stops cleanly on an interrupt
        if scheduler.running:
            scheduler.shutdown(wait=False)

    def started(_event: SchedulerEvent) -> None:
        log.info("scheduler started")
        if _runtime.stopping.is_set() and scheduler.running:
            scheduler.shutdown(wait=False)  # the signal came before the scheduler ran

    scheduler.add_listener(started, EVENT_SCHEDULER_STARTED)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for job in describe_jobs(settings):
        log.info("job scheduled", extra=job)
    scheduler.start()  # blocks until stop() shuts it down
    child = _runtime.child
    if child is not None:
        child.join()
    log.info("scheduler stopped")


def _share_logging() -> None:
    # APScheduler reports missed runs and job errors on its own logger.
    vigie_logger = logging.getLogger("vigie")
    apscheduler_logger = logging.getLogger("apscheduler")
    apscheduler_logger.handlers[:] = vigie_logger.handlers
    apscheduler_logger.setLevel(logging.WARNING)
    apscheduler_logger.propagate = False


def describe_jobs(settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each job with its cron expression and next run time (``vigie schedule show``)."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(settings.schedule.timezone)
    stored = stored_next_runs(settings)
    expressions = {SWEEP_JOB: settings.schedule.sweep, NOTIFY_JOB: settings.schedule.notify}
    rows = []
    for job_id, trigger in job_triggers(settings).items():
        next_run = trigger.get_next_fire_time(None, now.astimezone(zone))
        rows.append(
            {
                "job": job_id,
                "what": _JOBS[job_id][1],
                "cron": expressions[job_id],
                "timezone": settings.schedule.timezone,
                "next_run": next_run.isoformat() if next_run else None,
                "stored_next_run": (
                    stored[job_id].astimezone(zone).isoformat() if job_id in stored else None
                ),
            }
        )
    return rows
