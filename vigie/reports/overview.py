"""The CERT's overview across all agencies: ranking, grade distribution, common failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from vigie.config import Settings
from vigie.db.tables import FindingRecord
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
from vigie.reports.agency import median_grade
from vigie.reports.charts import BarChart, LineChart, grade_bar_chart, severity_line_chart

COMMON_FAILURES_LIMIT = 15
FLAGGED_LIMIT = 50


@dataclass(frozen=True)
class AgencyRow:
    agency: str
    grade: str | None
    applications: int
    flagged: int
    critical: int
    high: int
    overdue: int
    meeting_baseline: int
    mean_score: float

    @property
    def sort_key(self) -> tuple[int, float, float, str]:
        rank = grade_rank(self.grade) if self.grade else len(GRADES)
        share = self.flagged / self.applications if self.applications else 0.0
        return (rank, share, -self.mean_score, self.agency)


@dataclass(frozen=True)
class CommonFailure:
    check_id: str
    severity: Severity
    applications: int
    agencies: int
    findings: int


@dataclass(frozen=True)
class OverviewReport:
    language: str
    generated_at: datetime
    today: date
    policy: Policy
    ranking: tuple[AgencyRow, ...]
    distribution: dict[str, int]
    distribution_chart: BarChart
    common_failures: tuple[CommonFailure, ...]
    flagged: tuple[ApplicationGrade, ...]
    severity_counts: dict[Severity, int]
    applications: int
    assessed: int
    overdue: int
    accepted: int
    meeting_baseline: int
    chart: LineChart
    grades: tuple[str, ...] = GRADES


def agency_rows(applications: Sequence[ApplicationGrade]) -> list[AgencyRow]:
    """One row per agency, best first (median grade, then share flagged, then mean score)."""
    by_agency: dict[str, list[ApplicationGrade]] = {}
    for application in applications:
        by_agency.setdefault(application.agency, []).append(application)
    rows = []
    for agency, members in by_agency.items():
        graded = [a for a in members if a.grade]
        counted = [v for a in members for v in a.findings if v.accepted_until is None]
        rows.append(
            AgencyRow(
                agency=agency,
                grade=median_grade([a.grade.letter for a in graded if a.grade]),
                applications=len(members),
                flagged=sum(1 for a in members if a.flagged),
                critical=sum(1 for v in counted if v.severity is Severity.CRITICAL),
                high=sum(1 for v in counted if v.severity is Severity.HIGH),
                overdue=sum(a.overdue for a in members),
                meeting_baseline=sum(1 for a in graded if a.grade and a.grade.meets_baseline),
                mean_score=(sum(a.grade.score for a in graded if a.grade) / len(graded))
                if graded
                else 0.0,
            )
        )
    rows.sort(key=lambda row: row.sort_key)
    return rows


def common_failures(
    applications: Sequence[ApplicationGrade], limit: int = COMMON_FAILURES_LIMIT
) -> list[CommonFailure]:
    """Checks open on the most applications (inventory and scan problems left out)."""
    domains: dict[str, set[str]] = {}
    agencies: dict[str, set[str]] = {}
    findings: Counter[str] = Counter()
    severity: dict[str, Severity] = {}
    for application in applications:
        for view in application.findings:
            if view.accepted_until is not None or view.severity is Severity.INFO:
                continue
            domains.setdefault(view.check_id, set()).add(application.domain)
            agencies.setdefault(view.check_id, set()).add(application.agency)
            findings[view.check_id] += 1
            severity[view.check_id] = max(severity.get(view.check_id, view.severity), view.severity)
    failures = [
        CommonFailure(c, severity[c], len(domains[c]), len(agencies[c]), findings[c])
        for c in domains
    ]
    failures.sort(key=lambda f: (-f.applications, -f.severity.rank, f.check_id))
    return failures[:limit]


def build_overview_report(
    session: Session,
    settings: Settings,
    *,
    language: str,
    today: date | None = None,
    now: datetime | None = None,
) -> OverviewReport:
    now = now or utcnow()
    today = today or now.date()
    policy = policies_for(settings).select(settings.grading.policy, today)
    applications = grade_applications(session, settings, policy=policy, today=today)
    graded = [a for a in applications if a.grade]
    distribution = {g: sum(1 for a in graded if a.grade and a.grade.letter == g) for g in GRADES}
    counted = [v for a in applications for v in a.findings if v.accepted_until is None]
    flagged = sorted(
        (a for a in applications if a.flagged),
        key=lambda a: (grade_rank(a.grade.letter) * -1 if a.grade else 0, a.agency, a.domain),
    )
    # Ids and severities, all the timeline's counts read: no model instance, no evidence.
    rows: Any = session.exec(select(FindingRecord.id, FindingRecord.severity))
    timeline = load_timeline(session, rows)
    moments = chart_moments(timeline, today)
    return OverviewReport(
        language=language,
        generated_at=now,
        today=today,
        policy=policy,
        ranking=tuple(agency_rows(applications)),
        distribution=distribution,
        distribution_chart=grade_bar_chart(distribution, GRADES),
        common_failures=tuple(common_failures(applications)),
        flagged=tuple(flagged[:FLAGGED_LIMIT]),
        severity_counts={s: sum(1 for v in counted if v.severity is s) for s in reversed(Severity)},
        applications=len(applications),
        assessed=len(graded),
        overdue=sum(a.overdue for a in applications),
        accepted=sum(a.accepted for a in applications),
        meeting_baseline=sum(1 for a in graded if a.grade and a.grade.meets_baseline),
        chart=severity_line_chart(moments, timeline.severity_counts(moments), CHARTED_SEVERITIES),
    )
