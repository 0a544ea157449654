"""``vigie findings`` (and accepted risks) and ``vigie grades``."""

from __future__ import annotations

import sys
from typing import Any

import click

from vigie.cli._common import (
    SEVERITY_CHOICE,
    TABLE_FORMATS,
    State,
    VigieGroup,
    console,
    emit,
    pass_state,
)
from vigie.db.queries import FindingFilter
from vigie.model import Family, FindingStatus, Severity
from vigie.render import CSV_FINDING_COLUMNS, finding_to_dict, findings_table, to_csv, to_json
from vigie.services import findings as service
from vigie.services.grades import grade_table


@click.group(invoke_without_command=True, cls=VigieGroup)
@click.option("--agency", default=None)
@click.option("--domain", default=None)
@click.option("--severity-min", type=SEVERITY_CHOICE, default=None)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in FindingStatus]),
    help="Repeatable; default: every status but resolved.",
)
@click.option("--family", "families", multiple=True, type=click.Choice([f.value for f in Family]))
@click.option("--check", "check_ids", multiple=True, help="Check ID (repeatable).")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First seen on or after."
)
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="The state at that date (end of day) or time, UTC, replayed from the evidence history.",
)
@click.option("--language", type=click.Choice(["fr", "en"]), default="en", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "sarif"]), default="table"
)
@click.option(
    "--fail-on",
    type=SEVERITY_CHOICE,
    default=None,
    help="Exit 1 if a listed finding is at or above.",
)
@click.pass_context
def findings(
    ctx: click.Context,
    agency: str | None,
    domain: str | None,
    severity_min: str | None,
    statuses: tuple[str, ...],
    families: tuple[str, ...],
    check_ids: tuple[str, ...],
    since: Any,
    as_of: Any,
    language: str,
    fmt: str,
    fail_on: str | None,
) -> None:
    """List findings (filters combine). Subcommands: accept, accepted."""
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    filters = FindingFilter(
        agency=agency,
        domain=domain,
        severity_min=Severity(severity_min) if severity_min else None,
        statuses=tuple(FindingStatus(s) for s in statuses),
        families=tuple(Family(f) for f in families),
        check_ids=check_ids,
        first_seen_since=since.date() if since else None,
    )
    views = service.list_findings(state.database(), filters, as_of)
    if fmt == "table":
        if views:
            console.print(findings_table(views, language))
        console.print(f"{len(views)} findings")
    elif fmt == "json":
        click.echo(to_json([finding_to_dict(v, language) for v in views]))
    elif fmt == "csv":
        click.echo(
            to_csv([finding_to_dict(v, language) for v in views], CSV_FINDING_COLUMNS), nl=False
        )
    else:
        from vigie.exports import findings_to_sarif

        click.echo(to_json(findings_to_sarif(views, language)))
    if fail_on and service.breaching(views, Severity(fail_on)):
        sys.exit(1)


@findings.command("accept")
@click.argument("finding")
@click.option("--reason", required=True, help="Why: e.g. the migration plan and its date.")
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Last day accepted."
)
@click.option("--by", "accepted_by", required=True, help="Who accepts the risk.")
@pass_state
def findings_accept(state: State, finding: str, reason: str, until: Any, accepted_by: str) -> None:
    """Accept the risk of FINDING (id or fingerprint prefix) until a date: comply or explain."""
    summary = service.accept(
        state.database(), finding, reason=reason, until=until.date(), by=accepted_by
    )
    console.print(summary, highlight=False, markup=False)


@findings.command("accepted")
@click.option("--agency", default=None)
@click.option(
    "--all", "include_ended", is_flag=True, help="The whole audit trail, expired and withdrawn too."
)
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def findings_accepted(state: State, agency: str | None, include_ended: bool, fmt: str) -> None:
    """List accepted risks (live ones unless --all)."""
    from vigie.acceptance import ACCEPTANCE_COLUMNS

    emit(
        service.acceptance_rows(state.database(), agency, include_ended),
        list(ACCEPTANCE_COLUMNS),
        fmt,
    )


@findings.command("unaccept")
@click.argument("acceptance_id", type=int)
@pass_state
def findings_unaccept(state: State, acceptance_id: int) -> None:
    """End acceptance ACCEPTANCE_ID now: the finding counts again (the record is kept)."""
    service.end_acceptance(state.database(), acceptance_id)
    console.print(f"acceptance #{acceptance_id} ended")


@click.command()
@click.option("--agency", default=None, help="Only this agency's applications.")
@click.option("--domain", default=None, help="Only this application.")
@click.option("--flagged", "only_flagged", is_flag=True, help="Only insufficiently protected ones.")
@click.option(
    "--policy",
    "policy_name",
    default=None,
    help="Policy version, CURRENT (default) or NEXT: how grades fare under a coming baseline.",
)
@click.option(
    "--history", is_flag=True, help="Every recorded grade, per application, across scan runs."
)
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def grades(
    state: State,
    agency: str | None,
    domain: str | None,
    only_flagged: bool,
    policy_name: str | None,
    history: bool,
    fmt: str,
) -> None:
    """One row per application: grade A+..F, score, flagged, open and overdue findings."""
    settings = state.database()
    table = grade_table(
        settings,
        agency=agency,
        domain=domain,
        only_flagged=only_flagged,
        policy_name=policy_name,
        history=history,
    )
    emit(table.rows, table.columns, fmt)
    if fmt == "table" and table.policy is not None:
        flagged = sum(1 for r in table.rows if r["flagged"])
        console.print(
            f"{len(table.rows)} applications, {flagged} flagged · policy {table.policy.version} "
            f"(effective {table.policy.effective}) · flagged below {settings.grading.flag_below}"
        )
