"""Who receives what: the registry's contacts, their health, the CERT.

- the digest goes to the agency's security contacts, technical contacts in Cc;
- the operator of an application (``operator`` contact tied to a domain) gets
  a copy covering only the applications it runs;
- when an agency has no working contact, or a message to it failed for good,
  or findings are overdue, the ``escalation`` contacts and the CERT are told;
- the CERT (``notify.cert_email``) and ``smtp.bcc`` receive every message in Bcc.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.tables import Agency, Contact, ContactRole, Domain
from vigie.notify._outbox import Addressing
from vigie.notify._safety import clean_addresses, visible_text


@dataclass
class AgencyContacts:
    security: list[str] = field(default_factory=list)
    technical: list[str] = field(default_factory=list)
    escalation: list[str] = field(default_factory=list)
    operators: dict[str, list[str]] = field(default_factory=dict)  # address -> domains it runs

    @property
    def reachable(self) -> bool:
        return bool(self.security or self.technical)


def agency_contacts(session: Session, agency_id: int) -> AgencyContacts:
    """The agency's healthy, active contacts by role."""
    contacts = AgencyContacts()
    domains = {
        d.id: d.name for d in session.exec(select(Domain).where(Domain.agency_id == agency_id))
    }
    rows = session.exec(
        select(Contact)
        .where(Contact.agency_id == agency_id, Contact.active == True, Contact.healthy == True)  # noqa: E712
        .order_by(col(Contact.id))
    )
    for contact in rows:
        if contact.role == ContactRole.OPERATOR:
            domain = domains.get(contact.domain_id)
            if domain is not None:
                contacts.operators.setdefault(contact.email, []).append(domain)
        elif contact.role == ContactRole.ESCALATION:
            contacts.escalation.append(contact.email)
        elif contact.role == ContactRole.TECHNICAL:
            contacts.technical.append(contact.email)
        else:
            contacts.security.append(contact.email)
    return contacts


def cert_addresses(settings: Settings) -> tuple[str, ...]:
    """The CERT's copy of every message: ``notify.cert_email`` and ``smtp.bcc``."""
    wanted = [settings.notify.cert_email] if settings.notify.cert_email else []
    return clean_addresses([*wanted, *settings.smtp.bcc])


@dataclass(frozen=True)
class Bounced:
    address: str
    agencies: tuple[str, ...]
    agency_ids: tuple[int, ...]


def mark_unhealthy(session: Session, address: str, reason: str) -> Bounced:
    """Every active contact row with ``address`` stops receiving mail; who they belonged to."""
    rows = list(
        session.exec(
            select(Contact).where(
                sa.func.lower(Contact.email) == address.lower(),
                Contact.active == True,  # noqa: E712
            )
        )
    )
    agency_ids: list[int] = []
    for contact in rows:
        contact.healthy = False
        contact.unhealthy_reason = visible_text(reason, 300)
        session.add(contact)
        if contact.agency_id not in agency_ids:
            agency_ids.append(contact.agency_id)
    names = [a.name for a in session.exec(select(Agency).where(col(Agency.id).in_(agency_ids)))]
    return Bounced(address, tuple(sorted(names)), tuple(agency_ids))


def escalation_addressing(
    settings: Settings, contacts: AgencyContacts, exclude: Iterable[str] = ()
) -> Addressing:
    """The escalation contacts with the CERT in Cc, or the CERT alone when there are none."""
    excluded = {a.casefold() for a in exclude}
    to = [a for a in contacts.escalation if a.casefold() not in excluded]
    cert = [settings.notify.cert_email] if settings.notify.cert_email else []
    if to:
        return Addressing.of(to=to, cc=cert, bcc=settings.smtp.bcc)
    return Addressing.of(to=cert, bcc=settings.smtp.bcc)
