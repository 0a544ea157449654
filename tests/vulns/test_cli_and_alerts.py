"""``vigie vulns import|status``, the sweep's stale-data note, and the urgent alert of a
known-exploited vulnerability (a real SMTP server, aiosmtpd, on 127.0.20.40)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.smtp_server import SmtpServer, running_smtp
from tests.test_notify import host_result, make_settings, parts, register
from tests.vulns.test_import import ALL, KEV, NVD
from vigie.cli import main
from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.store import record_host_result
from vigie.db.tables import ScanRun
from vigie.model import Family, HostTarget, utcnow
from vigie.notify import urgent_alert_hook
from vigie.scanner.engine import DomainJob
from vigie.scanner.software import identify_server, vuln_findings
from vigie.sweep import SweepSummary, lifecycle_policy, vulnerability_index
from vigie.vulns.store import import_files, load_match_index, sweep_data_note

SMTP_IP = "127.0.20.40"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("VIGIE_DATABASE_URL", f"sqlite:///{tmp_path}/v.db")
    yield CliRunner()
    dispose_engines()


def test_import_then_status_json(runner: CliRunner) -> None:
    # When every fixture file is imported through the CLI
    result = runner.invoke(main, ["vulns", "import", *map(str, ALL)])
    assert result.exit_code == 0, result.output
    assert f"{NVD}: nvd, 12 records, data of 2026-12-01" in result.output
    # Then status lists each file with its data date and age
    status = runner.invoke(main, ["vulns", "status", "--format", "json"])
    rows = {row["file"]: row for row in json.loads(status.output)}
    assert set(rows) == {path.name for path in ALL}
    assert rows[KEV.name]["records"] == 3
    assert rows[KEV.name]["data_date"].startswith("2026-12-01")
    assert isinstance(rows[NVD.name]["age_days"], int)


def test_malformed_file_exits_2_naming_file_and_record(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "kev.json"
    kev = json.loads(KEV.read_text())
    kev["vulnerabilities"][1]["cveID"] = "CVE-21-1"
    bad.write_text(json.dumps(kev))
    result = runner.invoke(main, ["vulns", "import", str(bad)])
    assert result.exit_code == 2
    assert "kev.json: record 1" in result.output and "nothing was imported" in result.output
    assert runner.invoke(main, ["vulns", "status", "--format", "json"]).output.strip() == "[]"


def test_sweep_summary_says_when_the_data_is_old(tmp_path: Path) -> None:
    # Given data files whose time (endoflife.date, tracker: no date inside) is 30 days ago
    settings = Settings.model_validate(
        {"database": {"url": f"sqlite:///{tmp_path}/v.db"}, "vulns": {"max_age_days": 8}}
    )
    ensure_database(settings)
    old = tmp_path / "nginx.json"
    old.write_text((ALL[-3]).read_text())
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    import_files(settings, [old])
    summary = SweepSummary(run_id=1)
    jobs = [DomainJob("www.example.gov.ml", families=frozenset({Family.VULN}))]
    # When the sweep loads the index
    vulnerability_index(settings, jobs, summary)
    # Then its summary says how old the data is and what the limit is
    assert "30 days old" in summary.vulns_note and "vulns.max_age_days = 8" in summary.vulns_note
    # And the distributed sweep's front, which loads no index, says the same from the imports
    assert sweep_data_note(settings, vuln_checks=True) == summary.vulns_note
    # And fresh data says nothing
    fresh = load_match_index(settings)
    assert fresh.stale_note(utcnow() - timedelta(days=29), 8) == ""
    # And the agency report says it too, in the agency's language
    from vigie.reports import render_agency_report

    agency = register(settings, "Douanes", ["douanes.gouv.ml"])
    with session_scope(settings) as session:
        html = render_agency_report(session, settings, agency.name, record=False).decode()
    assert "données vieilles de 30 jours (limite : 8 jours)" in html


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    yield from running_smtp(SMTP_IP, tmp_path_factory.mktemp("smtp"))


@pytest.mark.network
def test_known_exploited_goes_out_as_an_urgent_alert(tmp_path: Path, smtp: SmtpServer) -> None:
    # Given the fixture data and an agency whose web server is Apache 2.4.49
    smtp.reset()
    settings = make_settings(tmp_path, smtp.environ())
    import_files(settings, ALL)
    index = load_match_index(settings)
    agency = register(
        settings, "Santé", ["portail.sante.gouv.ml"], security=("rssi@sante.gouv.ml",)
    )
    domain, ip = "portail.sante.gouv.ml", "41.73.18.1"
    idents = [i.at(443) for i in identify_server("Apache/2.4.49 (Unix)")]
    findings = vuln_findings(HostTarget(domain, ip, agency.name), idents, index)
    assert {f.check_id for f in findings} == {"vuln.cve", "vuln.known_exploited"}
    # When the host is stored as the sweep stores it, with the sweep's alert hook
    hook = urgent_alert_hook(settings)
    with session_scope(settings) as session:
        run = ScanRun()
        session.add(run)
        session.flush()
        result = host_result(agency, domain, ip, findings, (Family.VULN,))
        outcome = record_host_result(
            session,
            result,
            run_id=run.id,
            agency_id=agency.agency_id,
            policy=lifecycle_policy(settings),
        )
        hook(session, result, outcome)
    # Then the known-exploited vulnerability went out at once (critical, the urgent path),
    # delivered off the sweep's loop once the host's results were committed
    assert hook.drain(grace_s=10)
    (alert,) = smtp.received
    message, text, _ = parts(alert)
    assert message["Subject"].startswith("URGENT")
    assert "vulnérabilité activement exploitée" in text
    dispose_engines()


def test_without_data_the_sweep_says_vuln_checks_were_skipped(tmp_path: Path) -> None:
    settings = Settings.model_validate({"database": {"url": f"sqlite:///{tmp_path}/v.db"}})
    ensure_database(settings)
    summary = SweepSummary(run_id=1)
    jobs = [DomainJob("www.example.gov.ml", families=frozenset({Family.VULN}))]
    index = vulnerability_index(settings, jobs, summary)
    assert index is not None and index.empty
    assert "no vulnerability data imported" in summary.vulns_note
    assert sweep_data_note(settings, vuln_checks=True) == summary.vulns_note
    # And a sweep running only the software family has nothing to say about missing data
    assert sweep_data_note(settings, vuln_checks=False) == ""
