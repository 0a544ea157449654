"""The console's pages and actions, one handler per route (see ``vigie.web.app.ROUTES``).

Pages read through the same services as the CLI and the reports
(:mod:`vigie.grading`, :mod:`vigie.reports`, :mod:`vigie.db.queries`,
:mod:`vigie.acceptance`, :mod:`vigie.notify`); tables offer CSV and JSON (and
SARIF for findings) of exactly what the filters select.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select
from starlette.responses import RedirectResponse, Response

from vigie.catalogue import remediation_snippets, spec_for
from vigie.db.queries import FindingFilter, FindingView, query_findings
from vigie.db.tables import (
    Agency,
    AuditEvent,
    Domain,
    DomainStatus,
    Explanation,
    FindingEvent,
    FindingRecord,
    GradeRecord,
    HostScan,
    Mandate,
    Recheck,
    RiskAcceptance,
    ScanRun,
    SeverityOverride,
)
from vigie.errors import NotFoundError, RegistryImportError, UsageError
from vigie.model import Family, FindingStatus, Severity, utcnow
from vigie.parsing import ascii_int
from vigie.render import CSV_FINDING_COLUMNS, finding_to_dict, to_csv, to_json
from vigie.web import cache
from vigie.web.accounts import (
    Throttled,
    agency_from_link,
    audit,
    authenticate,
    check_login_throttle,
    link_signed_at,
    revoke_agency_links,
)
from vigie.web.actions import (
    decide_explanation,
    propose_explanation,
    recheck_progress,
    request_recheck,
    start_recheck,
)
from vigie.web.app import Ctx, route

PAGE_SIZE = 100
SEVERITY_RANK = sa.case(
    {s.value: s.rank for s in Severity}, value=col(FindingRecord.severity), else_=0
)


# --- helpers ----------------------------------------------------------------------------


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def download(ctx: Ctx, name: str, rows: list[dict[str, Any]], columns: list[str]) -> Response:
    """The rows of a table as CSV or JSON, by ``?format=``."""
    fmt = ctx.query("format")
    if fmt == "json":
        return Response(
            to_json(rows),
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{name}.json"'},
        )
    return Response(
        to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}.csv"'},
    )


def matches(wanted: str, *texts: str) -> bool:
    """A free-text filter: every word appears in one of ``texts`` (case ignored)."""
    haystack = " ".join(texts).casefold()
    return all(word in haystack for word in wanted.casefold().split())


def wants_download(ctx: Ctx, formats: tuple[str, ...] = ("csv", "json")) -> bool:
    return ctx.query("format") in formats


def visible_agency(ctx: Ctx, agency_id: int | None) -> Agency:
    if agency_id is None or not ctx.principal.sees_agency(agency_id):
        raise NotFoundError("agency")
    agency = ctx.db.get(Agency, agency_id)
    if agency is None:
        raise NotFoundError("agency")
    return agency


def visible_domain(ctx: Ctx, domain_id: int) -> Domain:
    domain = ctx.db.get(Domain, domain_id)
    if domain is None or not ctx.principal.sees_agency(domain.agency_id):
        raise NotFoundError("application")
    if domain.status in (DomainStatus.CANDIDATE, DomainStatus.REJECTED) and not (
        ctx.principal.is_staff
    ):
        raise NotFoundError("application")
    return domain


def visible_finding(ctx: Ctx, finding_id: int) -> FindingRecord:
    record = ctx.db.get(FindingRecord, finding_id)
    if record is None or not ctx.principal.sees_agency(record.agency_id):
        raise NotFoundError("finding")
    return record


def agencies_by_id(db: Session) -> dict[int, Agency]:
    return {a.id: a for a in db.exec(select(Agency)) if a.id is not None}


def home_of(ctx: Ctx) -> str:
    who = ctx.principal
    return "/" if who.is_staff else f"/agencies/{who.agency_id}"


# --- sign-in ------------------------------------------------------------------------------


@route("/login", methods=("GET",), access="public")
def login_form(ctx: Ctx) -> Response:
    return ctx.render("web/login.html.j2", next=_safe_next(ctx.query("next")), error=None)


@route("/login", methods=("POST",), access="public")
def login(ctx: Ctx) -> Response:
    username, password = ctx.field("username"), ctx.field("password")
    target = _safe_next(ctx.field("next"))
    try:
        check_login_throttle(ctx.db, ctx.settings, username, ctx.client)
    except Throttled as exc:
        audit(ctx.db, "anonymous", "login_throttled", target=username, client=ctx.client)
        return ctx.render("web/login.html.j2", code=429, next=target, error=str(exc))
    user = authenticate(ctx.db, username, password)
    if user is None:
        audit(ctx.db, "anonymous", "login_failed", target=username, client=ctx.client)
        return ctx.render(
            "web/login.html.j2", code=401, next=target, error="wrong username or password"
        )
    # A new session (and CSRF token) at each sign-in: no fixation.
    ctx.session_data.clear()
    ctx.session_data.update(
        {"csrf": _new_token(), "who": {"k": "user", "u": user.username}, "lang": ctx.language}
    )
    ctx.set_cookie = True
    audit(ctx.db, f"{user.role}:{user.username}", "login", client=ctx.client)
    return redirect(target)


@route("/logout", methods=("POST",), access="any")
def logout(ctx: Ctx) -> Response:
    audit(ctx.db, ctx.principal.actor, "logout", agency_id=ctx.principal.agency_id)
    ctx.session_data.clear()
    ctx.session_data["csrf"] = _new_token()
    ctx.set_cookie = True
    return redirect("/login")


@route("/link/{token}", access="public")
def link(ctx: Ctx) -> Response:
    token = ctx.param("token")
    agency = agency_from_link(ctx.db, ctx.settings, token)
    if agency is None:
        audit(ctx.db, "anonymous", "link_refused", client=ctx.client)
        return ctx.render(
            "web/error.html.j2",
            code=403,
            message="this link has expired or was withdrawn: ask the CERT for a new one",
        )
    ctx.session_data.clear()
    ctx.session_data.update(
        {
            "csrf": _new_token(),
            "who": {
                "k": "agency",
                "a": agency.id,
                "t": link_signed_at(ctx.db, ctx.settings, token),
            },
        }
    )
    ctx.set_cookie = True
    audit(ctx.db, f"agency:{agency.id}", "link_login", agency_id=agency.id, client=ctx.client)
    # The token leaves the address bar (and any later Referer) at once.
    return redirect(f"/agencies/{agency.id}")


def _new_token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def _safe_next(value: str) -> str:
    """Only a path of this site: never another origin (open redirect)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


