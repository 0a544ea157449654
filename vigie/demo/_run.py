"""``vigie demo``: start the demo network, sweep it for real, show and write the results.

The demo has its own folder (``./vigie-demo``) with its own configuration,
database, CA, registry file, reports and emails; it never touches the
operator's registry. The servers stop when the sweep ends, and also on
Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import json
import signal
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.queries import FindingFilter, FindingView, query_findings
from vigie.db.session import session_scope
from vigie.demo._network import (
    DemoNetwork,
    choose_ports,
    legacy_protocols_available,
    make_pki,
    require_nmap,
)
from vigie.demo._world import DemoWorld, build_world, registered_names
from vigie.model import Family, Severity, utcnow
from vigie.render import finding_title
from vigie.sweep import SweepProgress, SweepRequest, SweepSummary, run_sweep

DEFAULT_OUTPUT = Path("vigie-demo")
CONFIG_NAME = "vigie.toml"
DATABASE_NAME = "demo.db"
REGISTRY_NAME = "registry.csv"
# The families the demonstration network is built to show (it runs no MX host and has
# no IPv6: the mail transport and IPv6 families would only report it unreachable).
DEMO_FAMILIES = frozenset(
    {Family.SERVICE, Family.TLS, Family.HTTP, Family.DNS, Family.SOFTWARE, Family.VULN}
)
SMTP_NOWHERE = ("127.77.0.25", 25)  # inside the demo range, where nothing listens
CONSOLE_LANGUAGE = "en"
FIRST_ADDRESS = "127.77.0.10"
WIDE_CONSOLE = 120  # below this, the findings table leaves out the titles

ProgressFactory = Callable[[], AbstractContextManager[SweepProgress]]


class DemoInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived during the demo: stop the servers and leave."""


@dataclass
class DemoResult:
    """What a demo run did and wrote."""

    output_dir: Path
    config_file: Path
    settings: Settings
    world: DemoWorld
    summary: SweepSummary
    grades: list[dict[str, Any]]
    reports: list[Path] = field(default_factory=list)
    emails: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


# --- configuration and registry ------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def demo_config_text(world: DemoWorld, output_dir: Path, ca_file: Path) -> str:
    """The demo's vigie.toml: its own database, scope, resolver, CA and a mail server nowhere."""
    sections: dict[str, dict[str, object]] = {
        "database": {"url": f"sqlite:///{output_dir / DATABASE_NAME}"},
        "dns": {"resolvers": [world.resolver], "timeout_s": 2.0, "lifetime_s": 6.0},
        "scope": {"allow": [f"{address}/32" for address in world.addresses]},
        "scan": {
            "ports": world.ports.scanned,
            "host_deadline_s": 90.0,
            "probe_timeout_s": 4.0,
            "nmap_max_retries": 0,
        },
        "tls": {"extra_ca_file": ca_file},
        "smtp": {
            "host": SMTP_NOWHERE[0],
            "port": SMTP_NOWHERE[1],
            "from": "veille@cert.gouv.example",
        },
        "notify": {"language": "fr", "cert_email": "veille@cert.gouv.example"},
    }
    lines = [
        "# Written by 'vigie demo': the demonstration network's configuration.",
        "# Reuse it to look around: vigie --config vigie-demo/vigie.toml findings",
        "",
    ]
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def registry_csv(world: DemoWorld) -> str:
    """The demo agencies as the CERT's registry spreadsheet would list them."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "agency",
            "agency_code",
            "agency_email",
            "domain",
            "language",
            "mail_domain",
            "operator",
            "operator_email",
            "tags",
        ]
    )
    for app, name in registered_names(world):
        writer.writerow(
            [
                app.agency,
                app.agency_code,
                app.contact,
                name,
                app.language,
                "yes" if name == app.domain else "no",
                app.operator or "",
                app.operator_email or "",
                "demo",
            ]
        )
    return buffer.getvalue()


def _clear_previous_run(output_dir: Path) -> None:
    """Remove what an earlier demo wrote, so that every run starts from the same state."""
    for name in (DATABASE_NAME, f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm"):
        (output_dir / name).unlink(missing_ok=True)
    for folder, pattern in (("reports", "*.html"), ("emails", "*.eml"), ("pki", "*")):
        for path in (output_dir / folder).glob(pattern):
            if path.is_file():
                path.unlink()


def prepare(output_dir: Path) -> tuple[DemoWorld, Settings, Path, DemoNetwork]:
    """Write the demo's configuration, registry and certificates; create its database."""
    require_nmap()
    ports = choose_ports(FIRST_ADDRESS)  # before touching files: another demo may be running
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous_run(output_dir)
    world = build_world(ports, utcnow())
    pki = make_pki(world, output_dir / "pki")
    config_file = output_dir / CONFIG_NAME
    config_file.write_text(demo_config_text(world, output_dir, pki.ca_file), encoding="utf-8")
    settings = load_settings(config_file, environ={})
    upgrade_database(settings)
    registry_file = output_dir / REGISTRY_NAME
    registry_file.write_text(registry_csv(world), encoding="utf-8")
    _import(settings, registry_file)
    _import_vulnerability_data(settings)
    return world, settings, config_file, DemoNetwork(world, pki)


