"""Grades: a letter per application from its open findings, under a versioned policy.

Table-driven and separate from the checks (docs/grading.md): the policy file
(``vigie/data/policy.toml`` or ``grading.policy_file``) holds, per version, the
penalty of each severity and family, the caps of disqualifying checks and the
plain-words requirements of the national baseline. This module reads the
store, never the scanner.

An application is a registered domain with all its addresses and ports. Its
grade counts the findings that are open (not resolved) and not covered by a
live risk acceptance.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from vigie.catalogue import CATALOGUE
from vigie.config import Settings
from vigie.db.queries import FindingFilter, FindingView, agency_ids, agency_matches, query_findings
from vigie.db.tables import Agency, Domain, DomainStatus, GradeRecord, HostScan
from vigie.errors import ConfigError, UsageError
from vigie.model import Family, Severity, canonical_domain, family_of, utcnow

# Best first. The letters of grading.flag_below.
GRADES: tuple[str, ...] = ("A+", "A", "B", "C", "D", "E", "F")

# Policy names accepted where a version is expected.
CURRENT = "CURRENT"
NEXT = "NEXT"

# Scan problems that mean the application was not looked at, so it gets no grade.
NOT_ASSESSED_CHECKS = frozenset({"scan.unreachable", "scan.out_of_scope", "scan.not_authorised"})


def grade_rank(letter: str) -> int:
    """0 for A+, 6 for F: larger is worse."""
    return GRADES.index(letter)


def worse_grade(first: str, second: str) -> str:
    return first if grade_rank(first) >= grade_rank(second) else second


# --- the policy -------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One line of the baseline in plain words, and the checks that break it."""

    id: str
    texts: Mapping[str, str]  # language -> the requirement in plain words
    violated_by: frozenset[str]

    def text(self, language: str) -> str:
        return localised(self.texts, language, self.id)


@dataclass(frozen=True)
class Policy:
    version: str
    effective: date
    summaries: Mapping[str, str]  # language -> one line on what the version asks
    baseline: int
    thresholds: tuple[tuple[str, int], ...]  # (letter, minimum score), best first
    severity_penalty: Mapping[Severity, int]
    family_weight: Mapping[Family, float]
    check_penalty: Mapping[str, int]
    caps: Mapping[str, str]  # check_id -> the best letter it allows
    requirements: tuple[Requirement, ...]

    def summary(self, language: str) -> str:
        return localised(self.summaries, language, self.version)

    def requirement(self, requirement_id: str) -> Requirement | None:
        return next((r for r in self.requirements if r.id == requirement_id), None)

    def penalty(self, check_id: str, severity: Severity) -> int:
        if check_id in self.check_penalty:
            return self.check_penalty[check_id]
        weight = self.family_weight.get(family_of(check_id), 1.0)
        return round(self.severity_penalty[severity] * weight)

    def letter_for(self, score: int) -> str:
        for letter, minimum in self.thresholds:
            if score >= minimum:
                return letter
        return GRADES[-1]


@dataclass(frozen=True)
class PolicySet:
    """Every version of the policy, oldest first."""

    policies: tuple[Policy, ...]

    def in_force(self, on: date) -> Policy:
        current = [p for p in self.policies if p.effective <= on]
        if not current:
            raise ConfigError(
                f"no grading policy is in force on {on} (the first takes effect later)"
            )
        return current[-1]

    def next_after(self, on: date) -> Policy | None:
        upcoming = [p for p in self.policies if p.effective > on]
        return upcoming[0] if upcoming else None

    def version(self, name: str) -> Policy:
        for policy in self.policies:
            if policy.version == name:
                return policy
        known = ", ".join(p.version for p in self.policies)
        raise UsageError(f"no grading policy version {name!r} (known: {known}, CURRENT, NEXT)")

    def select(self, name: str | None, on: date) -> Policy:
        """``None``/``CURRENT``: in force on ``on``; ``NEXT``: the next stricter one; else a version."""
        if name is None or name.upper() == CURRENT:
            return self.in_force(on)
        if name.upper() == NEXT:
            upcoming = self.next_after(on)
            if upcoming is None:
                raise UsageError(
                    f"no grading policy is scheduled after {self.in_force(on).version}"
                )
            return upcoming
        return self.version(name)


