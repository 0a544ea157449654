"""Whole sweeps on a lab of real servers: findings, scope, lifecycle, lock, crash and resume."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.lab import (
    LAB_DOMAINS,
    REDIS_ADDRESS,
    SLOW_DOMAINS,
    ZONE,
    Lab,
    running_lab,
)
from vigie.cli import main
from vigie.db.session import dispose_engines

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("lab")
    with running_lab(folder, LAB_DOMAINS + SLOW_DOMAINS, slow=True) as lab:
        yield lab


def prepare(
    lab: Lab,
    folder: Path,
    domains: tuple[str, ...] | None = None,
    concurrency: int = 8,
    host_deadline_s: int = 20,
) -> Path:
    database = folder / "vigie.db"
    config = folder / "vigie.toml"
    text = lab.config_text(f"sqlite:///{database}")
    text = text.replace("concurrency = 8", f"concurrency = {concurrency}")
    text = text.replace("host_deadline_s = 20", f"host_deadline_s = {host_deadline_s}")
    config.write_text(text, encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "init"]).exit_code == 0
    registry = lab.registry
    if domains is not None:
        from tests.lab import write_registry

        registry = write_registry(folder, domains)
    imported = runner.invoke(main, ["--config", str(config), "targets", "import", str(registry)])
    assert imported.exit_code == 0, imported.output
    dispose_engines()
    return config


def rows(config: Path, query: str) -> list[tuple[object, ...]]:
    database = config.parent / "vigie.db"
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


def vigie(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vigie", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_sweep_reports_what_the_lab_holds_and_sends_nothing_out_of_scope(
    lab: Lab, tmp_path: Path
) -> None:
    # Given the lab registered (without its slow hosts)
    config = prepare(lab, tmp_path, LAB_DOMAINS)
    # When the whole registry is swept
    result = CliRunner().invoke(main, ["--config", str(config), "scan", "--all", "--quiet"])
    dispose_engines()
    # Then the sweep completes
    assert result.exit_code == 0, result.output
    assert rows(config, "select status from scanrun") == [("completed",)]
    found = set(rows(config, "select check_id, domain, ip, port from finding"))
    assert ("service.database.no_auth", f"cache.{ZONE}", REDIS_ADDRESS, 6379) in found
    assert ("service.database.exposed", f"cache.{ZONE}", REDIS_ADDRESS, 6379) in found
    checks = {check for check, *_ in found}
    assert {
        "dns.spf.permissive",
        "dns.dmarc.policy_none",
        "scan.out_of_scope",
        "scan.unreachable",
    } <= checks
    # And the out-of-scope name got a finding, and not one packet
    assert ("scan.out_of_scope", f"outside.{ZONE}") in {(c, d) for c, d, _, _ in found}
    assert lab.tripwire.connections == []
    # And every application got a grade
    graded = {domain for (domain,) in rows(config, "select domain from graderecord")}
    assert f"cache.{ZONE}" in graded


def test_second_sweep_turns_new_into_open(lab: Lab, tmp_path: Path) -> None:
    config = prepare(lab, tmp_path, (f"cache.{ZONE}",))
    for _ in range(2):
        result = CliRunner().invoke(main, ["--config", str(config), "scan", "--all", "--quiet"])
        assert result.exit_code == 0, result.output
        dispose_engines()
    statuses = dict(
        rows(config, "select check_id, status from finding where check_id like 'service.%'")
    )
    assert statuses["service.database.no_auth"] == "open"


def test_fail_on_exits_1_when_findings_reach_the_threshold(lab: Lab, tmp_path: Path) -> None:
    config = prepare(lab, tmp_path, (f"cache.{ZONE}",))
    result = CliRunner().invoke(
        main, ["--config", str(config), "scan", f"cache.{ZONE}", "--quiet", "--fail-on", "critical"]
    )
    dispose_engines()
    assert result.exit_code == 1


def test_a_mandate_naming_networks_keeps_the_sweep_inside_them(lab: Lab, tmp_path: Path) -> None:
    # Given the agency's mandate names one network, which the cache's address is outside of
    config = prepare(lab, tmp_path, (f"cache.{ZONE}",))
    mandate = CliRunner().invoke(
        main,
        [
            "--config", str(config), "targets", "mandate", "add",
            "--agency", "Agence du Laboratoire", "--legal-basis", "Décret 2026-001 art. 4",
            "--reference", "CERT/2026/18", "--from", "2026-01-01", "--cidr", "198.51.100.0/24",
        ],
    )  # fmt: skip
    assert mandate.exit_code == 0, mandate.output
    # When swept
    result = CliRunner().invoke(main, ["--config", str(config), "scan", "--all", "--quiet"])
    dispose_engines()
    assert result.exit_code == 0, result.output
    # Then the address is reported outside the mandate and no host check ran on it
    found = rows(config, "select check_id, ip, evidence from finding where ip != ''")
    assert [(check, ip) for check, ip, _ in found] == [("scan.out_of_scope", REDIS_ADDRESS)]
    evidence = json.loads(str(found[0][2]))
    assert evidence["decision"] == "outside_mandate"
    assert "mandate" in evidence["detail"]


def redis_connections_received() -> int:
    """The lab Redis's own count of the connections it accepted (``INFO stats``)."""
    with socket.create_connection((REDIS_ADDRESS, 6379), timeout=5) as connection:
        connection.sendall(b"INFO stats\r\n")
        reply = b""
        while b"total_connections_received:" not in reply or not reply.endswith(b"\r\n"):
            reply += connection.recv(65536)
    line = next(line for line in reply.split(b"\r\n") if line.startswith(b"total_connections"))
    return int(line.split(b":")[1])


