"""Urgent alerts: a new finding at or above ``notify.immediate_min_severity`` is
mailed right after its host's scan, not held for the digest.

The sweep calls the hook with the session that stores the host's results;
the alert is queued in the outbox in that same transaction. Once it commits,
its id goes to a delivery thread: SMTP never runs on the scanning event loop,
so a mail server that stalls holds no probe. If the server is unavailable, the
alert stays queued for the next notify run and this sweep stops trying (one
timeout, not one per host). At the end of a sweep the thread is given a few
seconds to finish while the server answers promptly, and none while it stalls;
whatever is left is sent by the next ``vigie notify``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from vigie.config import Settings
from vigie.db.queries import FindingView, view_of_record
from vigie.db.store import RecordOutcome
from vigie.db.tables import Agency, FindingRecord
from vigie.model import HostResult, utcnow
from vigie.notify._bookkeeping import load_notices, record_told
from vigie.notify._contacts import agency_contacts, cert_addresses, escalation_addressing
from vigie.notify._delivery import deliver_outbox
from vigie.notify._digest import language_of, reply_address
from vigie.notify._outbox import Addressing, Draft, Kind, queue_draft
from vigie.notify._problems import ACTIVE, SelectionRules, group_problems, reported
from vigie.notify._render import alert_subject, display_name, problem_items, render_parts

log = logging.getLogger("vigie.notify")

AlertHook = Callable[[Session, HostResult, RecordOutcome], None]


def queue_urgent_alerts(
    session: Session, settings: Settings, records: Sequence[FindingRecord], now: datetime
) -> list[int]:
    """Queue one alert per agency for ``records`` at or above the immediate threshold."""
    rules = SelectionRules(settings.notify.immediate_min_severity, settings.notify.recall_days)
    by_agency: dict[int, list[FindingRecord]] = {}
    for record in records:
        if record.agency_id is not None:
            by_agency.setdefault(record.agency_id, []).append(record)
    queued: list[int] = []
    for agency_id, agency_records in by_agency.items():
        agency = session.get(Agency, agency_id)
        if agency is None:
            continue
        notices = load_notices(session, [r.id for r in agency_records if r.id is not None])
        views = [
            view
            for view in (view_of_record(r, agency.name) for r in agency_records)
            if reported(view, rules)
            and not (view.id in notices and notices[view.id].told_status == ACTIVE)
        ]
        if views:
            row_id = _queue_alert(session, settings, agency, views, now)
            if row_id is not None:
                queued.append(row_id)
    return queued


def _queue_alert(
    session: Session, settings: Settings, agency: Agency, views: list[FindingView], now: datetime
) -> int | None:
    assert agency.id is not None
    contacts = agency_contacts(session, agency.id)
    domains = sorted({v.domain for v in views})
    operators = [a for a, operated in contacts.operators.items() if set(operated) & set(domains)]
    if contacts.reachable:
        addressing = Addressing.of(
            to=contacts.security or contacts.technical,
            cc=[*contacts.technical, *operators],
            bcc=cert_addresses(settings),
        )
    else:
        addressing = escalation_addressing(settings, contacts)
    if addressing.empty:
        log.warning("urgent findings and nobody to alert", extra={"agency": agency.name})
        return None
    language = language_of(agency, settings)
    problems = group_problems(views)
    items, omitted = problem_items(
        problems, language, with_fix=True, limit=settings.notify.max_problems_per_email
    )
    text, html = render_parts(
        "alert",
        language,
        {
            "language": language,
            "agency": display_name(agency.name),
            "domains": domains,
            "today": now.date(),
            "items": items,
            "omitted": omitted,
            "reply_to": reply_address(settings),
        },
    )
    draft = Draft(
        kind=Kind.ALERT,
        agency_id=agency.id,
        agency=agency.name,
        language=language,
        subject=alert_subject(language, agency.name, len(problems)),
        text=text,
        html=html,
        addressing=addressing,
        payload={"findings": {"new": [v.id for v in views]}},
        created_at=now,
    )
    row = queue_draft(session, settings, draft)
    record_told(session, [v.id for v in views], ACTIVE, now, row.id)
    log.info("urgent alert queued", extra={"outbox_id": row.id, "agency": agency.name})
    return row.id


# At the end of a sweep: how long pending alerts may still take, and how long one
# delivery may have been in flight before the server counts as stalled (no wait).
DRAIN_GRACE_S = 10.0
STALLED_AFTER_S = 1.0


class AlertDelivery:
    """A thread that sends queued alerts, fed by outbox ids, beside the sweep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server_down = False
        self._ids: queue.Queue[list[int]] = queue.Queue()
        self._pending = 0
        self._busy_since: float | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, ids: list[int]) -> None:
        if self.server_down:
            return
        with self._lock:
            self._pending += 1
            if self._thread is None:
                # A daemon: a stalled server never keeps the process alive.
                self._thread = threading.Thread(target=self._run, name="vigie-alerts", daemon=True)
                self._thread.start()
        self._ids.put(ids)

    def _run(self) -> None:
        while True:
            ids = self._ids.get()
            self._busy_since = time.monotonic()
            try:
                if not self.server_down:
                    report = deliver_outbox(self.settings, only_ids=ids)
                    if report.unavailable is not None:
                        self.server_down = True
            except Exception as exc:  # the outbox keeps the alert for the next notify run
                log.warning("urgent alert not sent", extra={"reason": str(exc)[:300]})
            finally:
                self._busy_since = None
                with self._lock:
                    self._pending -= 1

    def drain(self, grace_s: float = DRAIN_GRACE_S) -> bool:
        """Wait for pending alerts while the server answers promptly; True once none is in
        flight (sent, or left queued in the outbox when the server is unavailable)."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            busy_since = self._busy_since
            if self.server_down or (
                busy_since is not None and time.monotonic() - busy_since > STALLED_AFTER_S
            ):
                break
            time.sleep(0.02)
        log.info("urgent alerts left for the next notify run", extra={"pending": self._pending})
        return False


class UrgentAlertHook:
    """The sweep's per-host hook: queue alerts for new urgent findings; after commit,
    hand them to the delivery thread. ``drain()`` is called when the sweep ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.delivery = AlertDelivery(settings)

    def __call__(self, session: Session, result: HostResult, outcome: RecordOutcome) -> None:
        records = [*outcome.new, *outcome.reopened]
        if not records:
            return
        ids = queue_urgent_alerts(session, self.settings, records, utcnow())
        if ids and not self.delivery.server_down:
            sa.event.listen(
                session, "after_commit", lambda _session: self.delivery.submit(ids), once=True
            )

    def drain(self, grace_s: float = DRAIN_GRACE_S) -> bool:
        return self.delivery.drain(grace_s)


def urgent_alert_hook(settings: Settings) -> UrgentAlertHook:
    """The sweep's per-host hook for urgent alerts (see :class:`UrgentAlertHook`)."""
    return UrgentAlertHook(settings)
