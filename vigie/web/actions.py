"""What people do from the console: re-check an application, explain a finding, decide.

Re-checks run through the same sweep service as ``vigie scan DOMAIN``
(:func:`vigie.sweep.run_sweep`), so scope, mandate and quiet hours apply as
they do everywhere; they run in a background thread of the console and their
progress is the sweep's own ``ScanRun`` row. Explanations become the existing
risk acceptances (:mod:`vigie.acceptance`) once an analyst approves them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from vigie.acceptance import MAX_ACCEPTANCE_DAYS, accept_finding
from vigie.config import Settings
from vigie.db.session import session_scope
from vigie.db.tables import (
    Domain,
    DomainStatus,
    Explanation,
    FindingRecord,
    HostScan,
    Recheck,
    ScanRun,
)
from vigie.errors import NotFoundError, SweepLocked, UsageError
from vigie.model import FindingStatus, HostResult, utcnow
from vigie.web.accounts import Principal, audit, check_recheck_throttle

if TYPE_CHECKING:
    from vigie.sweep import HostHook, SweepProgress, SweepRequest, SweepSummary

log = logging.getLogger("vigie.web")

RECHECK_SOURCE = "web"
# Re-checks run one after the other in one worker thread, and wait (up to
# RECHECK_LOCK_WAIT_S) while another sweep holds the database lock: two agencies
# asking at once both get their re-check.
RECHECK_LOCK_RETRY_S = 3.0
RECHECK_LOCK_WAIT_S = 1800.0
_queue: queue.Queue[tuple[Settings, int]] = queue.Queue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


# --- re-check -------------------------------------------------------------------


def request_recheck(
    session: Session, settings: Settings, who: Principal, domain: Domain, client: str = ""
) -> Recheck:
    """Record a re-check of ``domain`` (throttled for agencies); start it with start_recheck."""
    if domain.status != DomainStatus.ACTIVE:
        raise UsageError("only active applications are re-checked")
    if not who.is_staff:
        check_recheck_throttle(session, settings, domain.agency_id)
    recheck = Recheck(domain=domain.name, agency_id=domain.agency_id, requested_by=who.actor)
    session.add(recheck)
    session.flush()
    audit(
        session,
        who.actor,
        "recheck_requested",
        target=domain.name,
        agency_id=domain.agency_id,
        client=client,
        recheck=recheck.id,
    )
    return recheck


def start_recheck(settings: Settings, recheck_id: int) -> None:
    """Queue the re-check for the console's re-check worker (started on first use)."""
    global _worker
    _queue.put((settings, recheck_id))
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="vigie-rechecks", daemon=True)
            _worker.start()


def _work() -> None:
    while True:
        settings, recheck_id = _queue.get()
        try:
            run_recheck(settings, recheck_id)
        except Exception as exc:  # run_recheck records its own failures; never die
            log.warning("re-check worker", extra={"error": str(exc)})
        finally:
            _queue.task_done()


def _set_status(settings: Settings, recheck_id: int, status: str, note: str | None) -> None:
    with session_scope(settings) as session:
        recheck = session.get(Recheck, recheck_id)
        if recheck is not None:
            recheck.status = status
            recheck.error = note
            session.add(recheck)


class _RecheckProgress:
    """Links the re-check to its sweep run as soon as the run exists."""

    def __init__(self, settings: Settings, recheck_id: int, after_run: int) -> None:
        self.settings = settings
        self.recheck_id = recheck_id
        self.after_run = after_run
        self.linked = False

    def _link(self) -> None:
        if self.linked:
            return
        with session_scope(self.settings) as session:
            recheck = session.get(Recheck, self.recheck_id)
            run = session.exec(
                select(ScanRun)
                .where(ScanRun.source == RECHECK_SOURCE, col(ScanRun.id) > self.after_run)
                .order_by(col(ScanRun.id))
            ).all()
            mine = [r for r in run if recheck is not None and r.domains == [recheck.domain]]
            if recheck is not None and mine:
                recheck.run_id = mine[0].id
                session.add(recheck)
                self.linked = True

    def planned(self, total: int) -> None:
        self._link()

    def advanced(self, result: HostResult, outcome: object) -> None:
        self._link()


def run_recheck(settings: Settings, recheck_id: int) -> None:
    """The body of a re-check (the background thread's target)."""
    from vigie.sweep import SweepProgress, SweepRequest

    started = _mark_running(settings, recheck_id)
    if started is None:
        return
    domain, last_run = started
    tracker = _RecheckProgress(settings, recheck_id, last_run)

    class Progress(SweepProgress):
        def planned(self, total: int) -> None:
            tracker.planned(total)

        def advanced(self, result: HostResult, outcome: object) -> None:  # type: ignore[override]
            tracker.advanced(result, outcome)

    status, error, summary_data, run_id = "failed", None, {}, None
    try:
        request = SweepRequest(domains=(domain,), source=RECHECK_SOURCE)
        summary = _sweep_when_free(settings, recheck_id, request, Progress())
        status, run_id = summary.status, summary.run_id
        summary_data = {
            "hosts": summary.hosts_done,
            "findings": summary.findings_seen,
            "new": summary.new,
            "reopened": summary.reopened,
            "resolved": summary.resolved,
            "not_authorised": summary.not_authorised,
            "postponed": summary.postponed,
            "elapsed_s": round(summary.elapsed_s, 1),
        }
    except Exception as exc:  # the page shows why; the console keeps serving
        log.warning("re-check failed", extra={"domain": domain, "error": str(exc)})
        error = str(exc)
    finally:
        _mark_finished(settings, recheck_id, status, error, summary_data, run_id)