def load_policies(path: Path | None = None) -> PolicySet:
    """Read and validate the policy file; the packaged national baseline by default."""
    if path is None:
        text = resources.files("vigie").joinpath("data/policy.toml").read_text(encoding="utf-8")
        where = "vigie/data/policy.toml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the grading policy ({exc.strerror})") from None
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    raw_policies = data.get("policy")
    if not isinstance(raw_policies, list) or not raw_policies:
        raise ConfigError(f"{where}: no [[policy]] version")
    policies = sorted(
        (_parse_policy(raw, where) for raw in raw_policies), key=lambda p: p.effective
    )
    _check_unique(policies, where)
    return PolicySet(tuple(policies))


def policies_for(settings: Settings) -> PolicySet:
    return load_policies(settings.grading.policy_file)


def _check_unique(policies: Sequence[Policy], where: str) -> None:
    versions = [p.version for p in policies]
    dates = [p.effective for p in policies]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"{where}: a policy version appears twice")
    if len(set(dates)) != len(dates):
        raise ConfigError(f"{where}: two policy versions take effect on the same day")


def _parse_policy(raw: Mapping[str, Any], where: str) -> Policy:
    version = str(raw.get("version", ""))
    context = f"{where}: policy {version or '?'}"
    if not version:
        raise ConfigError(f"{context}: 'version' is missing")
    effective = raw.get("effective")
    if not isinstance(effective, date) or isinstance(effective, datetime):
        raise ConfigError(f"{context}: 'effective' must be a date such as 2026-01-01")
    score = raw.get("score", {})
    return Policy(
        version=version,
        effective=effective,
        summaries=_parse_texts(raw.get("summary", {}), f"{context}: summary"),
        baseline=int(score.get("baseline", 100)),
        thresholds=_parse_thresholds(score.get("thresholds", {}), context),
        severity_penalty=_parse_severity_penalty(score.get("severity_penalty", {}), context),
        family_weight=_parse_family_weight(score.get("family_weight", {}), context),
        check_penalty=_parse_check_penalty(score.get("check_penalty", {}), context),
        caps=_parse_caps(raw.get("caps", {}), context),
        requirements=tuple(_parse_requirement(r, context) for r in raw.get("requirements", [])),
    )


def localised(texts: Mapping[str, str], language: str, fallback: str) -> str:
    """The text in ``language``, else English, else ``fallback``."""
    return texts.get(language) or texts.get("en") or fallback


def _parse_texts(raw: Any, context: str) -> dict[str, str]:
    if isinstance(raw, str):
        return {"en": raw}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f'{context}: give the text as {{ en = "...", fr = "..." }}')
    return dict(raw)


def _known_check(check_id: str, context: str) -> str:
    if check_id not in CATALOGUE:
        raise ConfigError(f"{context}: unknown check ID {check_id!r}")
    return check_id


def _parse_thresholds(raw: Mapping[str, Any], context: str) -> tuple[tuple[str, int], ...]:
    if set(raw) != set(GRADES):
        raise ConfigError(
            f"{context}: thresholds must give a minimum score for each of {', '.join(GRADES)}"
        )
    pairs = tuple((letter, int(raw[letter])) for letter in GRADES)
    minimums = [minimum for _, minimum in pairs]
    if minimums != sorted(minimums, reverse=True) or len(set(minimums)) != len(minimums):
        raise ConfigError(f"{context}: threshold scores must fall strictly from A+ to F")
    return pairs


