"""The ``vigie`` command line: parse, call one service function, render.

One module per command group; each command parses its options, calls one
function of ``vigie.services`` (or of the sweep, notify, scheduler modules)
and renders the result. No command opens a database session or writes a
query. Errors are mapped here, once: a :class:`~vigie.errors.VigieError`
prints its message and exits with its code (2 for usage and input errors);
``--fail-on`` exits 1 when findings at or above a severity exist.
"""

from __future__ import annotations

import click

from vigie import __version__
from vigie.cli import admin, demo, findings, notify, report, scan, targets, vulns, web
from vigie.cli._common import State, VigieGroup


@click.group(cls=VigieGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="VIGIE_CONFIG",
    help="TOML configuration file (default: ./vigie.toml if present).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(__version__, prog_name="vigie")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """vigie: network exposure scanner for a national CERT.

    Keeps the registry of agencies and their domains, sweeps them (ports and
    services, TLS, HTTP, DNS and mail), stores every finding with its history,
    grades each application and emails each agency what changed.
    """
    ctx.obj = State(config_path, verbose)


main.add_command(admin.init)
main.add_command(admin.config)
main.add_command(admin.health)
main.add_command(targets.targets)
main.add_command(scan.scan)
main.add_command(scan.worker)
main.add_command(findings.findings)
main.add_command(findings.grades)
main.add_command(report.report)
main.add_command(notify.notify)
main.add_command(notify.schedule)
main.add_command(demo.demo)
main.add_command(web.serve)
main.add_command(web.users)
main.add_command(vulns.vulns)