def _mark_running(settings: Settings, recheck_id: int) -> tuple[str, int] | None:
    """The re-check's domain and the last run before it, once marked running."""
    with session_scope(settings) as session:
        recheck = session.get(Recheck, recheck_id)
        if recheck is None:
            return None
        recheck.status = "running"
        session.add(recheck)
        last_run = session.exec(select(ScanRun.id).order_by(col(ScanRun.id).desc())).first() or 0
        return recheck.domain, last_run


def _sweep_when_free(
    settings: Settings, recheck_id: int, request: SweepRequest, progress: SweepProgress
) -> SweepSummary:
    """Run the re-check's sweep; while a full sweep holds the lock, wait (queued) up to
    ``RECHECK_LOCK_WAIT_S``."""
    from vigie.sweep import run_sweep

    waited = 0.0
    while True:
        try:
            return run_sweep(settings, request, progress, _alert_hook(settings))
        except SweepLocked:
            if waited >= RECHECK_LOCK_WAIT_S:
                raise
            _set_status(settings, recheck_id, "queued", "waiting for the sweep in progress")
            time.sleep(RECHECK_LOCK_RETRY_S)
            waited += RECHECK_LOCK_RETRY_S
            _set_status(settings, recheck_id, "running", None)


def _mark_finished(
    settings: Settings,
    recheck_id: int,
    status: str,
    error: str | None,
    summary: dict[str, object],
    run_id: int | None,
) -> None:
    with session_scope(settings) as session:
        recheck = session.get(Recheck, recheck_id)
        if recheck is not None:
            recheck.status = status
            recheck.error = error
            recheck.summary = summary
            recheck.run_id = run_id or recheck.run_id
            recheck.finished_at = utcnow()
            session.add(recheck)


def _alert_hook(settings: Settings) -> HostHook | None:
    try:
        from vigie.notify import urgent_alert_hook
    except ImportError:
        return None
    return urgent_alert_hook(settings)


def recheck_progress(session: Session, recheck: Recheck) -> dict[str, object]:
    """Hosts done and to do, from the sweep's run and its host scans."""
    run = session.get(ScanRun, recheck.run_id) if recheck.run_id else None
    hosts: list[HostScan] = []
    if run is not None:
        hosts = list(
            session.exec(
                select(HostScan)
                .where(HostScan.run_id == run.id, HostScan.domain == recheck.domain)
                .order_by(col(HostScan.id))
            )
        )
    return {
        "run": run,
        "hosts": hosts,
        "done": run.hosts_done if run else 0,
        "planned": run.hosts_planned if run else 0,
        "finished": recheck.status not in ("queued", "running"),
    }


# --- explain, approve, refuse -----------------------------------------------------


def propose_explanation(
    session: Session,
    who: Principal,
    finding: FindingRecord,
    reason: str,
    until: date,
    *,
    today: date | None = None,
    client: str = "",
) -> Explanation:
    today = today or date.today()
    reason = reason.strip()
    if not reason:
        raise UsageError("explain why the risk is accepted")
    if len(reason) > 2000:
        raise UsageError("keep the explanation under 2,000 characters")
    if until < today or (until - today).days > MAX_ACCEPTANCE_DAYS:
        raise UsageError(f"the end date is within the next {MAX_ACCEPTANCE_DAYS} days")
    if finding.status == FindingStatus.RESOLVED.value:
        raise UsageError("this finding is resolved")
    assert finding.id is not None
    explanation = Explanation(
        finding_id=finding.id, reason=reason, until=until, proposed_by=who.actor
    )
    session.add(explanation)
    session.flush()
    audit(
        session,
        who.actor,
        "explanation_proposed",
        target=f"finding:{finding.id}",
        agency_id=finding.agency_id,
        client=client,
        explanation=explanation.id,
        until=until.isoformat(),
    )
    return explanation


def decide_explanation(
    session: Session,
    who: Principal,
    explanation: Explanation,
    approve: bool,
    note: str = "",
    *,
    now: datetime | None = None,
    client: str = "",
) -> Explanation:
    """An analyst approves (a risk acceptance is recorded) or refuses a proposal."""
    if not who.is_staff:
        raise NotFoundError("no such explanation")
    if explanation.status != "proposed":
        raise UsageError(f"this explanation was already {explanation.status}")
    now = now or utcnow()
    finding = session.get(FindingRecord, explanation.finding_id)
    assert finding is not None
    if approve:
        acceptance = accept_finding(
            session,
            str(explanation.finding_id),
            reason=explanation.reason,
            until=explanation.until,
            accepted_by=f"{explanation.proposed_by}, approved by {who.name}",
            today=now.date(),
            now=now,
        )
        explanation.acceptance_id = acceptance.id
    explanation.status = "approved" if approve else "refused"
    explanation.decided_by = who.actor
    explanation.decided_at = now
    explanation.decision_note = note.strip()[:2000]
    session.add(explanation)
    audit(
        session,
        who.actor,
        "explanation_approved" if approve else "explanation_refused",
        target=f"finding:{finding.id}",
        agency_id=finding.agency_id,
        client=client,
        explanation=explanation.id,
    )
    return explanation
