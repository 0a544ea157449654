"""``vigie scan`` and ``vigie worker``: sweeps, embedded or over Celery workers."""

from __future__ import annotations

import sys
from typing import Any

import click

from vigie.cli._common import (
    SEVERITY_CHOICE,
    State,
    console,
    err_console,
    pass_state,
    sweep_progress,
)
from vigie.config import Settings
from vigie.model import SCANNABLE_FAMILIES, Family, Severity
from vigie.render import findings_table, summary_table
from vigie.services.findings import breaching, scan_findings


def parse_families(value: str | None) -> frozenset[Family]:
    """``--checks tls,http`` -> the families; every scannable one when empty."""
    if not value:
        return frozenset(SCANNABLE_FAMILIES)
    families = set()
    for name in value.split(","):
        name = name.strip()
        try:
            family = Family(name)
        except ValueError:
            raise click.BadParameter(
                f"{name!r}: choose from {', '.join(f.value for f in SCANNABLE_FAMILIES)}",
                param_hint="--checks",
            ) from None
        if family not in SCANNABLE_FAMILIES:
            raise click.BadParameter(f"{name!r} is not a check family", param_hint="--checks")
        families.add(family)
    return frozenset(families)


@click.command()
@click.argument("domains", nargs=-1)
@click.option("--agency", default=None, help="Every active domain of this agency.")
@click.option("--all", "all_domains", is_flag=True, help="Every active domain in the registry.")
@click.option(
    "--checks",
    default=None,
    help=f"Families to run: {','.join(f.value for f in SCANNABLE_FAMILIES)} (default: all).",
)
@click.option(
    "--resume", is_flag=True, help="Finish the unfinished hosts of the interrupted sweep."
)
@click.option(
    "--distributed", is_flag=True, help="Enqueue host scans for Celery workers (scale-out)."
)
@click.option("--no-wait", is_flag=True, help="With --distributed: return once enqueued.")
@click.option(
    "--vantage", default="default", show_default=True, help="With --distributed: worker queue."
)
@click.option("--source", default="cli", hidden=True)
@click.option(
    "--fail-on",
    type=SEVERITY_CHOICE,
    default=None,
    help="Exit 1 if findings at or above this exist.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary table.")
@pass_state
def scan(
    state: State,
    domains: tuple[str, ...],
    agency: str | None,
    all_domains: bool,
    checks: str | None,
    resume: bool,
    distributed: bool,
    no_wait: bool,
    vantage: str,
    source: str,
    fail_on: str | None,
    quiet: bool,
) -> None:
    """Scan DOMAINS, an --agency, or --all registered domains."""
    from vigie.sweep import SweepRequest, run_sweep

    families = parse_families(checks)
    if not (domains or agency or all_domains or resume):
        raise click.UsageError("name DOMAINS, --agency NAME, --all or --resume")
    settings = state.database()
    request = SweepRequest(
        domains=domains,
        agency=agency,
        all_domains=all_domains,
        families=families,
        source=source,
        resume=resume,
        vantage=vantage,
    )
    if distributed:
        from vigie.workers import run_distributed_sweep

        summary = run_distributed_sweep(
            settings, request, wait=not no_wait, console=None if quiet else console
        )
    else:
        with sweep_progress(quiet) as progress:
            summary = run_sweep(settings, request, progress, after_host_hook(settings))
    if not quiet:
        console.print(
            f"run #{summary.run_id} {summary.status}: {summary.hosts_done} hosts in {summary.elapsed_s:.1f}s, "
            f"{summary.findings_seen} findings ({summary.new} new, {summary.reopened} reopened, "
            f"{summary.resolved} resolved)"
        )
        if summary.not_authorised:
            console.print(f"not authorised (no valid mandate): {', '.join(summary.not_authorised)}")
        if summary.postponed:
            console.print(f"postponed (quiet hours): {', '.join(summary.postponed)}")
        show_scan_findings(settings, agency, domains)
    if fail_on:
        exit_on_findings(settings, Severity(fail_on), domains, agency)


def show_scan_findings(settings: Settings, agency: str | None, domains: tuple[str, ...]) -> None:
    """The scanned domains' findings (first 200), or a summary for an agency or a sweep."""
    views = scan_findings(settings, agency, domains)
    if domains:
        if views:
            console.print(findings_table(views[:200]))
            if len(views) > 200:
                console.print(f"... and {len(views) - 200} more: vigie findings")
    elif views:
        console.print(summary_table(views))
        console.print("details: vigie findings [--agency NAME] [--severity-min LEVEL]")


def after_host_hook(settings: Settings) -> Any:
    """Urgent alerts for new critical findings, when the notify module is present."""
    try:
        from vigie.notify import urgent_alert_hook
    except ImportError:
        return None
    return urgent_alert_hook(settings)


def exit_on_findings(
    settings: Settings, threshold: Severity, domains: tuple[str, ...], agency: str | None
) -> None:
    """Exit 1 when the scanned domains have findings at or above ``threshold``."""
    views = breaching(scan_findings(settings, agency, domains, threshold), threshold)
    if views:
        err_console.print(f"{len(views)} findings at or above {threshold.value}")
        sys.exit(1)


@click.command()
@click.option(
    "--vantage",
    default="default",
    show_default=True,
    help="Queue to consume: one per vantage point.",
)
@click.option(
    "--concurrency",
    type=int,
    default=None,
    help="Worker processes (default: celery.worker_concurrency).",
)
@pass_state
def worker(state: State, vantage: str, concurrency: int | None) -> None:
    """Run a Celery worker for distributed sweeps (scale-out mode)."""
    from vigie.workers import run_worker

    run_worker(state.database(), vantage, concurrency, state.log_level.replace("WARNING", "INFO"))
