"""What a sweep may scan, decided before any packet: the registry's selection, the
agencies' mandates (``scan.not_authorised`` where none is valid, DNS only where it
is passive) and their quiet hours (postponed, resumed later)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.tables import Agency, Domain, DomainStatus
from vigie.errors import NotFoundError, UsageError
from vigie.model import Family, HostResult, utcnow
from vigie.targets.importer import normalise_domain
from vigie.targets.registry import active_mandate, find_agency, in_quiet_hours

if TYPE_CHECKING:  # the engine is imported when a sweep is planned, not with the CLI
    from vigie.scanner.engine import DomainJob


@dataclass
class SweepPlan:
    jobs: list[DomainJob]
    agency_ids: dict[str, int | None]
    refused: list[HostResult]  # scan.not_authorised results, recorded without sending anything
    postponed: list[str]


def selected_domains(
    session: Session, domains: Sequence[str], *, agency: str | None, all_domains: bool
) -> list[Domain]:
    """The active registry domains named, of an agency, or all; a clear error otherwise."""
    query = select(Domain).where(Domain.status == DomainStatus.ACTIVE).order_by(col(Domain.name))
    if domains:
        return _named_domains(session, domains)
    if agency:
        owner = find_agency(session, agency)
        return list(session.exec(query.where(Domain.agency_id == owner.id)))
    if all_domains:
        return list(session.exec(query))
    raise UsageError("name domains, --agency NAME or --all")


def _named_domains(session: Session, domains: Sequence[str]) -> list[Domain]:
    names = []
    for raw in domains:
        try:
            names.append(normalise_domain(raw))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    found = list(session.exec(select(Domain).where(col(Domain.name).in_(names))))
    known = {d.name: d for d in found}
    missing = [n for n in names if n not in known]
    if missing:
        raise NotFoundError(
            "not in the registry (register with 'vigie targets add' or approve the candidate): "
            + ", ".join(missing)
        )
    inactive = [d.name for d in found if d.status != DomainStatus.ACTIVE]
    if inactive:
        raise UsageError("not active in the registry: " + ", ".join(inactive))
    return [known[n] for n in names]


def plan_sweep(
    session: Session,
    settings: Settings,
    domains: Iterable[Domain],
    families: Iterable[Family],
    done: Mapping[str, set[str]],
) -> SweepPlan:
    """One job per domain its agency's mandate allows now; the others refused or postponed."""
    from vigie.scanner.engine import DomainJob, not_authorised_result

    agencies = {a.id: a for a in session.exec(select(Agency))}
    now = utcnow()
    plan = SweepPlan(jobs=[], agency_ids={}, refused=[], postponed=[])
    for domain in domains:
        agency = agencies.get(domain.agency_id)
        agency_name = agency.name if agency else ""
        plan.agency_ids[domain.name] = domain.agency_id
        allowed = frozenset(families)
        mandate = active_mandate(session, domain.agency_id, domain.name, now.date())
        if settings.scope.require_mandate:
            refusal = None
            if mandate is None:
                refusal = "no valid mandate"
            elif mandate.intrusiveness == "passive":
                allowed = allowed & {Family.DNS}
                refusal = None if allowed else "mandate allows passive checks only"
            if refusal is not None:
                plan.refused.append(not_authorised_result(domain.name, agency_name, refusal))
                continue
        if mandate is not None and in_quiet_hours(
            mandate.quiet_hours, now, settings.schedule.timezone
        ):
            plan.postponed.append(domain.name)
            continue
        plan.jobs.append(
            DomainJob(
                domain=domain.name,
                agency=agency_name,
                mail_domain=domain.mail_domain,
                families=allowed,
                done_hosts=frozenset(done.get(domain.name, set())),
                networks=tuple(mandate.cidrs) if mandate is not None else (),
            )
        )
    return plan
