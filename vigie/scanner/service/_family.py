"""The service family: which probes each open port gets, and the per-host report.

The port stage named each open port's protocol from what the server sent
(or, failing that, from the port number); this module runs that protocol's
probes, one port after another's answer, never more connections than the
host's cap. Many domains often share one address (shared hosting): the
probes then run once per address and the findings are stamped per domain.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from vigie.errors import ProbeError, ProbeTimeout
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort
from vigie.scanner.banners import WINRM_PORTS
from vigie.scanner.connection import BoundedCache, HostGaveUp, cancel_pending
from vigie.scanner.probe_context import ProbeContext, check_failed, scan_problem
from vigie.scanner.service import _databases as db
from vigie.scanner.service import _mail as mail
from vigie.scanner.service import _remote as remote
from vigie.scanner.service._common import Probe, open_port_findings

# Canonical protocol name (as the port stage sets OpenPort.service) -> its probes.
PROBES: dict[str, tuple[tuple[str, Probe], ...]] = {
    "ssh": (("ssh:banner", remote.probe_ssh_banner), ("ssh:auth", remote.probe_ssh_auth)),
    "ftp": (("ftp", remote.probe_ftp),),
    "telnet": (("telnet", remote.probe_telnet),),
    "vnc": (("vnc", remote.probe_vnc),),
    "rdp": (("rdp", remote.probe_rdp),),
    "smb": (("smb", remote.probe_smb),),
    "netbios-ssn": (("netbios", remote.probe_netbios),),
    "x11": (("x11", remote.probe_x11),),
    "smtp": (("smtp", mail.probe_smtp),),
    "pop3": (("pop3", mail.probe_pop3),),
    "imap": (("imap", mail.probe_imap),),
    "mysql": (("mysql", db.probe_mysql),),
    "postgresql": (("postgresql", db.probe_postgresql),),
    "mssql": (("mssql", db.probe_mssql),),
    "oracle": (("oracle", db.probe_oracle),),
    "mongodb": (("mongodb", db.probe_mongodb),),
    "redis": (("redis", db.probe_redis),),
    "memcached": (("memcached", db.probe_memcached),),
    "cassandra": (("cassandra", db.probe_cassandra),),
    "elasticsearch": (("elasticsearch:transport", db.probe_search_transport),),
    "http": (("http:databases", db.probe_http_databases),),
}
WINRM_PROBE = ("winrm", remote.probe_winrm)

log = logging.getLogger("vigie.scanner.service")

# Reports kept per address for the domains that share it, least recently used out.
MAX_SHARED_REPORTS = 4096


def probes_for(port: OpenPort) -> tuple[tuple[str, Probe], ...]:
    probes = PROBES.get(port.service, ())
    if port.service == "http" and port.port in WINRM_PORTS:
        probes = (*probes, WINRM_PROBE)
    return probes


@dataclass
class ServiceReport:
    """What the probes of one address found, for a placeholder domain."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems


async def check_services(
    ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]
) -> FamilyResult:
    """Every ``service.*`` check on the open ports of one (domain, address)."""
    report = await _shared_report(ctx, target.ip, ports)
    result = FamilyResult(family=Family.SERVICE, complete=report.complete)
    result.extend(open_port_findings(target, ports))
    result.extend([_for_target(f, target) for f in report.findings + report.problems])
    return result


def _for_target(finding: Finding, target: HostTarget) -> Finding:
    return replace(finding, domain=target.domain)


async def _shared_report(ctx: ProbeContext, ip: str, ports: list[OpenPort]) -> ServiceReport:
    """One probe run per address and port list, awaited by every domain on it."""
    reports = ctx.shared.get("service.reports")
    if not isinstance(reports, BoundedCache):
        reports = BoundedCache[tuple[object, ...], "asyncio.Task[ServiceReport]"](
            MAX_SHARED_REPORTS
        )
        ctx.shared["service.reports"] = reports
        cache = reports
        ctx.closers.append(lambda: cancel_pending(cache.values()))
    key = (ip, *((p.port, p.service, p.tls) for p in ports))
    task = reports.get(key)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = asyncio.ensure_future(probe_host(ctx, ip, ports))
        reports.put(key, task)
    # Shielded: one domain's deadline must not cancel the probes another domain awaits.
    return await asyncio.shield(task)


async def probe_host(ctx: ProbeContext, ip: str, ports: list[OpenPort]) -> ServiceReport:
    """Run each open port's probes (ports in parallel, within the host's connection cap)."""
    template = HostTarget(domain="", ip=ip)
    parts = await asyncio.gather(*(probe_port(ctx, template, port) for port in ports))
    report = ServiceReport()
    seen: set[str] = set()
    for part in parts:
        report.findings += part.findings
        for problem in part.problems:
            if problem.fingerprint not in seen:  # one back-off notice per host, not per port
                seen.add(problem.fingerprint)
                report.problems.append(problem)
    return report


async def probe_port(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> ServiceReport:
    report = ServiceReport()
    for name, probe in probes_for(port):
        probe_id = f"service:{name}"
        try:
            report.findings += await probe(ctx, target, port)
        except HostGaveUp as exc:
            report.problems.append(
                scan_problem(target, "scan.timeout", "service:backoff", str(exc))
            )
            break
        except ProbeTimeout as exc:
            report.problems.append(
                scan_problem(target, "scan.timeout", probe_id, str(exc), port.port)
            )
        except ProbeError as exc:
            report.problems.append(
                scan_problem(target, "scan.error", probe_id, str(exc), port.port)
            )
        except Exception:  # a parser or check that raised: only this probe is lost
            report.problems.append(check_failed(target, probe_id, port.port))
    return report
