#!/usr/bin/env python3
"""Sweep benchmark: vigie against the reference tools, on one loopback farm, in one run.

Builds a farm of N web hosts (one nginx, a server block per 127.100.x.y
address, TLS and HTTP, four configuration profiles), a Knot name server for
their names, and a fresh vigie database that registers them; then runs, one
after the other and each measured alone:

- ``vigie scan --all`` (all families), and ``--checks tls|service|http`` alone;
- sslyze's concurrent ``Scanner`` with the scan commands vigie's TLS module
  uses, and with the minimal set (certificate, six suite scans, heartbleed);
- ``nmap -n -Pn -sT`` on vigie's port list, and ``nmap --script
  ssl-enum-ciphers`` on port 443;
- testssl.sh ``--fast --nodns none``, 8 in parallel, on a stated subset.

Everything runs inside a network namespace that has only a loopback
interface (the script re-executes itself under ``unshare -n``): no tool can
reach anything but the farm. See ``benchmarks/README.md``.

The last line printed is
``vigie_vs_sslyze=R1 vigie_vs_testssl=R2 vigie_tls_vs_nmap_ssl_enum=R4 rss_1000_vs_100=R3``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from _farm.dns import DnsServer, start_dns, stop_dns  # noqa: E402
from _farm.hosts import DNS_ADDRESS, FARM_NETWORK, FarmHost, farm_hosts  # noqa: E402
from _farm.measure import FarmCounters, Measurement, RunSpec, median_of, run_measured  # noqa: E402
from _farm.nginx import NginxFarm, start_nginx, stop_nginx, worker_pids  # noqa: E402
from _farm.pki import FarmPki, build_pki  # noqa: E402

NETNS_MARK = "VIGIE_BENCH_IN_NETNS"
QUICK_HOSTS = 5
DEFAULT_HOSTS = 100
TESTSSL_WIDTH = 8
TESTSSL_DEFAULT_SUBSET = 16
HOSTS_PER_AGENCY = 10

# What vigie's TLS module asks sslyze for when it enumerates suites the way
# sslyze does (tls.suite_enumeration = "per_suite"): mirrored from
# vigie/scanner/tls/_probe.py (_SUITE_COMMANDS, _VULN_COMMANDS and the
# certificate_info command); ``vigie_tls_commands`` checks the mirror against
# the module and says when they differ.
VIGIE_TLS_COMMANDS = (
    "certificate_info",
    "ssl_2_0_cipher_suites",
    "ssl_3_0_cipher_suites",
    "tls_1_0_cipher_suites",
    "tls_1_1_cipher_suites",
    "tls_1_2_cipher_suites",
    "tls_1_3_cipher_suites",
    "heartbleed",
    "openssl_ccs_injection",
    "robot",
    "session_renegotiation",
    "tls_compression",
)
# The "sslyze-minimal": certificate, the six protocol suite scans, heartbleed.
SSLYZE_MINIMAL_COMMANDS = (*VIGIE_TLS_COMMANDS[:7], "heartbleed")

ALL_TOOLS = (
    "vigie",
    "vigie-tls",
    "vigie-service",
    "vigie-http",
    "vigie-dns",
    "httpx",
    "sslyze",
    "sslyze-minimal",
    "nmap-ports",
    "nmap-ssl-enum",
    "testssl",
)
# Asked for by name only: every family but the derived ones (software, vuln), to measure
# what those add to a sweep.
EXTRA_TOOLS = ("vigie-classic",)
CLASSIC_CHECKS = "service,tls,http,dns"


# --- the namespace -------------------------------------------------------------------


def reexec_in_netns(argv: Sequence[str], script: Path | None = None) -> int:
    """Run this script (or ``script``) again inside a fresh network namespace (loopback only)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SystemExit(
            "unshare (util-linux) is needed: the tools must run in a loopback-only netns"
        )
    env = {**os.environ, NETNS_MARK: "1"}
    target = script or Path(__file__).resolve()
    command = [unshare, "--net", "--", sys.executable, str(target), *argv]
    return subprocess.run(command, env=env).returncode


