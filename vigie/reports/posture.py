"""The monthly national posture pack for the ministry.

Per ministry: critical exposures, median time to fix, share of agencies
meeting the baseline; a six-month trend. Everything is replayed from the
finding history as it stood at the end of the month (or now, for the current
month), graded under the policy in force on that day. With ``pseudonymise``
agency names become numbers drawn anew for each pack (two packs cannot be
linked) and no domain or address appears at all.
"""

from __future__ import annotations

import calendar
import random
import re
import secrets
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session, select

from vigie.config import Settings
from vigie.db.tables import Agency, Domain, DomainStatus, FindingRecord, HostScan
from vigie.errors import UsageError
from vigie.grading import (
    NOT_ASSESSED_CHECKS,
    Grade,
    OpenCheck,
    Policy,
    PolicySet,
    Requirement,
    grade_checks,
    policies_for,
)
from vigie.model import Severity, utcnow
from vigie.reports._history import Timeline, load_timeline
from vigie.reports.agency import median_grade

TREND_MONTHS = 6
MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = MONTH_PATTERN.match(text.strip())
        if not match:
            raise UsageError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-03")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        last = calendar.monthrange(self.year, self.month)[1]
        return datetime.combine(date(self.year, self.month, last), time.max, tzinfo=UTC)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


@dataclass(frozen=True)
class AgencyPosture:
    name: str
    number: int  # the pseudonym's number
    ministry: str | None
    applications: int
    assessed: int
    grade: str | None
    critical: int
    high: int
    meets_baseline: bool | None  # None: nothing assessed


@dataclass(frozen=True)
class MinistryPosture:
    name: str | None  # None: agencies with no ministry recorded
    agencies: int
    agencies_assessed: int
    agencies_meeting_baseline: int
    critical: int
    critical_applications: int
    critical_checks: tuple[tuple[str, int], ...]  # (check_id, open findings), most first
    median_days_to_fix: float | None
    fixed: int

    @property
    def baseline_share(self) -> float | None:
        if not self.agencies_assessed:
            return None
        return self.agencies_meeting_baseline / self.agencies_assessed


@dataclass(frozen=True)
class MonthPoint:
    month: Month
    critical: int
    high: int
    baseline_share: float | None
    median_days_to_fix: float | None
    fixed: int


@dataclass(frozen=True)
class PosturePack:
    month: Month
    as_of: datetime
    language: str
    generated_at: datetime
    policy: Policy
    pseudonymised: bool
    ministries: tuple[MinistryPosture, ...]
    agencies: tuple[AgencyPosture, ...]
    trend: tuple[MonthPoint, ...]
    requirement_failures: tuple[tuple[Requirement, int], ...]  # (requirement, applications failing)
    national: MonthPoint


@dataclass(frozen=True)
class _Snapshot:
    """Every application's grade (None: not assessed) at one moment."""

    policy: Policy
    grades: Mapping[str, Grade | None]
    open: Mapping[int, FindingRecord]


def _snapshot(
    timeline: Timeline,
    policies: PolicySet,
    domains: Sequence[Domain],
    scanned_by: Mapping[str, datetime],
    moment: datetime,
    flag_below: str,
) -> _Snapshot:
    # Months before the first baseline are graded under the first one, for a comparable trend.
    earliest = policies.policies[0]
    policy = policies.in_force(moment.date()) if moment.date() >= earliest.effective else earliest
    open_now = {
        i: r for i, r in timeline.open_at(moment).items() if not timeline.accepted_at(i, moment)
    }
    by_domain: dict[str, list[FindingRecord]] = {}
    for record in open_now.values():
        by_domain.setdefault(record.domain, []).append(record)
    grades: dict[str, Grade | None] = {}
    for domain in domains:
        records = by_domain.get(domain.name, [])
        first_scan = scanned_by.get(domain.name)
        assessed = first_scan is not None and first_scan <= moment
        if records and all(r.check_id in NOT_ASSESSED_CHECKS for r in records):
            assessed = False
        grades[domain.name] = (
            grade_checks(
                [OpenCheck(r.check_id, Severity(r.severity)) for r in records], policy, flag_below
            )
            if assessed
            else None
        )
    return _Snapshot(policy, grades, open_now)


