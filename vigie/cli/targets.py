"""``vigie targets``: the registry of agencies, domains, contacts and mandates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vigie.cli._common import TABLE_FORMATS, State, console, emit, err_console, pass_state
from vigie.services import registry


@click.group()
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

    entries = parse_registry(file)
    if dry_run:
        count = sum(len(e.domains) for e in entries)
        console.print(f"{file}: valid, {len(entries)} agencies, {count} domains (nothing imported)")
        return
    summary = registry.import_entries(state.database(), entries, prune)
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
    name = registry.add_domain(
        state.database(),
        agency=agency,
        domain=domain,
        emails=emails,
        language=language,
        mail_domain=mail_domain,
    )
    console.print(f"registered {name}")


@targets.command("remove")
@click.argument("domain")
@pass_state
def targets_remove(state: State, domain: str) -> None:
    """Deactivate DOMAIN: no longer swept; its history is kept."""
    console.print(f"deactivated {registry.deactivate_domain(state.database(), domain)}")


@targets.command("list")
@click.option("--agency", default=None)
@click.option(
    "--all", "include_inactive", is_flag=True, help="Include inactive and candidate domains."
)
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def targets_list(state: State, agency: str | None, include_inactive: bool, fmt: str) -> None:
    """List registered domains."""
    rows = registry.target_rows(state.database(), agency, include_inactive)
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
    emit(rows, columns, fmt)


# --- discovery (vigie/targets/discover.py) ----------------------------------------


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
    emit(rows, ["domain", "source", "under", "addresses", "in_scope"], fmt)
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
    approved = registry.approve_candidates(state.database(), name, source)
    for domain in approved:
        console.print(f"approved {domain}")
    if not approved:
        console.print("no candidate to approve")


# --- mandates ---------------------------------------------------------------------


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
    mandate_id = registry.record_mandate(
        state.database(),
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
    console.print(f"mandate #{mandate_id} recorded")


@targets_mandate.command("list")
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def mandate_list(state: State, fmt: str) -> None:
    """List mandates with their validity."""
    rows = registry.mandate_rows(state.database())
    emit(rows, list(rows[0]) if rows else ["id", "agency"], fmt)


@targets_mandate.command("revoke")
@click.argument("mandate_id", type=int)
@pass_state
def mandate_revoke(state: State, mandate_id: int) -> None:
    """Revoke mandate MANDATE_ID (kept in the register)."""
    registry.revoke_mandate(state.database(), mandate_id)
    console.print(f"mandate #{mandate_id} revoked")
