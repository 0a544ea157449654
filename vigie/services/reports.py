"""Standalone reports (HTML or PDF), written whole or not at all."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from vigie.config import Settings
from vigie.db.session import session_scope

ReportKind = Literal["agency", "overview", "posture"]


def render_report(
    settings: Settings,
    kind: ReportKind,
    *,
    agency: str | None = None,
    month: str | None = None,
    pseudonymise: bool = False,
    language: str | None = None,
    fmt: str = "html",
) -> bytes:
    """The bytes of an agency report, the CERT's overview or the monthly posture pack."""
    from vigie import reports

    output: Any = fmt
    with session_scope(settings) as session:
        if kind == "agency":
            assert agency is not None
            return reports.render_agency_report(
                session, settings, agency, fmt=output, language=language
            )
        if kind == "overview":
            return reports.render_overview_report(session, settings, fmt=output, language=language)
        return reports.render_posture_pack(
            session,
            settings,
            month or date.today().strftime("%Y-%m"),
            fmt=output,
            language=language,
            pseudonymise=pseudonymise,
        )


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` then rename: a reader never sees half a report."""
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    partial.replace(path)
