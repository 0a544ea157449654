"""Deliver the outbox: each message exactly once, nothing lost.

A row is claimed (``queued`` -> ``sending``, a compare-and-set in the
database, so two runs never send the same row), handed to the server, and
marked ``sent`` only once the server accepted it. A temporary failure puts it
back in the queue with an exponential back-off; a permanent one marks it
``failed``, records the server's answer and escalates. A claim lapses after
:data:`CLAIM_LEASE`, so a run that died mid-send leaves nothing stuck; the
resend then carries the same Message-ID.

A recipient refused for good (5xx on RCPT) is a bounce: the contact is marked
unhealthy, the CERT is told, and the rest of the recipients still get the message.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import Agency, OutboxMessage
from vigie.i18n import normalise_language
from vigie.model import utcnow
from vigie.notify._contacts import (
    agency_contacts,
    cert_addresses,
    escalation_addressing,
    mark_unhealthy,
)
from vigie.notify._outbox import (
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    Addressing,
    Draft,
    Kind,
    email_for_row,
    new_message_id,
    queue_draft,
)
from vigie.notify._render import (
    SUBJECT_BOUNCE,
    SUBJECT_UNDELIVERED,
    display_name,
    notice_subject,
    render_parts,
)
from vigie.notify._smtp import MessageRefused, Refusal, ServerUnavailable, SmtpConnection

log = logging.getLogger("vigie.notify")

CLAIM_LEASE = timedelta(minutes=15)
ERROR_CHARS = 500


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    bounced: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why the server could not be used, if it could not


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long a message waits after its ``attempts``-th temporary failure."""
    notify = settings.notify
    seconds = min(notify.retry_base_s * 2 ** max(0, attempts - 1), notify.retry_max_s)
    return timedelta(seconds=seconds)


def deliver_outbox(
    settings: Settings,
    *,
    now: datetime | None = None,
    only_ids: Collection[int] | None = None,
) -> DeliveryReport:
    """Send every queued message that is due (or only ``only_ids``); never raises on SMTP trouble."""
    now = now or utcnow()
    report = DeliveryReport()
    _release_lapsed_claims(settings, now)
    wanted = set(only_ids) if only_ids is not None else None
    if _next_due(settings, now, set(), wanted) is None:
        return report
    connection = SmtpConnection(settings)
    try:
        connection.open()
    except ServerUnavailable as exc:
        _server_unavailable(settings, exc, now, wanted, report)
        return report
    attempted: set[int] = set()
    try:
        while (row_id := _next_due(settings, now, attempted, wanted)) is not None:
            attempted.add(row_id)
            new_rows = _deliver_one(settings, connection, row_id, now, report)
            if report.unavailable is not None:
                break
            if wanted is not None:
                wanted.update(new_rows)  # bounce notices and escalations go out in the same run
    finally:
        connection.close()
    return report


def _deliver_one(
    settings: Settings,
    connection: SmtpConnection,
    row_id: int,
    now: datetime,
    report: DeliveryReport,
) -> list[int]:
    row = _claim(settings, row_id, now)
    if row is None:
        return []  # another run took it
    message = email_for_row(settings, row)
    try:
        refusals = connection.send(message, row.recipients)
    except ServerUnavailable as exc:
        report.unavailable = str(exc)
        _log_unavailable(exc)
        return _temporary_failure(settings, row_id, now, str(exc), report)
    except MessageRefused as exc:
        return _refused(settings, row, exc, now, report)
    _mark(
        settings,
        row_id,
        SENDING,
        status=SENT,
        sent_at=now,
        last_error=None,
        attempts=row.attempts + 1,
    )
    report.sent.append(row_id)
    log.info(
        "email sent",
        extra={
            "outbox_id": row_id,
            "kind": row.kind,
            "agency_id": row.agency_id,
            "recipients": ",".join(
                a for a in row.recipients if a not in {r.address for r in refusals}
            ),
            "message_id": row.message_id,
        },
    )
    return _partial_refusals(settings, row, refusals, now, report)


# --- outcomes ---------------------------------------------------------------------


def _refused(
    settings: Settings,
    row: OutboxMessage,
    exc: MessageRefused,
    now: datetime,
    report: DeliveryReport,
) -> list[int]:
    assert row.id is not None
    if not exc.refusals:
        if exc.permanent:
            return _permanent_failure(settings, row.id, now, str(exc), report)
        return _temporary_failure(settings, row.id, now, str(exc), report)
    # Every recipient refused: the bounces are recorded, the temporary ones retried.
    new_rows = _record_bounces(settings, row, exc.refusals, report)
    retry = [r.address for r in exc.refusals if not r.permanent]
    errors = "; ".join(f"{r.address}: {r.reply}" for r in exc.refusals)
    if retry:
        _mark(settings, row.id, SENDING, recipients=retry)
        return new_rows + _temporary_failure(settings, row.id, now, errors, report)
    return new_rows + _permanent_failure(settings, row.id, now, errors, report)


