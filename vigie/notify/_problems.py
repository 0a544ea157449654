"""What a message says, decided from the store without sending anything (pure).

One problem, one message: the same weakness seen through several names or
addresses (one server behind many names, a wildcard zone, a name with many
addresses) is one :class:`Problem` listing where it was seen. Two findings
are the same problem when they share the check, the port and the
discriminator, and either the address or the name.

What an agency is told follows what it was told before (:class:`Notice`):
a finding it never heard of is new; one it was told was fixed and is back is
reopened; one it was told of and is now resolved is announced as resolved;
one it was told of and still open is recalled at intervals by severity
(``notify.recall_days``), not in every digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from vigie.db.queries import FindingView
from vigie.model import Family, FindingStatus, Severity, family_of

ACTIVE = "active"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Notice:
    """What the agency was last told about one finding (a ``FindingNotice`` row)."""

    told_status: str  # ACTIVE | RESOLVED
    last_told_at: datetime
    escalated_at: datetime | None = None


@dataclass(frozen=True)
class Place:
    domain: str
    ip: str | None
    port: int | None


@dataclass(frozen=True)
class Problem:
    """One weakness and every place it was seen."""

    check_id: str
    severity: Severity
    discriminator: str
    places: tuple[Place, ...]
    finding_ids: tuple[int, ...]
    evidence: Mapping[str, Any]
    reopened: bool = False
    due_date: date | None = None
    first_seen: datetime | None = None

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(place.domain for place in self.places))


def group_problems(views: Iterable[FindingView]) -> list[Problem]:
    """The findings as problems, most severe first."""
    buckets: dict[tuple[str, int | None, str], list[FindingView]] = {}
    for view in views:
        buckets.setdefault((view.check_id, view.port, view.discriminator), []).append(view)
    problems = [
        _problem(component) for bucket in buckets.values() for component in _components(bucket)
    ]
    problems.sort(key=lambda p: (-p.severity.rank, p.check_id, p.domains, p.discriminator))
    return problems


def _components(views: list[FindingView]) -> list[list[FindingView]]:
    # Union-find over the views of one bucket: linked by a shared name or address.
    parent = list(range(len(views)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    first_with: dict[tuple[str, str], int] = {}
    for index, view in enumerate(views):
        for key in (("domain", view.domain), ("ip", view.ip or "")):
            if not key[1]:
                continue
            other = first_with.setdefault(key, index)
            parent[root(index)] = root(other)
    components: dict[int, list[FindingView]] = {}
    for index, view in enumerate(views):
        components.setdefault(root(index), []).append(view)
    return list(components.values())


def _problem(views: list[FindingView]) -> Problem:
    views = sorted(views, key=lambda v: (-v.severity.rank, v.domain, v.ip or "", v.id))
    worst = views[0]
    places = tuple(dict.fromkeys(Place(v.domain, v.ip, v.port) for v in views))
    due_dates = [v.due_date for v in views if v.due_date is not None]
    return Problem(
        check_id=worst.check_id,
        severity=worst.severity,
        discriminator=worst.discriminator,
        places=places,
        finding_ids=tuple(v.id for v in views),
        evidence=worst.evidence,
        reopened=any(v.status is FindingStatus.REOPENED for v in views),
        due_date=min(due_dates) if due_dates else None,
        first_seen=min(v.first_seen for v in views),
    )


# --- what to say --------------------------------------------------------------


@dataclass(frozen=True)
class SelectionRules:
    min_severity: Severity
    recall_days: Mapping[Severity, int]


@dataclass
class Selection:
    """The findings of one digest, sorted into what is said of each."""

    new: list[FindingView] = field(default_factory=list)
    reopened: list[FindingView] = field(default_factory=list)
    resolved: list[FindingView] = field(default_factory=list)
    recalled: list[FindingView] = field(default_factory=list)
    still_open: list[FindingView] = field(default_factory=list)  # every open one, for counts
    accepted: int = 0

    @property
    def has_news(self) -> bool:
        """Whether a digest is worth sending: counts alone are not news."""
        return bool(self.new or self.reopened or self.resolved or self.recalled)

    @property
    def announced(self) -> list[FindingView]:
        return self.new + self.reopened

    def overdue(self, today: date) -> list[FindingView]:
        return [v for v in self.still_open if v.overdue(today)]

    def restricted_to(self, domains: Sequence[str]) -> Selection:
        """The part about ``domains`` only (an operator's copy)."""
        wanted = set(domains)

        def keep(views: list[FindingView]) -> list[FindingView]:
            return [v for v in views if v.domain in wanted]

        return Selection(
            new=keep(self.new),
            reopened=keep(self.reopened),
            resolved=keep(self.resolved),
            recalled=keep(self.recalled),
            still_open=keep(self.still_open),
        )


def reported(view: FindingView, rules: SelectionRules) -> bool:
    """Whether agencies hear of this finding at all: scan problems are the CERT's business."""
    return view.severity >= rules.min_severity and family_of(view.check_id) is not Family.SCAN


def select_for_digest(
    views: Iterable[FindingView],
    notices: Mapping[int, Notice],
    rules: SelectionRules,
    now: datetime,
) -> Selection:
    """Sort an agency's findings (resolved ones included) by what the digest says of each."""
    selection = Selection()
    for view in views:
        if not reported(view, rules):
            continue
        notice = notices.get(view.id)
        if view.status is FindingStatus.RESOLVED:
            if notice is not None and notice.told_status == ACTIVE:
                selection.resolved.append(view)
            continue
        if view.accepted_until is not None:
            selection.accepted += 1
            continue
        selection.still_open.append(view)
        if notice is None:
            bucket = selection.reopened if view.status is FindingStatus.REOPENED else selection.new
            bucket.append(view)
        elif notice.told_status == RESOLVED:
            selection.reopened.append(view)
        elif recall_due(view.severity, notice.last_told_at, rules.recall_days, now):
            selection.recalled.append(view)
    return selection


def recall_due(
    severity: Severity, last_told_at: datetime, recall_days: Mapping[Severity, int], now: datetime
) -> bool:
    days = recall_days.get(severity)
    return days is not None and last_told_at + timedelta(days=days) <= now


def overdue_to_escalate(
    views: Iterable[FindingView],
    notices: Mapping[int, Notice],
    rules: SelectionRules,
    today: date,
) -> list[FindingView]:
    """Findings past their due date that the agency was told of and that were not escalated."""
    escalate = []
    for view in views:
        notice = notices.get(view.id)
        if (
            reported(view, rules)
            and view.overdue(today)
            and notice is not None
            and notice.told_status == ACTIVE
            and notice.escalated_at is None
        ):
            escalate.append(view)
    return escalate
