"""The scheduler daemon and the sweep lock, against a real database (and a real SMTP server).

Cron's smallest step is a minute, too slow for a test: the job functions are
called directly, and the scheduler itself runs with a one-second interval
trigger, or with a missed run time in its job store.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlmodel import SQLModel, select

from tests.servers import TEST_NET
from tests.smtp_server import SmtpServer, running_smtp
from vigie.cli import main
from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, get_engine, session_scope
from vigie.db.store import record_host_result
from vigie.db.tables import Agency, Contact, Domain, HostScan, RunStatus, ScanRun
from vigie.errors import SweepLocked
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget
from vigie.scheduler import (
    JOBS_TABLE,
    NOTIFY_JOB,
    SWEEP_JOB,
    build_scheduler,
    cron_trigger,
    describe_jobs,
    run_sweep_job,
    stored_next_runs,
    sweep_job,
)
from vigie.sweep import lifecycle_policy

SMTP_IP = f"{TEST_NET}.63"
BAMAKO = "Africa/Bamako"
NEVER_SOON = "0 3 1 1 *"  # 1 January, 03:00


# --- cron expressions (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("0 1 * * *", "2026-03-04 12:00", ["2026-03-05 01:00", "2026-03-06 01:00"]),
        # cron's 0 is Sunday (APScheduler 3.x's from_crontab would read Monday)
        ("0 1 * * 0", "2026-03-04 12:00", ["2026-03-08 01:00", "2026-03-15 01:00"]),
        ("30 6 * * 7", "2026-03-04 12:00", ["2026-03-08 06:30", "2026-03-15 06:30"]),
        ("0 7 * * 1-5", "2026-03-06 12:00", ["2026-03-09 07:00", "2026-03-10 07:00"]),
        # day of month and day of week both set: either one fires, as in cron
        ("0 2 1 * 1", "2026-03-01 12:00", ["2026-03-02 02:00", "2026-03-09 02:00"]),
        ("0 2 10 * 1", "2026-03-09 12:00", ["2026-03-10 02:00", "2026-03-16 02:00"]),
    ],
)
def test_cron_expressions_fire_when_cron_would(
    expression: str, start: str, expected: list[str]
) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(BAMAKO)
    trigger = cron_trigger(expression, BAMAKO)
    moment = datetime.strptime(start, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    fired = []
    previous = None
    for _ in expected:
        moment = trigger.get_next_fire_time(previous, moment)
        fired.append(moment.strftime("%Y-%m-%d %H:%M"))
        previous = moment
        moment = moment + timedelta(seconds=1)
    assert fired == expected


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    yield from running_smtp(SMTP_IP, tmp_path_factory.mktemp("smtp"))


def environ_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/vigie.db",
        "VIGIE_SCHEDULE_SWEEP": NEVER_SOON,
        "VIGIE_SCHEDULE_NOTIFY": NEVER_SOON,
        "VIGIE_SCHEDULE_TIMEZONE": BAMAKO,
        # Every domain refused for want of a mandate: sweeps store results, send nothing.
        "VIGIE_SCOPE_REQUIRE_MANDATE": "true",
        **extra,
    }


def make_settings(environ: dict[str, str]) -> Settings:
    settings = load_settings(environ=environ)
    upgrade_database(settings)
    SQLModel.metadata.create_all(get_engine(settings))  # tables newer than the migration
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield make_settings(environ_for(tmp_path))
    dispose_engines()


def register_domains(settings: Settings, names: list[str], email: str = "rssi@a.gouv.ml") -> int:
    with session_scope(settings) as session:
        agency = Agency(name="Agence A")
        session.add(agency)
        session.flush()
        assert agency.id is not None
        session.add(Contact(agency_id=agency.id, email=email))
        for name in names:
            session.add(Domain(name=name, agency_id=agency.id))
        return agency.id


def runs(settings: Settings) -> list[ScanRun]:
    with session_scope(settings) as session:
        return list(session.exec(select(ScanRun).order_by(ScanRun.id)))


# --- the job store, show, firing -----------------------------------------------------------------


def test_jobs_live_in_the_database_and_show_lists_their_next_runs(
    settings: Settings, tmp_path: Path
) -> None:
    # Given a scheduler started once (paused: nothing runs)
    scheduler = build_scheduler(settings, scheduler_class=BackgroundScheduler)
    scheduler.start(paused=True)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)

    # Then each job coalesces a backlog, runs one instance at a time, with a grace time
    assert set(jobs) == {SWEEP_JOB, NOTIFY_JOB}
    for job in jobs.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 3600)
    assert jobs[SWEEP_JOB].func_ref == "vigie.scheduler:sweep_job" and jobs[SWEEP_JOB].args == ()

    # And both jobs are stored in vigie's database with their next run
    stored = stored_next_runs(settings)
    assert set(stored) == {SWEEP_JOB, NOTIFY_JOB}
    assert all(when > datetime.now(UTC) for when in stored.values())
    jobs = {
        row["job"]: row for row in describe_jobs(settings, now=datetime(2026, 3, 4, tzinfo=UTC))
    }
    assert jobs[SWEEP_JOB]["cron"] == NEVER_SOON
    assert jobs[SWEEP_JOB]["next_run"] == "2027-01-01T03:00:00+00:00"

    # And 'vigie schedule show' prints them
    result = CliRunner().invoke(
        main, ["schedule", "show", "--format", "json"], env=environ_for(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert '"job": "vigie-sweep"' in result.output and '"job": "vigie-notify"' in result.output
    assert '"stored_next_run": "20' in result.output


def _with_findings(settings: Settings, agency_id: int, domain: str) -> None:
    with session_scope(settings) as session:
        result = HostResult(target=HostTarget(domain, "41.73.20.1", "Agence A"))
        finding = Finding("http.hsts.missing", domain, "41.73.20.1", 443, evidence={"url": "/"})
        result.families[Family.HTTP] = FamilyResult(Family.HTTP, [finding])
        record_host_result(
            session, result, run_id=None, agency_id=agency_id, policy=lifecycle_policy(settings)
        )


@pytest.mark.network
def test_notify_job_fires_on_schedule_and_sends_each_digest_once(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    # Given an agency with news, and the notify job every second
    smtp.reset()
    settings = make_settings(
        environ_for(tmp_path, **smtp.environ(), VIGIE_NOTIFY_CERT_EMAIL="soc@cert.gouv.ml")
    )
    agency_id = register_domains(settings, ["a.gouv.ml"])
    _with_findings(settings, agency_id, "a.gouv.ml")
    fired: list[float] = []
    scheduler = build_scheduler(
        settings,
        scheduler_class=BackgroundScheduler,
        triggers={NOTIFY_JOB: IntervalTrigger(seconds=1)},
    )
    scheduler.add_listener(lambda event: fired.append(time.monotonic()), EVENT_JOB_EXECUTED)

    # When it runs for two or three firings
    scheduler.start()
    deadline = time.monotonic() + 10
    while len(fired) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.shutdown(wait=True)
    dispose_engines()

    # Then the digest went once, though the job fired more than once
    assert len(fired) >= 2
    assert [r.rcpt_tos for r in smtp.received] == [["rssi@a.gouv.ml", "soc@cert.gouv.ml"]]


@pytest.mark.network
def test_a_run_missed_while_down_runs_on_restart_within_the_grace_time(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    # Given a daemon that was down when the notify job was due, 30 s ago
    smtp.reset()
    settings = make_settings(environ_for(tmp_path, **smtp.environ()))
    agency_id = register_domains(settings, ["b.gouv.ml"], email="rssi@b.gouv.ml")
    _with_findings(settings, agency_id, "b.gouv.ml")
    first = build_scheduler(settings, scheduler_class=BackgroundScheduler)
    first.start(paused=True)
    first.shutdown(wait=False)
    missed = datetime.now(UTC) - timedelta(seconds=30)
    with get_engine(settings).begin() as connection:
        table = sa.table(JOBS_TABLE, sa.column("id"), sa.column("next_run_time"))
        connection.execute(
            sa.update(table)
            .where(table.c.id == NOTIFY_JOB)
            .values(next_run_time=missed.timestamp())
        )

    # When it starts again
    scheduler = build_scheduler(settings, scheduler_class=BackgroundScheduler)
    scheduler.start()
    deadline = time.monotonic() + 10
    while not smtp.received and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.shutdown(wait=True)
    dispose_engines()

    # Then the missed digest run happened, and the next one is back on the cron
    assert [r.rcpt_tos[0] for r in smtp.received] == ["rssi@b.gouv.ml"]
    assert stored_next_runs(settings)[NOTIFY_JOB] > datetime.now(UTC) + timedelta(days=1)


# --- the sweep job and the lock -------------------------------------------------------------------


def test_sweep_job_resumes_the_interrupted_run_then_sweeps_everything(settings: Settings) -> None:
    # Given two registered domains and a sweep interrupted after the first
    register_domains(settings, ["a.gouv.ml", "b.gouv.ml"])
    with session_scope(settings) as session:
        interrupted = ScanRun(
            status=RunStatus.INTERRUPTED,
            source="cron",
            families=sorted(f.value for f in (Family.SERVICE, Family.TLS, Family.HTTP, Family.DNS)),
            domains=["a.gouv.ml", "b.gouv.ml"],
        )
        session.add(interrupted)
        session.flush()
        assert interrupted.id is not None
        session.add(HostScan(run_id=interrupted.id, domain="a.gouv.ml", ip=""))

    # When the scheduled sweep job runs
    run_ids = run_sweep_job(settings)

    # Then the interrupted run was finished first (only b left), then a new full sweep ran
    assert run_ids[0] == interrupted.id
    resumed, full = runs(settings)
    assert (resumed.status, full.status) == (RunStatus.COMPLETED, RunStatus.COMPLETED)
    assert full.source == "scheduler" and full.domains == ["a.gouv.ml", "b.gouv.ml"]
    with session_scope(settings) as session:
        hosts = session.exec(select(HostScan.run_id, HostScan.domain).order_by(HostScan.id)).all()
    assert [tuple(h) for h in hosts] == [
        (resumed.id, "a.gouv.ml"),
        (resumed.id, "b.gouv.ml"),
        (full.id, "a.gouv.ml"),
        (full.id, "b.gouv.ml"),
    ]


def test_scheduled_sweep_skips_when_another_sweep_holds_the_lock(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a full sweep started by cron, holding the lock
    from vigie.sweep import acquire_lock, release_lock

    register_domains(settings, ["a.gouv.ml"])
    held = acquire_lock(settings)
    build_scheduler(settings, scheduler_class=BackgroundScheduler)  # the daemon's settings

    # When the scheduler's sweep job fires (its child process meets the lock)
    try:
        with caplog.at_level("INFO", logger="vigie.scheduler"):
            sweep_job()
    finally:
        release_lock(settings, held)

    # Then it skipped cleanly and started no run
    assert "scheduled sweep skipped: another sweep holds the lock" in caplog.messages
    assert runs(settings) == []


def _sweep_when_told(database_url: str, barrier: Any, results: Any) -> None:
    """A separate process starting a sweep at the barrier; the sweep holds the lock a while."""
    from vigie.sweep import SweepProgress, SweepRequest, run_sweep

    class Slow(SweepProgress):
        def advanced(self, result: Any, outcome: Any) -> None:
            time.sleep(0.4)  # a sweep in progress, holding the lock

    settings = load_settings(
        environ={"VIGIE_DATABASE_URL": database_url, "VIGIE_SCOPE_REQUIRE_MANDATE": "true"}
    )
    barrier.wait()
    try:
        summary = run_sweep(settings, SweepRequest(all_domains=True, source="cron"), Slow())
    except SweepLocked as exc:
        results.put(("locked", str(exc)))
    else:
        results.put(("ran", summary.run_id))


def test_two_sweeps_started_at_once_never_run_together(settings: Settings) -> None:
    # Given a registry, and two processes starting a sweep at the same instant, three times
    register_domains(settings, ["a.gouv.ml", "b.gouv.ml"])
    context = multiprocessing.get_context("spawn")
    outcomes = []
    for _ in range(3):
        barrier = context.Barrier(2)
        results = context.Queue()
        processes = [
            context.Process(target=_sweep_when_told, args=(settings.database.url, barrier, results))
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        outcomes.append(sorted(results.get(timeout=30) for _ in processes))
        for process in processes:
            process.join(timeout=30)
            assert process.exitcode == 0

    # Then each time exactly one ran and the other was told why it did not
    for (first, first_detail), (second, _) in outcomes:
        assert (first, second) == ("locked", "ran")
        assert "this one was not started" in first_detail
    assert [r.status for r in runs(settings)] == [RunStatus.COMPLETED] * 3


def test_sigterm_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    # Given the daemon running in the foreground
    environ = {**os.environ, **environ_for(tmp_path), "VIGIE_LOG_JSON": "true"}
    make_settings(environ_for(tmp_path))
    dispose_engines()
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "vigie"), "-v", "schedule", "run"],
        env=environ,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stderr is not None
        started = False
        deadline = time.monotonic() + 20
        while not started and time.monotonic() < deadline:
            line = daemon.stderr.readline()
            started = '"message": "scheduler started"' in line

        # When it is sent SIGTERM
        daemon.send_signal(signal.SIGTERM)
        remaining = daemon.communicate(timeout=15)[1]
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()

    # Then it stopped at once, cleanly
    assert started
    assert daemon.returncode == 0
    assert '"message": "stopping"' in remaining and '"signal": "SIGTERM"' in remaining
    assert '"message": "scheduler stopped"' in remaining