def _partial_refusals(
    settings: Settings,
    row: OutboxMessage,
    refusals: list[Refusal],
    now: datetime,
    report: DeliveryReport,
) -> list[int]:
    if not refusals:
        return []
    new_rows = _record_bounces(settings, row, refusals, report)
    retry = [r.address for r in refusals if not r.permanent]
    if retry:
        new_rows.append(_requeue_for(settings, row, retry, now, refusals))
    return new_rows


def _requeue_for(
    settings: Settings,
    row: OutboxMessage,
    addresses: list[str],
    now: datetime,
    refusals: list[Refusal],
) -> int:
    """A copy of an accepted message for the recipients the server deferred."""
    with session_scope(settings) as session:
        copy = OutboxMessage(
            agency_id=row.agency_id,
            kind=row.kind,
            recipients=addresses,
            subject=row.subject,
            body_text=row.body_text,
            body_html=row.body_html,
            message_id=new_message_id(settings),
            status=QUEUED,
            attempts=1,
            next_attempt_at=now + backoff(settings, 1),
            last_error="; ".join(f"{r.address}: {r.reply}" for r in refusals if not r.permanent)[
                :ERROR_CHARS
            ],
            payload={**row.payload, "retry_of": row.id},
            created_at=row.created_at,
        )
        session.add(copy)
        session.flush()
        assert copy.id is not None
        return copy.id


def _temporary_failure(
    settings: Settings, row_id: int, now: datetime, error: str, report: DeliveryReport
) -> list[int]:
    with session_scope(settings) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        attempts = row.attempts + 1
    if attempts >= settings.notify.max_attempts:
        return _permanent_failure(
            settings, row_id, now, f"gave up after {attempts} attempts: {error}", report
        )
    _mark(
        settings,
        row_id,
        SENDING,
        status=QUEUED,
        attempts=attempts,
        next_attempt_at=now + backoff(settings, attempts),
        last_error=error[:ERROR_CHARS],
    )
    report.deferred.append(row_id)
    log.warning("email deferred", extra={"outbox_id": row_id, "attempts": attempts, "error": error})
    return []


def _permanent_failure(
    settings: Settings, row_id: int, now: datetime, error: str, report: DeliveryReport
) -> list[int]:
    with session_scope(settings) as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        row.status = FAILED
        row.attempts += 1
        row.next_attempt_at = None
        row.last_error = error[:ERROR_CHARS]
        session.add(row)
        escalation = _escalate_undelivered(session, settings, row, error, now)
    report.failed.append(row_id)
    log.error("email failed", extra={"outbox_id": row_id, "kind": row.kind, "error": error})
    return [escalation] if escalation is not None else []


def _server_unavailable(
    settings: Settings,
    exc: ServerUnavailable,
    now: datetime,
    wanted: set[int] | None,
    report: DeliveryReport,
) -> None:
    """Nothing could be sent: every due message waits its back-off."""
    report.unavailable = str(exc)
    _log_unavailable(exc)
    attempted: set[int] = set()
    while (row_id := _next_due(settings, now, attempted, wanted)) is not None:
        attempted.add(row_id)
        if _claim(settings, row_id, now) is not None:
            _temporary_failure(settings, row_id, now, str(exc), report)


def _log_unavailable(exc: ServerUnavailable) -> None:
    if exc.misconfigured:
        log.error("mail server unusable, check the smtp settings", extra={"error": str(exc)})
    else:
        log.warning("mail server unavailable, messages stay queued", extra={"error": str(exc)})


# --- bounces and escalation ---------------------------------------------------------


def _record_bounces(
    settings: Settings,
    row: OutboxMessage,
    refusals: tuple[Refusal, ...] | list[Refusal],
    report: DeliveryReport,
) -> list[int]:
    new_rows: list[int] = []
    with session_scope(settings) as session:
        for refusal in refusals:
            if not refusal.permanent:
                continue
            report.bounced.append(refusal.address)
            bounced = mark_unhealthy(session, refusal.address, refusal.reply)
            log.warning(
                "contact bounced",
                extra={"address": refusal.address, "reply": refusal.reply, "outbox_id": row.id},
            )
            if not bounced.agency_ids:
                continue  # not a registry contact (the CERT's own address): logged only
            notice = _bounce_notice(
                session, settings, row, refusal, bounced.agencies, bounced.agency_ids
            )
            if notice is not None:
                new_rows.append(notice)
    return new_rows


