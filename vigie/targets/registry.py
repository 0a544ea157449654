"""Registry operations: agencies, their domains and contacts, and mandates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from vigie.db.queries import agency_matches
from vigie.db.tables import Agency, Contact, ContactRole, Domain, DomainStatus, Mandate
from vigie.errors import NotFoundError, UsageError
from vigie.model import utcnow
from vigie.targets.importer import AgencyEntry, DomainEntry, normalise_domain, normalise_email


@dataclass
class ImportSummary:
    agencies_created: int = 0
    agencies_updated: int = 0
    domains_created: int = 0
    domains_updated: int = 0
    domains_reactivated: int = 0
    domains_deactivated: int = 0
    contacts_created: int = 0
    deactivated: list[str] = field(default_factory=list)


def import_registry(
    session: Session, entries: list[AgencyEntry], *, prune: bool = False
) -> ImportSummary:
    """Upsert the parsed registry. Idempotent; ``prune`` deactivates domains no longer listed."""
    summary = ImportSummary()
    agencies = {agency.name.casefold(): agency for agency in session.exec(select(Agency))}
    domains = {domain.name: domain for domain in session.exec(select(Domain))}
    contacts = {
        (c.agency_id, c.email, c.role, c.domain_id): c for c in session.exec(select(Contact))
    }
    listed: set[str] = set()
    for entry in entries:
        agency = _upsert_agency(session, agencies, entry, summary)
        assert agency.id is not None
        for email in entry.emails:
            _ensure_contact(
                session, contacts, agency.id, email, ContactRole.SECURITY, None, summary
            )
        for email in entry.technical_emails:
            _ensure_contact(
                session, contacts, agency.id, email, ContactRole.TECHNICAL, None, summary
            )
        for email in entry.escalation_emails:
            _ensure_contact(
                session, contacts, agency.id, email, ContactRole.ESCALATION, None, summary
            )
        for domain_entry in entry.domains:
            listed.add(domain_entry.name)
            domain = _upsert_domain(session, domains, agency.id, domain_entry, summary)
            assert domain.id is not None
            for email in domain_entry.operator_emails:
                contact = _ensure_contact(
                    session, contacts, agency.id, email, ContactRole.OPERATOR, domain.id, summary
                )
                if domain_entry.operator and contact.name != domain_entry.operator:
                    contact.name = domain_entry.operator
                    session.add(contact)
    if prune:
        for name, domain in domains.items():
            if (
                name not in listed
                and domain.status == DomainStatus.ACTIVE
                and domain.source == "registry"
            ):
                domain.status = DomainStatus.INACTIVE
                session.add(domain)
                summary.domains_deactivated += 1
                summary.deactivated.append(name)
    session.flush()
    return summary


def _upsert_agency(
    session: Session, agencies: dict[str, Agency], entry: AgencyEntry, summary: ImportSummary
) -> Agency:
    agency = agencies.get(entry.name.casefold())
    wanted: dict[str, str | None] = {
        "code": entry.code,
        "language": entry.language or "fr",
        "parent": entry.ministry,
    }
    if agency is None:
        agency = Agency(
            name=entry.name, code=entry.code, language=entry.language or "fr", parent=entry.ministry
        )
        session.add(agency)
        session.flush()
        agencies[entry.name.casefold()] = agency
        summary.agencies_created += 1
        return agency
    changed = False
    for key, value in wanted.items():
        if value is not None and getattr(agency, key) != value:
            setattr(agency, key, value)
            changed = True
    if not agency.active:
        agency.active = True
        changed = True
    if changed:
        session.add(agency)
        summary.agencies_updated += 1
    return agency


def _upsert_domain(
    session: Session,
    domains: dict[str, Domain],
    agency_id: int,
    entry: DomainEntry,
    summary: ImportSummary,
) -> Domain:
    domain = domains.get(entry.name)
    if domain is None:
        domain = Domain(
            name=entry.name,
            agency_id=agency_id,
            tags=entry.tags,
            mail_domain=entry.mail_domain,
            source="registry",
        )
        session.add(domain)
        session.flush()
        domains[entry.name] = domain
        summary.domains_created += 1
        return domain
    changed = False
    if domain.status != DomainStatus.ACTIVE:
        domain.status = DomainStatus.ACTIVE
        summary.domains_reactivated += 1
        changed = True
    for key, value in (
        ("agency_id", agency_id),
        ("tags", entry.tags),
        ("mail_domain", entry.mail_domain),
        ("source", "registry"),
    ):
        if getattr(domain, key) != value:
            setattr(domain, key, value)
            changed = True
    if changed:
        session.add(domain)
        summary.domains_updated += 1
    return domain


def _ensure_contact(
    session: Session,
    contacts: dict[tuple[int, str, str, int | None], Contact],
    agency_id: int,
    email: str,
    role: str,
    domain_id: int | None,
    summary: ImportSummary,
) -> Contact:
    key = (agency_id, email, role, domain_id)
    contact = contacts.get(key)
    if contact is None:
        contact = Contact(agency_id=agency_id, email=email, role=role, domain_id=domain_id)
        session.add(contact)
        contacts[key] = contact
        summary.contacts_created += 1
    elif not contact.active:
        contact.active = True
        session.add(contact)
    return contact


# --- single-target operations ----------------------------------------------


def find_agency(session: Session, name_or_code: str) -> Agency:
    """The agency ``name_or_code`` names (see ``agency_matches``); NotFoundError if none."""
    for agency in session.exec(select(Agency)):
        if agency_matches(agency, name_or_code):
            return agency
    raise NotFoundError(f"no agency named {name_or_code!r}")


def add_target(
    session: Session,
    *,
    agency_name: str,
    domain_name: str,
    emails: Iterable[str] = (),
    language: str | None = None,
    mail_domain: bool = False,
) -> Domain:
    """Register one domain (creating its agency if needed)."""
    try:
        name = normalise_domain(domain_name)
        addresses = [normalise_email(e) for e in emails]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        agency = find_agency(session, agency_name)
    except NotFoundError:
        if not addresses:
            raise UsageError(f"new agency {agency_name!r} needs at least one --email") from None
        agency = Agency(name=" ".join(agency_name.split()), language=language or "fr")
        session.add(agency)
        session.flush()
    assert agency.id is not None
    contacts = {
        (c.agency_id, c.email, c.role, c.domain_id): c for c in session.exec(select(Contact))
    }
    summary = ImportSummary()
    for email in addresses:
        _ensure_contact(session, contacts, agency.id, email, ContactRole.SECURITY, None, summary)
    domain = session.exec(select(Domain).where(Domain.name == name)).first()
    if domain is None:
        domain = Domain(name=name, agency_id=agency.id, source="manual", mail_domain=mail_domain)
    else:
        domain.agency_id = agency.id
        domain.status = DomainStatus.ACTIVE
        domain.mail_domain = domain.mail_domain or mail_domain
    session.add(domain)
    session.flush()
    return domain


def remove_target(session: Session, domain_name: str) -> Domain:
    """Deactivate a domain: it is no longer swept, its history stays."""
    try:
        name = normalise_domain(domain_name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    domain = session.exec(select(Domain).where(Domain.name == name)).first()
    if domain is None:
        raise NotFoundError(f"no domain {name!r} in the registry")
    domain.status = DomainStatus.INACTIVE
    session.add(domain)
    return domain


@dataclass(frozen=True)
class TargetRow:
    agency: str
    agency_code: str | None
    domain: str
    status: str
    source: str
    language: str
    contacts: list[str]
    tags: list[str]
    mail_domain: bool


def list_targets(
    session: Session, *, agency: str | None = None, include_inactive: bool = False
) -> list[TargetRow]:
    agencies = {a.id: a for a in session.exec(select(Agency))}
    contacts: dict[int, list[str]] = {}
    for contact in session.exec(select(Contact).where(Contact.active == True)):  # noqa: E712
        if contact.domain_id is None and contact.role == ContactRole.SECURITY:
            contacts.setdefault(contact.agency_id, []).append(contact.email)
    query = select(Domain).order_by(col(Domain.name))
    if not include_inactive:
        query = query.where(Domain.status == DomainStatus.ACTIVE)
    wanted_agency = find_agency(session, agency).id if agency else None
    rows = []
    for domain in session.exec(query):
        if wanted_agency is not None and domain.agency_id != wanted_agency:
            continue
        owner = agencies.get(domain.agency_id)
        rows.append(
            TargetRow(
                agency=owner.name if owner else "",
                agency_code=owner.code if owner else None,
                domain=domain.name,
                status=domain.status,
                source=domain.source,
                language=owner.language if owner else "fr",
                contacts=contacts.get(domain.agency_id or -1, []),
                tags=list(domain.tags),
                mail_domain=domain.mail_domain,
            )
        )
    return rows


# --- mandates ---------------------------------------------------------------


INTRUSIVENESS = ("passive", "active")


def add_mandate(
    session: Session,
    *,
    agency_name: str,
    legal_basis: str,
    reference: str,
    valid_from: date,
    valid_until: date | None,
    domains: Iterable[str] = (),
    cidrs: Iterable[str] = (),
    intrusiveness: str = "active",
    quiet_hours: str | None = None,
) -> Mandate:
    agency = find_agency(session, agency_name)
    if intrusiveness not in INTRUSIVENESS:
        raise UsageError(f"intrusiveness must be one of {', '.join(INTRUSIVENESS)}")
    if valid_until is not None and valid_until < valid_from:
        raise UsageError("the mandate ends before it starts")
    if quiet_hours is not None:
        parse_quiet_hours(quiet_hours)
    import ipaddress

    try:
        networks = [str(ipaddress.ip_network(c, strict=False)) for c in cidrs]
        names = [normalise_domain(d) for d in domains]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    assert agency.id is not None
    mandate = Mandate(
        agency_id=agency.id,
        legal_basis=legal_basis,
        reference=reference,
        domains=names,
        cidrs=networks,
        intrusiveness=intrusiveness,
        valid_from=valid_from,
        valid_until=valid_until,
        quiet_hours=quiet_hours,
    )
    session.add(mandate)
    session.flush()
    return mandate


def revoke_mandate(session: Session, mandate_id: int) -> Mandate:
    mandate = session.get(Mandate, mandate_id)
    if mandate is None:
        raise NotFoundError(f"no mandate #{mandate_id}")
    mandate.revoked_at = utcnow()
    session.add(mandate)
    return mandate


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """``"22:00-06:00"`` -> (22:00, 06:00); the window may wrap past midnight."""
    try:
        start_text, end_text = value.split("-")
        return time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError:
        raise UsageError(f"quiet hours {value!r}: expected HH:MM-HH:MM") from None


def in_quiet_hours(value: str | None, moment: datetime, timezone: str) -> bool:
    if not value:
        return False
    start, end = parse_quiet_hours(value)
    local = moment.astimezone(ZoneInfo(timezone)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def mandate_is_valid(mandate: Mandate, on: date) -> bool:
    if mandate.revoked_at is not None:
        return False
    if on < mandate.valid_from:
        return False
    return mandate.valid_until is None or on <= mandate.valid_until


def mandate_covers(mandate: Mandate, domain: str) -> bool:
    if not mandate.domains:
        return True
    return any(domain == d or domain.endswith("." + d) for d in mandate.domains)


def active_mandate(
    session: Session, agency_id: int | None, domain: str, on: date
) -> Mandate | None:
    """The valid mandate covering ``domain``, preferring the most intrusive."""
    if agency_id is None:
        return None
    mandates = session.exec(select(Mandate).where(Mandate.agency_id == agency_id)).all()
    valid = [m for m in mandates if mandate_is_valid(m, on) and mandate_covers(m, domain)]
    valid.sort(key=lambda m: INTRUSIVENESS.index(m.intrusiveness), reverse=True)
    return valid[0] if valid else None
