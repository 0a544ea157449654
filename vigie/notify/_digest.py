"""Digests and overdue escalations: what each agency should hear, queued in the outbox.

One digest per agency with something to say (new, reopened or resolved
problems since its last digest, or recalls due), with its grades and their
trend; a copy for each operator covering only its applications; and, for
problems past their due date that the agency was told of, one escalation to
its escalation contacts and the CERT.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.queries import FindingFilter, FindingView, query_findings
from vigie.db.session import session_scope
from vigie.db.tables import Agency, Domain, DomainStatus, Lock, OutboxMessage
from vigie.errors import VigieError
from vigie.i18n import normalise_language
from vigie.model import utcnow
from vigie.notify._bookkeeping import load_notices, record_escalated, record_told
from vigie.notify._contacts import (
    AgencyContacts,
    agency_contacts,
    cert_addresses,
    escalation_addressing,
)
from vigie.notify._delivery import DeliveryReport, deliver_outbox
from vigie.notify._outbox import Addressing, Draft, Kind, queue_draft
from vigie.notify._problems import (
    ACTIVE,
    RESOLVED,
    Problem,
    Selection,
    SelectionRules,
    group_problems,
    overdue_to_escalate,
    select_for_digest,
)
from vigie.notify._render import (
    SUBJECT_OVERDUE,
    DigestContext,
    GradeLine,
    ProblemItem,
    digest_subject,
    display_name,
    notice_subject,
    problem_items,
    render_parts,
    severity_counts,
)

log = logging.getLogger("vigie.notify")

NOTIFY_LOCK = "notify"
NOTIFY_LOCK_STALE_AFTER = timedelta(hours=2)


class NotifyLocked(VigieError):
    """Another notify run is queuing digests."""


@dataclass
class Plan:
    """A message to queue and what the agency will then have been told."""

    draft: Draft
    told_active: list[int] = field(default_factory=list)
    told_resolved: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)


def rules_of(settings: Settings) -> SelectionRules:
    return SelectionRules(settings.notify.min_severity, settings.notify.recall_days)


def reply_address(settings: Settings) -> str | None:
    return settings.smtp.reply_to or settings.notify.cert_email


def language_of(agency: Agency, settings: Settings) -> str:
    return normalise_language(agency.language, settings.notify.language)


# --- digests ----------------------------------------------------------------------


def plan_digests(
    session: Session, settings: Settings, *, agencies: Sequence[Agency], now: datetime
) -> list[Plan]:
    """The digest (and operator copies) of each agency in ``agencies`` that has news."""
    views_by_agency = _views_by_agency(session, now.date())
    plans: list[Plan] = []
    for agency in agencies:
        assert agency.id is not None
        views = views_by_agency.get(agency.id, [])
        notices = load_notices(session, [v.id for v in views])
        selection = select_for_digest(views, notices, rules_of(settings), now)
        if not selection.has_news:
            continue
        plans.extend(_agency_digests(session, settings, agency, selection, now))
    return plans


def _agency_digests(
    session: Session, settings: Settings, agency: Agency, selection: Selection, now: datetime
) -> list[Plan]:
    assert agency.id is not None
    contacts = agency_contacts(session, agency.id)
    previous = _last_digest(session, agency.id)
    domains = _agency_domains(session, agency.id)
    grades = _current_grades(session, settings, domains, now.date())
    previous_grades: dict[str, str] = dict(previous.payload.get("grades", {})) if previous else {}
    since = previous.created_at if previous else None
    if contacts.reachable:
        addressing = Addressing.of(
            to=contacts.security or contacts.technical,
            cc=contacts.technical if contacts.security else (),
            bcc=cert_addresses(settings),
        )
    else:
        addressing = escalation_addressing(settings, contacts)
    if addressing.empty:
        log.warning("no recipient for the digest", extra={"agency": agency.name})
        return []
    main = _digest_plan(
        settings,
        agency,
        selection,
        addressing,
        _grade_lines(grades, previous_grades),
        since,
        now,
        escalated=not contacts.reachable,
        console_link=_console_link(session, settings, agency),
    )
    main.draft.payload["grades"] = grades
    main.told_active = [v.id for v in (*selection.announced, *selection.recalled)]
    main.told_resolved = [v.id for v in selection.resolved]
    plans = [main]
    for address, operated in _operators(contacts).items():
        part = selection.restricted_to(operated)
        if not part.has_news:
            continue
        copy = _digest_plan(
            settings,
            agency,
            part,
            Addressing.of(to=[address], bcc=cert_addresses(settings)),
            _grade_lines({d: g for d, g in grades.items() if d in operated}, previous_grades),
            since,
            now,
            operator_copy=True,
        )
        plans.append(copy)
    return plans


def _console_link(session: Session, settings: Settings, agency: Agency) -> str | None:
    """The agency's signed sign-in link to the web console (web.base_url set), or None.

    Operators' copies carry none: the link opens the whole agency."""
    from vigie.web.accounts import agency_link

    assert agency.id is not None
    return agency_link(session, settings, agency.id)