def _parse_severity_penalty(raw: Mapping[str, Any], context: str) -> dict[Severity, int]:
    try:
        penalties = {Severity(name): int(points) for name, points in raw.items()}
    except ValueError as exc:
        raise ConfigError(f"{context}: severity_penalty: {exc}") from None
    missing = [s.value for s in Severity if s not in penalties]
    if missing:
        raise ConfigError(f"{context}: severity_penalty lacks {', '.join(missing)}")
    return penalties


def _parse_family_weight(raw: Mapping[str, Any], context: str) -> dict[Family, float]:
    try:
        return {Family(name): float(weight) for name, weight in raw.items()}
    except ValueError as exc:
        raise ConfigError(f"{context}: family_weight: {exc}") from None


def _parse_check_penalty(raw: Mapping[str, Any], context: str) -> dict[str, int]:
    return {_known_check(check_id, context): int(points) for check_id, points in raw.items()}


def _parse_caps(raw: Mapping[str, Any], context: str) -> dict[str, str]:
    caps: dict[str, str] = {}
    for letter, check_ids in raw.items():
        if letter not in GRADES:
            raise ConfigError(f"{context}: caps: {letter!r} is not a grade ({', '.join(GRADES)})")
        for check_id in check_ids:
            if check_id in caps:
                raise ConfigError(f"{context}: caps: {check_id} is listed under two grades")
            caps[_known_check(check_id, context)] = letter
    return caps


def _parse_requirement(raw: Mapping[str, Any], context: str) -> Requirement:
    requirement_id = str(raw.get("id", ""))
    if not requirement_id or not raw.get("violated_by"):
        raise ConfigError(f"{context}: each requirement needs an 'id' and 'violated_by'")
    return Requirement(
        id=requirement_id,
        texts=_parse_texts(raw.get("text", {}), f"{context}: requirement {requirement_id}"),
        violated_by=frozenset(_known_check(c, context) for c in raw["violated_by"]),
    )


# --- grading one application (pure) -------------------------------------------


@dataclass(frozen=True)
class OpenCheck:
    """What grading needs of an open finding."""

    check_id: str
    severity: Severity


@dataclass(frozen=True)
class Reason:
    """Why a grade is what it is; ``code`` is what GradeRecord.reasons stores."""

    kind: str  # cap | baseline | penalty
    check_id: str
    value: str  # the capped letter, the requirement id, or the points lost

    @property
    def code(self) -> str:
        return f"{self.kind}:{self.value}:{self.check_id}"

    @classmethod
    def parse(cls, code: str) -> Reason:
        kind, value, check_id = code.split(":", 2)
        return cls(kind, check_id, value)


@dataclass(frozen=True)
class Grade:
    letter: str
    score: int
    flagged: bool
    policy_version: str
    reasons: tuple[Reason, ...] = ()

    @property
    def caps(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.kind == "cap")

    @property
    def baseline_failures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.value for r in self.reasons if r.kind == "baseline"))

    @property
    def meets_baseline(self) -> bool:
        return not self.baseline_failures

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]


def grade_checks(checks: Iterable[OpenCheck], policy: Policy, flag_below: str = "C") -> Grade:
    """The grade of one application from its open, unaccepted findings."""
    worst = _worst_severity_per_check(checks)
    penalties = sorted(
        ((policy.penalty(check_id, severity), check_id) for check_id, severity in worst.items()),
        key=lambda item: (-item[0], item[1]),
    )
    score = max(0, policy.baseline - sum(points for points, _ in penalties))
    letter = policy.letter_for(score)
    caps = sorted(
        ((policy.caps[c], c) for c in worst if c in policy.caps),
        key=lambda item: (-grade_rank(item[0]), item[1]),
    )
    for capped, _ in caps:
        letter = worse_grade(letter, capped)
    reasons = [Reason("cap", check_id, capped) for capped, check_id in caps]
    reasons += _baseline_reasons(worst, policy)
    reasons += [
        Reason("penalty", check_id, str(points)) for points, check_id in penalties if points
    ]
    severe = any(severity >= Severity.HIGH for severity in worst.values())
    flagged = grade_rank(letter) > grade_rank(flag_below) or severe
    return Grade(letter, score, flagged, policy.version, tuple(reasons))


