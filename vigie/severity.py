"""Severities decided for this deployment: an analyst raises or lowers a check, with a reason.

The live override of a check wins over the configuration's
``findings.severity_overrides`` at the next sweep (``vigie.sweep.lifecycle_policy``)
and is applied at once to the check's unresolved findings, with their due dates.
Overrides are never deleted: a new one ends the previous one (``revoked_at``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from vigie.catalogue import spec_for
from vigie.config import Settings
from vigie.db.store import ACTIVE_STATUSES
from vigie.db.tables import FindingRecord, SeverityOverride
from vigie.errors import UsageError
from vigie.model import Severity, utcnow


def live_overrides(session: Session) -> dict[str, Severity]:
    """{check_id: severity} of the overrides in force."""
    rows = session.exec(
        select(SeverityOverride)
        .where(col(SeverityOverride.revoked_at).is_(None))
        .order_by(col(SeverityOverride.set_at), col(SeverityOverride.id))
    )
    return {row.check_id: Severity(row.severity) for row in rows}


def override_severity(
    session: Session,
    settings: Settings,
    check_id: str,
    severity: Severity,
    *,
    reason: str,
    set_by: str,
    now: datetime | None = None,
) -> SeverityOverride:
    """Set ``check_id``'s severity for the deployment and re-rate its unresolved findings."""
    from vigie.db.store import LifecyclePolicy

    now = now or utcnow()
    reason = reason.strip()
    if not reason:
        raise UsageError("say why the severity changes")
    spec_for(check_id)  # an unknown check raises
    for earlier in session.exec(
        select(SeverityOverride).where(
            SeverityOverride.check_id == check_id, col(SeverityOverride.revoked_at).is_(None)
        )
    ):
        earlier.revoked_at = now
        session.add(earlier)
    row = SeverityOverride(
        check_id=check_id, severity=severity.value, reason=reason, set_by=set_by, set_at=now
    )
    session.add(row)
    policy = LifecyclePolicy(due_days=settings.grading.due_days)
    for record in session.exec(
        select(FindingRecord).where(
            FindingRecord.check_id == check_id, col(FindingRecord.status).in_(ACTIVE_STATUSES)
        )
    ):
        record.severity = severity.value
        record.due_date = policy.due_date(severity, record.status_changed_at)
        session.add(record)
    session.flush()
    return row