# --- overview -------------------------------------------------------------------------------


@route("/", access="any")
def overview(ctx: Ctx) -> Response:
    if not ctx.principal.is_staff:
        return redirect(home_of(ctx))
    report = cache.overview(ctx.db, ctx.settings, ctx.language, stale_ok=ctx.settings.web.prebuild)
    overdue_by_agency = sorted(
        (row for row in report.ranking if row.overdue), key=lambda r: (-r.overdue, r.agency)
    )
    ids = {a.name: a.id for a in agencies_by_id(ctx.db).values()}
    worst = _worst_open(ctx.db)
    running = list(
        ctx.db.exec(select(ScanRun).where(ScanRun.status == "running").order_by(col(ScanRun.id)))
    )
    pending = ctx.db.exec(
        select(func.count()).select_from(Explanation).where(Explanation.status == "proposed")
    ).one()
    return ctx.render(
        "web/overview.html.j2",
        report=report,
        overdue_by_agency=overdue_by_agency[:30],
        agency_ids=ids,
        worst=worst,
        running=running,
        pending_explanations=pending,
    )


def _worst_open(db: Session, limit: int = 15) -> list[tuple[FindingRecord, str]]:
    """The most severe open exposures, oldest first among equals (one SQL query)."""
    rows = db.exec(
        select(FindingRecord, Agency.name)
        .join(Agency, col(Agency.id) == col(FindingRecord.agency_id), isouter=True)
        .where(col(FindingRecord.status) != FindingStatus.RESOLVED.value)
        .where(col(FindingRecord.severity).in_([Severity.CRITICAL.value, Severity.HIGH.value]))
        .order_by(SEVERITY_RANK.desc(), col(FindingRecord.first_seen))
        .limit(limit)
    )
    return [(record, name or "") for record, name in rows]


# --- agencies and applications ----------------------------------------------------------------


@route("/agencies", access="staff")
def agency_list(ctx: Ctx) -> Response:
    report = cache.overview(ctx.db, ctx.settings, ctx.language, stale_ok=ctx.settings.web.prebuild)
    ids = {a.name: a.id for a in agencies_by_id(ctx.db).values()}
    rows = [
        {
            "agency": r.agency,
            "grade": r.grade,
            "applications": r.applications,
            "flagged": r.flagged,
            "critical": r.critical,
            "high": r.high,
            "overdue": r.overdue,
        }
        for r in report.ranking
    ]
    if wants_download(ctx):
        return download(ctx, "agencies", rows, list(rows[0]) if rows else ["agency"])
    return ctx.render("web/agencies.html.j2", rows=rows, agency_ids=ids)