def prepare_netns() -> None:
    """Bring the namespace's loopback up and prove nothing else is there."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    links = subprocess.run(["ip", "-o", "link"], check=True, capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip() for line in links.splitlines() if line.strip()]
    if names != ["lo"]:
        raise SystemExit(f"expected a loopback-only namespace, found interfaces {names}")
    routes = subprocess.run(
        ["ip", "-o", "route", "show", "table", "all"], check=True, capture_output=True, text=True
    ).stdout
    if "default" in routes:
        raise SystemExit("the namespace has a default route: refusing to run")


def raise_file_limit() -> int:
    """nginx and the tools need thousands of descriptors at 1,000 hosts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


# --- the farm -------------------------------------------------------------------------


@dataclass
class Farm:
    hosts: list[FarmHost]
    folder: Path
    pki: FarmPki
    nginx: NginxFarm
    dns: DnsServer
    hosts_file: Path  # JSON [{ip, name}], for the runners
    ip_list: Path  # one address a line, for nmap -iL


def build_farm(folder: Path, count: int) -> Farm:
    hosts = farm_hosts(count)
    started = time.monotonic()
    pki = build_pki(folder / "pki", hosts)
    nginx = start_nginx(folder / "nginx", hosts, pki)
    try:
        dns = start_dns(folder / "dns", hosts)
    except BaseException:
        stop_nginx(nginx)
        raise
    hosts_file = folder / "hosts.json"
    hosts_file.write_text(json.dumps([{"ip": h.ip, "name": h.name} for h in hosts]))
    ip_list = folder / "hosts.txt"
    ip_list.write_text("".join(f"{h.ip}\n" for h in hosts))
    print(f"farm: {count} hosts up in {time.monotonic() - started:.1f}s ({folder})", flush=True)
    return Farm(hosts, folder, pki, nginx, dns, hosts_file, ip_list)


def stop_farm(farm: Farm) -> None:
    stop_nginx(farm.nginx)
    stop_dns(farm.dns)


# --- vigie ------------------------------------------------------------------------------


def vigie_program() -> str:
    beside = Path(sys.executable).parent / "vigie"
    found = str(beside) if beside.exists() else shutil.which("vigie")
    if found is None:
        raise SystemExit("the vigie command is not installed (run scripts/setup.sh)")
    return found


def write_vigie_config(folder: Path, farm: Farm) -> Path:
    config = folder / "vigie.toml"
    config.write_text(
        f"""\
[database]
url = "sqlite:///{folder / "template.db"}"

[dns]
resolvers = ["{DNS_ADDRESS}:53"]

[scope]
allow = ["{FARM_NETWORK}"]

[tls]
extra_ca_file = "{farm.pki.ca_file}"

[log]
level = "WARNING"
"""
    )
    return config


def write_registry(folder: Path, hosts: list[FarmHost]) -> Path:
    path = folder / "registry.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["agency", "agency_email", "domain", "agency_code"])
        for host in hosts:
            agency = host.index // HOSTS_PER_AGENCY
            writer.writerow(
                [
                    f"Agence banc {agency}",
                    f"banc{agency}@bench.gouv.example",
                    host.name,
                    f"B{agency}",
                ]
            )
    return path


def prepare_vigie(
    folder: Path, farm: Farm, notes: list[str], vulns_data: Sequence[Path] = ()
) -> Path:
    """A template database with the farm registered (and the vulnerability data files
    given, imported); each vigie run gets a copy."""
    folder.mkdir(parents=True, exist_ok=True)
    config = write_vigie_config(folder, farm)
    registry = write_registry(folder, farm.hosts)
    vigie = vigie_program()
    subprocess.run([vigie, "--config", str(config), "init"], check=True, capture_output=True)
    missing = add_tables_missing_from_migrations(folder / "template.db")
    if missing:
        notes.append(
            "WORKAROUND: 'vigie init' left out tables the code uses (missing migration): "
            + ", ".join(missing)
            + "; the benchmark created them"
        )
    subprocess.run(
        [vigie, "--config", str(config), "targets", "import", str(registry)],
        check=True,
        capture_output=True,
    )
    if vulns_data:
        argv = [vigie, "--config", str(config), "vulns", "import", "-q", *map(str, vulns_data)]
        subprocess.run(argv, check=True, capture_output=True)
        notes.append(f"vulnerability data imported: {', '.join(p.name for p in vulns_data)}")
    return config


