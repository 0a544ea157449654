"""An analyst's scan during the sweep: two real processes storing the same hosts at the
same moment, on SQLite and on PostgreSQL. No duplicate, no false resolved/reopened."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.lab import LAB_DOMAINS, Lab, prepare_lab_database, running_lab

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab"), LAB_DOMAINS) as lab:
        yield lab


def query(database_url: str, text: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        found = [tuple(row) for row in connection.execute(sa.text(text))]
    engine.dispose()
    return found


def start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigie", "--config", str(config), "scan", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_scan_of_the_same_hosts_during_the_sweep_changes_nothing_twice(
    lab: Lab, database_url: str, tmp_path: Path
) -> None:
    # Given the lab registered, with one findings database
    config = prepare_lab_database(lab, tmp_path / "vigie.toml", lab.config_text(database_url))

    # When, twice, a full sweep and an analyst's scan of every domain start at the same moment
    for _ in range(2):
        sweep = start(config, "--all")
        analyst = start(config, *LAB_DOMAINS)
        for process in (sweep, analyst):
            output, _ = process.communicate(timeout=180)
            # Then both run to the end: neither is refused nor fails on the other's writes
            assert process.returncode == 0, output.decode(errors="replace")

    # And every finding exists once, each new once and then open: nothing resolved or reopened
    assert query(database_url, "select count(*) - count(distinct fingerprint) from finding") == [
        (0,)
    ]
    transitions = query(
        database_url, "select from_status, to_status, count(*) from findingevent "
        "group by from_status, to_status"
    )  # fmt: skip
    assert {(before, after) for before, after, _ in transitions} <= {
        (None, "new"),
        ("new", "open"),
        ("open", "open"),  # the same finding seen with other evidence (a date, a banner)
        ("new", "new"),
    }
    created = dict(((b, a), n) for b, a, n in transitions)[(None, "new")]
    assert created == query(database_url, "select count(*) from finding")[0][0]
    statuses = {status for (status,) in query(database_url, "select status from finding")}
    assert statuses <= {"new", "open"}
    # And the four runs completed, each with every host stored once
    assert query(database_url, "select status, count(*) from scanrun group by status") == [
        ("completed", 4)
    ]
    per_run = query(
        database_url,
        "select run_id, count(*), count(distinct domain || '/' || ip) from hostscan group by run_id",
    )
    assert len(per_run) == 4
    assert all(count == distinct for _, count, distinct in per_run)


def test_a_sweep_and_an_on_demand_scan_together_keep_to_the_rate() -> None:
    from vigie.config import Settings
    from vigie.sweep import run_settings

    # Given a rate of 2,000 probes a second, a tenth of it for on-demand scans
    settings = Settings.model_validate({"scan": {"max_rate_per_s": 2000}})
    assert settings.scan.on_demand_rate_share == 0.1
    # When a full sweep and an analyst's scan each take their part
    sweep = run_settings(settings, full_sweep=True).scan
    analyst = run_settings(settings, full_sweep=False).scan
    # Then together they spend no more than the rate, and the rest is untouched
    assert sweep.max_rate_per_s == pytest.approx(1800)
    assert analyst.max_rate_per_s == pytest.approx(200)
    assert sweep.max_rate_per_s + analyst.max_rate_per_s == pytest.approx(2000)
    assert sweep.model_dump(exclude={"max_rate_per_s"}) == settings.scan.model_dump(
        exclude={"max_rate_per_s"}
    )