def _operators(contacts: AgencyContacts) -> dict[str, list[str]]:
    # An operator that is also a security or technical contact already has the full digest.
    full = {a.casefold() for a in (*contacts.security, *contacts.technical)}
    return {a: d for a, d in contacts.operators.items() if a.casefold() not in full}


def _digest_plan(
    settings: Settings,
    agency: Agency,
    selection: Selection,
    addressing: Addressing,
    grades: list[GradeLine],
    since: datetime | None,
    now: datetime,
    *,
    operator_copy: bool = False,
    escalated: bool = False,
    console_link: str | None = None,
) -> Plan:
    language = language_of(agency, settings)
    sections = _digest_sections(selection, language, settings.notify.max_problems_per_email)
    new, reopened, recalled, resolved = sections.items
    open_problems = sections.open_problems
    context = DigestContext(
        agency=display_name(agency.name),
        language=language,
        today=now.date(),
        since=since,
        new=new,
        reopened=reopened,
        recalled=recalled,
        resolved=resolved,
        omitted=sections.omitted,
        open_count=len(open_problems),
        overdue_count=len(group_problems(selection.overdue(now.date()))),
        accepted_count=selection.accepted,
        grades=grades,
        reply_to=reply_address(settings),
        operator_copy=operator_copy,
        escalated=escalated,
        open_by_severity=severity_counts([p.severity for p in open_problems]),
        console_link=console_link,
        link_days=settings.web.link_days,
    )
    template_context = context.as_template_context()
    template_context.update(sections.counts)
    text, html = render_parts("digest", language, template_context)
    subject = digest_subject(
        language,
        agency.name,
        new=sections.counts["new_count"] + sections.counts["reopened_count"],
        resolved=sections.counts["resolved_count"],
        open_count=len(open_problems),
        operator_copy=operator_copy,
    )
    draft = Draft(
        kind=Kind.DIGEST,
        agency_id=agency.id,
        agency=agency.name,
        language=language,
        subject=subject,
        text=text,
        html=html,
        addressing=addressing,
        payload={
            "operator_copy": operator_copy,
            "findings": {
                "new": [v.id for v in selection.announced],
                "recalled": [v.id for v in selection.recalled],
                "resolved": [v.id for v in selection.resolved],
            },
        },
        created_at=now,
    )
    return Plan(draft)


@dataclass(frozen=True)
class _DigestSections:
    """The digest's lists (new, reopened, recalled, resolved) within the email's limit."""

    items: tuple[list[ProblemItem], list[ProblemItem], list[ProblemItem], list[ProblemItem]]
    omitted: int
    counts: dict[str, int]
    open_problems: list[Problem]


def _digest_sections(selection: Selection, language: str, limit: int) -> _DigestSections:
    """New and reopened problems come first with their fix, then those recalled, within
    ``limit`` in all; resolved ones are listed apart, up to ``limit`` of their own."""
    grouped = {
        name: group_problems(views)
        for name, views in (
            ("new", selection.new),
            ("reopened", selection.reopened),
            ("recalled", selection.recalled),
            ("resolved", selection.resolved),
        )
    }
    left = limit
    shown: dict[str, list[ProblemItem]] = {}
    omitted = 0
    for name, with_fix in (("new", True), ("reopened", True), ("recalled", False)):
        shown[name], left_out = problem_items(
            grouped[name], language, with_fix=with_fix, limit=left
        )
        left -= len(shown[name])
        omitted += left_out
    shown["resolved"], left_out = problem_items(
        grouped["resolved"], language, with_fix=False, limit=limit
    )
    return _DigestSections(
        items=(shown["new"], shown["reopened"], shown["recalled"], shown["resolved"]),
        omitted=omitted + left_out,
        counts={f"{name}_count": len(problems) for name, problems in grouped.items()},
        open_problems=group_problems(selection.still_open),
    )