def _bounce_notice(
    session: Session,
    settings: Settings,
    row: OutboxMessage,
    refusal: Refusal,
    agencies: tuple[str, ...],
    agency_ids: tuple[int, ...],
) -> int | None:
    cert = cert_addresses(settings)
    if not cert:
        log.warning(
            "no notify.cert_email: nobody is told of the bounce", extra={"address": refusal.address}
        )
        return None
    language = settings.notify.language
    agency_label = ", ".join(agencies)
    text, html = render_parts(
        "bounce",
        language,
        {
            "language": language,
            "address": refusal.address,
            "agencies": [display_name(a) for a in agencies],
            "error": refusal.reply,
            "original_subject": row.subject,
            "reply_to": None,
        },
    )
    draft = Draft(
        kind=Kind.CONTACT_HEALTH,
        agency_id=agency_ids[0] if len(agency_ids) == 1 else None,
        agency=agency_label,
        language=language,
        subject=notice_subject(language, SUBJECT_BOUNCE, agency_label),
        text=text,
        html=html,
        addressing=Addressing.of(to=cert),
        payload={"address": refusal.address, "outbox_id": row.id},
    )
    queued = queue_draft(session, settings, draft)
    assert queued.id is not None
    return queued.id


def _escalate_undelivered(
    session: Session, settings: Settings, row: OutboxMessage, error: str, now: datetime
) -> int | None:
    """A digest or alert that failed for good goes to the escalation contacts and the CERT."""
    if row.kind not in (Kind.DIGEST, Kind.ALERT) or row.agency_id is None:
        return None
    agency = session.get(Agency, row.agency_id)
    if agency is None:
        return None
    contacts = agency_contacts(session, row.agency_id)
    addressing = escalation_addressing(settings, contacts, exclude=row.recipients)
    if addressing.empty:
        log.error("a digest failed and nobody can be told", extra={"outbox_id": row.id})
        return None
    language = normalise_language(agency.language, settings.notify.language)
    context: dict[str, Any] = {
        "language": language,
        "reason": "undelivered",
        "agency": display_name(agency.name),
        "addresses": row.recipients,
        "error": error[:ERROR_CHARS],
        "original_subject": row.subject,
        "original_text": row.body_text,
        "items": [],
        "omitted": 0,
        "reply_to": settings.smtp.reply_to or settings.notify.cert_email,
    }
    text, html = render_parts("escalation", language, context)
    draft = Draft(
        kind=Kind.ESCALATION,
        agency_id=agency.id,
        agency=agency.name,
        language=language,
        subject=notice_subject(language, SUBJECT_UNDELIVERED, agency.name),
        text=text,
        html=html,
        addressing=addressing,
        payload={"reason": "undelivered", "outbox_id": row.id},
        created_at=now,
    )
    queued = queue_draft(session, settings, draft)
    assert queued.id is not None
    return queued.id


# --- the queue in the database -----------------------------------------------------------


def _next_due(
    settings: Settings, now: datetime, attempted: set[int], wanted: set[int] | None
) -> int | None:
    with session_scope(settings) as session:
        query = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == QUEUED)
            .where(
                sa.or_(
                    col(OutboxMessage.next_attempt_at).is_(None),
                    col(OutboxMessage.next_attempt_at) <= now,
                )
            )
            .order_by(col(OutboxMessage.id))
        )
        if attempted:
            query = query.where(col(OutboxMessage.id).not_in(attempted))
        if wanted is not None:
            query = query.where(col(OutboxMessage.id).in_(wanted))
        return session.exec(query).first()


def _claim(settings: Settings, row_id: int, now: datetime) -> OutboxMessage | None:
    """Take the row for this run, or None if another run already did."""
    if not _mark(settings, row_id, QUEUED, status=SENDING, next_attempt_at=now + CLAIM_LEASE):
        return None
    with session_scope(settings) as session:
        return session.get(OutboxMessage, row_id)


def _mark(settings: Settings, row_id: int, expected_status: str, **values: Any) -> bool:
    """Update the row only if it is still in ``expected_status`` (compare and set)."""
    statement = (
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == expected_status)
        .values(**values)
    )
    with session_scope(settings) as session:
        return session.connection().execute(statement).rowcount == 1


def _release_lapsed_claims(settings: Settings, now: datetime) -> None:
    statement = (
        sa.update(OutboxMessage)
        .where(col(OutboxMessage.status) == SENDING, col(OutboxMessage.next_attempt_at) < now)
        .values(status=QUEUED, last_error="claim lapsed: the sending run stopped")
    )
    with session_scope(settings) as session:
        released = session.connection().execute(statement).rowcount
    if released:
        log.warning("outbox claims released", extra={"count": released})
