"""Grades per application, now or through their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import select

from vigie import grading
from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import Agency
from vigie.model import canonical_domain


@dataclass(frozen=True)
class GradeTable:
    rows: list[dict[str, Any]]
    columns: list[str]
    policy: grading.Policy | None = None  # None for the history


def grade_table(
    settings: Settings,
    *,
    agency: str | None = None,
    domain: str | None = None,
    only_flagged: bool = False,
    policy_name: str | None = None,
    history: bool = False,
) -> GradeTable:
    """Current grades under a policy version, or every recorded grade with ``history``."""
    with session_scope(settings) as session:
        if history:
            names = {a.id: a.name for a in session.exec(select(Agency))}
            records = grading.grade_history(session, agency=agency, domain=domain)
            rows = [grading.history_to_dict(r, names.get(r.agency_id, "")) for r in records]
            rows = [r for r in rows if r["flagged"] or not only_flagged]
            return GradeTable(rows, list(grading.HISTORY_COLUMNS))
        policy = grading.policies_for(settings).select(
            policy_name or settings.grading.policy, date.today()
        )
        wanted = [canonical_domain(domain)] if domain else None
        applications = grading.grade_applications(
            session, settings, policy=policy, agency=agency, domains=wanted
        )
    rows = [a.to_dict() for a in applications if a.flagged or not only_flagged]
    return GradeTable(rows, list(grading.GRADE_COLUMNS), policy)
