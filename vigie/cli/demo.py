"""``vigie demo``: a sweep of a built-in demonstration network on loopback."""

from __future__ import annotations

from pathlib import Path

import click

from vigie.cli._common import State, console, err_console, pass_state, sweep_progress
from vigie.logs import configure_logging


@click.command()
@click.option(
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("vigie-demo"),
    show_default=True,
    help="Folder for the demo's configuration, database, reports and emails.",
)
@pass_state
def demo(state: State, output_dir: Path) -> None:
    """Sweep a built-in demonstration network on loopback, then show and write the results.

    Four fictional agencies under gouv.example on 127.77.0.0/24, with their own
    DNS server, web applications and a Redis look-alike; a separate database
    and configuration in OUTPUT. The servers stop when the demo ends, also on
    Ctrl-C. Needs nmap; standard ports when run as root.
    """
    from vigie.demo import run_demo

    configure_logging(state.log_level)
    result = run_demo(output_dir, console=console, progress=lambda: sweep_progress(eta=False))
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)

    def shown(path: Path) -> str:
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)

    console.print(
        f"\nreports: {', '.join(shown(p) for p in result.reports)}\n"
        f"digest emails (.eml, built but not sent): {len(result.emails)} in "
        f"{shown(result.output_dir / 'emails')}\n"
        f"demo network stopped; demo finished in {result.elapsed_s:.0f}s\n"
        f"look around: vigie --config {shown(result.config_file)} findings (or grades, report ...)",
        highlight=False,
        markup=False,
    )