def add_tables_missing_from_migrations(database: Path) -> list[str]:
    """Create the tables vigie's models declare but its migrations did not create."""
    import sqlalchemy
    from sqlmodel import SQLModel

    import vigie.db.tables  # noqa: F401 - registers the tables on SQLModel.metadata

    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    try:
        existing = set(sqlalchemy.inspect(engine).get_table_names())
        missing = [t for t in SQLModel.metadata.sorted_tables if t.name not in existing]
        if missing:
            SQLModel.metadata.create_all(engine, tables=missing)
        return [t.name for t in missing]
    finally:
        engine.dispose()


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database in WAL mode (a file copy could miss the WAL)."""
    target.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    src.close()


def vigie_spec(
    tool: str,
    checks: str | None,
    config: Path,
    work: Path,
    hosts: int,
    run: int,
    overrides: dict[str, str],
) -> RunSpec:
    database = work / f"{tool}-{run}.db"
    copy_database(work / "template.db", database)
    # -v with JSON logs: vigie's "port stage" line says how long its nmap runs took.
    argv = [vigie_program(), "--config", str(config), "-v", "scan", "--all", "-q"]
    if checks:
        argv += ["--checks", checks]
    return RunSpec(
        tool=tool,
        argv=argv,
        hosts=hosts,
        output=work / f"{tool}-{run}.out",
        note=("fresh db, all families" if checks is None else f"fresh db, --checks {checks}")
        + "".join(f", {key}={value}" for key, value in overrides.items()),
        env={**overrides, "VIGIE_DATABASE_URL": f"sqlite:///{database}", "VIGIE_LOG_JSON": "true"},
    )


def port_stage_seconds(output: Path) -> tuple[float | None, float | None]:
    """(span, summed nmap time) of vigie's nmap runs, from its "port stage" log line."""
    try:
        lines = output.read_text(errors="replace").splitlines()
    except OSError:
        return None, None
    for line in lines:
        if '"port stage"' in line:
            try:
                stage = json.loads(line)
                return float(stage["wall_s"]), float(stage["nmap_s"])
            except (ValueError, KeyError, TypeError):
                return None, None
    return None, None


def vigie_tls_commands() -> tuple[tuple[str, ...], str]:
    """vigie's TLS scan commands, and where the list came from."""
    try:
        from vigie.scanner.tls import _probe
    except ImportError:
        return VIGIE_TLS_COMMANDS, "mirrored (vigie's TLS module not importable)"
    found: set[str] = set()
    for table in ("_SUITE_COMMANDS", "_VULN_COMMANDS"):
        found.update(c.value for c in getattr(_probe, table, {}).values())
    found.add("certificate_info")
    if found == set(VIGIE_TLS_COMMANDS):
        return VIGIE_TLS_COMMANDS, "mirrored from vigie/scanner/tls/_probe.py (checked equal)"
    ordered = tuple(sorted(found))
    return ordered, "read from vigie/scanner/tls/_probe.py (the mirror differs: update it)"


def vigie_port_arguments(config: Path) -> tuple[list[str], str]:
    """nmap's port arguments for the ports vigie's port stage scans."""
    from vigie.config import load_settings

    settings = load_settings(config)
    try:
        from vigie.scanner.ports import port_list
    except ImportError:
        ports = settings.scan.ports
        if ports == "top100":
            return ["--top-ports", "100"], "vigie scan.ports = top100 (port_list not importable)"
        return ["-p", ",".join(map(str, ports))], f"vigie scan.ports ({len(ports)} ports)"
    chosen = port_list(settings)
    origin = f"vigie.scanner.ports.port_list: {len(chosen)} ports (scan.ports + required ports)"
    return ["-p", ",".join(map(str, chosen))], origin


# --- reference tools ---------------------------------------------------------------------