@route("/agencies/{agency_id:int}", access="any")
def agency_page(ctx: Ctx) -> Response:
    agency = visible_agency(ctx, ctx.int_param("agency_id"))
    report = cache.agency(ctx.db, ctx.settings, agency, ctx.language)
    domain_ids = {
        d.name: d.id for d in ctx.db.exec(select(Domain).where(Domain.agency_id == agency.id))
    }
    if wants_download(ctx):
        rows = [s.application.to_dict() for s in report.applications]
        from vigie.grading import GRADE_COLUMNS

        return download(ctx, f"applications-{agency.id}", rows, list(GRADE_COLUMNS))
    open_views = [
        v
        for s in report.applications
        for g in s.groups
        for v in g.findings
        if v.severity > Severity.INFO
    ]
    by_severity = _by_severity_and_due(open_views)
    return ctx.render(
        "web/agency.html.j2",
        agency=agency,
        report=report,
        domain_ids=domain_ids,
        by_severity=by_severity,
        since_sweep=_changes_since_last_sweep(ctx.db, agency),
        rechecks=_recent_rechecks(ctx.db, agency_id=agency.id),
        explanations=_explanations(ctx.db, agency_id=agency.id),
    )


def _by_severity_and_due(views: list[FindingView]) -> list[tuple[Severity, list[FindingView]]]:
    groups: dict[Severity, list[FindingView]] = {}
    for view in views:
        groups.setdefault(view.severity, []).append(view)
    return [
        (severity, sorted(groups[severity], key=lambda v: (v.due_date or date.max, v.domain)))
        for severity in sorted(groups, key=lambda s: -s.rank)
    ]


@dataclass(frozen=True)
class SweepChange:
    finding: FindingRecord
    from_status: str | None
    to_status: str
    at: datetime


def _changes_since_last_sweep(db: Session, agency: Agency) -> tuple[ScanRun | None, list[Any]]:
    """The status changes the agency's latest finished run made (new, reopened, resolved)."""
    last = db.exec(
        select(HostScan.run_id)
        .where(HostScan.agency == agency.name)
        .order_by(col(HostScan.run_id).desc())
        .limit(1)
    ).first()
    if last is None:
        return None, []
    run = db.get(ScanRun, last)
    rows = db.exec(
        select(FindingEvent, FindingRecord)
        .where(FindingEvent.finding_id == FindingRecord.id)
        .where(FindingEvent.run_id == last, FindingRecord.agency_id == agency.id)
        .where(col(FindingEvent.from_status).is_distinct_from(col(FindingEvent.to_status)))
        .order_by(SEVERITY_RANK.desc(), col(FindingRecord.domain))
        .limit(200)
    )
    changes = [
        SweepChange(record, event.from_status, event.to_status, event.at)
        for event, record in rows
        if event.from_status is None or event.to_status in ("resolved", "reopened")
    ]
    return run, changes


@route("/applications/{domain_id:int}", access="any")
def application_page(ctx: Ctx) -> Response:
    domain = visible_domain(ctx, ctx.int_param("domain_id"))
    from vigie.grading import grade_applications, policies_for

    policy = policies_for(ctx.settings).select(ctx.settings.grading.policy, date.today())
    applications = grade_applications(ctx.db, ctx.settings, policy=policy, domains=[domain.name])
    application = applications[0] if applications else None
    views = list(application.findings) if application else []
    if wants_download(ctx, ("csv", "json", "sarif")):
        return findings_download(ctx, views)
    history = list(
        ctx.db.exec(
            select(GradeRecord)
            .where(GradeRecord.domain == domain.name)
            .order_by(col(GradeRecord.computed_at).desc())
            .limit(30)
        )
    )
    scans = list(
        ctx.db.exec(
            select(HostScan)
            .where(HostScan.domain == domain.name)
            .order_by(col(HostScan.id).desc())
            .limit(30)
        )
    )
    agency = ctx.db.get(Agency, domain.agency_id) if domain.agency_id else None
    return ctx.render(
        "web/application.html.j2",
        policy=policy,
        domain=domain,
        agency=agency,
        application=application,
        views=views,
        history=history,
        scans=scans,
        rechecks=_recent_rechecks(ctx.db, domain=domain.name),
        today=date.today(),
    )


@route("/applications/{domain_id:int}/recheck", methods=("POST",), access="any")
def recheck(ctx: Ctx) -> Response:
    domain = visible_domain(ctx, ctx.int_param("domain_id"))
    row = request_recheck(ctx.db, ctx.settings, ctx.principal, domain, client=ctx.client)
    assert row.id is not None
    ctx.db.commit()
    start_recheck(ctx.settings, row.id)
    return redirect(f"/rechecks/{row.id}")


