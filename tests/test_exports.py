"""Exports: SARIF 2.1.0 validated against the OASIS schema, JSON and CSV with filters."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator

from tests.report_data import (
    AFTER_RUNS,
    HOSTILE_SCRIPT,
    MAIL,
    PORTAIL,
    STATS,
    TAX,
    Seeded,
    finding_id,
    seed,
)
from vigie import i18n
from vigie.acceptance import accept_finding
from vigie.cli import main
from vigie.db.queries import FindingFilter, query_findings
from vigie.db.session import dispose_engines, session_scope
from vigie.exports import findings_to_sarif

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text("utf-8"))
VALIDATOR = Draft4Validator(SCHEMA)

OPEN_CHECKS = {
    PORTAIL: {
        "service.open_port",
        "service.version_disclosed",
        "tls.cert.expired",
        "http.hsts.missing",
        "http.cookie.no_httponly",
        "dns.dmarc.missing",
        "dns.dangling_cname",
    },
    MAIL: {"service.open_port", "service.cleartext_mail"},
    STATS: {"http.csp.missing", "tls.protocol.no_tls1_3"},
    TAX: {"scan.unreachable"},
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    yield seed(tmp_path_factory.mktemp("exports"))
    dispose_engines()


def sarif_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in VALIDATOR.iter_errors(document)
    ]


def test_the_vendored_schema_is_the_oasis_one() -> None:
    assert SCHEMA["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    Draft4Validator.check_schema(SCHEMA)
    # and it rejects what is not SARIF
    assert sarif_errors({"version": "2.1.0", "runs": [{"results": []}]})


def test_sarif_of_stored_findings_validates(seeded: Seeded) -> None:
    # Given real stored findings, one of them accepted
    with session_scope(seeded.settings) as session:
        accept_finding(
            session,
            str(finding_id(seeded.settings, "tls.cert.expired")),
            reason="certificate ordered " + HOSTILE_SCRIPT,
            until=AFTER_RUNS + timedelta(days=30),
            accepted_by="DSI",
            today=AFTER_RUNS,
        )
        views = query_findings(session, FindingFilter(), today=AFTER_RUNS)
    # When exported to SARIF in French
    document = findings_to_sarif(views, "fr", today=AFTER_RUNS)
    # Then it is valid SARIF 2.1.0
    assert sarif_errors(document) == []
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    every_check = set().union(*OPEN_CHECKS.values())
    assert [r["id"] for r in rules] == sorted(every_check)
    assert len(run["results"]) == len(views)
    assert run["language"] == "fr"
    by_rule = {r["id"]: r for r in rules}
    assert by_rule["tls.cert.expired"]["shortDescription"]["text"] == i18n.check_title(
        "tls.cert.expired", "fr"
    )
    assert by_rule["tls.cert.expired"]["help"]["text"] == i18n.check_remediation(
        "tls.cert.expired", "fr"
    )
    assert by_rule["tls.cert.expired"]["properties"]["security-severity"] == "8.0"
    results = {(r["ruleId"], r["properties"]["domain"]): r for r in run["results"]}
    # rule indexes point at the right rule
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    expired = results[("tls.cert.expired", PORTAIL)]
    assert expired["level"] == "error"
    assert expired["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "certificate ordered " + HOSTILE_SCRIPT,
            "properties": {"until": (AFTER_RUNS + timedelta(days=30)).isoformat()},
        }
    ]
    assert (
        expired["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == f"tcp://{PORTAIL}:443"
    )
    assert expired["properties"]["overdue"] is False  # accepted: not overdue
    assert len(expired["partialFingerprints"]["vigieFingerprint/v1"]) == 64
    dangling = results[("dns.dangling_cname", PORTAIL)]
    assert "suppressions" not in dangling
    assert dangling["properties"]["overdue"] is True
    assert (
        dangling["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == f"dns:{PORTAIL}"
    )
    assert results[("http.hsts.missing", PORTAIL)]["level"] == "warning"
    assert results[("http.csp.missing", STATS)]["level"] == "note"
    # every finding has been seen in three scans: unchanged against the baseline
    assert {r["baselineState"] for r in run["results"]} == {"unchanged"}


def test_empty_sarif_validates() -> None:
    document = findings_to_sarif([], "en")
    assert sarif_errors(document) == []
    assert document["runs"][0]["results"] == []


def run_cli(seeded: Seeded, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["findings", *args], env={"VIGIE_DATABASE_URL": seeded.settings.database.url}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_findings_command_exports_sarif(seeded: Seeded) -> None:
    document = json.loads(run_cli(seeded, "--format", "sarif", "--language", "fr"))
    assert sarif_errors(document) == []
    assert {r["ruleId"] for r in document["runs"][0]["results"]} == set().union(
        *OPEN_CHECKS.values()
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("--agency", "Office of Statistics"), {(c, STATS) for c in OPEN_CHECKS[STATS]}),
        (("--agency", "AND", "--domain", MAIL), {(c, MAIL) for c in OPEN_CHECKS[MAIL]}),
        (
            ("--severity-min", "high"),
            {("tls.cert.expired", PORTAIL), ("dns.dangling_cname", PORTAIL)},
        ),
        (
            ("--family", "dns"),
            {("dns.dmarc.missing", PORTAIL), ("dns.dangling_cname", PORTAIL)},
        ),
        (
            ("--status", "resolved"),
            {("service.database.no_auth", PORTAIL), ("service.open_port", PORTAIL)},
        ),
        (("--check", "scan.unreachable"), {("scan.unreachable", TAX)}),
        (("--since", (date.today() + timedelta(days=1)).isoformat()), set()),
    ],
)
def test_json_export_filters(
    seeded: Seeded, filters: tuple[str, ...], expected: set[tuple[str, str]]
) -> None:
    rows = json.loads(run_cli(seeded, *filters, "--format", "json"))
    assert {(r["check_id"], r["domain"]) for r in rows} == expected
    for row in rows:
        assert set(row) >= {
            "check_id",
            "severity",
            "title",
            "domain",
            "ip",
            "port",
            "status",
            "first_seen",
            "last_seen",
            "evidence",
            "remediation",
            "agency",
            "due_date",
            "overdue",
        }


def test_csv_export_shows_overdue(seeded: Seeded) -> None:
    rows = list(
        csv.DictReader(io.StringIO(run_cli(seeded, "--domain", PORTAIL, "--format", "csv")))
    )
    overdue = {r["check_id"] for r in rows if r["overdue"] == "True"}
    # first seen on 1 March 2026: the longest deadline (low, 180 days) ended on 28 August 2026;
    # the inventory (info) has no deadline
    assert overdue == OPEN_CHECKS[PORTAIL] - {"service.open_port"}
    assert {r["check_id"] for r in rows if r["due_date"] == ""} == {"service.open_port"}