def runner_env() -> dict[str, str]:
    return {"PYTHONPATH": f"{BENCH_DIR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def sslyze_spec(
    tool: str, commands: Sequence[str], farm: Farm, work: Path, run: int, per_server: int
) -> RunSpec:
    argv = [
        sys.executable,
        "-m",
        "_farm.runners",
        "sslyze",
        str(farm.hosts_file),
        ",".join(commands),
    ]
    argv += [str(per_server), "10"]
    return RunSpec(
        tool=tool,
        argv=argv,
        hosts=len(farm.hosts),
        output=work / f"{tool}-{run}.out",
        note=f"{len(commands)} commands, {per_server} conns/server, 10 servers at once",
        env=runner_env(),
    )


def nmap_ports_spec(farm: Farm, work: Path, run: int, config: Path) -> RunSpec:
    ports, origin = vigie_port_arguments(config)
    argv = ["nmap", "-n", "-Pn", "-sT", *ports, "-iL", str(farm.ip_list), "-oG", "-"]
    return RunSpec("nmap-ports", argv, len(farm.hosts), work / f"nmap-ports-{run}.out", note=origin)


def nmap_ssl_enum_spec(farm: Farm, work: Path, run: int) -> RunSpec:
    argv = ["nmap", "-n", "-Pn", "-sT", "-p", "443", "--script", "ssl-enum-ciphers"]
    argv += ["-iL", str(farm.ip_list)]
    return RunSpec(
        "nmap-ssl-enum", argv, len(farm.hosts), work / f"nmap-ssl-enum-{run}.out", note="port 443"
    )


LOG_LINE = re.compile(rb'^(\S+) (\d+) \d+ (\S+) \d+ "([A-Z]+) (/\S*) HTTP/1\.[01]"$')
HTTPX_CONCURRENCY = 64  # vigie's scan.concurrency default: hosts probed at once


def requests_logged(logged: bytes, names: dict[str, str]) -> list[dict[str, str]]:
    """The HTTP requests in an nginx log extract (TLS probes' garbage records left out)."""
    requests = []
    for line in logged.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        ip, port, protocol, method, path = (part.decode() for part in match.groups())
        scheme = "http" if protocol == "-" else "https"
        requests.append(
            {
                "ip": ip,
                "port": port,
                "scheme": scheme,
                "host": names[ip],
                "method": method,
                "path": path,
            }
        )
    return requests


def httpx_spec(farm: Farm, work: Path, run: int, rows: dict[str, Measurement]) -> RunSpec:
    names = {h.ip: h.name for h in farm.hosts}
    scanned = rows.get("vigie-http")
    requests = requests_logged(scanned.logged, names) if scanned else []
    if requests:
        origin = "the requests vigie-http made (from nginx's log)"
    else:
        origin = "GET / over HTTP and HTTPS per host (run vigie-http first to replay its requests)"
        requests = [
            {
                "ip": h.ip,
                "port": port,
                "scheme": scheme,
                "host": h.name,
                "method": "GET",
                "path": "/",
            }
            for h in farm.hosts
            for scheme, port in (("http", "80"), ("https", "443"))
        ]
    requests_file = work / f"httpx-{run}.json"
    requests_file.write_text(json.dumps(requests))
    argv = [
        sys.executable,
        "-m",
        "_farm.runners",
        "httpx",
        str(requests_file),
        str(HTTPX_CONCURRENCY),
    ]
    note = f"{len(requests)} requests, {origin}, one AsyncClient, {HTTPX_CONCURRENCY} at a time"
    return RunSpec(
        "httpx", argv, len(farm.hosts), work / f"httpx-{run}.out", note=note, env=runner_env()
    )


def testssl_program() -> str | None:
    return shutil.which("testssl") or shutil.which("testssl.sh")


