"""The ``vigie`` command line: parse, call one service function, render.

Errors are mapped here, once: a :class:`~vigie.errors.VigieError` prints its
message and exits with its code (2 for usage and input errors); ``--fail-on``
exits 1 when findings at or above a severity exist.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, timedelta
from pathlib import Path
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

from vigie import __version__
from vigie.config import Settings, load_settings
from vigie.db.migrate import ensure_database, upgrade_database
from vigie.db.queries import FindingFilter, findings_as_of, query_findings
from vigie.db.session import session_scope
from vigie.db.store import RecordOutcome
from vigie.errors import VigieError
from vigie.logs import configure_logging
from vigie.model import SCANNABLE_FAMILIES, Family, FindingStatus, HostResult, Severity
from vigie.render import (
    CSV_FINDING_COLUMNS,
    finding_to_dict,
    findings_table,
    rows_table,
    summary_table,
    to_csv,
    to_json,
)
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
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            level = "DEBUG" if self.verbose > 1 else "INFO" if self.verbose else "WARNING"
            configure_logging(level, self._settings.log.json_format)
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


# --- init and config ----------------------------------------------------------


@main.command()
@pass_state
def init(state: State) -> None:
    """Create or upgrade the database."""
    settings = state.settings
    revision = upgrade_database(settings)
    from vigie.config import mask_url_password

    console.print(
        f"database ready at {mask_url_password(settings.database.url)} (schema {revision})"
    )


@main.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@click.option(
    "--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True
)
@pass_state
def config_show(state: State, fmt: str) -> None:
    """Print the effective configuration, secrets masked."""
    data = state.settings.masked()
    if fmt == "json":
        click.echo(to_json(data))
        return
    click.echo(_as_toml(data))


def _as_toml(data: dict[str, Any]) -> str:
    import json

    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (not set)")
            elif isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, dict):
                inner = ", ".join(
                    f"{json.dumps(str(k))} = {json.dumps(v)}" for k, v in value.items()
                )
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


@main.command()
@pass_state
def health(state: State) -> None:
    """Exit 0 when the database answers and its schema is current (container health check)."""
    from vigie.db.migrate import current_revision, head_revision

    settings = state.settings
    current = current_revision(settings)
    if current != head_revision():
        err_console.print(f"database schema {current} is not {head_revision()}: run 'vigie init'")
        sys.exit(1)
    console.print("ok")


# --- targets ------------------------------------------------------------------


@main.group()
def targets() -> None:
    """The registry: agencies, their domains and contacts, mandates."""


@targets.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--prune", is_flag=True, help="Deactivate registry domains not in FILE (history kept)."
)
@click.option("--dry-run", is_flag=True, help="Validate only; change nothing.")
@pass_state
def targets_import(state: State, file: Path, prune: bool, dry_run: bool) -> None:
    """Import a registry FILE (CSV or YAML). All or nothing: any error names file:line."""
    from vigie.targets.importer import parse_registry
    from vigie.targets.registry import import_registry

    entries = parse_registry(file)
    if dry_run:
        count = sum(len(e.domains) for e in entries)
        console.print(f"{file}: valid, {len(entries)} agencies, {count} domains (nothing imported)")
        return
    settings = state.database()
    with session_scope(settings) as session:
        summary = import_registry(session, entries, prune=prune)
    console.print(
        f"imported {file}: agencies +{summary.agencies_created} (~{summary.agencies_updated} updated), "
        f"domains +{summary.domains_created} (~{summary.domains_updated} updated, "
        f"{summary.domains_reactivated} reactivated, {summary.domains_deactivated} deactivated), "
        f"contacts +{summary.contacts_created}"
    )


@targets.command("add")
@click.argument("domain")
@click.option("--agency", required=True, help="Agency name or code (created if new).")
@click.option("--email", "emails", multiple=True, help="Security contact (repeatable).")
@click.option("--language", type=click.Choice(["fr", "en"]), default=None)
@click.option("--mail-domain", is_flag=True, help="The domain sends or receives mail.")
@pass_state
def targets_add(
    state: State,
    domain: str,
    agency: str,
    emails: tuple[str, ...],
    language: str | None,
    mail_domain: bool,
) -> None:
    """Register one DOMAIN for an agency."""
    from vigie.targets.registry import add_target

    settings = state.database()
    with session_scope(settings) as session:
        row = add_target(
            session,
            agency_name=agency,
            domain_name=domain,
            emails=emails,
            language=language,
            mail_domain=mail_domain,
        )
        name = row.name
    console.print(f"registered {name}")


@targets.command("remove")
@click.argument("domain")
@pass_state
def targets_remove(state: State, domain: str) -> None:
    """Deactivate DOMAIN: no longer swept; its history is kept."""
    from vigie.targets.registry import remove_target

    settings = state.database()
    with session_scope(settings) as session:
        name = remove_target(session, domain).name
    console.print(f"deactivated {name}")


@targets.command("list")
@click.option("--agency", default=None)
@click.option(
    "--all", "include_inactive", is_flag=True, help="Include inactive and candidate domains."
)
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def targets_list(state: State, agency: str | None, include_inactive: bool, fmt: str) -> None:
    """List registered domains."""
    from dataclasses import asdict

    from vigie.targets.registry import list_targets

    settings = state.database()
    with session_scope(settings) as session:
        rows = [
            asdict(r)
            for r in list_targets(session, agency=agency, include_inactive=include_inactive)
        ]
    columns = [
        "agency",
        "agency_code",
        "domain",
        "status",
        "source",
        "language",
        "contacts",
        "tags",
        "mail_domain",
    ]
    if fmt == "table":
        # A terminal has room for what an analyst scans; json/csv keep every column.
        columns = ["domain", "agency_code", "status", "source", "contacts", "mail_domain"]
    _emit(rows, columns, fmt)


# --- targets: discovery (vigie/targets/discover.py) ---------------------------


@targets.command("discover")
@click.argument("domains", nargs=-1)
@click.option(
    "--ct-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Certificate-transparency export (JSON with name_value fields).",
)
@click.option(
    "--wordlist",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Labels to try, one per line (default: the built-in list).",
)
@click.option("--no-wordlist", is_flag=True, help="Do not try wordlist labels.")
@click.option("--no-axfr", is_flag=True, help="Do not attempt zone transfers.")
@click.option("--dry-run", is_flag=True, help="Show what was found; store nothing.")
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def targets_discover(
    state: State,
    domains: tuple[str, ...],
    ct_file: Path | None,
    wordlist: Path | None,
    no_wordlist: bool,
    no_axfr: bool,
    dry_run: bool,
    fmt: str,
) -> None:
    """Find names under registered DOMAINs (default: all) and store them as candidates.

    Candidates are never scanned: approve them with 'vigie targets approve'.
    """
    from vigie.targets.discover import DiscoveryRequest, run_discovery

    request = DiscoveryRequest(
        domains=domains,
        wordlist=wordlist,
        use_wordlist=not no_wordlist,
        ct_file=ct_file,
        axfr=not no_axfr,
        store=not dry_run,
    )
    report, summary = run_discovery(state.database(), request)
    rows = [
        {
            "domain": n.name,
            "source": n.source,
            "under": n.parent,
            "addresses": " ".join(n.addresses),
            "in_scope": n.in_scope,
        }
        for n in report.names
    ]
    _emit(rows, ["domain", "source", "under", "addresses", "in_scope"], fmt)
    if fmt == "table":
        for parent, addresses in report.wildcards.items():
            err_console.print(
                f"wildcard zone under {parent} ({' '.join(addresses)}): its answers skipped"
            )
        for problem in report.problems[:20]:
            err_console.print(f"lookup failed: {problem}")
        stored = (
            "nothing stored (dry run)"
            if dry_run
            else (f"{len(summary.added)} new candidates, {len(summary.updated)} refreshed")
        )
        err_console.print(f"{len(report.names)} names found; {stored}")


@targets.command("approve")
@click.argument("name", required=False)
@click.option(
    "--all-from",
    "source",
    type=click.Choice(["axfr", "wordlist", "ct"]),
    default=None,
    help="Approve every candidate found by this source.",
)
@pass_state
def targets_approve(state: State, name: str | None, source: str | None) -> None:
    """Make a discovered candidate NAME (or all from a source) a registered, swept domain."""
    from vigie.targets.discover import approve_candidates

    settings = state.database()
    with session_scope(settings) as session:
        approved = approve_candidates(session, name=name, source=source)
    for domain in approved:
        console.print(f"approved {domain}")
    if not approved:
        console.print("no candidate to approve")


@targets.group("mandate")
def targets_mandate() -> None:
    """The mandate register: the legal basis for scanning each agency."""


@targets_mandate.command("add")
@click.option("--agency", required=True)
@click.option(
    "--legal-basis", required=True, help="The law or decree, e.g. 'Décret 2026-xxx art. 4'."
)
@click.option("--reference", required=True, help="Reference of the signed mandate.")
@click.option("--from", "valid_from", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--until", "valid_until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--domain", "domains", multiple=True, help="Limit to these domains (and subdomains).")
@click.option("--cidr", "cidrs", multiple=True, help="Address ranges the mandate names.")
@click.option(
    "--intrusiveness", type=click.Choice(["passive", "active"]), default="active", show_default=True
)
@click.option("--quiet-hours", default=None, help="HH:MM-HH:MM local time without active probes.")
@pass_state
def mandate_add(
    state: State,
    agency: str,
    legal_basis: str,
    reference: str,
    valid_from: Any,
    valid_until: Any,
    domains: tuple[str, ...],
    cidrs: tuple[str, ...],
    intrusiveness: str,
    quiet_hours: str | None,
) -> None:
    """Record a scanning mandate for an agency."""
    from vigie.targets.registry import add_mandate

    settings = state.database()
    with session_scope(settings) as session:
        mandate = add_mandate(
            session,
            agency_name=agency,
            legal_basis=legal_basis,
            reference=reference,
            valid_from=valid_from.date(),
            valid_until=valid_until.date() if valid_until else None,
            domains=domains,
            cidrs=cidrs,
            intrusiveness=intrusiveness,
            quiet_hours=quiet_hours,
        )
        mandate_id = mandate.id
    console.print(f"mandate #{mandate_id} recorded")


@targets_mandate.command("list")
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def mandate_list(state: State, fmt: str) -> None:
    """List mandates with their validity."""
    from sqlmodel import select

    from vigie.db.tables import Agency, Mandate
    from vigie.targets.registry import mandate_is_valid

    settings = state.database()
    today = date.today()
    with session_scope(settings) as session:
        agencies = {a.id: a.name for a in session.exec(select(Agency))}
        rows = [
            {
                "id": m.id,
                "agency": agencies.get(m.agency_id, ""),
                "legal_basis": m.legal_basis,
                "reference": m.reference,
                "intrusiveness": m.intrusiveness,
                "valid_from": m.valid_from,
                "valid_until": m.valid_until,
                "domains": m.domains,
                "cidrs": m.cidrs,
                "quiet_hours": m.quiet_hours,
                "valid_today": mandate_is_valid(m, today),
            }
            for m in session.exec(select(Mandate))
        ]
    _emit(rows, list(rows[0]) if rows else ["id", "agency"], fmt)


@targets_mandate.command("revoke")
@click.argument("mandate_id", type=int)
@pass_state
def mandate_revoke(state: State, mandate_id: int) -> None:
    """Revoke mandate MANDATE_ID (kept in the register)."""
    from vigie.targets.registry import revoke_mandate

    settings = state.database()
    with session_scope(settings) as session:
        revoke_mandate(session, mandate_id)
    console.print(f"mandate #{mandate_id} revoked")


# --- scan -------------------------------------------------------------------------


def _parse_families(value: str | None) -> frozenset[Family]:
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


@main.command()
@click.argument("domains", nargs=-1)
@click.option("--agency", default=None, help="Every active domain of this agency.")
@click.option("--all", "all_domains", is_flag=True, help="Every active domain in the registry.")
@click.option(
    "--checks",
    default=None,
    help="Families to run: service,tls,http,dns,software,vuln (default: all).",
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
    from vigie.sweep import SweepProgress, SweepRequest, run_sweep

    families = _parse_families(checks)
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
        hook = _after_host_hook(settings)
        if quiet or not console.is_terminal:
            summary = run_sweep(settings, request, SweepProgress(), hook)
        else:
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("hosts · {task.fields[findings]} findings"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            ) as bar:
                summary = run_sweep(settings, request, RichSweepProgress(bar), hook)
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
        if summary.vulns_note:
            console.print(f"[yellow]warning:[/] {summary.vulns_note}", highlight=False)
        with session_scope(settings) as session:
            views = query_findings(session, FindingFilter(agency=agency))
        selected = {d.lower().rstrip(".") for d in domains}
        if selected:
            views = [v for v in views if v.domain in selected]
            if views:
                console.print(findings_table(views[:200]))
                if len(views) > 200:
                    console.print(f"... and {len(views) - 200} more: vigie findings")
        elif views:
            console.print(summary_table(views))
            console.print("details: vigie findings [--agency NAME] [--severity-min LEVEL]")
    if fail_on:
        _exit_on_findings(settings, Severity(fail_on), domains, agency)


def _after_host_hook(settings: Settings) -> Any:
    """Urgent alerts for new critical findings, when the notify module is present."""
    try:
        from vigie.notify import urgent_alert_hook
    except ImportError:
        return None
    return urgent_alert_hook(settings)


def _exit_on_findings(
    settings: Settings, threshold: Severity, domains: tuple[str, ...], agency: str | None
) -> None:
    with session_scope(settings) as session:
        views = query_findings(session, FindingFilter(agency=agency, severity_min=threshold))
    selected = {d.lower().rstrip(".") for d in domains}
    if selected:
        views = [v for v in views if v.domain in selected]
    views = [v for v in views if v.accepted_until is None]
    if views:
        err_console.print(f"{len(views)} findings at or above {threshold.value}")
        sys.exit(1)


@main.command()
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

    settings = state.database()
    run_worker(settings, vantage, concurrency, "DEBUG" if state.verbose > 1 else "INFO")


# --- findings -------------------------------------------------------------------


@main.group(invoke_without_command=True, cls=VigieGroup)
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
    settings = state.database()
    filters = FindingFilter(
        agency=agency,
        domain=domain,
        severity_min=Severity(severity_min) if severity_min else None,
        statuses=tuple(FindingStatus(s) for s in statuses),
        families=tuple(Family(f) for f in families),
        check_ids=check_ids,
        first_seen_since=since.date() if since else None,
    )
    with session_scope(settings) as session:
        if as_of is None:
            views = query_findings(session, filters)
        else:
            moment = as_of.replace(tzinfo=UTC)
            if as_of.hour == as_of.minute == 0:
                moment += timedelta(days=1) - timedelta(microseconds=1)
            views = findings_as_of(session, filters, moment)
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
    if fail_on and any(v.severity >= Severity(fail_on) and v.accepted_until is None for v in views):
        sys.exit(1)


def _emit(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> None:
    if fmt == "json":
        click.echo(to_json(rows))
    elif fmt == "csv":
        click.echo(to_csv(rows, columns), nl=False)
    else:
        console.print(rows_table(rows, columns))


# --- grades, accepted risks, reports (vigie.grading, vigie.acceptance, vigie.reports) ---


@main.command()
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
    from sqlmodel import select

    from vigie import grading
    from vigie.db.tables import Agency

    settings = state.database()
    with session_scope(settings) as session:
        if history:
            names = {a.id: a.name for a in session.exec(select(Agency))}
            records = grading.grade_history(session, agency=agency, domain=domain)
            rows = [grading.history_to_dict(r, names.get(r.agency_id, "")) for r in records]
            rows = [r for r in rows if r["flagged"] or not only_flagged]
            _emit(rows, list(grading.HISTORY_COLUMNS), fmt)
            return
        policy = grading.policies_for(settings).select(
            policy_name or settings.grading.policy, date.today()
        )
        wanted = [domain.lower().rstrip(".")] if domain else None
        applications = grading.grade_applications(
            session, settings, policy=policy, agency=agency, domains=wanted
        )
    rows = [a.to_dict() for a in applications if a.flagged or not only_flagged]
    _emit(rows, list(grading.GRADE_COLUMNS), fmt)
    if fmt == "table":
        flagged = sum(1 for r in rows if r["flagged"])
        console.print(
            f"{len(rows)} applications, {flagged} flagged · policy {policy.version} "
            f"(effective {policy.effective}) · flagged below {settings.grading.flag_below}"
        )


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
    from vigie.acceptance import accept_finding

    settings = state.database()
    with session_scope(settings) as session:
        acceptance = accept_finding(
            session, finding, reason=reason, until=until.date(), accepted_by=accepted_by
        )
        summary = f"acceptance #{acceptance.id}: finding #{acceptance.finding_id} accepted until {acceptance.until}"
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
    from vigie.acceptance import ACCEPTANCE_COLUMNS, list_acceptances

    settings = state.database()
    with session_scope(settings) as session:
        rows = [
            a.to_dict()
            for a in list_acceptances(session, agency=agency, include_ended=include_ended)
        ]
    _emit(rows, list(ACCEPTANCE_COLUMNS), fmt)


@findings.command("unaccept")
@click.argument("acceptance_id", type=int)
@pass_state
def findings_unaccept(state: State, acceptance_id: int) -> None:
    """End acceptance ACCEPTANCE_ID now: the finding counts again (the record is kept)."""
    from vigie.acceptance import revoke_acceptance

    settings = state.database()
    with session_scope(settings) as session:
        revoke_acceptance(session, acceptance_id)
    console.print(f"acceptance #{acceptance_id} ended")


@main.command()
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
    from vigie import reports

    if sum((agency is not None, overview, posture)) != 1:
        raise click.UsageError("choose one of --agency NAME, --overview, --posture")
    if pseudonymise and not posture:
        raise click.UsageError("--pseudonymise applies to --posture")
    settings = state.database()
    kind: Any = fmt
    with session_scope(settings) as session:
        if agency is not None:
            data = reports.render_agency_report(
                session, settings, agency, fmt=kind, language=language
            )
        elif overview:
            data = reports.render_overview_report(session, settings, fmt=kind, language=language)
        else:
            data = reports.render_posture_pack(
                session,
                settings,
                month or date.today().strftime("%Y-%m"),
                fmt=kind,
                language=language,
                pseudonymise=pseudonymise,
            )
    partial = output.with_name(output.name + ".part")
    partial.write_bytes(data)
    partial.replace(output)
    console.print(f"wrote {output} ({len(data)} bytes)", highlight=False, markup=False)


# --- notify and schedule ----------------------------------------------------------


@main.command()
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
        with session_scope(settings) as session:
            agency_id = None
            if agency:
                from vigie.targets.registry import find_agency

                agency_id = find_agency(session, agency).id
            rows = [e.to_dict() for e in mail.outbox_entries(session, agency_id=agency_id)]
        _emit(rows, list(mail.OUTBOX_COLUMNS), fmt)
        return
    if output is not None and not dry_run:
        raise click.UsageError("--output goes with --dry-run")
    report = mail.run_notify(settings, agency=agency, dry_run=dry_run)
    if dry_run:
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
        for index, draft in enumerate(report.drafts, start=1):
            console.print(
                f"{draft.kind} {draft.agency} -> {', '.join(draft.addressing.envelope)}: {draft.subject}",
                highlight=False,
                markup=False,
            )
            if output is not None:
                slug = "".join(c if c.isalnum() else "-" for c in draft.agency.lower())[:40]
                path = output / f"{index:03d}-{draft.kind}-{slug}.eml"
                path.write_bytes(mail.export_eml(mail.email_for_draft(settings, draft)))
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


@main.group()
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
    _emit(rows, ["job", "what", "cron", "timezone", "next_run", "stored_next_run"], fmt)


# --- demo (vigie/demo/) ---------------------------------------------------------------


@main.command()
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
    from contextlib import contextmanager

    from vigie.demo import run_demo

    configure_logging("DEBUG" if state.verbose > 1 else "INFO" if state.verbose else "WARNING")

    @contextmanager
    def progress_bar() -> Any:
        if not console.is_terminal:
            yield SweepProgress()
            return
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("hosts · {task.fields[findings]} findings"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            yield RichSweepProgress(bar)

    result = run_demo(output_dir, console=console, progress=progress_bar)
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


from vigie.cli.vulns import vulns as _vulns_group  # noqa: E402

main.add_command(_vulns_group)