def _median_days(durations: Sequence[timedelta]) -> float | None:
    if not durations:
        return None
    return round(statistics.median(d.total_seconds() / 86400 for d in durations), 1)


def _agencies_meeting(
    snapshot: _Snapshot,
    domains_of: Mapping[int | None, Sequence[Domain]],
    agency_ids: Sequence[int | None],
) -> tuple[int, int]:
    """(agencies with something assessed, those whose every assessed application meets the baseline)."""
    assessed = meeting = 0
    for agency_id in agency_ids:
        grades = [snapshot.grades[d.name] for d in domains_of.get(agency_id, [])]
        graded = [g for g in grades if g is not None]
        if not graded:
            continue
        assessed += 1
        meeting += all(g.meets_baseline for g in graded)
    return assessed, meeting


def build_posture_pack(
    session: Session,
    settings: Settings,
    month_text: str,
    *,
    language: str,
    pseudonymise: bool = False,
    now: datetime | None = None,
    salt: bytes | None = None,
) -> PosturePack:
    now = now or utcnow()
    month = Month.parse(month_text)
    if month.start > now:
        raise UsageError(f"--month {month.label} has not begun")
    as_of = min(month.end, now)
    policies = policies_for(settings)
    agencies = list(session.exec(select(Agency)))
    # Applications first scanned after the moment count as not assessed then.
    domains = list(session.exec(select(Domain).where(Domain.status == DomainStatus.ACTIVE)))
    domains_of: dict[int | None, list[Domain]] = {}
    for domain in domains:
        domains_of.setdefault(domain.agency_id, []).append(domain)
    scanned_by = _first_scans(session)
    timeline = load_timeline(session, session.exec(select(FindingRecord)))
    flag_below = settings.grading.flag_below

    def snapshot_at(moment: datetime) -> _Snapshot:
        return _snapshot(timeline, policies, domains, scanned_by, moment, flag_below)

    current = snapshot_at(as_of)
    fixes = _fixes(timeline, month.start, as_of)
    agency_ids = [a.id for a in agencies]
    national_assessed, national_meeting = _agencies_meeting(current, domains_of, agency_ids)
    national = MonthPoint(
        month=month,
        critical=_count(current.open.values(), Severity.CRITICAL),
        high=_count(current.open.values(), Severity.HIGH),
        baseline_share=(national_meeting / national_assessed) if national_assessed else None,
        median_days_to_fix=_median_days([d for _, d in fixes]),
        fixed=len(fixes),
    )
    return PosturePack(
        month=month,
        as_of=as_of,
        language=language,
        generated_at=now,
        policy=current.policy,
        pseudonymised=pseudonymise,
        ministries=tuple(_ministries(agencies, domains_of, current, timeline, fixes)),
        agencies=tuple(_agency_rows(agencies, domains_of, current, pseudonymise, salt)),
        trend=(*_trend(month, snapshot_at, timeline, domains_of, agency_ids), national),
        requirement_failures=tuple(_requirement_failures(current)),
        national=national,
    )


def _fixes(timeline: Timeline, start: datetime, end: datetime) -> list[tuple[int, timedelta]]:
    """Resolutions in [start, end]; the inventory (info) is not something one fixes."""
    return [
        (finding_id, duration)
        for finding_id, duration in timeline.fix_durations(start, end)
        if timeline.records[finding_id].severity != Severity.INFO.value
    ]


def _first_scans(session: Session) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for domain, finished in session.exec(select(HostScan.domain, HostScan.finished_at)):
        if domain not in first or finished < first[domain]:
            first[domain] = finished
    return first


def _count(records: Iterable[FindingRecord], severity: Severity) -> int:
    return sum(1 for r in records if r.severity == severity.value)


def _ministry_of(agency: Agency) -> str | None:
    return agency.parent.strip() if agency.parent and agency.parent.strip() else None