def testssl_spec(farm: Farm, work: Path, run: int, subset: int, quick: bool) -> RunSpec:
    program = testssl_program()
    assert program is not None
    hosts = farm.hosts[:subset]
    jobs = []
    for host in hosts:
        argv = [program, "--nodns", "none", "--ip", host.ip, "--quiet", "--color", "0"]
        argv += ["--warnings", "batch", "--connect-timeout", "10", "--openssl-timeout", "10"]
        # --quick (CI smoke) asks for protocols only: it checks the wiring, not the timing.
        argv += ["--protocols"] if quick else ["--fast"]
        argv.append(f"{host.name}:443")
        jobs.append({"argv": argv, "output": str(work / f"testssl-{run}-{host.index}.out")})
    jobs_file = work / f"testssl-{run}.json"
    jobs_file.write_text(json.dumps(jobs))
    argv = [sys.executable, "-m", "_farm.runners", "parallel", str(jobs_file), str(TESTSSL_WIDTH)]
    mode = "--protocols (quick)" if quick else "--fast"
    note = f"{mode}, {TESTSSL_WIDTH} in parallel, first {len(hosts)} of {len(farm.hosts)} hosts"
    return RunSpec(
        "testssl", argv, len(hosts), work / f"testssl-{run}.out", note=note, env=runner_env()
    )


# --- one size -------------------------------------------------------------------------------


@dataclass
class SizeResult:
    hosts: int
    rows: dict[str, Measurement]
    notes: list[str]

    def wall(self, tool: str) -> float | None:
        row = self.rows.get(tool)
        return row.wall_s if row else None


def specs_for(
    tool: str,
    farm: Farm,
    work: Path,
    config: Path,
    run: int,
    args: argparse.Namespace,
    rows: dict[str, Measurement],
) -> RunSpec | None:
    hosts = len(farm.hosts)
    if tool == "vigie":
        return vigie_spec(tool, None, config, work, hosts, run, args.vigie_env)
    if tool.startswith("vigie-"):
        checks = CLASSIC_CHECKS if tool == "vigie-classic" else tool.removeprefix("vigie-")
        return vigie_spec(tool, checks, config, work, hosts, run, args.vigie_env)
    if tool == "sslyze":
        commands, _ = vigie_tls_commands()
        return sslyze_spec(tool, commands, farm, work, run, args.sslyze_per_server)
    if tool == "sslyze-minimal":
        return sslyze_spec(tool, SSLYZE_MINIMAL_COMMANDS, farm, work, run, args.sslyze_per_server)
    if tool == "httpx":
        return httpx_spec(farm, work, run, rows)
    if tool == "nmap-ports":
        return nmap_ports_spec(farm, work, run, config)
    if tool == "nmap-ssl-enum":
        return nmap_ssl_enum_spec(farm, work, run)
    if tool == "testssl":
        if testssl_program() is None:
            return None
        subset = min(hosts, args.testssl_hosts or (1 if args.quick else TESTSSL_DEFAULT_SUBSET))
        return testssl_spec(farm, work, run, subset, args.quick)
    raise ValueError(tool)


def run_size(
    count: int, args: argparse.Namespace, root: Path, counters: FarmCounters
) -> SizeResult:
    folder = root / f"n{count}"
    farm = build_farm(folder / "farm", count)
    notes: list[str] = []
    try:
        work = folder / "runs"
        config = prepare_vigie(work, farm, notes, args.vulns_data)
        commands, origin = vigie_tls_commands()
        notes.append(f"sslyze commands ({origin}): {','.join(commands)}")
        rows: dict[str, Measurement] = {}
        farm_pids = worker_pids(farm.nginx)
        for tool in args.tools:
            runs = []
            for run in range(args.repeat):
                spec = specs_for(tool, farm, work, config, run, args, rows)
                if spec is None:
                    notes.append(f"{tool}: not installed, skipped")
                    break
                spec.timeout_s = args.tool_timeout
                print(
                    f"  [{count} hosts] {tool} run {run + 1}/{args.repeat} ...", end="", flush=True
                )
                measurement = run_measured(spec, counters, farm.nginx.access_log, farm_pids)
                if tool.startswith("vigie"):
                    span, summed = port_stage_seconds(spec.output)
                    measurement.port_scan_s, measurement.nmap_run_s = span, summed
                print(f" {measurement.wall_s:.1f}s (exit {measurement.exit_code})", flush=True)
                runs.append(measurement)
            if runs:
                rows[tool] = median_of(runs)
                if len(runs) > 1:
                    walls = "/".join(f"{m.wall_s:.1f}" for m in runs)
                    cpus = "/".join(f"{m.cpu_s:.1f}" for m in runs)
                    notes.append(f"{tool}: {len(runs)} runs, wall {walls} s, cpu {cpus} s")
        if args.profile:
            notes.append(profile_vigie(farm, work, config, args.vigie_env, args.profile))
        return SizeResult(count, rows, notes)
    finally:
        stop_farm(farm)


