"""The agency report: grade and history, what to fix first, findings by application.

Built from the store only. Each report handed out is kept as a ReportRecord
snapshot (finding ids and grades), so the next one says what changed since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.queries import FindingView
from vigie.db.tables import Agency, FindingRecord, GradeRecord, ReportRecord
from vigie.grading import (
    GRADES,
    ApplicationGrade,
    Policy,
    grade_applications,
    grade_rank,
    policies_for,
)
from vigie.model import Severity, utcnow
from vigie.reports._history import CHARTED_SEVERITIES, chart_moments, load_timeline
from vigie.reports.charts import LineChart, severity_line_chart
from vigie.targets.registry import find_agency

FIX_FIRST_LIMIT = 10
GRADE_HISTORY_LIMIT = 12

KIND_AGENCY = "agency"


@dataclass(frozen=True)
class CheckGroup:
    """One check on one application, with every place it was seen."""

    check_id: str
    severity: Severity
    findings: tuple[FindingView, ...]
    overdue: int
    due_date: date | None


@dataclass(frozen=True)
class ApplicationSection:
    application: ApplicationGrade
    groups: tuple[CheckGroup, ...]  # open and not accepted, most severe first
    accepted: tuple[FindingView, ...]
    history: tuple[GradeRecord, ...]
    next_grade: ApplicationGrade | None = None


@dataclass(frozen=True)
class Changes:
    previous_at: datetime | None
    new: tuple[FindingView, ...] = ()
    gone: tuple[FindingRecord, ...] = ()  # resolved or accepted since
    grade_changes: tuple[tuple[str, str, str], ...] = ()  # (domain, before, after)

    @property
    def first_report(self) -> bool:
        return self.previous_at is None


@dataclass(frozen=True)
class AgencyReport:
    agency: Agency
    language: str
    generated_at: datetime
    today: date
    policy: Policy
    next_policy: Policy | None
    grade: str | None  # the median grade of its applications
    applications: tuple[ApplicationSection, ...]
    fix_first: tuple[FindingView, ...]
    severity_counts: dict[Severity, int]
    overdue: int
    accepted: int
    flagged: int
    chart: LineChart
    changes: Changes
    grades: tuple[str, ...] = GRADES
    severities: tuple[Severity, ...] = field(default=tuple(reversed(Severity)))


def median_grade(letters: Sequence[str]) -> str | None:
    """The middle grade, the worse of the two middles when even: one weak application shows."""
    if not letters:
        return None
    ordered = sorted(letters, key=grade_rank)
    return ordered[len(ordered) // 2]


def fix_first(
    views: Sequence[FindingView], today: date, limit: int = FIX_FIRST_LIMIT
) -> list[FindingView]:
    """Most severe first; among equals, overdue first, then the nearest deadline."""
    candidates = [v for v in views if v.accepted_until is None and v.severity > Severity.INFO]
    candidates.sort(
        key=lambda v: (
            -v.severity.rank,
            not v.overdue(today),
            v.due_date or date.max,
            v.domain,
            v.check_id,
        )
    )
    return candidates[:limit]


def group_by_check(views: Sequence[FindingView], today: date) -> tuple[CheckGroup, ...]:
    groups: dict[str, list[FindingView]] = {}
    for view in views:
        groups.setdefault(view.check_id, []).append(view)
    result = [
        CheckGroup(
            check_id=check_id,
            severity=max(v.severity for v in members),
            findings=tuple(
                sorted(members, key=lambda v: (v.ip or "", v.port or 0, v.discriminator))
            ),
            overdue=sum(1 for v in members if v.overdue(today)),
            due_date=min((v.due_date for v in members if v.due_date), default=None),
        )
        for check_id, members in groups.items()
    ]
    result.sort(key=lambda g: (-g.severity.rank, -g.overdue, g.check_id))
    return tuple(result)


def build_agency_report(
    session: Session,
    settings: Settings,
    agency_name: str,
    *,
    language: str,
    today: date | None = None,
    now: datetime | None = None,
) -> AgencyReport:
    now = now or utcnow()
    today = today or now.date()
    agency = find_agency(session, agency_name)
    policies = policies_for(settings)
    policy = policies.select(settings.grading.policy, today)
    next_policy = policies.next_after(today)
    applications = grade_applications(
        session, settings, policy=policy, agency=agency.name, today=today
    )
    upcoming = (
        {
            a.domain: a
            for a in grade_applications(
                session, settings, policy=next_policy, agency=agency.name, today=today
            )
        }
        if next_policy
        else {}
    )
    history = _grade_history(session, agency)
    sections = tuple(
        ApplicationSection(
            application=a,
            groups=group_by_check([v for v in a.findings if v.accepted_until is None], today),
            accepted=tuple(v for v in a.findings if v.accepted_until is not None),
            history=tuple(history.get(a.domain, [])[-GRADE_HISTORY_LIMIT:]),
            next_grade=upcoming.get(a.domain),
        )
        for a in sorted(applications, key=_worst_first)
    )
    views = [v for a in applications for v in a.findings]
    counted = [v for v in views if v.accepted_until is None]
    return AgencyReport(
        agency=agency,
        language=language,
        generated_at=now,
        today=today,
        policy=policy,
        next_policy=next_policy,
        grade=median_grade([a.grade.letter for a in applications if a.grade]),
        applications=sections,
        fix_first=tuple(fix_first(views, today)),
        severity_counts={s: sum(1 for v in counted if v.severity is s) for s in reversed(Severity)},
        overdue=sum(a.overdue for a in applications),
        accepted=sum(a.accepted for a in applications),
        flagged=sum(1 for a in applications if a.flagged),
        chart=_findings_chart(session, agency, today),
        changes=_changes_since_last_report(session, agency, applications),
    )


def _worst_first(application: ApplicationGrade) -> tuple[int, int, str]:
    rank = grade_rank(application.grade.letter) if application.grade else -1
    return (-rank, -application.open_findings, application.domain)


def _grade_history(session: Session, agency: Agency) -> dict[str, list[GradeRecord]]:
    history: dict[str, list[GradeRecord]] = {}
    for record in session.exec(
        select(GradeRecord)
        .where(GradeRecord.agency_id == agency.id)
        .order_by(col(GradeRecord.computed_at), col(GradeRecord.id))
    ):
        history.setdefault(record.domain, []).append(record)
    return history


def _findings_chart(session: Session, agency: Agency, today: date) -> LineChart:
    records = session.exec(select(FindingRecord).where(FindingRecord.agency_id == agency.id))
    timeline = load_timeline(session, records)
    moments = chart_moments(timeline, today)
    return severity_line_chart(moments, timeline.severity_counts(moments), CHARTED_SEVERITIES)


# --- what changed since the previous report -------------------------------------


def _previous_report(session: Session, agency: Agency) -> ReportRecord | None:
    return session.exec(
        select(ReportRecord)
        .where(ReportRecord.kind == KIND_AGENCY, ReportRecord.agency_id == agency.id)
        .order_by(col(ReportRecord.generated_at).desc(), col(ReportRecord.id).desc())
    ).first()


def _changes_since_last_report(
    session: Session, agency: Agency, applications: Sequence[ApplicationGrade]
) -> Changes:
    previous = _previous_report(session, agency)
    if previous is None:
        return Changes(previous_at=None)
    before_findings = {int(k) for k in previous.snapshot.get("findings", {})}
    before_grades: dict[str, str] = previous.snapshot.get("grades", {})
    counted = [v for a in applications for v in a.findings if v.accepted_until is None]
    now_ids = {v.id for v in counted}
    gone_ids = sorted(before_findings - now_ids)
    gone = [
        record
        for record in (
            session.exec(select(FindingRecord).where(col(FindingRecord.id).in_(gone_ids)))
            if gone_ids
            else []
        )
        if record.severity != Severity.INFO.value  # the inventory changing is not news
    ]
    grade_changes = tuple(
        (a.domain, before_grades[a.domain], a.grade.letter)
        for a in applications
        if a.grade and a.domain in before_grades and before_grades[a.domain] != a.grade.letter
    )
    return Changes(
        previous_at=previous.generated_at,
        new=tuple(v for v in counted if v.id not in before_findings and v.severity > Severity.INFO),
        gone=tuple(sorted(gone, key=lambda r: (-Severity(r.severity).rank, r.domain, r.check_id))),
        grade_changes=grade_changes,
    )


def record_agency_report(session: Session, report: AgencyReport) -> ReportRecord:
    """Remember what this report showed, for the next one's 'changed since'."""
    findings = {
        str(group_view.id): group_view.check_id
        for section in report.applications
        for group in section.groups
        for group_view in group.findings
    }
    grades = {
        s.application.domain: s.application.grade.letter
        for s in report.applications
        if s.application.grade
    }
    record = ReportRecord(
        kind=KIND_AGENCY,
        agency_id=report.agency.id,
        generated_at=report.generated_at,
        snapshot={"findings": findings, "grades": grades, "policy": report.policy.version},
    )
    session.add(record)
    session.flush()
    return record
