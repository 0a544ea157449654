"""Scale-out on real parts: PostgreSQL, a Redis broker and two Celery worker processes.

One worker is killed with SIGKILL mid-sweep; the distributed sweep must still
finish and give the same findings as an embedded sweep of the same targets.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from tests.lab import LAB_DOMAINS, SLOW_DOMAINS, Lab, prepare_lab_database, running_lab
from tests.postgres import fresh_database
from tests.servers import TEST_NET, require_program, running
from vigie.cli import main
from vigie.db.session import dispose_engines

pytestmark = [pytest.mark.network, pytest.mark.slow]

BROKER_ADDRESS = f"{TEST_NET}.2"
BROKER_PORT = 6390
DOMAINS = LAB_DOMAINS + SLOW_DOMAINS[:2]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab"), DOMAINS, slow=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("redis")
    argv = [
        require_program("redis-server"), "--bind", BROKER_ADDRESS, "--port", str(BROKER_PORT),
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]  # fmt: skip
    with running(argv, listen=(BROKER_ADDRESS, BROKER_PORT)):
        yield f"redis://{BROKER_ADDRESS}:{BROKER_PORT}/0"


def write_config(lab: Lab, folder: Path, database_url: str, broker_url: str) -> Path:
    config = folder / "vigie.toml"
    # Slow hosts cost their whole (short) deadline, so the sweep is surely mid-way at the kill.
    text = lab.config_text(database_url).replace("host_deadline_s = 20", "host_deadline_s = 5")
    # The default celery.visibility_timeout_s (an hour) and batch_lease_s: a lost worker
    # must cost a lease, not the broker's timeout.
    text += f'[celery]\nbroker_url = "{broker_url}"\nbatch_size = 1\n'
    return prepare_lab_database(lab, config, text)


def findings(database_url: str) -> set[tuple[object, ...]]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        result = connection.execute(
            sa.text("select check_id, domain, ip, port, discriminator, status from finding")
        )
        found = {tuple(row) for row in result}
    engine.dispose()
    return found


def host_scans(database_url: str) -> int:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        count = connection.execute(sa.text("select count(*) from hostscan")).scalar_one()
    engine.dispose()
    return int(count)


def holds_a_batch(database_url: str, process_group: int) -> bool:
    """Whether a process of this worker's group (Celery's pool child) scans a batch now."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        workers = connection.execute(
            sa.text("select worker from runbatch where status = 'running'")
        ).scalars()
        pids = [int(str(name).rsplit(":", 1)[1]) for name in workers if name]
    engine.dispose()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == process_group:
                return True
    return False


@contextlib.contextmanager
def worker(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "vigie", "--config", str(config), "worker", "--concurrency", "1"]
    with running(argv, log=log) as process:
        yield process


def test_distributed_sweep_survives_a_killed_worker_and_equals_the_embedded_one(
    lab: Lab, broker: str, postgres_server: str, tmp_path: Path
) -> None:
    # Given the same lab swept once in process, on SQLite
    embedded_url = f"sqlite:///{tmp_path}/embedded.db"
    (tmp_path / "embedded").mkdir()
    embedded_config = write_config(lab, tmp_path / "embedded", embedded_url, broker)
    result = CliRunner().invoke(
        main, ["--config", str(embedded_config), "scan", "--all", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    dispose_engines()
    expected = findings(embedded_url)

    # And a PostgreSQL database with two real Celery workers
    (tmp_path / "distributed").mkdir()
    database_url = fresh_database(postgres_server)
    config = write_config(lab, tmp_path / "distributed", database_url, broker)
    with (
        worker(config, tmp_path / "worker-one.log") as first,
        worker(config, tmp_path / "worker-two.log"),
    ):
        time.sleep(3)  # both connected to the broker
        # When the sweep is distributed and one worker is killed mid-sweep
        sweep = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vigie",
                "--config",
                str(config),
                "scan",
                "--all",
                "--distributed",
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # (once the sweep is under way and the first worker holds a batch: its kill must
        # leave a batch behind, whichever worker the broker gave the early ones to)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            host_scans(database_url) >= 2 and holds_a_batch(database_url, first.pid)
        ):
            time.sleep(0.3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        output, _ = sweep.communicate(timeout=300)
        taken_up_in = time.monotonic() - killed_at
    # Then the sweep still completes, within a few minutes of the kill
    assert taken_up_in < 180, taken_up_in
    assert sweep.returncode == 0, output.decode(errors="replace")
    # And it found exactly what the embedded sweep found, without duplicates
    assert findings(database_url) == expected
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        status = connection.execute(sa.text("select status from scanrun")).scalar_one()
        duplicates = connection.execute(
            sa.text("select count(*) - count(distinct fingerprint) from finding")
        ).scalar_one()
        batches = connection.execute(
            sa.text("select status, max(attempts) from runbatch group by status")
        ).all()
    engine.dispose()
    assert status == "completed"
    assert duplicates == 0
    # And the killed worker's batch was taken up again (claimed a second time)
    assert [(state, attempts) for state, attempts in batches] == [("done", 2)]


def test_each_worker_process_gets_its_share_of_the_machines_rate() -> None:
    from vigie.config import Settings
    from vigie.workers import per_process_settings

    settings = Settings.model_validate({"scan": {"max_rate_per_s": 2000, "rate_burst_s": 10}})
    # A worker with four processes: each keeps to a quarter, with a quarter of the burst
    shared = per_process_settings(settings, 4)
    assert shared.scan.max_rate_per_s == 500
    assert shared.scan.max_rate_per_s * shared.scan.rate_burst_s == 5000
    # The rest of the configuration is untouched, and one process keeps it all
    assert shared.scan.model_dump(exclude={"max_rate_per_s"}) == settings.scan.model_dump(
        exclude={"max_rate_per_s"}
    )
    assert per_process_settings(settings, 1) is settings