def profile_vigie(
    farm: Farm, work: Path, config: Path, overrides: dict[str, str], family: str
) -> str:
    """One extra ``vigie scan --all`` under py-spy; the summary goes to vigie-profile*.txt."""
    from _farm.profile import profile_command

    checks = None if family == "all" else family
    tool = "vigie-profile" if checks is None else f"vigie-profile-{checks}"
    spec = vigie_spec(tool, checks, config, work, len(farm.hosts), 0, overrides)
    return profile_command(spec, work)


# --- the report -----------------------------------------------------------------------------

COLUMNS = (
    ("tool", 15),
    ("hosts", 6),
    ("wall s", 8),
    ("cpu s", 8),
    ("sys s", 7),
    ("rss MB", 8),
    ("1proc MB", 9),
    ("farm cpu", 9),
    ("tls/host", 9),
    ("tls max", 8),
    ("http/host", 10),
    ("all/host", 9),
    ("req/host", 9),
    ("exit", 5),
)


def table(result: SizeResult, counted: bool) -> str:
    lines = [f"== {result.hosts} hosts"]
    lines.append(" ".join(name.rjust(width) for name, width in COLUMNS))
    for tool, m in result.rows.items():
        d = m.as_dict()
        values = [
            tool,
            str(m.hosts),
            f"{m.wall_s:.2f}",
            f"{m.cpu_s:.2f}",
            f"{m.sys_s:.2f}",
            f"{m.peak_rss_mb:.0f}",
            f"{m.largest_rss_mb:.0f}",
            f"{m.farm_cpu_s:.2f}",
            str(d["tls_conns_per_host"]) if counted else "n/a",
            str(d["tls_conns_max_host"]) if counted else "n/a",
            str(d["web_conns_per_host"]) if counted else "n/a",
            str(d["all_conns_per_host"]) if counted else "n/a",
            str(d["http_requests_per_host"]),
            str(m.exit_code),
        ]
        lines.append(
            " ".join(v.rjust(width) for v, (_, width) in zip(values, COLUMNS, strict=True))
        )
    for tool, m in result.rows.items():
        if m.note:
            scanned = (
                f"; its nmap runs {m.nmap_run_s:.2f} s in all, spread over {m.port_scan_s:.2f} s"
                if m.port_scan_s is not None and m.nmap_run_s is not None
                else ""
            )
            lines.append(f"  {tool}: {m.note}{scanned}")
    lines += [f"  {note}" for note in result.notes]
    return "\n".join(lines)


def ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "n/a"
    return f"{numerator / denominator:.3f}"


def testssl_wall_for(result: SizeResult) -> float | None:
    """testssl's wall time scaled from its subset to every host (it scales linearly)."""
    row = result.rows.get("testssl")
    if row is None or not row.hosts:
        return None
    return row.wall_s * result.hosts / row.hosts


def stage_line(result: SizeResult) -> str:
    """The issue's other targets, as ratios: CPU against sslyze's, each stage against its tool."""
    rows = result.rows

    def cpu(tool: str) -> float | None:
        return rows[tool].cpu_s if tool in rows else None

    service = rows.get("vigie-service")
    return (
        f"[{result.hosts} hosts] "
        f"vigie_cpu_vs_sslyze_minimal={ratio(cpu('vigie'), cpu('sslyze-minimal'))} "
        f"vigie_cpu_vs_sslyze={ratio(cpu('vigie'), cpu('sslyze'))} "
        f"vigie_vs_sslyze_minimal={ratio(result.wall('vigie'), result.wall('sslyze-minimal'))} "
        f"nmap_runs_vs_nmap={ratio(service.nmap_run_s if service else None, result.wall('nmap-ports'))} "
        f"port_stage_span_vs_nmap={ratio(service.port_scan_s if service else None, result.wall('nmap-ports'))} "
        f"http_stage_vs_httpx={ratio(result.wall('vigie-http'), result.wall('httpx'))}"
    )