def _grade_lines(grades: dict[str, str], previous: dict[str, str]) -> list[GradeLine]:
    from vigie.grading import grade_rank

    lines = []
    for domain, letter in sorted(grades.items()):
        before = previous.get(domain)
        if before is None:
            trend = "first"
        elif grade_rank(letter) < grade_rank(before):
            trend = "better"
        elif grade_rank(letter) > grade_rank(before):
            trend = "worse"
        else:
            trend = "same"
        lines.append(GradeLine(domain, letter, before, trend))
    return lines


def _current_grades(
    session: Session, settings: Settings, domains: list[str], today: date
) -> dict[str, str]:
    """The grade letter of each of ``domains`` that could be assessed."""
    from vigie.grading import grade_applications

    if not domains:
        return {}
    return {
        application.domain: application.grade.letter
        for application in grade_applications(session, settings, domains=domains, today=today)
        if application.grade is not None
    }


def _agency_domains(session: Session, agency_id: int) -> list[str]:
    return list(
        session.exec(
            select(Domain.name).where(
                Domain.agency_id == agency_id, Domain.status == DomainStatus.ACTIVE
            )
        )
    )


def _last_digest(session: Session, agency_id: int) -> OutboxMessage | None:
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.agency_id == agency_id, OutboxMessage.kind == Kind.DIGEST)
        .order_by(col(OutboxMessage.id).desc())
    )
    for row in rows:
        if not row.payload.get("operator_copy") and "retry_of" not in row.payload:
            return row
    return None


def _views_by_agency(session: Session, today: date) -> dict[int, list[FindingView]]:
    by_agency: dict[int, list[FindingView]] = {}
    for view in query_findings(session, FindingFilter(include_resolved=True), today):
        if view.agency_id is not None:
            by_agency.setdefault(view.agency_id, []).append(view)
    return by_agency


# --- overdue escalation -------------------------------------------------------------------


def plan_overdue_escalations(
    session: Session, settings: Settings, *, agencies: Sequence[Agency], now: datetime
) -> list[Plan]:
    """One escalation per agency whose told-of problems are past their due date."""
    views_by_agency = _views_by_agency(session, now.date())
    plans = []
    for agency in agencies:
        assert agency.id is not None
        views = views_by_agency.get(agency.id, [])
        notices = load_notices(session, [v.id for v in views])
        overdue = overdue_to_escalate(views, notices, rules_of(settings), now.date())
        if not overdue:
            continue
        addressing = escalation_addressing(settings, agency_contacts(session, agency.id))
        if addressing.empty:
            log.warning("overdue problems and nobody to escalate to", extra={"agency": agency.name})
            continue
        plan = _overdue_plan(settings, agency, group_problems(overdue), addressing, now)
        plan.escalated = [v.id for v in overdue]
        plans.append(plan)
    return plans


def _overdue_plan(
    settings: Settings,
    agency: Agency,
    problems: list[Problem],
    addressing: Addressing,
    now: datetime,
) -> Plan:
    language = language_of(agency, settings)
    items, omitted = problem_items(
        problems, language, with_fix=False, limit=settings.notify.max_problems_per_email
    )
    context: dict[str, Any] = {
        "language": language,
        "reason": "overdue",
        "agency": display_name(agency.name),
        "items": items,
        "omitted": omitted,
        "reply_to": reply_address(settings),
    }
    text, html = render_parts("escalation", language, context)
    draft = Draft(
        kind=Kind.ESCALATION,
        agency_id=agency.id,
        agency=agency.name,
        language=language,
        subject=notice_subject(language, SUBJECT_OVERDUE, agency.name, len(problems)),
        text=text,
        html=html,
        addressing=addressing,
        payload={"reason": "overdue", "findings": [i for p in problems for i in p.finding_ids]},
        created_at=now,
    )
    return Plan(draft)


