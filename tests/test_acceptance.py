"""Comply or explain: accepted risks leave the grade until they expire, and are never forgotten."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from tests.report_data import AFTER_RUNS, HOSTILE_SCRIPT, PORTAIL, STATS, Seeded, finding_id, seed
from vigie.acceptance import (
    MAX_ACCEPTANCE_DAYS,
    AcceptanceState,
    accept_finding,
    list_acceptances,
    revoke_acceptance,
)
from vigie.cli import main
from vigie.db.queries import FindingFilter, query_findings
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import FindingRecord, RiskAcceptance
from vigie.errors import NotFoundError, UsageError
from vigie.grading import grade_applications

UNTIL = date(2026, 6, 30)
AT = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    yield seed(tmp_path)
    dispose_engines()


def portail_grade(seeded: Seeded, today: date) -> tuple[str, int, bool]:
    with session_scope(seeded.settings) as session:
        rows = grade_applications(session, seeded.settings, domains=[PORTAIL], today=today)
    grade = rows[0].grade
    assert grade is not None
    return grade.letter, grade.score, rows[0].flagged


def accept(
    seeded: Seeded, check_id: str, until: date = UNTIL, reason: str = "migration plan"
) -> int:
    with session_scope(seeded.settings) as session:
        acceptance = accept_finding(
            session,
            str(finding_id(seeded.settings, check_id)),
            reason=reason,
            until=until,
            accepted_by="DSI",
            today=AFTER_RUNS,
            now=AT,
        )
        assert acceptance.id is not None
        return acceptance.id


def test_accepted_findings_leave_the_grade_until_they_expire(seeded: Seeded) -> None:
    # Given the portal graded F (dangling CNAME caps F, expired certificate caps E)
    assert portail_grade(seeded, AFTER_RUNS) == ("F", 24, True)
    # When both high findings are accepted until the end of June
    accept(seeded, "dns.dangling_cname")
    accept(seeded, "tls.cert.expired")
    # Then they leave the grade and the flag: 24 + 25 + 25 points, no cap left
    assert portail_grade(seeded, AFTER_RUNS) == ("C", 74, False)
    assert portail_grade(seeded, UNTIL) == ("C", 74, False)  # the last day is still accepted
    # And the day after the end date they count again, with nothing to run
    assert portail_grade(seeded, UNTIL + timedelta(days=1)) == ("F", 24, True)


def test_accepted_findings_stay_visible_with_their_explanation(seeded: Seeded) -> None:
    accept(
        seeded, "tls.cert.expired", reason="legacy appliance, replaced in June " + HOSTILE_SCRIPT
    )
    with session_scope(seeded.settings) as session:
        views = query_findings(session, FindingFilter(domain=PORTAIL), today=AFTER_RUNS)
        (rows,) = grade_applications(session, seeded.settings, domains=[PORTAIL], today=AFTER_RUNS)
    expired = next(v for v in views if v.check_id == "tls.cert.expired")
    assert expired.accepted_until == UNTIL
    assert expired.accepted_reason == "legacy appliance, replaced in June " + HOSTILE_SCRIPT
    assert not expired.overdue(AFTER_RUNS)  # an accepted finding is not overdue
    assert rows.accepted == 1 and "tls.cert.expired" in {v.check_id for v in rows.findings}


def test_a_new_acceptance_supersedes_and_the_trail_keeps_both(seeded: Seeded) -> None:
    first = accept(seeded, "http.hsts.missing", until=date(2026, 5, 1), reason="first plan")
    second = accept(seeded, "http.hsts.missing", until=date(2026, 6, 1), reason="second plan")
    with session_scope(seeded.settings) as session:
        live = list_acceptances(session, today=AFTER_RUNS)
        trail = list_acceptances(session, include_ended=True, today=AFTER_RUNS)
    assert [(a.id, a.state, a.reason) for a in live] == [
        (second, AcceptanceState.LIVE, "second plan")
    ]
    assert [(a.id, a.state) for a in trail] == [
        (first, AcceptanceState.REVOKED),
        (second, AcceptanceState.LIVE),
    ]
    assert trail[0].revoked_at == AT


def test_revoking_ends_an_acceptance_now(seeded: Seeded) -> None:
    acceptance_id = accept(seeded, "tls.cert.expired")
    with session_scope(seeded.settings) as session:
        revoke_acceptance(session, acceptance_id)
    assert portail_grade(seeded, AFTER_RUNS) == ("F", 24, True)
    with session_scope(seeded.settings) as session:
        (view,) = list_acceptances(session, include_ended=True, today=AFTER_RUNS)
        assert view.state == AcceptanceState.REVOKED
        assert list_acceptances(session, today=AFTER_RUNS) == []
        with pytest.raises(NotFoundError):
            revoke_acceptance(session, 999)


def test_expired_acceptances_show_as_expired(seeded: Seeded) -> None:
    accept(seeded, "tls.cert.expired", until=date(2026, 4, 10))
    with session_scope(seeded.settings) as session:
        (view,) = list_acceptances(session, include_ended=True, today=date(2026, 4, 11))
        assert view.state == AcceptanceState.EXPIRED
        assert list_acceptances(session, today=date(2026, 4, 11)) == []
        assert [a.agency for a in list_acceptances(session, agency="AND", today=AFTER_RUNS)] == [
            "Agence Nationale des Données"
        ]
        assert list_acceptances(session, agency="OS", today=AFTER_RUNS) == []


@pytest.mark.parametrize(
    ("reason", "until", "by", "error"),
    [
        ("", UNTIL, "DSI", "--reason"),
        ("   ", UNTIL, "DSI", "--reason"),
        ("plan", UNTIL, "", "--by"),
        ("plan", AFTER_RUNS - timedelta(days=1), "DSI", "in the past"),
        ("plan", AFTER_RUNS + timedelta(days=MAX_ACCEPTANCE_DAYS + 1), "DSI", "at most"),
    ],
)
def test_acceptances_need_a_reason_an_author_and_a_near_end(
    seeded: Seeded, reason: str, until: date, by: str, error: str
) -> None:
    reference = str(finding_id(seeded.settings, "tls.cert.expired"))
    with session_scope(seeded.settings) as session, pytest.raises(UsageError, match=error):
        accept_finding(
            session, reference, reason=reason, until=until, accepted_by=by, today=AFTER_RUNS
        )


def test_findings_are_found_by_id_or_fingerprint(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        record = session.exec(
            select(FindingRecord).where(FindingRecord.check_id == "tls.cert.expired")
        ).one()
        by_print = accept_finding(
            session,
            record.fingerprint[:12],
            reason="r",
            until=UNTIL,
            accepted_by="x",
            today=AFTER_RUNS,
        )
        assert by_print.finding_id == record.id
        with pytest.raises(UsageError, match="at least 8 characters"):
            accept_finding(
                session, "abc", reason="r", until=UNTIL, accepted_by="x", today=AFTER_RUNS
            )
        with pytest.raises(NotFoundError):
            accept_finding(
                session, "999999", reason="r", until=UNTIL, accepted_by="x", today=AFTER_RUNS
            )
        resolved = session.exec(
            select(FindingRecord).where(FindingRecord.check_id == "service.database.no_auth")
        ).one()
        assert resolved.status == "resolved"
        with pytest.raises(UsageError, match="resolved"):
            accept_finding(
                session,
                str(resolved.id),
                reason="r",
                until=UNTIL,
                accepted_by="x",
                today=AFTER_RUNS,
            )


def test_accept_commands(seeded: Seeded) -> None:
    env = {"VIGIE_DATABASE_URL": seeded.settings.database.url}
    runner = CliRunner()
    target = finding_id(seeded.settings, "http.csp.missing", domain=STATS)
    until = (date.today() + timedelta(days=30)).isoformat()
    # When the CERT records an accepted risk from the command line
    result = runner.invoke(
        main,
        [
            "findings",
            "accept",
            str(target),
            "--reason",
            "public mirror",
            "--until",
            until,
            "--by",
            "RSSI",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"finding #{target} accepted until {until}" in result.output
    # Then it is listed with its explanation
    listed = runner.invoke(main, ["findings", "accepted", "--format", "json"], env=env)
    (row,) = json.loads(listed.output)
    assert (row["finding_id"], row["reason"], row["accepted_by"], row["state"]) == (
        target,
        "public mirror",
        "RSSI",
        "live",
    )
    # And the JSON export marks the finding accepted
    exported = runner.invoke(main, ["findings", "--domain", STATS, "--format", "json"], env=env)
    csp = next(f for f in json.loads(exported.output) if f["check_id"] == "http.csp.missing")
    assert csp["accepted_until"] == until and csp["accepted_reason"] == "public mirror"
    # When it is withdrawn, Then it leaves the live list but stays in the trail
    ended = runner.invoke(main, ["findings", "unaccept", str(row["id"])], env=env)
    assert ended.exit_code == 0, ended.output
    assert (
        json.loads(
            runner.invoke(main, ["findings", "accepted", "--format", "json"], env=env).output
        )
        == []
    )
    trail = json.loads(
        runner.invoke(main, ["findings", "accepted", "--all", "--format", "json"], env=env).output
    )
    assert [r["state"] for r in trail] == ["revoked"]
    # Bad input exits 2 with a message
    bad = runner.invoke(
        main,
        [
            "findings",
            "accept",
            str(target),
            "--reason",
            "x",
            "--until",
            "2001-01-01",
            "--by",
            "RSSI",
        ],
        env=env,
    )
    assert bad.exit_code == 2 and "in the past" in bad.output
    with session_scope(seeded.settings) as session:
        assert len(list(session.exec(select(RiskAcceptance)))) == 1