@route("/rechecks/{recheck_id:int}", access="any")
def recheck_page(ctx: Ctx) -> Response:
    row = ctx.db.get(Recheck, ctx.int_param("recheck_id"))
    if row is None or not ctx.principal.sees_agency(row.agency_id):
        raise NotFoundError("re-check")
    domain = ctx.db.exec(select(Domain).where(Domain.name == row.domain)).first()
    progress = recheck_progress(ctx.db, row)
    return ctx.render("web/recheck.html.j2", recheck=row, domain=domain, progress=progress)


def _recent_rechecks(
    db: Session, *, agency_id: int | None = None, domain: str | None = None
) -> list[Recheck]:
    query = select(Recheck).order_by(col(Recheck.id).desc()).limit(10)
    if agency_id is not None:
        query = query.where(Recheck.agency_id == agency_id)
    if domain is not None:
        query = query.where(Recheck.domain == domain)
    return list(db.exec(query))


# --- findings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingQuery:
    agency_id: int | None
    domain: str
    severity_min: Severity | None
    status: str  # "" = unresolved, "all", or a FindingStatus value
    family: str
    check_id: str
    overdue: bool
    page: int

    @classmethod
    def from_request(cls, ctx: Ctx) -> FindingQuery:
        who = ctx.principal
        agency_id: int | None = who.agency_id
        if who.is_staff and (chosen := ascii_int(ctx.query("agency"))) is not None:
            agency_id = chosen
        severity = ctx.query("severity")
        status = ctx.query("status")
        family = ctx.query("family")
        page = ctx.query("page")
        return cls(
            agency_id=agency_id,
            domain=ctx.query("domain").lower().rstrip("."),
            severity_min=Severity(severity) if severity in Severity._value2member_map_ else None,
            status=status if status in ("all", *FindingStatus._value2member_map_) else "",
            family=family if family in Family._value2member_map_ else "",
            check_id=ctx.query("check")[:80],
            overdue=ctx.query("overdue") == "1",
            page=max(1, ascii_int(page, max_digits=6) or 1),
        )

    def where(self, query: Any, today: date) -> Any:
        if self.agency_id is not None:
            query = query.where(FindingRecord.agency_id == self.agency_id)
        if self.domain:
            query = query.where(FindingRecord.domain == self.domain)
        if self.severity_min is not None:
            wanted = [s.value for s in Severity if s >= self.severity_min]
            query = query.where(col(FindingRecord.severity).in_(wanted))
        if self.status == "":
            query = query.where(col(FindingRecord.status) != FindingStatus.RESOLVED.value)
        elif self.status != "all":
            query = query.where(FindingRecord.status == self.status)
        if self.family:
            query = query.where(FindingRecord.family == self.family)
        if self.check_id:
            query = query.where(FindingRecord.check_id == self.check_id)
        if self.overdue:
            query = query.where(
                col(FindingRecord.status) != FindingStatus.RESOLVED.value,
                col(FindingRecord.due_date) < today,
            )
        return query

    def as_filter(self, agency: Agency | None) -> FindingFilter:
        statuses: tuple[FindingStatus, ...] = ()
        if self.status not in ("", "all"):
            statuses = (FindingStatus(self.status),)
        return FindingFilter(
            agency=agency.name if agency else None,
            domain=self.domain or None,
            severity_min=self.severity_min,
            statuses=statuses,
            families=(Family(self.family),) if self.family else (),
            check_ids=(self.check_id,) if self.check_id else (),
            include_resolved=self.status == "all",
        )