# --- queuing -------------------------------------------------------------------------------


def queue_plans(
    session: Session, settings: Settings, plans: Sequence[Plan], now: datetime
) -> list[OutboxMessage]:
    """Write each plan's message and its bookkeeping, in the caller's transaction."""
    rows = []
    for plan in plans:
        row = queue_draft(session, settings, plan.draft)
        record_told(session, plan.told_active, ACTIVE, now, row.id)
        record_told(session, plan.told_resolved, RESOLVED, now, row.id)
        record_escalated(session, plan.escalated, now)
        rows.append(row)
    return rows


def selected_agencies(session: Session, agency: str | None) -> list[Agency]:
    if agency:
        from vigie.targets.registry import find_agency

        return [find_agency(session, agency)]
    query = select(Agency).where(col(Agency.active).is_(True)).order_by(col(Agency.name))
    return list(session.exec(query))


# --- the notify run ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedMessage:
    outbox_id: int | None
    kind: str
    agency: str
    subject: str
    recipients: tuple[str, ...]


@dataclass
class NotifyReport:
    queued: list[QueuedMessage] = field(default_factory=list)
    drafts: list[Draft] = field(default_factory=list)  # a dry run's messages, not queued
    delivery: DeliveryReport | None = None


def run_notify(
    settings: Settings,
    *,
    agency: str | None = None,
    dry_run: bool = False,
    deliver: bool = True,
    now: datetime | None = None,
) -> NotifyReport:
    """Queue the digests and escalations that are due, then deliver the outbox.

    A dry run builds the same messages and changes nothing.
    """
    now = now or utcnow()
    report = NotifyReport()
    if dry_run:
        with session_scope(settings) as session:
            plans = _plan_all(session, settings, agency, now)
        report.drafts = [plan.draft for plan in plans]
        return report
    with notify_lock(settings):
        with session_scope(settings) as session:
            plans = _plan_all(session, settings, agency, now)
            for row, plan in zip(queue_plans(session, settings, plans, now), plans, strict=True):
                report.queued.append(
                    QueuedMessage(
                        row.id, row.kind, plan.draft.agency, row.subject, tuple(row.recipients)
                    )
                )
        for message in report.queued:
            log.info(
                "email queued",
                extra={
                    "outbox_id": message.outbox_id,
                    "kind": message.kind,
                    "agency": message.agency,
                },
            )
        if deliver:
            report.delivery = deliver_outbox(settings, now=now)
    return report


def _plan_all(
    session: Session, settings: Settings, agency: str | None, now: datetime
) -> list[Plan]:
    agencies = selected_agencies(session, agency)
    return plan_digests(session, settings, agencies=agencies, now=now) + plan_overdue_escalations(
        session, settings, agencies=agencies, now=now
    )


@contextmanager
def notify_lock(settings: Settings) -> Iterator[None]:
    """Only one run queues digests at a time (the row's primary key decides)."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    _take_lock(settings, holder)
    try:
        yield
    finally:
        with session_scope(settings) as session:
            lock = session.get(Lock, NOTIFY_LOCK)
            if lock is not None and lock.holder == holder:
                session.delete(lock)


def _take_lock(settings: Settings, holder: str) -> None:
    for _ in range(2):
        try:
            with session_scope(settings) as session:
                session.add(Lock(name=NOTIFY_LOCK, holder=holder))
            return
        except IntegrityError:
            with session_scope(settings) as session:
                lock = session.get(Lock, NOTIFY_LOCK)
                if lock is None:
                    continue
                if utcnow() - lock.heartbeat_at < NOTIFY_LOCK_STALE_AFTER:
                    raise NotifyLocked(
                        f"another notify run is active ({lock.holder}, since "
                        f"{lock.acquired_at:%Y-%m-%d %H:%M} UTC); this one did nothing"
                    ) from None
                session.delete(lock)  # its holder died without releasing it
    raise NotifyLocked("another notify run took the lock at the same moment; this one did nothing")
