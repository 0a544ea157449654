"""``vigie notify`` (digests, escalations, the outbox) and ``vigie schedule``."""

from __future__ import annotations

from pathlib import Path

import click

from vigie.cli._common import TABLE_FORMATS, State, console, emit, err_console, pass_state
from vigie.services.outbox import outbox_rows, write_drafts


@click.command()
@click.option("--dry-run", is_flag=True, help="Build the due messages; queue and send nothing.")
@click.option("--agency", default=None, help="Only this agency (its digest, or its outbox rows).")
@click.option("--status", "show_status", is_flag=True, help="Show the outbox instead of sending.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --dry-run: write each message as an .eml file in this directory.",
)
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def notify(
    state: State,
    dry_run: bool,
    agency: str | None,
    show_status: bool,
    output: Path | None,
    fmt: str,
) -> None:
    """Queue the due digests and escalations, then deliver the outbox (SMTP)."""
    from vigie import notify as mail

    settings = state.database()
    if show_status:
        emit(outbox_rows(settings, agency), list(mail.OUTBOX_COLUMNS), fmt)
        return
    if output is not None and not dry_run:
        raise click.UsageError("--output goes with --dry-run")
    report = mail.run_notify(settings, agency=agency, dry_run=dry_run)
    if dry_run:
        for draft in report.drafts:
            console.print(
                f"{draft.kind} {draft.agency} -> {', '.join(draft.addressing.envelope)}: {draft.subject}",
                highlight=False,
                markup=False,
            )
        if output is not None:
            write_drafts(settings, report.drafts, output)
        console.print(f"{len(report.drafts)} messages (dry run: nothing queued or sent)")
        return
    delivery = report.delivery
    console.print(
        f"{len(report.queued)} queued; "
        f"{len(delivery.sent) if delivery else 0} sent, "
        f"{len(delivery.deferred) if delivery else 0} deferred, "
        f"{len(delivery.failed) if delivery else 0} failed"
    )
    if delivery is not None and delivery.unavailable:
        err_console.print(
            f"mail server unavailable, messages stay queued: {delivery.unavailable}",
            highlight=False,
            markup=False,
        )


@click.group()
def schedule() -> None:
    """The built-in scheduler: the nightly sweep and the digests."""


@schedule.command("run")
@pass_state
def schedule_run(state: State) -> None:
    """Run the scheduler in the foreground until SIGTERM (schedule.sweep / schedule.notify)."""
    from vigie.scheduler import run_scheduler

    run_scheduler(state.database())


@schedule.command("show")
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def schedule_show(state: State, fmt: str) -> None:
    """List the scheduled jobs and their next run times."""
    from vigie.scheduler import describe_jobs

    rows = describe_jobs(state.database())
    emit(rows, ["job", "what", "cron", "timezone", "next_run", "stored_next_run"], fmt)