def final_line(results: list[SizeResult]) -> str:
    first = results[0]
    by_size = {r.hosts: r for r in results}
    rss = {n: r.rows["vigie"].peak_rss_mb for n, r in by_size.items() if "vigie" in r.rows}
    return (
        f"vigie_vs_sslyze={ratio(first.wall('vigie'), first.wall('sslyze'))} "
        f"vigie_vs_testssl={ratio(first.wall('vigie'), testssl_wall_for(first))} "
        f"vigie_tls_vs_nmap_ssl_enum={ratio(first.wall('vigie-tls'), first.wall('nmap-ssl-enum'))} "
        f"rss_1000_vs_100={ratio(rss.get(1000), rss.get(100))}"
    )


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hosts", type=int, action="append", help="farm size (repeat for several; default 100)"
    )
    parser.add_argument("--sizes", help="comma-separated farm sizes, e.g. 100,1000")
    parser.add_argument(
        "--quick", action="store_true", help=f"CI smoke mode: {QUICK_HOSTS} hosts, one run"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per tool; the median is reported"
    )
    parser.add_argument("--tools", help=f"comma-separated subset of {','.join(ALL_TOOLS)}")
    parser.add_argument(
        "--testssl-hosts",
        type=int,
        help=f"testssl subset (default {TESTSSL_DEFAULT_SUBSET}; 1 with --quick)",
    )
    parser.add_argument(
        "--sslyze-per-server", type=int, default=5, help="sslyze connections per server"
    )
    parser.add_argument(
        "--tool-timeout", type=float, default=3600.0, help="seconds before a tool is killed"
    )
    parser.add_argument(
        "--vulns-data",
        type=Path,
        action="append",
        default=[],
        help="vulnerability data file imported into the template database (repeatable)",
    )
    parser.add_argument(
        "--vigie-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a VIGIE_* configuration override for every vigie run (repeatable)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="all",
        choices=["all", "service", "tls", "http", "dns"],
        help="also run vigie once under py-spy (all families, or --checks FAMILY)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the farm and outputs here (default: a temp dir, removed)"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    sizes = list(args.hosts or [])
    if args.sizes:
        sizes += [int(part) for part in args.sizes.split(",") if part.strip()]
    if args.quick:
        sizes = [QUICK_HOSTS]
        args.repeat = 1
    args.sizes_list = sizes or [DEFAULT_HOSTS]
    overrides = {}
    for item in args.vigie_env:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("VIGIE_"):
            parser.error(f"--vigie-env wants VIGIE_KEY=VALUE, not {item!r}")
        overrides[key] = value
    args.vigie_env = overrides
    args.tools = [t.strip() for t in args.tools.split(",")] if args.tools else list(ALL_TOOLS)
    unknown = set(args.tools) - set(ALL_TOOLS) - set(EXTRA_TOOLS)
    if unknown:
        parser.error(f"unknown tools: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if os.environ.get(NETNS_MARK) != "1":
        return reexec_in_netns(argv)
    prepare_netns()
    limit = raise_file_limit()
    counters = FarmCounters()
    counters.install()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="vigie-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"benchmark: sizes {args.sizes_list}, tools {','.join(args.tools)}, repeat {args.repeat}, "
        f"{os.cpu_count()} CPUs, nofile {limit}, connection counting "
        f"{'nftables' if counters.available else 'unavailable (install nftables)'}",
        flush=True,
    )
    results = []
    try:
        for count in args.sizes_list:
            results.append(run_size(count, args, root, counters))
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    for result in results:
        print(table(result, counters.available))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    str(r.hosts): {t: m.as_dict() for t, m in r.rows.items()} | {"notes": r.notes}
                    for r in results
                },
                indent=2,
            )
        )
    for result in results:
        print(stage_line(result))
    print(final_line(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
