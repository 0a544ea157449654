"""Check IDs and finding builders shared by the service probes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.probe_context import ProbeContext

OPEN_PORT = "service.open_port"
DATABASE_EXPOSED = "service.database.exposed"
DATABASE_NO_AUTH = "service.database.no_auth"
REMOTE_ADMIN_EXPOSED = "service.remote_admin.exposed"
SSH_EXPOSED = "service.ssh.exposed"
SSH_PASSWORD_AUTH = "service.ssh.password_auth"
FTP_EXPOSED = "service.ftp.exposed"
FTP_ANONYMOUS = "service.ftp.anonymous"
CLEARTEXT_MAIL = "service.cleartext_mail"
VERSION_DISCLOSED = "service.version_disclosed"

# A probe: one bounded exchange with one open port, turned into findings.
# It raises ProbeTimeout / ProbeError when the exchange could not be made.
Probe = Callable[[ProbeContext, HostTarget, OpenPort], Awaitable[list[Finding]]]


def port_discriminator(port: int) -> str:
    return f"tcp/{port}"


def port_finding(
    target: HostTarget, check_id: str, port: int, evidence: Mapping[str, Any]
) -> Finding:
    """A finding about one TCP port of the target (one per check and port)."""
    return Finding(
        check_id=check_id,
        domain=target.domain,
        ip=target.ip or None,
        port=port,
        discriminator=port_discriminator(port),
        evidence=dict(evidence),
    )


def open_port_findings(
    target: HostTarget,
    ports: list[OpenPort],
    nmap_excerpt: Callable[[int], str] | None = None,
) -> list[Finding]:
    """The inventory: one ``service.open_port`` per open port (the only builder of it):
    a port that completed TCP's three-way handshake (RFC 9293 §3.5), nmap's "open".

    ``nmap_excerpt``, when the port stage ran nmap, gives nmap's own line for
    a port number; it is added to the evidence as ``nmap``.
    """
    return [_open_port_finding(target, port, nmap_excerpt) for port in ports]


def _open_port_finding(
    target: HostTarget, port: OpenPort, nmap_excerpt: Callable[[int], str] | None
) -> Finding:
    evidence: dict[str, Any] = {
        "port": port.port,
        "protocol": "tcp",
        "service": port.service,
        "tls": port.tls,
        "banner": port.banner,
    }
    if nmap_excerpt is not None:
        evidence["nmap"] = nmap_excerpt(port.port)
    return port_finding(target, OPEN_PORT, port.port, evidence)
