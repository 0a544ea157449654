"""The registry as its users change it: import, add, remove, list, approve, mandates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from typing import Any

from sqlmodel import select

from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import Agency, Mandate
from vigie.targets.importer import AgencyEntry
from vigie.targets.registry import ImportSummary


def import_entries(
    settings: Settings, entries: Sequence[AgencyEntry], prune: bool
) -> ImportSummary:
    """Apply parsed registry entries in one transaction (all or nothing)."""
    from vigie.targets.registry import import_registry

    with session_scope(settings) as session:
        return import_registry(session, list(entries), prune=prune)


def add_domain(
    settings: Settings,
    *,
    agency: str,
    domain: str,
    emails: Sequence[str],
    language: str | None,
    mail_domain: bool,
) -> str:
    """Register one domain (creating its agency if new); its stored name."""
    from vigie.targets.registry import add_target

    with session_scope(settings) as session:
        row = add_target(
            session,
            agency_name=agency,
            domain_name=domain,
            emails=emails,
            language=language,
            mail_domain=mail_domain,
        )
        return row.name


def deactivate_domain(settings: Settings, domain: str) -> str:
    """Stop sweeping ``domain`` (history kept); its stored name."""
    from vigie.targets.registry import remove_target

    with session_scope(settings) as session:
        return remove_target(session, domain).name


def target_rows(
    settings: Settings, agency: str | None, include_inactive: bool
) -> list[dict[str, Any]]:
    """The registered domains as rows (one dict per domain)."""
    from vigie.targets.registry import list_targets

    with session_scope(settings) as session:
        return [
            asdict(r)
            for r in list_targets(session, agency=agency, include_inactive=include_inactive)
        ]


def approve_candidates(settings: Settings, name: str | None, source: str | None) -> list[str]:
    """Make discovered candidates registered, swept domains; the names approved."""
    from vigie.targets.discover import approve_candidates as approve

    with session_scope(settings) as session:
        return list(approve(session, name=name, source=source))


def record_mandate(settings: Settings, **fields: Any) -> int | None:
    """Record a scanning mandate (see ``targets.registry.add_mandate``); its ID."""
    from vigie.targets.registry import add_mandate

    with session_scope(settings) as session:
        return add_mandate(session, **fields).id


def mandate_rows(settings: Settings, today: date | None = None) -> list[dict[str, Any]]:
    """Every mandate with its agency and whether it is valid ``today``."""
    from vigie.targets.registry import mandate_is_valid

    today = today or date.today()
    with session_scope(settings) as session:
        agencies = {a.id: a.name for a in session.exec(select(Agency))}
        return [
            {
                "id": m.id,
                "agency": agencies.get(m.agency_id, ""),
                "legal_basis": m.legal_basis,
                "reference": m.reference,
                "intrusiveness": m.intrusiveness,
                "valid_from": m.valid_from,
                "valid_until": m.valid_until,
                "domains": m.domains,
                "cidrs": m.cidrs,
                "quiet_hours": m.quiet_hours,
                "valid_today": mandate_is_valid(m, today),
            }
            for m in session.exec(select(Mandate))
        ]


def revoke_mandate(settings: Settings, mandate_id: int) -> None:
    """Revoke a mandate (kept in the register)."""
    from vigie.targets.registry import revoke_mandate as revoke

    with session_scope(settings) as session:
        revoke(session, mandate_id)