@route("/findings", access="any")
def findings_page(ctx: Ctx) -> Response:
    wanted = FindingQuery.from_request(ctx)
    agency = visible_agency(ctx, wanted.agency_id) if wanted.agency_id is not None else None
    today = date.today()
    if wants_download(ctx, ("csv", "json", "sarif")):
        views = query_findings(ctx.db, wanted.as_filter(agency), today)
        if wanted.overdue:
            views = [v for v in views if v.overdue(today)]
        return findings_download(ctx, views)
    total = ctx.db.exec(wanted.where(select(func.count()).select_from(FindingRecord), today)).one()
    rows = ctx.db.exec(
        wanted.where(select(FindingRecord), today)
        .order_by(
            SEVERITY_RANK.desc(),
            col(FindingRecord.due_date),
            col(FindingRecord.domain),
            col(FindingRecord.id),
        )
        .offset((wanted.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    every_agency = agencies_by_id(ctx.db)
    names = {a_id: a.name for a_id, a in every_agency.items()}
    accepted = _live_acceptances(ctx.db, [r.id for r in rows if r.id is not None], today)
    agencies = sorted(every_agency.values(), key=lambda a: a.name) if ctx.principal.is_staff else []
    return ctx.render(
        "web/findings.html.j2",
        rows=rows,
        total=total,
        wanted=wanted,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        names=names,
        accepted=accepted,
        agencies=agencies,
        today=today,
        severities=[s.value for s in sorted(Severity, key=lambda s: -s.rank)],
        statuses=[s.value for s in FindingStatus],
        families=[f.value for f in Family],
    )


def _live_acceptances(db: Session, ids: list[int], today: date) -> dict[int, RiskAcceptance]:
    if not ids:
        return {}
    return {
        a.finding_id: a
        for a in db.exec(select(RiskAcceptance).where(col(RiskAcceptance.finding_id).in_(ids)))
        if a.revoked_at is None and a.until >= today
    }


def findings_download(ctx: Ctx, views: list[FindingView]) -> Response:
    fmt = ctx.query("format")
    today = date.today()
    audit(
        ctx.db,
        ctx.principal.actor,
        "download",
        target=f"findings.{fmt}",
        agency_id=ctx.principal.agency_id,
        client=ctx.client,
        rows=len(views),
    )
    if fmt == "sarif":
        from vigie.exports import findings_to_sarif

        return Response(
            to_json(findings_to_sarif(views, ctx.language, today)),
            media_type="application/sarif+json",
            headers={"content-disposition": 'attachment; filename="findings.sarif"'},
        )
    rows = [finding_to_dict(v, ctx.language, today) for v in views]
    return download(ctx, "findings", rows, list(CSV_FINDING_COLUMNS))


@route("/findings/{finding_id:int}", access="any")
def finding_page(ctx: Ctx) -> Response:
    record = visible_finding(ctx, ctx.int_param("finding_id"))
    events = list(
        ctx.db.exec(
            select(FindingEvent)
            .where(FindingEvent.finding_id == record.id)
            .order_by(col(FindingEvent.at).desc(), col(FindingEvent.id).desc())
        )
    )
    acceptances = list(
        ctx.db.exec(
            select(RiskAcceptance)
            .where(RiskAcceptance.finding_id == record.id)
            .order_by(col(RiskAcceptance.id).desc())
        )
    )
    explanations = _explanations(ctx.db, finding_id=record.id)
    domain = ctx.db.exec(select(Domain).where(Domain.name == record.domain)).first()
    agency = ctx.db.get(Agency, record.agency_id) if record.agency_id else None
    overrides = list(
        ctx.db.exec(
            select(SeverityOverride)
            .where(SeverityOverride.check_id == record.check_id)
            .order_by(col(SeverityOverride.id).desc())
        )
    )
    today = date.today()
    return ctx.render(
        "web/finding.html.j2",
        finding=record,
        spec=spec_for(record.check_id),
        snippets=remediation_snippets(record.check_id),
        events=events,
        acceptances=acceptances,
        explanations=explanations,
        domain=domain,
        agency=agency,
        overrides=overrides,
        today=today,
        default_until=today + timedelta(days=90),
        severities=[s.value for s in sorted(Severity, key=lambda s: -s.rank)],
        evidence_json=json.dumps(record.evidence, indent=2, ensure_ascii=False, default=str),
    )


@route("/findings/{finding_id:int}/explain", methods=("POST",), access="any")
def explain(ctx: Ctx) -> Response:
    record = visible_finding(ctx, ctx.int_param("finding_id"))
    try:
        until = date.fromisoformat(ctx.field("until"))
    except ValueError:
        raise UsageError("give the end date as YYYY-MM-DD") from None
    propose_explanation(
        ctx.db, ctx.principal, record, ctx.field("reason"), until, client=ctx.client
    )
    ctx.flash("explanation sent to the CERT")
    return redirect(f"/findings/{record.id}")


@route("/explanations/{explanation_id:int}/decide", methods=("POST",), access="staff")
def decide(ctx: Ctx) -> Response:
    row = ctx.db.get(Explanation, ctx.int_param("explanation_id"))
    if row is None:
        raise NotFoundError("explanation")
    decision = ctx.field("decision")
    if decision not in ("approve", "refuse"):
        raise UsageError("approve or refuse")
    decide_explanation(
        ctx.db, ctx.principal, row, decision == "approve", ctx.field("note"), client=ctx.client
    )
    ctx.flash("explanation approved" if decision == "approve" else "explanation refused")
    return redirect(f"/findings/{row.finding_id}")


@route("/explanations", access="staff")
def explanations_page(ctx: Ctx) -> Response:
    status = ctx.query("status") or "proposed"
    rows = _explanations(ctx.db, status=None if status == "all" else status, limit=500)
    if wants_download(ctx):
        data = [
            {
                "id": e.id,
                "finding_id": e.finding_id,
                "agency": agency,
                "domain": f.domain,
                "check_id": f.check_id,
                "status": e.status,
                "until": e.until,
                "reason": e.reason,
                "proposed_by": e.proposed_by,
                "proposed_at": e.proposed_at,
                "decided_by": e.decided_by,
            }
            for e, f, agency in rows
        ]
        return download(ctx, "explanations", data, list(data[0]) if data else ["id"])
    return ctx.render("web/explanations.html.j2", rows=rows, status=status)


def _explanations(
    db: Session,
    *,
    agency_id: int | None = None,
    finding_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[tuple[Explanation, FindingRecord, str]]:
    query = (
        select(Explanation, FindingRecord, Agency.name)
        .where(Explanation.finding_id == FindingRecord.id)
        .join(Agency, col(Agency.id) == col(FindingRecord.agency_id), isouter=True)
        .order_by(col(Explanation.id).desc())
        .limit(limit)
    )
    if agency_id is not None:
        query = query.where(FindingRecord.agency_id == agency_id)
    if finding_id is not None:
        query = query.where(Explanation.finding_id == finding_id)
    if status is not None:
        query = query.where(Explanation.status == status)
    return [(e, f, name or "") for e, f, name in db.exec(query)]


@route("/findings/{finding_id:int}/severity", methods=("POST",), access="staff")
def change_severity(ctx: Ctx) -> Response:
    from vigie.severity import override_severity

    record = visible_finding(ctx, ctx.int_param("finding_id"))
    value = ctx.field("severity")
    if value not in Severity._value2member_map_:
        raise UsageError("choose a severity")
    row = override_severity(
        ctx.db,
        ctx.settings,
        record.check_id,
        Severity(value),
        reason=ctx.field("reason"),
        set_by=ctx.principal.actor,
    )
    audit(
        ctx.db,
        ctx.principal.actor,
        "severity_changed",
        target=record.check_id,
        client=ctx.client,
        severity=value,
        reason=row.reason,
        finding=record.id,
    )
    cache.clear()
    ctx.flash("severity changed for this deployment")
    return redirect(f"/findings/{record.id}")


# --- scan runs ----------------------------------------------------------------------------


@route("/runs", access="staff")
def runs_page(ctx: Ctx) -> Response:
    query = select(ScanRun).order_by(col(ScanRun.id).desc()).limit(200)
    if ctx.query("status"):
        query = query.where(ScanRun.status == ctx.query("status"))
    if ctx.query("source"):
        query = query.where(ScanRun.source == ctx.query("source"))
    runs = list(ctx.db.exec(query))
    rows = [
        {
            "id": r.id,
            "status": r.status,
            "source": r.source,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "hosts_done": r.hosts_done,
            "hosts_planned": r.hosts_planned,
            "findings": r.findings_count,
            "domains": len(r.domains),
            "families": r.families,
            "error": r.error,
        }
        for r in runs
    ]
    if wants_download(ctx):
        return download(ctx, "runs", rows, list(rows[0]) if rows else ["id"])
    return ctx.render(
        "web/runs.html.j2",
        running=[r for r in runs if r.status == "running"],
        finished=[r for r in runs if r.status != "running"],
    )


@route("/runs/{run_id:int}", access="staff")
def run_page(ctx: Ctx) -> Response:
    run = ctx.db.get(ScanRun, ctx.int_param("run_id"))
    if run is None:
        raise NotFoundError("run")
    hosts = list(
        ctx.db.exec(select(HostScan).where(HostScan.run_id == run.id).order_by(col(HostScan.id)))
    )
    done = {h.domain for h in hosts}
    to_do = [d for d in run.domains if d not in done]
    if wants_download(ctx):
        rows = [
            {
                "domain": h.domain,
                "ip": h.ip,
                "agency": h.agency,
                "finished_at": h.finished_at,
                "open_ports": h.open_ports,
                "findings": h.findings_count,
                "incomplete": h.incomplete_families,
            }
            for h in hosts
        ]
        return download(ctx, f"run-{run.id}", rows, list(rows[0]) if rows else ["domain"])
    return ctx.render("web/run.html.j2", run=run, hosts=hosts, to_do=to_do)


# --- outbox, mandates, registry, audit -------------------------------------------------------


@route("/outbox", access="any")
def outbox_page(ctx: Ctx) -> Response:
    from vigie.notify import OUTBOX_COLUMNS, outbox_entries

    status = ctx.query("status")
    agency_id = ctx.principal.agency_id
    if ctx.principal.is_staff and (chosen := ascii_int(ctx.query("agency"))) is not None:
        agency_id = chosen
    entries = outbox_entries(
        ctx.db,
        statuses=(status,) if status in ("queued", "sent", "failed") else (),
        agency_id=agency_id,
    )
    if wants_download(ctx):
        return download(ctx, "outbox", [e.to_dict() for e in entries], list(OUTBOX_COLUMNS))
    return ctx.render("web/outbox.html.j2", entries=entries, status=status)


@route("/mandates", access="any")
def mandates_page(ctx: Ctx) -> Response:
    from vigie.targets.registry import mandate_is_valid

    query = select(Mandate).order_by(col(Mandate.agency_id), col(Mandate.id))
    if not ctx.principal.is_staff:
        query = query.where(Mandate.agency_id == ctx.principal.agency_id)
    names = {a.id: a.name for a in agencies_by_id(ctx.db).values()}
    today = date.today()
    rows = [
        {
            "id": m.id,
            "agency": names.get(m.agency_id, ""),
            "agency_id": m.agency_id,
            "legal_basis": m.legal_basis,
            "reference": m.reference,
            "intrusiveness": m.intrusiveness,
            "valid_from": m.valid_from,
            "valid_until": m.valid_until,
            "domains": m.domains,
            "cidrs": m.cidrs,
            "quiet_hours": m.quiet_hours,
            "valid_today": mandate_is_valid(m, today),
        }
        for m in ctx.db.exec(query)
        if matches(ctx.query("q"), names.get(m.agency_id, ""), m.reference, m.legal_basis)
    ]
    if ctx.query("valid") == "1":
        rows = [r for r in rows if r["valid_today"]]
    if wants_download(ctx):
        return download(
            ctx, "mandates", rows, [k for k in rows[0] if k != "agency_id"] if rows else ["id"]
        )
    return ctx.render("web/mandates.html.j2", rows=rows)


@route("/registry", access="staff")
def registry_page(ctx: Ctx) -> Response:
    from vigie.targets.registry import list_targets

    rows = [
        {
            "agency": t.agency,
            "agency_code": t.agency_code,
            "domain": t.domain,
            "status": t.status,
            "source": t.source,
            "language": t.language,
            "contacts": t.contacts,
            "tags": t.tags,
            "mail_domain": t.mail_domain,
        }
        for t in list_targets(ctx.db, include_inactive=True)
        if matches(ctx.query("q"), t.domain, t.agency, t.agency_code or "")
        and (not ctx.query("status") or t.status == ctx.query("status"))
    ]
    if wants_download(ctx):
        return download(ctx, "registry", rows, list(rows[0]) if rows else ["domain"])
    return ctx.render("web/registry.html.j2", rows=rows[:1000], total=len(rows), preview=None)


@dataclass(frozen=True)
class RegistryPreview:
    csv_text: str
    filename: str
    prune: bool
    summary: Any
    new_agencies: list[str]
    new_domains: list[str]
    moved: list[tuple[str, str, str]]
    reactivated: list[str]
    deactivated: list[str]
    problems: list[str]


def preview_registry(db: Session, text: str, filename: str, prune: bool) -> RegistryPreview:
    """Validate the CSV (all or nothing, as ``vigie targets import``) and compute what importing
    it would change, inside a transaction that is rolled back."""
    from vigie.targets.importer import parse_csv
    from vigie.targets.registry import import_registry

    try:
        entries = parse_csv(text, Path(filename or "upload.csv"))
    except RegistryImportError as exc:
        return RegistryPreview(text, filename, prune, None, [], [], [], [], [], exc.problems)
    agencies = {a.name.casefold(): a for a in db.exec(select(Agency))}
    by_id = {a.id: a.name for a in agencies.values()}
    domains = {d.name: d for d in db.exec(select(Domain))}
    new_agencies = [e.name for e in entries if e.name.casefold() not in agencies]
    new_domains, moved, reactivated = [], [], []
    for entry in entries:
        for item in entry.domains:
            existing = domains.get(item.name)
            if existing is None:
                new_domains.append(item.name)
                continue
            before = by_id.get(existing.agency_id, "")
            if before.casefold() != entry.name.casefold():
                moved.append((item.name, before, entry.name))
            if existing.status != DomainStatus.ACTIVE:
                reactivated.append(item.name)
    nested = db.begin_nested()
    try:
        summary = import_registry(db, entries, prune=prune)
    finally:
        nested.rollback()
    return RegistryPreview(
        text,
        filename,
        prune,
        summary,
        new_agencies,
        new_domains,
        moved,
        reactivated,
        list(summary.deactivated),
        [],
    )


@route("/registry/preview", methods=("POST",), access="staff")
def registry_preview(ctx: Ctx) -> Response:
    upload = ctx.form.get("file") if ctx.form is not None else None
    text = ctx.field("csv_text")
    filename = "upload.csv"
    if upload is not None and not isinstance(upload, str):
        filename = upload.filename or filename
        raw = upload.file.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError(f"{filename}: not UTF-8 text") from None
    if not text.strip():
        raise UsageError("choose a CSV file")
    preview = preview_registry(ctx.db, text, filename, ctx.field("prune") == "1")
    return ctx.render("web/registry.html.j2", rows=[], total=0, preview=preview)


@route("/registry/apply", methods=("POST",), access="staff")
def registry_apply(ctx: Ctx) -> Response:
    from vigie.targets.importer import parse_csv
    from vigie.targets.registry import import_registry

    text = ctx.field("csv_text")
    filename = ctx.field("filename") or "upload.csv"
    entries = parse_csv(text, Path(filename))  # validated again: all or nothing
    summary = import_registry(ctx.db, entries, prune=ctx.field("prune") == "1")
    audit(
        ctx.db,
        ctx.principal.actor,
        "registry_imported",
        target=filename,
        client=ctx.client,
        agencies_created=summary.agencies_created,
        domains_created=summary.domains_created,
        domains_deactivated=summary.domains_deactivated,
    )
    cache.clear()
    ctx.flash(
        f"imported: agencies +{summary.agencies_created}, domains +{summary.domains_created}, "
        f"{summary.domains_reactivated} reactivated, {summary.domains_deactivated} deactivated"
    )
    return redirect("/registry")


@route("/agencies/{agency_id:int}/revoke-links", methods=("POST",), access="staff")
def revoke_links(ctx: Ctx) -> Response:
    agency = visible_agency(ctx, ctx.int_param("agency_id"))
    assert agency.id is not None
    revoke_agency_links(ctx.db, agency.id, ctx.principal.actor)
    audit(ctx.db, ctx.principal.actor, "links_revoked", agency_id=agency.id, client=ctx.client)
    ctx.flash("sign-in links of this agency withdrawn")
    return redirect(f"/agencies/{agency.id}")


@route("/agencies/{agency_id:int}/link", methods=("POST",), access="staff")
def new_link(ctx: Ctx) -> Response:
    from vigie.web.accounts import agency_link_token

    agency = visible_agency(ctx, ctx.int_param("agency_id"))
    assert agency.id is not None
    token = agency_link_token(ctx.db, ctx.settings, agency.id)
    base = ctx.settings.web.base_url or str(ctx.request.base_url).rstrip("/")
    audit(ctx.db, ctx.principal.actor, "link_issued", agency_id=agency.id, client=ctx.client)
    return ctx.render("web/link.html.j2", agency=agency, url=f"{base}/link/{token}")


@route("/audit", access="admin")
def audit_page(ctx: Ctx) -> Response:
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(500)
    action = ctx.query("action")
    if action:
        query = query.where(AuditEvent.action == action)
    events = list(ctx.db.exec(query))
    rows = [
        {
            "id": e.id,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "agency_id": e.agency_id,
            "client": e.client,
            "details": e.details,
        }
        for e in events
    ]
    if wants_download(ctx):
        return download(ctx, "audit", rows, list(rows[0]) if rows else ["id"])
    return ctx.render("web/audit.html.j2", rows=rows, action=action)


@route("/healthz", access="public")
def healthz(ctx: Ctx) -> Response:
    return Response("ok\n", media_type="text/plain")


@route("/.well-known/security.txt", access="public")
def security_txt(ctx: Ctx) -> Response:
    """RFC 9116: how to report a problem with the console itself."""
    contact = ctx.settings.notify.cert_email or ctx.settings.smtp.from_
    expires = (utcnow() + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f"Contact: mailto:{contact}\nExpires: {expires}\nPreferred-Languages: fr, en\n"
    if ctx.settings.web.base_url:
        body += f"Canonical: {ctx.settings.web.base_url}/.well-known/security.txt\n"
    return Response(body, media_type="text/plain; charset=utf-8")
