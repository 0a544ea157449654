"""Findings as analysts ask for them: filters, the state at a past date, ``--fail-on``,
and accepted risks (comply or explain)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vigie.config import Settings
from vigie.db.queries import FindingFilter, FindingView, findings_as_of, query_findings
from vigie.db.session import session_scope
from vigie.model import Severity, canonical_domain


def end_of_moment(as_of: datetime) -> datetime:
    """A date given without a time means the end of that day (UTC); a time is taken as is."""
    moment = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of
    if moment.hour == moment.minute == moment.second == moment.microsecond == 0:
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return moment


def list_findings(
    settings: Settings, filters: FindingFilter, as_of: datetime | None = None
) -> list[FindingView]:
    """Findings matching ``filters`` now, or as they stood at ``as_of`` (see ``end_of_moment``)."""
    with session_scope(settings) as session:
        if as_of is None:
            return query_findings(session, filters)
        return findings_as_of(session, filters, end_of_moment(as_of))


def only_domains(views: Sequence[FindingView], domains: Iterable[str]) -> list[FindingView]:
    """The views of the named domains (any spelling: Unicode, case, trailing dot); all if none."""
    wanted = {canonical_domain(d) for d in domains}
    return [v for v in views if v.domain in wanted] if wanted else list(views)


def breaching(views: Iterable[FindingView], threshold: Severity) -> list[FindingView]:
    """The ``--fail-on`` rule: findings at or above ``threshold`` whose risk is not accepted."""
    return [v for v in views if v.severity >= threshold and v.accepted_until is None]


def scan_findings(
    settings: Settings,
    agency: str | None,
    domains: Sequence[str],
    threshold: Severity | None = None,
) -> list[FindingView]:
    """What a scan of ``domains`` (or of ``agency``) left open, at or above ``threshold``."""
    filters = FindingFilter(agency=agency, severity_min=threshold)
    return only_domains(list_findings(settings, filters), domains)


def accept(settings: Settings, finding: str, *, reason: str, until: date, by: str) -> str:
    """Accept a finding's risk until a date; a one-line summary of the record."""
    from vigie.acceptance import accept_finding

    with session_scope(settings) as session:
        acceptance = accept_finding(session, finding, reason=reason, until=until, accepted_by=by)
        return (
            f"acceptance #{acceptance.id}: finding #{acceptance.finding_id} "
            f"accepted until {acceptance.until}"
        )


def acceptance_rows(
    settings: Settings, agency: str | None, include_ended: bool
) -> list[dict[str, Any]]:
    """Accepted risks as rows (live ones unless ``include_ended``)."""
    from vigie.acceptance import list_acceptances

    with session_scope(settings) as session:
        return [
            a.to_dict()
            for a in list_acceptances(session, agency=agency, include_ended=include_ended)
        ]


def end_acceptance(settings: Settings, acceptance_id: int) -> None:
    """End an acceptance now (the record is kept)."""
    from vigie.acceptance import revoke_acceptance

    with session_scope(settings) as session:
        revoke_acceptance(session, acceptance_id)
