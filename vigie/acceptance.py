"""Comply or explain: accepted risks with a reason, an author and an end date.

While an acceptance is live the finding stays visible, marked accepted with its
explanation, but leaves the grade and the digest; on the day after ``until``
it counts again by itself (nothing has to run). Acceptances are never
deleted: replacing or withdrawing one stamps ``revoked_at``, so the table is
the audit trail of who accepted what, why and until when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from vigie.db.queries import agency_matches
from vigie.db.tables import Agency, FindingRecord, RiskAcceptance
from vigie.errors import NotFoundError, UsageError
from vigie.model import FindingStatus, utcnow
from vigie.parsing import ascii_int

# A dated plan, not a permanent exemption: re-accept with a new reason to go on.
MAX_ACCEPTANCE_DAYS = 366
MIN_FINGERPRINT_PREFIX = 8


class AcceptanceState:
    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class AcceptanceView:
    id: int
    finding_id: int
    check_id: str
    domain: str
    ip: str | None
    port: int | None
    agency: str
    finding_status: str
    reason: str
    accepted_by: str
    until: date
    created_at: datetime
    revoked_at: datetime | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "finding_id": self.finding_id,
            "check_id": self.check_id,
            "agency": self.agency,
            "domain": self.domain,
            "ip": self.ip,
            "port": self.port,
            "finding_status": self.finding_status,
            "reason": self.reason,
            "accepted_by": self.accepted_by,
            "until": self.until.isoformat(),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "state": self.state,
        }


ACCEPTANCE_COLUMNS = (
    "id",
    "finding_id",
    "state",
    "agency",
    "domain",
    "port",
    "check_id",
    "until",
    "accepted_by",
    "reason",
    "created_at",
    "revoked_at",
)


def acceptance_state(acceptance: RiskAcceptance, today: date) -> str:
    if acceptance.revoked_at is not None:
        return AcceptanceState.REVOKED
    return AcceptanceState.LIVE if acceptance.until >= today else AcceptanceState.EXPIRED


def find_finding(session: Session, reference: str) -> FindingRecord:
    """A finding by numeric id or by (a prefix of) its fingerprint."""
    reference = reference.strip()
    if (number := ascii_int(reference)) is not None:
        record = session.get(FindingRecord, number)
        if record is None:
            raise NotFoundError(f"no finding #{reference}")
        return record
    if len(reference) < MIN_FINGERPRINT_PREFIX:
        raise UsageError(
            f"{reference!r}: give a finding id or at least {MIN_FINGERPRINT_PREFIX} characters of its fingerprint"
        )
    matches = list(
        session.exec(
            select(FindingRecord).where(
                col(FindingRecord.fingerprint).startswith(reference.lower())
            )
        )
    )
    if not matches:
        raise NotFoundError(f"no finding with fingerprint {reference!r}")
    if len(matches) > 1:
        raise UsageError(f"fingerprint prefix {reference!r} matches {len(matches)} findings")
    return matches[0]


def accept_finding(
    session: Session,
    reference: str,
    *,
    reason: str,
    until: date,
    accepted_by: str,
    today: date | None = None,
    now: datetime | None = None,
) -> RiskAcceptance:
    """Record an accepted risk; a live earlier acceptance of the finding is superseded."""
    today = today or date.today()
    now = now or utcnow()
    reason, accepted_by = reason.strip(), accepted_by.strip()
    if not reason:
        raise UsageError(
            "--reason: explain why the risk is accepted (e.g. the migration plan and its date)"
        )
    if not accepted_by:
        raise UsageError("--by: name who accepts the risk")
    if until < today:
        raise UsageError(f"--until {until} is in the past")
    if until > today + timedelta(days=MAX_ACCEPTANCE_DAYS):
        raise UsageError(
            f"--until: an acceptance lasts at most {MAX_ACCEPTANCE_DAYS} days; renew it later"
        )
    finding = find_finding(session, reference)
    if finding.status == FindingStatus.RESOLVED.value:
        raise UsageError(f"finding #{finding.id} is resolved: there is nothing to accept")
    assert finding.id is not None
    for earlier in _acceptances_of(session, finding.id):
        if acceptance_state(earlier, today) == AcceptanceState.LIVE:
            earlier.revoked_at = now
            session.add(earlier)
    acceptance = RiskAcceptance(
        finding_id=finding.id, reason=reason, accepted_by=accepted_by, until=until, created_at=now
    )
    session.add(acceptance)
    session.flush()
    return acceptance


def revoke_acceptance(
    session: Session, acceptance_id: int, *, now: datetime | None = None
) -> RiskAcceptance:
    """End an acceptance early (expire it now); the row stays in the audit trail."""
    acceptance = session.get(RiskAcceptance, acceptance_id)
    if acceptance is None:
        raise NotFoundError(f"no risk acceptance #{acceptance_id}")
    if acceptance.revoked_at is None:
        acceptance.revoked_at = now or utcnow()
        session.add(acceptance)
    return acceptance


def _acceptances_of(session: Session, finding_id: int) -> list[RiskAcceptance]:
    return list(session.exec(select(RiskAcceptance).where(RiskAcceptance.finding_id == finding_id)))


def list_acceptances(
    session: Session,
    *,
    agency: str | None = None,
    include_ended: bool = False,
    today: date | None = None,
) -> list[AcceptanceView]:
    """Acceptances, live ones only unless ``include_ended`` (the full audit trail)."""
    today = today or date.today()
    agencies = {a.id: a for a in session.exec(select(Agency))}
    rows = session.exec(
        select(RiskAcceptance, FindingRecord)
        .where(RiskAcceptance.finding_id == FindingRecord.id)
        .order_by(col(RiskAcceptance.created_at), col(RiskAcceptance.id))
    )
    views = []
    for acceptance, finding in rows:
        owner = agencies.get(finding.agency_id)
        if agency and not _agency_matches(owner, agency):
            continue
        state = acceptance_state(acceptance, today)
        if state != AcceptanceState.LIVE and not include_ended:
            continue
        views.append(_view(acceptance, finding, owner, state))
    return views


def _agency_matches(owner: Agency | None, wanted: str) -> bool:
    return owner is not None and agency_matches(owner, wanted)


def _view(
    acceptance: RiskAcceptance, finding: FindingRecord, owner: Agency | None, state: str
) -> AcceptanceView:
    assert acceptance.id is not None and finding.id is not None
    return AcceptanceView(
        id=acceptance.id,
        finding_id=finding.id,
        check_id=finding.check_id,
        domain=finding.domain,
        ip=finding.ip,
        port=finding.port,
        agency=owner.name if owner else "",
        finding_status=finding.status,
        reason=acceptance.reason,
        accepted_by=acceptance.accepted_by,
        until=acceptance.until,
        created_at=acceptance.created_at,
        revoked_at=acceptance.revoked_at,
        state=state,
    )
