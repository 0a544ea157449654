"""The outbox: every message is written here before it is sent.

A row holds everything needed to build the same message again (subject,
both bodies, To/Cc, language, the Message-ID chosen when it was queued, the
date), so a resend after a crash is the very same message, and a receiving
server or reader can tell it is a duplicate. Bcc recipients are only in the
envelope (``recipients``), never in a header.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.tables import Agency, OutboxMessage
from vigie.model import utcnow
from vigie.notify._safety import clean_addresses, header_text

QUEUED = "queued"
SENDING = "sending"  # claimed by a delivery run; next_attempt_at is then when the claim lapses
SENT = "sent"
FAILED = "failed"


class Kind:
    DIGEST = "digest"
    ALERT = "alert"
    ESCALATION = "escalation"
    CONTACT_HEALTH = "contact_health"


@dataclass(frozen=True)
class Addressing:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    @classmethod
    def of(cls, to: Sequence[str], cc: Sequence[str] = (), bcc: Sequence[str] = ()) -> Addressing:
        """Valid addresses only, each in the first field that names it."""
        to_clean = clean_addresses(to)
        cc_clean = clean_addresses(a for a in cc if a.casefold() not in _folded(to_clean))
        bcc_clean = clean_addresses(
            a for a in bcc if a.casefold() not in _folded(to_clean + cc_clean)
        )
        if not to_clean and cc_clean:
            to_clean, cc_clean = cc_clean, ()
        if not to_clean and bcc_clean:
            to_clean, bcc_clean = bcc_clean, ()
        return cls(to_clean, cc_clean, bcc_clean)

    @property
    def envelope(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]

    @property
    def empty(self) -> bool:
        return not self.to


def _folded(addresses: Sequence[str]) -> set[str]:
    return {a.casefold() for a in addresses}


@dataclass
class Draft:
    """A message ready to be queued (or, in a dry run, exported)."""

    kind: str
    agency_id: int | None
    agency: str
    language: str
    subject: str
    text: str
    html: str
    addressing: Addressing
    payload: dict[str, Any] = field(default_factory=dict)
    message_id: str = ""
    created_at: datetime = field(default_factory=utcnow)


def new_message_id(settings: Settings) -> str:
    """A unique Message-ID in the sender's domain, chosen once when the row is written."""
    domain = settings.smtp.from_.rpartition("@")[2] or "vigie.invalid"
    return f"<vigie.{uuid.uuid4().hex}@{header_text(domain, 200).replace(' ', '')}>"


def queue_draft(session: Session, settings: Settings, draft: Draft) -> OutboxMessage:
    """Write ``draft`` to the outbox (in the caller's transaction)."""
    draft.message_id = draft.message_id or new_message_id(settings)
    row = OutboxMessage(
        agency_id=draft.agency_id,
        kind=draft.kind,
        recipients=draft.addressing.envelope,
        subject=draft.subject,
        body_text=draft.text,
        body_html=draft.html,
        message_id=draft.message_id,
        status=QUEUED,
        payload={
            **draft.payload,
            "to": list(draft.addressing.to),
            "cc": list(draft.addressing.cc),
            "language": draft.language,
        },
        created_at=draft.created_at,
    )
    session.add(row)
    session.flush()
    return row


def build_email(
    settings: Settings,
    *,
    subject: str,
    text: str,
    html: str,
    to: Sequence[str],
    cc: Sequence[str],
    message_id: str,
    date: datetime,
    language: str,
) -> EmailMessage:
    """Multipart text and HTML, text first; no attachment; every header from trusted values."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = settings.smtp.from_
    message["To"] = ", ".join(clean_addresses(to))
    if cc:
        message["Cc"] = ", ".join(clean_addresses(cc))
    reply_to = settings.smtp.reply_to or settings.notify.cert_email
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = header_text(subject, 200)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # RFC 3834: automatic; and Exchange's equivalent, so no out-of-office loops back.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        # A boundary derived from the Message-ID keeps a rebuilt message byte-identical.
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:32]
        message.set_boundary(f"=_vigie_{digest}")
    # After the body: setting the content clears Content-* headers.
    message["Content-Language"] = language
    return message


def email_for_draft(settings: Settings, draft: Draft) -> EmailMessage:
    return build_email(
        settings,
        subject=draft.subject,
        text=draft.text,
        html=draft.html,
        to=draft.addressing.to,
        cc=draft.addressing.cc,
        message_id=draft.message_id or new_message_id(settings),
        date=draft.created_at,
        language=draft.language,
    )


def email_for_row(settings: Settings, row: OutboxMessage) -> EmailMessage:
    """The message of an outbox row: the same bytes every time it is built."""
    payload = row.payload or {}
    return build_email(
        settings,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        to=payload.get("to") or row.recipients,
        cc=payload.get("cc") or [],
        message_id=row.message_id,
        date=row.created_at,
        language=str(payload.get("language") or settings.notify.language),
    )


def export_eml(message: EmailMessage) -> bytes:
    """The message as an ``.eml`` file (RFC 5322, CRLF line ends), for archives and demos."""
    return message.as_bytes(policy=policy.SMTP)


# --- status -------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: str
    agency: str
    status: str
    recipients: list[str]
    subject: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "agency": self.agency,
            "status": self.status,
            "recipients": self.recipients,
            "subject": self.subject,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "last_error": self.last_error,
        }


OUTBOX_COLUMNS = (
    "id",
    "kind",
    "agency",
    "status",
    "attempts",
    "recipients",
    "created_at",
    "sent_at",
    "next_attempt_at",
    "last_error",
)


def outbox_entries(
    session: Session, statuses: Sequence[str] = (), agency_id: int | None = None, limit: int = 200
) -> list[OutboxEntry]:
    """Outbox rows, newest first."""
    query = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    if statuses:
        query = query.where(col(OutboxMessage.status).in_(list(statuses)))
    if agency_id is not None:
        query = query.where(OutboxMessage.agency_id == agency_id)
    agencies = {a.id: a.name for a in session.exec(select(Agency))}
    return [
        OutboxEntry(
            id=row.id or 0,
            kind=row.kind,
            agency=agencies.get(row.agency_id, "") if row.agency_id else "",
            status=row.status,
            recipients=list(row.recipients),
            subject=row.subject,
            attempts=row.attempts,
            created_at=row.created_at,
            sent_at=row.sent_at,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
        )
        for row in session.exec(query)
    ]
