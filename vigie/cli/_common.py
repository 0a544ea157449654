"""What every command module shares: the consoles, the top-level state, error mapping,
output formats and the sweep progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vigie.config import Settings, load_settings
from vigie.db.migrate import ensure_database
from vigie.db.store import RecordOutcome
from vigie.errors import VigieError
from vigie.logs import configure_logging
from vigie.model import HostResult, Severity
from vigie.render import rows_table, to_csv, to_json
from vigie.services.preflight import check_named_files
from vigie.sweep import SweepProgress

console = Console()
err_console = Console(stderr=True)

SEVERITY_CHOICE = click.Choice([s.value for s in Severity])
TABLE_FORMATS = click.Choice(["table", "json", "csv"])


class State:
    """What the top-level options decided, passed to every command."""

    def __init__(self, config_path: str | None, verbose: int) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def log_level(self) -> str:
        return "DEBUG" if self.verbose > 1 else "INFO" if self.verbose else "WARNING"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.config_path)
            check_named_files(settings)
            self._settings = settings
            configure_logging(self.log_level, settings.log.json_format)
        return self._settings

    def database(self) -> Settings:
        """Settings, after making sure the schema is current."""
        settings = self.settings
        ensure_database(settings)
        return settings


pass_state = click.make_pass_decorator(State)


class VigieGroup(click.Group):
    """A group whose commands all map VigieError to exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VigieError as exc:
            from rich.markup import escape

            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            ctx.exit(exc.exit_code)


def emit(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:
    """Rows as a rich table, JSON or CSV."""
    if fmt == "json":
        click.echo(to_json(rows))
    elif fmt == "csv":
        click.echo(to_csv(rows, columns), nl=False)
    else:
        console.print(rows_table(rows, columns))


class RichSweepProgress(SweepProgress):
    """A progress bar: hosts done/total, findings so far, ETA."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("resolving", total=None, findings=0)
        self.findings = 0

    def planned(self, total: int) -> None:
        self.progress.update(self.task, total=total, description="scanning")

    def advanced(self, result: HostResult, outcome: RecordOutcome) -> None:
        self.findings += outcome.seen
        self.progress.update(self.task, advance=1, findings=self.findings)


@contextmanager
def sweep_progress(quiet: bool = False, eta: bool = True) -> Iterator[SweepProgress]:
    """A progress bar on a terminal; a silent observer otherwise."""
    if quiet or not console.is_terminal:
        yield SweepProgress()
        return
    columns: list[Any] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("hosts · {task.fields[findings]} findings"),
        TimeElapsedColumn(),
    ]
    if eta:
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        yield RichSweepProgress(bar)