def _worst_severity_per_check(checks: Iterable[OpenCheck]) -> dict[str, Severity]:
    # A check counts once per application, at its worst severity, however many
    # addresses, ports or cookies show it: the grade measures kinds of weakness.
    worst: dict[str, Severity] = {}
    for check in checks:
        known = worst.get(check.check_id)
        if known is None or check.severity > known:
            worst[check.check_id] = check.severity
    return worst


def _baseline_reasons(worst: Mapping[str, Severity], policy: Policy) -> list[Reason]:
    reasons = []
    for requirement in policy.requirements:
        for check_id in sorted(requirement.violated_by & worst.keys()):
            reasons.append(Reason("baseline", check_id, requirement.id))
    return reasons


# --- applications from the store ---------------------------------------------


@dataclass(frozen=True)
class ApplicationGrade:
    """One registered domain, its grade (None when it could not be assessed) and counts."""

    domain: str
    agency: str
    agency_id: int | None
    grade: Grade | None
    open_findings: int = 0
    overdue: int = 0
    accepted: int = 0
    worst_severity: Severity | None = None
    findings: tuple[FindingView, ...] = field(default=(), repr=False)

    @property
    def flagged(self) -> bool:
        return self.grade is not None and self.grade.flagged

    def to_dict(self) -> dict[str, Any]:
        grade = self.grade
        return {
            "domain": self.domain,
            "agency": self.agency,
            "grade": grade.letter if grade else None,
            "score": grade.score if grade else None,
            "flagged": self.flagged,
            "meets_baseline": grade.meets_baseline if grade else None,
            "policy_version": grade.policy_version if grade else None,
            "open_findings": self.open_findings,
            "overdue": self.overdue,
            "accepted": self.accepted,
            "worst_severity": self.worst_severity.value if self.worst_severity else None,
            "caps": [f"{r.value} {r.check_id}" for r in grade.caps] if grade else [],
            "baseline_failures": list(grade.baseline_failures) if grade else [],
            "reasons": grade.reason_codes if grade else [],
        }


GRADE_COLUMNS = (
    "agency",
    "domain",
    "grade",
    "score",
    "flagged",
    "meets_baseline",
    "open_findings",
    "overdue",
    "accepted",
    "worst_severity",
    "caps",
    "baseline_failures",
    "policy_version",
)


def grade_views(
    domain: str,
    agency: str,
    agency_id: int | None,
    views: Sequence[FindingView],
    policy: Policy,
    *,
    flag_below: str,
    scanned: bool,
    today: date,
) -> ApplicationGrade:
    """Grade one application from its unresolved finding views."""
    counted = [v for v in views if v.accepted_until is None]
    assessed = scanned and (not views or any(v.check_id not in NOT_ASSESSED_CHECKS for v in views))
    grade = (
        grade_checks((OpenCheck(v.check_id, v.severity) for v in counted), policy, flag_below)
        if assessed
        else None
    )
    return ApplicationGrade(
        domain=domain,
        agency=agency,
        agency_id=agency_id,
        grade=grade,
        open_findings=len(counted),
        overdue=sum(1 for v in views if v.overdue(today)),
        accepted=len(views) - len(counted),
        worst_severity=max((v.severity for v in counted), default=None),
        findings=tuple(views),
    )


def grade_applications(
    session: Session,
    settings: Settings,
    *,
    policy: Policy | None = None,
    agency: str | None = None,
    domains: Iterable[str] | None = None,
    today: date | None = None,
) -> list[ApplicationGrade]:
    """Grade the active registered domains (of ``agency``, or only ``domains``), as of ``today``."""
    today = today or date.today()
    policy = policy or policies_for(settings).select(settings.grading.policy, today)
    applications = _applications(session, agency, domains)
    views = query_findings(session, FindingFilter(agency=agency), today)
    by_domain: dict[str, list[FindingView]] = {}
    for view in views:
        by_domain.setdefault(view.domain, []).append(view)
    scanned = _scanned_domains(session, [d.name for d, _ in applications])
    return [
        grade_views(
            domain.name,
            agency_row.name if agency_row else "",
            domain.agency_id,
            by_domain.get(domain.name, []),
            policy,
            flag_below=settings.grading.flag_below,
            scanned=domain.name in scanned,
            today=today,
        )
        for domain, agency_row in applications
    ]


