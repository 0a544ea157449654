"""Report builders behind a cache keyed by the data's version.

The overview grades every application from every open finding: at national
scale (2,000 domains, 100,000 findings) that is a second of work, while the
data it reads changes only when a sweep, an acceptance, a severity change or an
import writes. The version is a handful of indexed aggregates (newest event,
newest acceptance and when one was last revoked, newest run and grade,
registry size) plus the date: any write that can change a page changes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import Agency
from vigie.reports.agency import AgencyReport, build_agency_report
from vigie.reports.overview import OverviewReport, build_overview_report

MAX_ENTRIES = 512
_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
# The newest overview built per language, whatever its version: shown while the
# warmer builds the current one (a national roll-up minutes old is still the picture).
_latest_overview: dict[tuple[str, int], OverviewReport] = {}
log = logging.getLogger("vigie.web")

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


_building: dict[tuple[Any, ...], threading.Lock] = {}


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    """The value under ``key``, built once: a request arriving while the warmer (or another
    request) builds it waits for that build instead of starting its own."""
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            return _entries[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _entries:
                return _entries[key]
        value = build()
        with _lock:
            _entries[key] = value
            _building.pop(key, None)
            while len(_entries) > MAX_ENTRIES:
                _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()
        _latest_overview.clear()


def overview(
    session: Session, settings: Settings, language: str, *, stale_ok: bool = True
) -> OverviewReport:
    """The national overview; with ``stale_ok`` the last one built is served while the
    warmer rebuilds it for new data (built here only when there is none yet)."""
    key = ("overview", language, id(settings), data_version(session))
    with _lock:
        if key in _entries:
            return _entries[key]  # type: ignore[no-any-return]
        latest = _latest_overview.get((language, id(settings)))
    if stale_ok and latest is not None:
        return latest
    report: OverviewReport = _cached(
        key, lambda: build_overview_report(session, settings, language=language)
    )
    _remember_overview(settings, key, report)
    return report


def _remember_overview(settings: Settings, key: tuple[Any, ...], report: OverviewReport) -> None:
    from vigie.i18n import LANGUAGES

    with _lock:
        for language in LANGUAGES:
            # The data is the same in every language; only the label language differs.
            translated = (
                report if language == report.language else replace(report, language=language)
            )
            _latest_overview[(language, id(settings))] = translated
            _entries[("overview", language, *key[2:])] = translated


def agency(session: Session, settings: Settings, row: Agency, language: str) -> AgencyReport:
    from vigie.i18n import LANGUAGES

    version = data_version(session)
    key = ("agency", row.id, language, id(settings), version)
    report: AgencyReport = _cached(
        key, lambda: build_agency_report(session, settings, row.name, language=language)
    )
    with _lock:
        for other in LANGUAGES:  # the same data, read in either language
            _entries.setdefault(
                ("agency", row.id, other, id(settings), version),
                replace(report, language=other),
            )
    return report


class Warmer:
    """Rebuilds the overview and every agency's page in the background when the data
    changed, at most every ``interval_s``: the pages people open are ready."""

    def __init__(self, settings: Settings, interval_s: float = 300.0, poll_s: float = 20.0):
        self.settings = settings
        self.interval_s = interval_s
        self.poll_s = poll_s
        self.stop = threading.Event()
        self.built_version: tuple[Any, ...] | None = None
        self.last_build = 0.0
        self.thread = threading.Thread(target=self._run, name="vigie-warmer", daemon=True)

    def start(self) -> Warmer:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                if time.monotonic() - self.last_build >= self.interval_s or not self.built_version:
                    self.warm_once()
            except Exception as exc:  # the console keeps serving; next round tries again
                log.warning("page warmer failed", extra={"error": str(exc)})
            self.stop.wait(self.poll_s)

    def warm_once(self) -> bool:
        """Build what is out of date; True when something was built."""
        with session_scope(self.settings) as session:
            version = data_version(session)
            if version == self.built_version:
                return False
            started = time.monotonic()
            overview(session, self.settings, self.settings.notify.language, stale_ok=False)
            for row in session.exec(select(Agency).where(Agency.active == True)):  # noqa: E712
                if self.stop.is_set():
                    return True
                agency(session, self.settings, row, _language_of(row, self.settings))
        self.built_version = version
        self.last_build = time.monotonic()
        log.info("pages rebuilt", extra={"seconds": round(self.last_build - started, 1)})
        return True


def _language_of(row: Agency, settings: Settings) -> str:
    from vigie.i18n import normalise_language

    return normalise_language(row.language, settings.notify.language)