def _ministries(
    agencies: Sequence[Agency],
    domains_of: Mapping[int | None, Sequence[Domain]],
    current: _Snapshot,
    timeline: Timeline,
    fixes: Sequence[tuple[int, timedelta]],
) -> list[MinistryPosture]:
    members: dict[str | None, list[Agency]] = {}
    for agency in agencies:
        members.setdefault(_ministry_of(agency), []).append(agency)
    rows = []
    for ministry, group in members.items():
        ids = {a.id for a in group}
        critical = [
            r
            for r in current.open.values()
            if r.agency_id in ids and r.severity == Severity.CRITICAL.value
        ]
        checks: dict[str, int] = {}
        for record in critical:
            checks[record.check_id] = checks.get(record.check_id, 0) + 1
        assessed, meeting = _agencies_meeting(current, domains_of, [a.id for a in group])
        durations = [d for i, d in fixes if timeline.records[i].agency_id in ids]
        rows.append(
            MinistryPosture(
                name=ministry,
                agencies=len(group),
                agencies_assessed=assessed,
                agencies_meeting_baseline=meeting,
                critical=len(critical),
                critical_applications=len({r.domain for r in critical}),
                critical_checks=tuple(sorted(checks.items(), key=lambda kv: (-kv[1], kv[0]))),
                median_days_to_fix=_median_days(durations),
                fixed=len(durations),
            )
        )
    rows.sort(key=lambda m: (-m.critical, m.name is None, m.name or ""))
    return rows


def _agency_rows(
    agencies: Sequence[Agency],
    domains_of: Mapping[int | None, Sequence[Domain]],
    current: _Snapshot,
    pseudonymise: bool,
    salt: bytes | None,
) -> list[AgencyPosture]:
    order = sorted(agencies, key=lambda a: a.name.casefold())
    if pseudonymise:
        # A fresh random order per pack: the numbers say nothing about the names.
        random.Random(salt or secrets.token_bytes(16)).shuffle(order)
    rows = []
    for number, agency in enumerate(order, start=1):
        grades = [current.grades[d.name] for d in domains_of.get(agency.id, [])]
        graded = [g for g in grades if g is not None]
        open_records = [r for r in current.open.values() if r.agency_id == agency.id]
        rows.append(
            AgencyPosture(
                name="" if pseudonymise else agency.name,
                number=number,
                ministry=_ministry_of(agency),
                applications=len(grades),
                assessed=len(graded),
                grade=median_grade([g.letter for g in graded]),
                critical=sum(1 for r in open_records if r.severity == Severity.CRITICAL.value),
                high=sum(1 for r in open_records if r.severity == Severity.HIGH.value),
                meets_baseline=all(g.meets_baseline for g in graded) if graded else None,
            )
        )
    return rows


def _trend(
    month: Month,
    snapshot_at: Callable[[datetime], _Snapshot],
    timeline: Timeline,
    domains_of: Mapping[int | None, Sequence[Domain]],
    agency_ids: Sequence[int | None],
) -> list[MonthPoint]:
    months = []
    cursor = month
    for _ in range(TREND_MONTHS - 1):
        cursor = cursor.previous()
        months.append(cursor)
    points = []
    for past in reversed(months):
        snapshot = snapshot_at(past.end)
        assessed, meeting = _agencies_meeting(snapshot, domains_of, agency_ids)
        fixes = _fixes(timeline, past.start, past.end)
        points.append(
            MonthPoint(
                month=past,
                critical=_count(snapshot.open.values(), Severity.CRITICAL),
                high=_count(snapshot.open.values(), Severity.HIGH),
                baseline_share=(meeting / assessed) if assessed else None,
                median_days_to_fix=_median_days([d for _, d in fixes]),
                fixed=len(fixes),
            )
        )
    return points


def _requirement_failures(current: _Snapshot) -> list[tuple[Requirement, int]]:
    """Each requirement of the baseline with the number of applications failing it."""
    counts = dict.fromkeys((r.id for r in current.policy.requirements), 0)
    for grade in current.grades.values():
        for requirement_id in grade.baseline_failures if grade else ():
            counts[requirement_id] = counts.get(requirement_id, 0) + 1
    pairs = [(r, counts[r.id]) for r in current.policy.requirements]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0].id))
