"""``vigie report``: standalone HTML or PDF reports."""

from __future__ import annotations

from pathlib import Path

import click

from vigie.cli._common import State, console, pass_state
from vigie.services.reports import render_report, write_whole


@click.command()
@click.option("--agency", default=None, help="The report of this agency, in its language.")
@click.option("--overview", is_flag=True, help="The CERT's overview across all agencies.")
@click.option("--posture", is_flag=True, help="The monthly national posture pack (see --month).")
@click.option("--month", default=None, help="YYYY-MM for --posture (default: this month).")
@click.option("--pseudonymise", is_flag=True, help="With --posture: agency names become numbers.")
@click.option(
    "--language", type=click.Choice(["fr", "en"]), default=None, help="Override the language."
)
@click.option(
    "--format", "fmt", type=click.Choice(["html", "pdf"]), default="html", show_default=True
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True)
@pass_state
def report(
    state: State,
    agency: str | None,
    overview: bool,
    posture: bool,
    month: str | None,
    pseudonymise: bool,
    language: str | None,
    fmt: str,
    output: Path,
) -> None:
    """Write a standalone HTML or PDF report: --agency NAME, --overview or --posture."""
    if sum((agency is not None, overview, posture)) != 1:
        raise click.UsageError("choose one of --agency NAME, --overview, --posture")
    if pseudonymise and not posture:
        raise click.UsageError("--pseudonymise applies to --posture")
    data = render_report(
        state.database(),
        "agency" if agency is not None else "overview" if overview else "posture",
        agency=agency,
        month=month,
        pseudonymise=pseudonymise,
        language=language,
        fmt=fmt,
    )
    write_whole(output, data)
    console.print(f"wrote {output} ({len(data)} bytes)", highlight=False, markup=False)
