"""Database faults mid-sweep: SQLite read-only or out of space, PostgreSQL restarted.
A clear error (exit 74), the run not marked complete, and --resume finishes it once the
fault is gone, with no duplicate."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.lab import LAB_DOMAINS, SLOW_DOMAINS, Lab, prepare_lab_database, running_lab
from tests.postgres import fresh_database, running_postgres
from tests.servers import TEST_NET

pytestmark = [pytest.mark.network, pytest.mark.slow]

DOMAINS = (LAB_DOMAINS[1], *SLOW_DOMAINS[:3])  # the open Redis, then hosts that stay silent
TOTAL_HOSTS = 2 * len(DOMAINS)  # one address scan and one DNS scan per domain
PG_ADDRESS, PG_PORT = f"{TEST_NET}.5", 55433


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab"), DOMAINS, slow=True) as lab:
        yield lab


def configure(lab: Lab, folder: Path, database_url: str) -> Path:
    # One host at a time, each silent one costing its 4 s deadline: surely mid-way at the fault.
    text = lab.config_text(database_url)
    text = text.replace("concurrency = 8", "concurrency = 1")
    text = text.replace("host_deadline_s = 20", "host_deadline_s = 4")
    return prepare_lab_database(lab, folder / "vigie.toml", text)


def query(url: str, text: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(text))]
    finally:
        engine.dispose()


def wait_for_hosts(url: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(sa.exc.OperationalError):
            if query(url, "select count(*) from hostscan")[0][0] >= count:
                return
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {count} hosts stored in {timeout_s}s")


def accepting(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            query(url, "select 1")
            return
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def vigie(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigie", "--config", str(config), "scan", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_resumed_cleanly(url: str, config: Path) -> None:
    resumed = vigie(config, "--resume")
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output
    assert query(url, "select id, status from scanrun") == [(1, "completed")]
    assert query(url, "select count(*), count(distinct domain || '/' || ip) from hostscan") == [
        (TOTAL_HOSTS, TOTAL_HOSTS)
    ]
    assert query(url, "select count(*) - count(distinct fingerprint) from finding") == [(0,)]
    assert ("service.database.no_auth",) in query(url, "select check_id from finding")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a file system or making files immutable needs root")


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A 16 MB file system of its own, to fill up mid-sweep."""
    disk = folder / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16M", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def database_files(folder: Path) -> list[str]:
    return [str(path) for path in sorted(folder.glob("vigie.db*")) if path.is_file()]


@pytest.mark.parametrize("fault", ["read_only", "out_of_space"])
def test_a_sqlite_database_that_refuses_writes_mid_sweep(
    lab: Lab, tmp_path: Path, fault: str
) -> None:
    require_root()
    with contextlib.ExitStack() as stack:
        folder = tmp_path if fault == "read_only" else stack.enter_context(small_disk(tmp_path))
        # Given a sweep in progress on SQLite
        url = f"sqlite:///{folder}/vigie.db"
        config = configure(lab, tmp_path, url)
        sweep = vigie(config, "--all")
        wait_for_hosts(url, 2)
        # When its database refuses writes: made immutable (what a read-only file system
        # does to open files), or its file system full
        filler = None
        if fault == "read_only":
            frozen = database_files(folder)
            subprocess.run(["chattr", "+i", *frozen], check=True)
            stack.callback(subprocess.run, ["chattr", "-i", *frozen], check=False)
        else:
            filler = fill(folder)
        output, _ = sweep.communicate(timeout=120)
        # Then the sweep stops with exit 74 and a sentence, not a traceback
        assert sweep.returncode == 74, output
        assert "the database refused this sweep's results" in output
        assert "--resume" in output and "Traceback" not in output
        # And once the fault is gone, the run is not complete and --resume finishes it
        if fault == "read_only":
            subprocess.run(["chattr", "-i", *frozen], check=True)
        else:
            assert filler is not None
            filler.unlink()
        assert query(url, "select status from scanrun") in ([("running",)], [("interrupted",)])
        assert_resumed_cleanly(url, config)


def test_a_postgresql_restart_mid_sweep_loses_and_duplicates_nothing(
    lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given a sweep in progress on a PostgreSQL server of its own
    root = Path(tempfile.mkdtemp(prefix="vigie-pg-restart-"))  # the postgres user reaches it
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    with running_postgres(PG_ADDRESS, PG_PORT, root) as base:
        url = fresh_database(base)
        config = configure(lab, tmp_path, url)
        sweep = vigie(config, "--all")
        wait_for_hosts(url, 2)
        # When the server is restarted (a fast shutdown ends every session)
        server_pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(server_pid, signal.SIGINT)
        deadline = time.monotonic() + 20
        while (root / "data" / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    time.sleep(1)
    with running_postgres(PG_ADDRESS, PG_PORT, root):
        output, _ = sweep.communicate(timeout=240)
        accepting(url)  # listening is not yet accepting: recovery runs first
        # Then the sweep reconnected and finished, or stopped cleanly (exit 74)
        assert sweep.returncode in (0, 74), output
        assert "Traceback" not in output
        if sweep.returncode == 0:
            assert query(url, "select status from scanrun") == [("completed",)]
            assert query(url, "select count(*) - count(distinct fingerprint) from finding") == [
                (0,)
            ]
        else:
            # And --resume completes it with no duplicate
            assert_resumed_cleanly(url, config)
