"""Report builders behind a cache keyed by the data's version.

The overview grades every application from every open finding: at national
scale (2,000 domains, 100,000 findings) that is a second of work, while the
data it reads changes only when a sweep, an acceptance, a severity change or an
import writes. The version is a handful of indexed aggregates (newest event,
newest acceptance and when one was last revoked, newest run and grade,
registry size) plus the date: any write that can change a page changes it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from vigie.config import Settings
from vigie.db.tables import Agency
from vigie.reports.agency import AgencyReport, build_agency_report
from vigie.reports.overview import OverviewReport, build_overview_report

MAX_ENTRIES = 256
_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

_VERSION_SQL = sa.text(
    "SELECT (SELECT max(id) FROM findingevent), (SELECT max(id) FROM riskacceptance),"
    " (SELECT max(revoked_at) FROM riskacceptance), (SELECT max(id) FROM scanrun),"
    " (SELECT max(id) FROM graderecord), (SELECT max(id) FROM severityoverride),"
    " (SELECT count(*) FROM severityoverride WHERE revoked_at IS NULL),"
    " (SELECT max(id) FROM domain), (SELECT count(*) FROM domain WHERE status = 'active'),"
    " (SELECT max(id) FROM agency)"
)


def data_version(session: Session) -> tuple[Any, ...]:
    row = session.connection().execute(_VERSION_SQL).one()
    return (*tuple(row), date.today())


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]
    value = build()
    with _lock:
        _entries[key] = value
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()


def overview(session: Session, settings: Settings, language: str) -> OverviewReport:
    key = ("overview", language, id(settings), data_version(session))
    return _cached(  # type: ignore[no-any-return]
        key, lambda: build_overview_report(session, settings, language=language)
    )


def agency(session: Session, settings: Settings, row: Agency, language: str) -> AgencyReport:
    key = ("agency", row.id, language, id(settings), data_version(session))
    return _cached(  # type: ignore[no-any-return]
        key, lambda: build_agency_report(session, settings, row.name, language=language)
    )