def _applications(
    session: Session, agency: str | None, domains: Iterable[str] | None
) -> list[tuple[Domain, Agency | None]]:
    query = select(Domain).where(Domain.status == DomainStatus.ACTIVE).order_by(col(Domain.name))
    if domains is not None:
        query = query.where(col(Domain.name).in_(list(domains)))
    agencies = {a.id: a for a in session.exec(select(Agency))}
    if agency:
        # The agency's domains only, in SQL: an agency page need not load the whole registry.
        ids = [a_id for a_id, a in agencies.items() if agency_matches(a, agency)]
        query = query.where(col(Domain.agency_id).in_(ids))
    rows = [(d, agencies.get(d.agency_id)) for d in session.exec(query)]
    rows.sort(key=lambda pair: ((pair[1].name if pair[1] else ""), pair[0].name))
    return rows


def _scanned_domains(session: Session, names: Sequence[str]) -> set[str]:
    if not names:
        return set()
    query = select(HostScan.domain).where(col(HostScan.domain).in_(list(names))).distinct()
    return set(session.exec(query))


def record_grades(
    session: Session, run_id: int, settings: Settings, *, now: datetime | None = None
) -> list[GradeRecord]:
    """Store a GradeRecord for every application the run scanned (call at the end of a sweep).

    Calling it again for the same run replaces that run's records.
    """
    now = now or utcnow()
    policy = policies_for(settings).select(settings.grading.policy, now.date())
    scanned = sorted(set(session.exec(select(HostScan.domain).where(HostScan.run_id == run_id))))
    existing = {
        r.domain: r for r in session.exec(select(GradeRecord).where(GradeRecord.run_id == run_id))
    }
    records = []
    for application in grade_applications(
        session, settings, policy=policy, domains=scanned, today=now.date()
    ):
        if application.grade is None:
            continue
        record = existing.get(application.domain) or GradeRecord(
            domain=application.domain,
            run_id=run_id,
            grade="",
            score=0,
            flagged=False,
            policy_version="",
        )
        record.agency_id = application.agency_id
        record.computed_at = now
        record.grade = application.grade.letter
        record.score = application.grade.score
        record.flagged = application.grade.flagged
        record.policy_version = application.grade.policy_version
        record.reasons = application.grade.reason_codes
        session.add(record)
        records.append(record)
    session.flush()
    return records


def grade_history(
    session: Session, *, agency: str | None = None, domain: str | None = None
) -> list[GradeRecord]:
    """Every recorded grade, per application, oldest first."""
    query = select(GradeRecord).order_by(col(GradeRecord.domain), col(GradeRecord.computed_at))
    if domain:
        query = query.where(GradeRecord.domain == canonical_domain(domain))
    if agency:
        query = query.where(col(GradeRecord.agency_id).in_(agency_ids(session, agency)))
    return list(session.exec(query))


def history_to_dict(record: GradeRecord, agency: str = "") -> dict[str, Any]:
    return {
        "domain": record.domain,
        "agency": agency,
        "run_id": record.run_id,
        "computed_at": record.computed_at.isoformat(),
        "grade": record.grade,
        "score": record.score,
        "flagged": record.flagged,
        "policy_version": record.policy_version,
        "reasons": list(record.reasons),
    }


HISTORY_COLUMNS = (
    "agency",
    "domain",
    "computed_at",
    "run_id",
    "grade",
    "score",
    "flagged",
    "policy_version",
)