def test_without_a_mandate_nothing_is_sent_and_the_refusal_is_recorded(
    lab: Lab, tmp_path: Path
) -> None:
    # Given mandates are required and the lab's agency has none
    config = prepare(lab, tmp_path, (f"cache.{ZONE}",))
    config.write_text(
        config.read_text().replace("[scope]\n", "[scope]\nrequire_mandate = true\n"),
        encoding="utf-8",
    )
    before = redis_connections_received()
    # When a full sweep runs
    result = CliRunner().invoke(main, ["--config", str(config), "scan", "--all"])
    dispose_engines()
    assert result.exit_code == 0, result.output
    # Then the refusal is a stored finding and the summary names the domain
    assert rows(config, "select check_id, domain, ip from finding") == [
        ("scan.not_authorised", f"cache.{ZONE}", None)
    ]
    assert f"not authorised (no valid mandate): cache.{ZONE}" in result.output
    # And the Redis behind that name counted no connection but ours (its own counter)
    assert redis_connections_received() == before + 1


def _wait_for_hosts(config: Path, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if rows(config, "select count(*) from hostscan")[0][0] >= count:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {count} hosts finished in {timeout_s}s")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_sweep_resumes_without_rescanning_or_duplicating(
    lab: Lab, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    # Given slow hosts scanned one at a time, so the sweep is surely mid-way when stopped
    slow = SLOW_DOMAINS[:3]
    config = prepare(lab, tmp_path, (f"cache.{ZONE}", *slow), concurrency=1, host_deadline_s=4)
    process = vigie(config, "scan", "--all", "--quiet")
    _wait_for_hosts(config, 2)
    # When it is killed (or terminated) mid-sweep
    os.killpg(process.pid, stop_signal)
    process.wait(timeout=30)
    finished_before = dict(rows(config, "select domain || '/' || ip, finished_at from hostscan"))
    (status,) = rows(config, "select status from scanrun")[0]
    assert status in ("running", "interrupted")
    if stop_signal == signal.SIGTERM:
        assert status == "interrupted"
    total_hosts = 2 * (1 + len(slow))  # one address scan and one DNS scan per domain
    assert len(finished_before) < total_hosts
    # Then --resume finishes the same run
    resumed = vigie(config, "scan", "--resume", "--quiet")
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output.decode(errors="replace")
    assert rows(config, "select id, status from scanrun") == [(1, "completed")]
    finished_after = dict(rows(config, "select domain || '/' || ip, finished_at from hostscan"))
    assert len(finished_after) == total_hosts
    # And the hosts finished before the stop were not scanned again
    for host, finished_at in finished_before.items():
        assert finished_after[host] == finished_at
    fingerprints = rows(config, "select fingerprint from finding")
    assert len(fingerprints) == len(set(fingerprints))


def _state(pid: int) -> str:
    """The process state letter from /proc (Z: a zombie, dead and not reaped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_a_killed_sweep_left_unreaped_holds_no_lock(lab: Lab, tmp_path: Path) -> None:
    # Given a full sweep of slow hosts in progress
    slow = SLOW_DOMAINS[:3]
    config = prepare(lab, tmp_path, (f"cache.{ZONE}", *slow), concurrency=1, host_deadline_s=4)
    process = vigie(config, "scan", "--all", "--quiet")
    _wait_for_hosts(config, 2)
    # When it is killed with -9 and its parent does not reap it (a zombie keeps its PID)
    os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _state(process.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert _state(process.pid) == "Z"
        os.kill(process.pid, 0)  # the PID still "exists": a PID check would be fooled
        # Then --resume starts at once and finishes the run
        started = time.monotonic()
        resumed = vigie(config, "scan", "--resume", "--quiet")
        output, _ = resumed.communicate(timeout=240)
        assert resumed.returncode == 0, output.decode(errors="replace")
        assert "another sweep is running" not in output.decode(errors="replace")
        assert time.monotonic() - started < 120
        assert rows(config, "select id, status from scanrun") == [(1, "completed")]
    finally:
        process.wait(timeout=10)
    # And the lock row left by the killed sweep was taken over, then released
    assert rows(config, "select count(*) from lock") == [(0,)]


def test_a_second_full_sweep_is_refused_and_a_scan_of_one_domain_runs_beside_it(
    lab: Lab, tmp_path: Path
) -> None:
    # Given a full sweep in progress, held up by slow hosts
    config = prepare(
        lab, tmp_path, (f"cache.{ZONE}", *SLOW_DOMAINS[:2]), concurrency=1, host_deadline_s=4
    )
    sweep = vigie(config, "scan", "--all", "--quiet")
    try:
        _wait_for_hosts(config, 1)
        # When a second full sweep starts
        second = vigie(config, "scan", "--all", "--quiet")
        output, _ = second.communicate(timeout=60)
        # Then it is refused with exit status 75, naming the holder
        assert second.returncode == 75, output.decode(errors="replace")
        assert "another sweep is running" in output.decode()
        # And an analyst's scan of one domain runs at once, as its own run
        started = time.monotonic()
        analyst = vigie(config, "scan", f"cache.{ZONE}", "--quiet")
        output, _ = analyst.communicate(timeout=120)
        assert analyst.returncode == 0, output.decode(errors="replace")
        assert sweep.poll() is None, "the analyst's scan finished while the sweep still runs"
        assert time.monotonic() - started < 30
    finally:
        sweep_output, _ = sweep.communicate(timeout=240)
    assert sweep.returncode == 0, sweep_output.decode(errors="replace")
    assert sorted(rows(config, "select id, status, full_sweep from scanrun")) == [
        (1, "completed", 1),
        (2, "completed", 0),
    ]
