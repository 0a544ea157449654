"""The finding lifecycle: new, open, resolved after N complete scans, reopened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.store import LifecyclePolicy, record_host_result
from vigie.db.tables import FindingEvent, FindingRecord, ScanRun
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget, Severity

TARGET = HostTarget(domain="portail.gouv.example", ip="41.73.1.10", agency="A")
POLICY = LifecyclePolicy(resolve_after_scans=2, due_days={Severity.HIGH: 30})


@pytest.fixture
def settings(database_url: str) -> Iterator[Settings]:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": database_url})
    upgrade_database(settings)
    yield settings
    dispose_engines()


def host(findings: list[Finding], complete: bool = True) -> HostResult:
    result = HostResult(target=TARGET)
    result.families[Family.SERVICE] = FamilyResult(Family.SERVICE, findings, complete)
    return result


def redis(evidence: str = "PONG") -> Finding:
    return Finding(
        "service.database.no_auth", TARGET.domain, TARGET.ip, 6379, "redis", {"reply": evidence}
    )


def scan(settings: Settings, result: HostResult) -> None:
    with session_scope(settings) as session:
        run = ScanRun()
        session.add(run)
        session.flush()
        record_host_result(session, result, run_id=run.id, agency_id=None, policy=POLICY)


def status(settings: Settings) -> str:
    with session_scope(settings) as session:
        return session.exec(select(FindingRecord)).one().status


def test_lifecycle_new_open_resolved_reopened(settings: Settings) -> None:
    scan(settings, host([redis()]))
    assert status(settings) == "new"
    scan(settings, host([redis()]))
    assert status(settings) == "open"
    scan(settings, host([]))
    assert status(settings) == "open"  # one miss is not enough: flap damping
    scan(settings, host([]))
    assert status(settings) == "resolved"
    scan(settings, host([redis()]))
    assert status(settings) == "reopened"
    with session_scope(settings) as session:
        record = session.exec(select(FindingRecord)).one()
        assert record.severity == "critical"
        events = session.exec(select(FindingEvent).order_by(FindingEvent.id)).all()
    assert [e.to_status for e in events] == ["new", "open", "resolved", "reopened"]
    assert all(len(e.evidence_hash) == 64 for e in events)


def test_incomplete_scan_never_resolves(settings: Settings) -> None:
    scan(settings, host([redis()]))
    for _ in range(3):
        scan(settings, host([], complete=False))
    assert status(settings) == "new"


def test_miss_counter_restarts_when_seen_again(settings: Settings) -> None:
    scan(settings, host([redis()]))
    scan(settings, host([]))
    scan(settings, host([redis()]))
    scan(settings, host([]))
    assert status(settings) == "open"


def test_changed_evidence_is_logged_with_its_hash(settings: Settings) -> None:
    scan(settings, host([redis("PONG")]))
    scan(settings, host([redis("PONG")]))
    scan(settings, host([redis("redis_version:7.0.15")]))
    with session_scope(settings) as session:
        events = session.exec(select(FindingEvent)).all()
    assert len({e.evidence_hash for e in events}) == 2
    assert len(events) == 3  # new, open, then the evidence change


def test_severity_override_and_due_date(settings: Settings) -> None:
    policy = LifecyclePolicy(
        severity_overrides={"service.database.no_auth": Severity.HIGH}, due_days={Severity.HIGH: 30}
    )
    with session_scope(settings) as session:
        record_host_result(session, host([redis()]), run_id=None, agency_id=None, policy=policy)
    with session_scope(settings) as session:
        record = session.exec(select(FindingRecord)).one()
    assert record.severity == "high"
    assert record.due_date is not None and (record.due_date - record.first_seen.date()).days == 30


def test_vantages_keep_their_own_findings(settings: Settings) -> None:
    inside = LifecyclePolicy(resolve_after_scans=2, vantage="internal")
    with session_scope(settings) as session:
        record_host_result(session, host([redis()]), run_id=None, agency_id=None, policy=POLICY)
        record_host_result(session, host([redis()]), run_id=None, agency_id=None, policy=inside)
    with session_scope(settings) as session:
        records = session.exec(select(FindingRecord)).all()
    assert sorted(r.vantage for r in records) == ["default", "internal"]
    assert len({r.fingerprint for r in records}) == 2


def test_state_on_a_given_date_is_replayed_from_the_history(settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    from vigie.db.queries import FindingFilter, findings_as_of

    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for day, findings in enumerate([[redis("PONG")], [redis("v7")], [], []]):
        with session_scope(settings) as session:
            run = ScanRun()
            session.add(run)
            session.flush()
            record_host_result(
                session, host(findings), run_id=run.id, agency_id=None, policy=POLICY,
                now=start + timedelta(days=day),
            )  # fmt: skip
    with session_scope(settings) as session:
        before = findings_as_of(session, FindingFilter(), start - timedelta(hours=1))
        first = findings_as_of(session, FindingFilter(), start + timedelta(hours=1))
        second = findings_as_of(session, FindingFilter(), start + timedelta(days=1, hours=1))
        after = findings_as_of(session, FindingFilter(), start + timedelta(days=3, hours=1))
        resolved = findings_as_of(
            session, FindingFilter(include_resolved=True), start + timedelta(days=3, hours=1)
        )
    assert before == []
    assert [(v.status.value, v.evidence["reply"]) for v in first] == [("new", "PONG")]
    assert [(v.status.value, v.evidence["reply"]) for v in second] == [("open", "v7")]
    assert after == []
    assert [v.status.value for v in resolved] == ["resolved"]
