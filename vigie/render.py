"""Rendering for terminals and machines: rich tables, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from vigie.catalogue import spec_for
from vigie.db.queries import FindingView
from vigie.model import Severity

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def finding_title(check_id: str, language: str = "en") -> str:
    from vigie import i18n

    return i18n.check_title(check_id, language)


def finding_remediation(check_id: str, language: str = "en") -> str:
    from vigie import i18n

    return i18n.check_remediation(check_id, language)


def finding_to_dict(
    view: FindingView, language: str = "en", today: date | None = None
) -> dict[str, Any]:
    """The public JSON shape of a finding (DESIGN.md), plus lifecycle extras."""
    today = today or date.today()
    return {
        "check_id": view.check_id,
        "severity": view.severity.value,
        "title": finding_title(view.check_id, language),
        "domain": view.domain,
        "ip": view.ip,
        "port": view.port,
        "status": view.status.value,
        "first_seen": view.first_seen.isoformat(),
        "last_seen": view.last_seen.isoformat(),
        "evidence": view.evidence,
        "remediation": finding_remediation(view.check_id, language),
        "agency": view.agency,
        "id": view.id,
        "fingerprint": view.fingerprint,
        "discriminator": view.discriminator,
        "resolved_at": view.resolved_at.isoformat() if view.resolved_at else None,
        "due_date": view.due_date.isoformat() if view.due_date else None,
        "overdue": view.overdue(today),
        "accepted_until": view.accepted_until.isoformat() if view.accepted_until else None,
        "accepted_reason": view.accepted_reason,
        "vantage": view.vantage,
    }


CSV_FINDING_COLUMNS = (
    "id",
    "check_id",
    "severity",
    "title",
    "agency",
    "domain",
    "ip",
    "port",
    "status",
    "first_seen",
    "last_seen",
    "due_date",
    "overdue",
    "accepted_until",
    "remediation",
)


def to_json(rows: Any) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False, default=_plain)


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=_plain)
    text = _plain(value)
    # Spreadsheets execute cells that start with these; scanned text must never run.
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def findings_table(views: Sequence[FindingView], language: str = "en") -> Table:
    today = date.today()
    table = Table(title=None, show_lines=False, header_style="bold")
    for column in (
        "Severity",
        "Check",
        "Agency",
        "Domain",
        "Address",
        "Port",
        "Status",
        "Last seen",
        "Due",
    ):
        table.add_column(column, overflow="fold")
    for view in views:
        due = view.due_date.isoformat() if view.due_date else ""
        if view.overdue(today):
            due = f"[bold red]{due} overdue[/]"
        status = view.status.value
        if view.accepted_until:
            status += f" (accepted to {view.accepted_until})"
        table.add_row(
            f"[{SEVERITY_STYLE[view.severity]}]{view.severity.value}[/]",
            _escape(view.check_id),
            _escape(view.agency),
            _escape(view.domain),
            _escape(view.ip or ""),
            str(view.port or ""),
            status,
            f"{view.last_seen:%Y-%m-%d %H:%M}",
            due,
        )
    return table


def _escape(text: str) -> str:
    """Scanned text may contain rich markup; show it literally."""
    from rich.markup import escape

    return escape(text)


def rows_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " ").capitalize(), overflow="fold")
    for row in rows:
        table.add_row(
            *(
                _escape(str(_csv_cell(row.get(c)) if row.get(c) is not None else ""))
                for c in columns
            )
        )
    return table


def print_table(console: Console, table: Table) -> None:
    console.print(table)


def spec_severity(check_id: str) -> Severity:
    return spec_for(check_id).severity


def summary_table(views: Sequence[FindingView]) -> Table:
    """Open findings counted by severity (rows) and family (columns)."""
    from collections import Counter

    counts = Counter((v.severity, v.check_id.split(".", 1)[0]) for v in views)
    families = sorted({family for _, family in counts})
    table = Table(title="Open findings", header_style="bold")
    table.add_column("Severity")
    for family in families:
        table.add_column(family, justify="right")
    table.add_column("total", justify="right", style="bold")
    for severity in sorted(Severity, key=lambda s: -s.rank):
        row = [counts.get((severity, family), 0) for family in families]
        if any(row):
            table.add_row(
                f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]", *map(str, row), str(sum(row))
            )
    return table
