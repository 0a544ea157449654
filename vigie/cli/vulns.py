"""``vigie vulns``: import offline vulnerability data, and say what is loaded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vigie.model import utcnow


def _age_days(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else (now - when).days


@click.group(name="vulns")
def vulns() -> None:
    """Offline vulnerability data: NVD, CISA KEV, EPSS, end-of-life, OSV, Debian tracker."""


@vulns.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
def vulns_import(ctx: click.Context, paths: tuple[Path, ...], quiet: bool) -> None:
    """Import data files or folders of them (format recognised from the content; .gz and
    OSV .zip read too).

    Each file is imported whole in one transaction, or not at all; importing a
    file of the same name again replaces what it brought.
    """
    from vigie.cli._common import console
    from vigie.vulns.store import import_files

    settings = ctx.obj.database()
    if quiet or not console.is_terminal:
        summaries = import_files(settings, list(paths))
    else:
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} records"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            tasks: dict[Path, Any] = {}

            def progress(path: Path, count: int) -> None:
                if path not in tasks:
                    tasks[path] = bar.add_task(path.name, total=None)
                bar.update(tasks[path], completed=count)

            summaries = import_files(settings, list(paths), progress)
    for summary in summaries:
        when = summary.data_date.date().isoformat() if summary.data_date else "unknown"
        again = " (replaces the earlier import)" if summary.replaced else ""
        console.print(
            f"{summary.path}: {summary.kind}, {summary.records} records, data of {when}{again}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        for note in summary.notes:
            console.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)


@vulns.command(name="status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def vulns_status(ctx: click.Context, fmt: str) -> None:
    """What data is loaded, of which date, and how old it is."""
    from vigie.cli._common import console, emit
    from vigie.vulns.store import sources

    settings = ctx.obj.database()
    now = utcnow()
    limit = settings.vulns.max_age_days
    rows: list[dict[str, Any]] = []
    for source in sources(settings):
        age = _age_days(source.data_date or source.imported_at, now)
        rows.append(
            {
                "kind": source.kind,
                "file": source.name,
                "records": source.records,
                "data_date": source.data_date.isoformat() if source.data_date else None,
                "imported_at": source.imported_at.isoformat(),
                "age_days": age,
                "stale": age is not None and age > limit,
            }
        )
    if fmt == "json":
        emit(rows, list(rows[0]) if rows else [], "json")
        return
    if not rows:
        console.print("no vulnerability data imported: vigie vulns import FILE...")
        return
    shown = [
        {**row, "data_date": (row["data_date"] or "")[:10], "imported_at": row["imported_at"][:16]}
        for row in rows
    ]
    emit(shown, ["kind", "file", "records", "data_date", "imported_at", "age_days", "stale"], fmt)
    stale = [row["file"] for row in rows if row["stale"]]
    if stale:
        console.print(
            f"[yellow]older than vulns.max_age_days = {limit}:[/] {', '.join(stale)}",
            highlight=False,
        )
