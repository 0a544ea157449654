"""System locks: held by the kernel (SQLite's lock file) or the server (PostgreSQL's
advisory lock), released when their holder dies, respected across processes and machines."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigie.cli import main
from vigie.config import Settings, load_settings
from vigie.db.locks import advisory_key, lock_folder, try_lock
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import Agency, Domain, Lock, RunStatus, ScanRun
from vigie.errors import SweepLocked
from vigie.sweep import SweepRequest, run_sweep


def make_settings(database_url: str) -> Settings:
    # Mandates required and none given: the sweeps store "not authorised" and send nothing.
    settings = load_settings(
        environ={"VIGIE_DATABASE_URL": database_url, "VIGIE_SCOPE_REQUIRE_MANDATE": "true"}
    )
    upgrade_database(settings)
    with session_scope(settings) as session:
        agency = Agency(name="Agence A")
        session.add(agency)
        session.flush()
        assert agency.id is not None
        for name in ("a.gouv.ml", "b.gouv.ml"):
            session.add(Domain(name=name, agency_id=agency.id))
    return settings


def run_statuses(settings: Settings) -> list[tuple[bool, str]]:
    with session_scope(settings) as session:
        return [
            (r.full_sweep, r.status) for r in session.exec(select(ScanRun).order_by(ScanRun.id))
        ]


def test_a_full_sweep_held_on_another_machine_is_respected(postgres_server: str) -> None:
    # Given a PostgreSQL database, and a sweep on another machine: its own connection holds
    # the advisory lock, and its lock row says who it is
    from tests.postgres import fresh_database

    url = fresh_database(postgres_server)
    settings = make_settings(url)
    with session_scope(settings) as session:
        session.add(Lock(name="sweep", holder="cron-box:4242:abcd"))
    other_machine = psycopg.connect(url, autocommit=True)
    try:
        assert other_machine.execute(
            "SELECT pg_try_advisory_lock(%s)", (advisory_key("sweep"),)
        ).fetchone() == (True,)
        # When a full sweep starts here
        with pytest.raises(SweepLocked) as refused:
            run_sweep(settings, SweepRequest(all_domains=True))
        # Then it is refused, naming the holder, and started no run
        assert "cron-box:4242:abcd" in str(refused.value)
        assert run_statuses(settings) == []
        # And the command says so with exit status 75
        result = CliRunner().invoke(
            main, ["scan", "--all", "--quiet"], env={"VIGIE_DATABASE_URL": url}
        )
        assert result.exit_code == 75, result.output
        assert "another sweep is running (cron-box:4242:abcd" in result.output
        # But a scan of one domain runs at once, as its own run
        summary = run_sweep(settings, SweepRequest(domains=("a.gouv.ml",)))
        assert summary.status == RunStatus.COMPLETED
    finally:
        other_machine.close()
    # And once the other machine's connection is gone (it died), the lock is free
    summary = run_sweep(settings, SweepRequest(all_domains=True))
    assert run_statuses(settings) == [(False, "completed"), (True, "completed")]
    assert summary.not_authorised == ["a.gouv.ml", "b.gouv.ml"]
    dispose_engines()


HOLD_LOCK = """
import sys, time
from vigie.config import load_settings
from vigie.sweep import acquire_lock
settings = load_settings(environ={"VIGIE_DATABASE_URL": sys.argv[1]})
held = acquire_lock(settings)
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_of_a_process_killed_with_minus_9_is_free_at_once(database_url: str) -> None:
    # Given another process holding the sweep lock (on SQLite: a file lock; PostgreSQL: advisory)
    settings = make_settings(database_url)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, database_url],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(SweepLocked):
            run_sweep(settings, SweepRequest(all_domains=True))
        # When it is killed with -9 and not reaped
        holder.kill()
        started = time.monotonic()
        for _ in range(50):
            held = try_lock(settings, "sweep")
            if held is not None:
                held.release()
                break
            time.sleep(0.1)
        # Then the lock is free at once, its stale row notwithstanding
        assert time.monotonic() - started < 5
        summary = run_sweep(settings, SweepRequest(all_domains=True))
        assert summary.status == RunStatus.COMPLETED
    finally:
        holder.wait(timeout=10)
    dispose_engines()


def test_sqlite_lock_files_live_beside_the_database(tmp_path: Path) -> None:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/v.db"})
    assert lock_folder(settings) == tmp_path / "v.db.locks"
    first = try_lock(settings, "sweep")
    assert first is not None
    # Two acquisitions exclude each other, even in one process
    assert try_lock(settings, "sweep") is None
    first.release()
    second = try_lock(settings, "sweep")
    assert second is not None
    second.release()