def _import_vulnerability_data(settings: Settings) -> None:
    """A few real CVEs (NVD 2.0) and end-of-life cycles (endoflife.date), as a CERT
    would import them with 'vigie vulns import'."""
    from importlib.resources import files

    from vigie.vulns.store import import_files

    folder = Path(str(files("vigie") / "data" / "demo_vulns"))
    import_files(settings, sorted(folder.glob("*.json")))


def _import(settings: Settings, registry_file: Path) -> None:
    from vigie.targets.importer import parse_registry
    from vigie.targets.registry import import_registry

    entries = parse_registry(registry_file)
    with session_scope(settings) as session:
        import_registry(session, entries)


# --- signals ----------------------------------------------------------------------------


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does: through every ``finally``."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise DemoInterrupted(signal.Signals(signum).name)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        for sig in previous:
            signal.signal(sig, interrupt)
    except ValueError:
        previous = {}  # not the main thread: the caller handles its own signals
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the run ------------------------------------------------------------------------


@contextmanager
def _no_progress() -> Iterator[SweepProgress]:
    yield SweepProgress()


def run_demo(
    output_dir: Path = DEFAULT_OUTPUT,
    *,
    console: Console | None = None,
    progress: ProgressFactory | None = None,
) -> DemoResult:
    """Start the demo network, sweep it, print findings and grades, write reports and emails."""
    started = time.monotonic()
    console = console or Console()
    with stop_on_signals():
        world, settings, config_file, network = prepare(output_dir)
        notes = _notes()
        console.print(_network_table(world), highlight=False)
        try:
            network.start()
            with (progress or _no_progress)() as sweep_progress:
                request = SweepRequest(all_domains=True, families=DEMO_FAMILIES, source="demo")
                summary = run_sweep(settings, request, sweep_progress)
        finally:
            network.stop()
        grades = _grades(settings)
        _show_results(console, settings, world, summary, grades)
        result = DemoResult(
            output_dir=config_file.parent,
            config_file=config_file,
            settings=settings,
            world=world,
            summary=summary,
            grades=grades,
            notes=notes,
        )
        result.reports = write_reports(settings, world, config_file.parent / "reports")
        result.emails = write_digests(settings, config_file.parent / "emails")
    result.elapsed_s = time.monotonic() - started
    return result


def _notes() -> list[str]:
    if legacy_protocols_available():
        return []
    return [
        "this OpenSSL cannot serve TLS 1.0 or 1.1: the legacy application offers TLS 1.2 only, "
        "so no tls.protocol.tls1_0 finding can appear"
    ]


# --- showing -----------------------------------------------------------------------------


def _network_table(world: DemoWorld) -> Table:
    table = Table(
        title="Demonstration network (loopback, stopped after the sweep)", header_style="bold"
    )
    for column in ("Agency", "Application", "Address", "Listens on"):
        table.add_column(column)
    for app in world.applications:
        listening = [str(port) for ip, port, _ in world.listeners() if ip == app.address]
        table.add_row(app.agency, app.domain, app.address, ", ".join(listening))
    table.add_row(
        "(DNS server)", "ns1.gouv.example", world.dns_address, f"{world.ports.dns}/udp+tcp"
    )
    return table


def _views(settings: Settings) -> list[FindingView]:
    with session_scope(settings) as session:
        return query_findings(session, FindingFilter())


def _grades(settings: Settings) -> list[dict[str, Any]]:
    from vigie.grading import grade_applications

    with session_scope(settings) as session:
        return [application.to_dict() for application in grade_applications(session, settings)]


SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def findings_summary_table(views: list[FindingView], *, with_titles: bool = True) -> Table:
    """One row per (application, check, port) above info: what, where, how bad, how often.

    A check seen several times on one port (one row per cipher suite, per
    exposed path) is counted on one line; ``vigie findings`` lists each.
    """
    from rich.markup import escape

    groups: dict[tuple[str, str, int | None], list[FindingView]] = {}
    for view in views:
        if view.severity is not Severity.INFO:
            groups.setdefault((view.domain, view.check_id, view.port), []).append(view)
    table = Table(title="Findings", header_style="bold")
    columns = ["Severity", "Check", "Application", "Port", "Seen"]
    if with_titles:
        columns.append("What")
    for column in columns:
        table.add_column(column, overflow="fold")
    ordered = sorted(
        groups.items(),
        key=lambda item: (item[0][0], -item[1][0].severity.rank, item[0][1], item[0][2] or 0),
    )
    for (domain, check_id, port), members in ordered:
        severity = max(member.severity for member in members)
        cells = [
            f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]",
            escape(check_id),
            escape(domain),
            str(port or ""),
            str(len(members)),
        ]
        if with_titles:
            cells.append(escape(finding_title(check_id, CONSOLE_LANGUAGE)))
        table.add_row(*cells)
    return table


def grades_table(grades: list[dict[str, Any]], codes: dict[str, str] | None = None) -> Table:
    """One row per application; ``codes`` shortens agency names to their codes."""
    from rich.markup import escape

    codes = codes or {}
    table = Table(title="Grades", header_style="bold")
    for column in ("Agency", "Application", "Grade", "Score", "Flagged", "Open", "Worst cap"):
        table.add_column(column, overflow="fold")
    for row in grades:
        letter = row["grade"] or "-"
        style = (
            "bold green" if letter in ("A+", "A") else "bold red" if row["flagged"] else "yellow"
        )
        table.add_row(
            escape(codes.get(row["agency"], row["agency"])),
            escape(row["domain"]),
            f"[{style}]{letter}[/]",
            "" if row["score"] is None else str(row["score"]),
            "[bold red]yes[/]" if row["flagged"] else "no",
            str(row["open_findings"]),
            escape(row["caps"][0] if row["caps"] else ""),
        )
    return table


def _show_results(
    console: Console,
    settings: Settings,
    world: DemoWorld,
    summary: SweepSummary,
    grades: list[dict[str, Any]],
) -> None:
    views = _views(settings)
    console.print(
        f"sweep {summary.status}: {summary.hosts_done} hosts in {summary.elapsed_s:.1f}s, "
        f"{summary.findings_seen} findings",
        highlight=False,
    )
    console.print(findings_summary_table(views, with_titles=console.width >= WIDE_CONSOLE))
    informational = sum(1 for v in views if v.severity is Severity.INFO)
    if informational:
        console.print(
            f"and {informational} informational findings (open ports, scan notes)", highlight=False
        )
    clean = sorted(
        row["domain"]
        for row in grades
        if not any(v.domain == row["domain"] and v.severity > Severity.INFO for v in views)
    )
    if clean:
        console.print(f"no finding above info: {', '.join(clean)}", highlight=False)
    codes = {app.agency: app.agency_code for app in world.applications}
    console.print(grades_table(grades, codes))


# --- writing -----------------------------------------------------------------------------


def _slug(text: str) -> str:
    """An ASCII file-name part: "Ministère de la Santé" -> "ministere-de-la-sante"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_text.lower()).split()
    return "-".join(words)[:48]


def write_reports(settings: Settings, world: DemoWorld, directory: Path) -> list[Path]:
    """Each agency's HTML report (in its language) and the CERT's overview."""
    from vigie import reports

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    agencies = sorted({(app.agency_code, app.agency) for app in world.applications})
    with session_scope(settings) as session:
        for code, name in agencies:
            path = directory / f"agency-{code.lower()}.html"
            path.write_bytes(reports.render_agency_report(session, settings, name, fmt="html"))
            written.append(path)
        overview = directory / "overview.html"
        overview.write_bytes(reports.render_overview_report(session, settings, fmt="html"))
        written.append(overview)
    return written


def write_digests(settings: Settings, directory: Path) -> list[Path]:
    """Each agency's digest email as an .eml file: built as for sending, never sent."""
    from vigie import notify

    directory.mkdir(parents=True, exist_ok=True)
    report = notify.run_notify(settings, dry_run=True)
    written = []
    for index, draft in enumerate(report.drafts, start=1):
        recipient = _slug(draft.addressing.to[0]) if draft.addressing.to else "nobody"
        path = directory / f"{index:02d}-{draft.kind}-{_slug(draft.agency)}-to-{recipient}.eml"
        path.write_bytes(notify.export_eml(notify.email_for_draft(settings, draft)))
        written.append(path)
    return written
