"""Read-side queries over the store: findings as users see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from vigie.db.tables import Agency, FindingRecord, RiskAcceptance
from vigie.errors import NotFoundError
from vigie.model import Family, FindingStatus, Severity, canonical_domain


@dataclass(frozen=True)
class FindingFilter:
    agency: str | None = None
    domain: str | None = None
    severity_min: Severity | None = None
    statuses: tuple[FindingStatus, ...] = ()
    families: tuple[Family, ...] = ()
    check_ids: tuple[str, ...] = ()
    first_seen_since: date | None = None
    include_resolved: bool = False


@dataclass(frozen=True)
class FindingView:
    """A finding with its agency and acceptance, ready to render."""

    id: int
    fingerprint: str
    check_id: str
    severity: Severity
    domain: str
    ip: str | None
    port: int | None
    discriminator: str
    status: FindingStatus
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    due_date: date | None
    evidence: dict[str, Any]
    agency: str
    agency_id: int | None
    vantage: str
    accepted_until: date | None = None
    accepted_reason: str | None = None

    def overdue(self, today: date) -> bool:
        return (
            self.status is not FindingStatus.RESOLVED
            and self.accepted_until is None
            and self.due_date is not None
            and self.due_date < today
        )


def agency_matches(agency: Agency, name_or_code: str) -> bool:
    """The one rule for naming an agency: its name or its code, case and spaces aside."""
    wanted = name_or_code.strip().casefold()
    return wanted in (agency.name.casefold(), (agency.code or "").casefold())


def agency_ids(session: Session, name_or_code: str) -> list[int]:
    """IDs of the agencies ``name_or_code`` names, for a query filter; NotFoundError if none."""
    ids = [
        a.id
        for a in session.exec(select(Agency))
        if a.id is not None and agency_matches(a, name_or_code)
    ]
    if not ids:
        raise NotFoundError(f"no agency named {name_or_code!r}")
    return ids


def query_findings(
    session: Session, filters: FindingFilter, today: date | None = None
) -> list[FindingView]:
    """Findings matching ``filters``, most severe first."""
    # Plain rows, not ORM objects: a national overview reads 100,000 findings, and
    # building a model instance per row cost more than the query itself (5x slower).
    query: Any = select(*FindingRecord.__table__.columns)  # type: ignore[attr-defined]
    agencies = {a.id: a for a in session.exec(select(Agency))}
    if filters.agency:
        query = query.where(col(FindingRecord.agency_id).in_(agency_ids(session, filters.agency)))
    if filters.domain:
        query = query.where(FindingRecord.domain == canonical_domain(filters.domain))
    if filters.statuses:
        query = query.where(col(FindingRecord.status).in_([s.value for s in filters.statuses]))
    elif not filters.include_resolved:
        query = query.where(FindingRecord.status != FindingStatus.RESOLVED.value)
    if filters.families:
        query = query.where(col(FindingRecord.family).in_([f.value for f in filters.families]))
    if filters.check_ids:
        query = query.where(col(FindingRecord.check_id).in_(list(filters.check_ids)))
    records = list(session.exec(query))
    acceptances = _live_acceptances(
        session, [r.id for r in records if r.id is not None], today or date.today()
    )
    views = []
    for record in records:
        severity = Severity(record.severity)
        if filters.severity_min is not None and severity < filters.severity_min:
            continue
        if (
            filters.first_seen_since is not None
            and record.first_seen.date() < filters.first_seen_since
        ):
            continue
        agency = agencies.get(record.agency_id)
        acceptance = acceptances.get(record.id or -1)
        assert record.id is not None
        views.append(view_of_record(record, agency.name if agency else "", acceptance))
    views.sort(key=lambda v: (-v.severity.rank, v.domain, v.check_id, v.port or 0, v.discriminator))
    return views


def view_of_record(
    record: FindingRecord, agency: str, acceptance: RiskAcceptance | None = None
) -> FindingView:
    """The one way a stored finding becomes a view (with its live acceptance, if any)."""
    assert record.id is not None
    return FindingView(
        id=record.id,
        fingerprint=record.fingerprint,
        check_id=record.check_id,
        severity=Severity(record.severity),
        domain=record.domain,
        ip=record.ip,
        port=record.port,
        discriminator=record.discriminator,
        status=FindingStatus(record.status),
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        resolved_at=record.resolved_at,
        due_date=record.due_date,
        evidence=dict(record.evidence),
        agency=agency,
        agency_id=record.agency_id,
        vantage=record.vantage,
        accepted_until=acceptance.until if acceptance else None,
        accepted_reason=acceptance.reason if acceptance else None,
    )


#: Above this many ids a query reads every row and keeps the wanted ones in Python:
#: PostgreSQL takes at most 65,535 bound parameters per statement, and a national
#: overview asks about 100,000 findings.
MAX_IN_LIST = 5000


def where_in(query: Any, column: Any, ids: list[int]) -> Any:
    """``query`` restricted to ``column IN ids``, or unrestricted for a longer list
    (the caller keeps the rows whose id it wants)."""
    return query.where(col(column).in_(ids)) if len(ids) <= MAX_IN_LIST else query


def _live_acceptances(
    session: Session, finding_ids: list[int], today: date
) -> dict[int, RiskAcceptance]:
    if not finding_ids:
        return {}
    wanted = set(finding_ids)
    live: dict[int, RiskAcceptance] = {}
    query = where_in(select(RiskAcceptance), RiskAcceptance.finding_id, finding_ids)
    for acceptance in session.exec(query):
        if acceptance.finding_id not in wanted:
            continue
        if acceptance.revoked_at is None and acceptance.until >= today:
            live[acceptance.finding_id] = acceptance
    return live


def findings_as_of(session: Session, filters: FindingFilter, moment: datetime) -> list[FindingView]:
    """The findings as they stood at ``moment``, replayed from their event history.

    Each status change is stored with the evidence behind it and its hash, so
    the CERT can show what it knew on a given date, and an agency can
    reproduce it.
    """
    from dataclasses import replace

    from vigie.db.tables import FindingEvent

    every = FindingFilter(
        agency=filters.agency,
        domain=filters.domain,
        severity_min=filters.severity_min,
        families=filters.families,
        check_ids=filters.check_ids,
        first_seen_since=filters.first_seen_since,
        include_resolved=True,
    )
    views = query_findings(session, every, today=moment.date())
    if not views:
        return []
    latest: dict[int, FindingEvent] = {}
    events = session.exec(
        select(FindingEvent)
        .where(col(FindingEvent.finding_id).in_([v.id for v in views]))
        .where(FindingEvent.at <= moment)
        .order_by(col(FindingEvent.at), col(FindingEvent.id))
    )
    for event in events:
        latest[event.finding_id] = event
    wanted = set(filters.statuses)
    result = []
    for view in views:
        last = latest.get(view.id)
        if last is None:
            continue  # not yet seen at that moment
        status = FindingStatus(last.to_status)
        if wanted and status not in wanted:
            continue
        if not wanted and not filters.include_resolved and status is FindingStatus.RESOLVED:
            continue
        result.append(
            replace(
                view,
                status=status,
                evidence=dict(last.evidence),
                last_seen=last.at,
                resolved_at=last.at if status is FindingStatus.RESOLVED else None,
            )
        )
    return result
