"""What each agency was told, per finding (the ``FindingNotice`` table).

Written in the same transaction as the outbox row that tells it, so a
message queued is a message accounted for: the next digest neither repeats
it nor forgets it, even if the mail server is down for days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from vigie.db.tables import FindingNotice
from vigie.notify._problems import ACTIVE, RESOLVED, Notice


def load_notices(session: Session, finding_ids: Iterable[int]) -> dict[int, Notice]:
    ids = list(finding_ids)
    notices: dict[int, Notice] = {}
    for start in range(0, len(ids), 500):  # keep IN lists short for every backend
        chunk = ids[start : start + 500]
        for row in session.exec(
            select(FindingNotice).where(col(FindingNotice.finding_id).in_(chunk))
        ):
            notices[row.finding_id] = Notice(row.told_status, row.last_told_at, row.escalated_at)
    return notices


def record_told(
    session: Session,
    finding_ids: Iterable[int],
    told_status: str,
    now: datetime,
    outbox_id: int | None,
) -> None:
    """The agency has now been told that these findings are ``told_status``."""
    assert told_status in (ACTIVE, RESOLVED)
    for finding_id in finding_ids:
        row = session.get(FindingNotice, finding_id)
        if row is None:
            row = FindingNotice(
                finding_id=finding_id,
                told_status=told_status,
                first_told_at=now,
                last_told_at=now,
            )
        else:
            if told_status == ACTIVE and row.told_status == RESOLVED:
                row.escalated_at = None  # back after a fix: a new due date, a new escalation
            row.told_status = told_status
            row.last_told_at = now
        row.outbox_id = outbox_id
        session.add(row)


def record_escalated(session: Session, finding_ids: Iterable[int], now: datetime) -> None:
    for finding_id in finding_ids:
        row = session.get(FindingNotice, finding_id)
        if row is not None:
            row.escalated_at = now
            session.add(row)
