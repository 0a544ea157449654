"""Reports people read: per agency, the CERT overview, the monthly national posture pack.

Each report is one standalone HTML page (inline CSS and SVG, no script, no
external asset) rendered by autoescaping Jinja2 templates in the reader's
language, and the same page as PDF through WeasyPrint. Reports read the
store, never the scanner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session

from vigie.config import Settings
from vigie.model import utcnow
from vigie.reports._environment import (
    evidence_items,
    format_day,
    format_moment,
    render_template,
    report_language,
)
from vigie.reports.agency import AgencyReport, build_agency_report, record_agency_report
from vigie.reports.overview import OverviewReport, build_overview_report
from vigie.reports.pdf import ReportRenderError, html_to_pdf
from vigie.reports.posture import PosturePack, build_posture_pack

ReportFormat = Literal["html", "pdf"]

__all__ = [
    "AgencyReport",
    "OverviewReport",
    "PosturePack",
    "ReportFormat",
    "ReportRenderError",
    "build_agency_report",
    "build_overview_report",
    "build_posture_pack",
    "evidence_items",
    "format_day",
    "format_moment",
    "html_to_pdf",
    "render_agency_report",
    "render_overview_report",
    "render_posture_pack",
]


def _common_context(settings: Settings, language: str, generated_at: datetime) -> dict[str, Any]:
    return {
        "language": language,
        "generated_at": generated_at,
        "flag_below": settings.grading.flag_below,
        "due_days": {severity.value: days for severity, days in settings.grading.due_days.items()},
    }


def _vulns_stale(settings: Settings, now: datetime) -> dict[str, int] | None:
    """The age of the oldest vulnerability data when past ``vulns.max_age_days``."""
    from vigie.vulns.store import sources

    dates = [s.data_date or s.imported_at for s in sources(settings)]
    if not dates:
        return None
    age = (now - min(dates)).days
    limit = settings.vulns.max_age_days
    return {"age": age, "limit": limit} if age > limit else None


def _output(html: str, fmt: ReportFormat) -> bytes:
    return html_to_pdf(html) if fmt == "pdf" else html.encode("utf-8")


def _render(name: str, language: str, context: Mapping[str, Any]) -> str:
    return render_template(name, language, context)


def render_agency_report(
    session: Session,
    settings: Settings,
    agency: str,
    *,
    fmt: ReportFormat = "html",
    language: str | None = None,
    today: date | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> bytes:
    """The agency's report in its language (French by default); ``record`` remembers it
    so the next report can say what changed."""
    from vigie.targets.registry import find_agency

    now = now or utcnow()
    chosen = report_language(language or find_agency(session, agency).language)
    report = build_agency_report(session, settings, agency, language=chosen, today=today, now=now)
    context = _common_context(settings, chosen, now) | {
        "report": report,
        "vulns_stale": _vulns_stale(settings, now),
    }
    output = _output(_render("reports/agency.html.j2", chosen, context), fmt)
    if record:
        record_agency_report(session, report)
    return output


def render_overview_report(
    session: Session,
    settings: Settings,
    *,
    fmt: ReportFormat = "html",
    language: str | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> bytes:
    """The CERT's overview across all agencies."""
    now = now or utcnow()
    chosen = report_language(language or settings.notify.language)
    report = build_overview_report(session, settings, language=chosen, today=today, now=now)
    context = _common_context(settings, chosen, now) | {"report": report}
    return _output(_render("reports/overview.html.j2", chosen, context), fmt)


def render_posture_pack(
    session: Session,
    settings: Settings,
    month: str,
    *,
    fmt: ReportFormat = "html",
    language: str | None = None,
    pseudonymise: bool = False,
    now: datetime | None = None,
    salt: bytes | None = None,
) -> bytes:
    """The monthly national posture pack for ``month`` (YYYY-MM)."""
    now = now or utcnow()
    chosen = report_language(language or settings.notify.language)
    pack = build_posture_pack(
        session, settings, month, language=chosen, pseudonymise=pseudonymise, now=now, salt=salt
    )
    context = _common_context(settings, chosen, now) | {"report": pack}
    return _output(_render("reports/posture.html.j2", chosen, context), fmt)
