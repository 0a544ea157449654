"""The service family: what each open TCP port exposes, from real protocol exchanges.

Check IDs: ``service.open_port``, ``service.database.exposed``,
``service.database.no_auth``, ``service.remote_admin.exposed``,
``service.ssh.exposed``, ``service.ssh.password_auth``,
``service.ftp.exposed``, ``service.ftp.anonymous``,
``service.cleartext_mail``, ``service.version_disclosed``; and
``scan.timeout`` / ``scan.error`` for a probe that could not be made (the
family is then incomplete, so nothing is resolved on its strength).

Modules: ``_banners`` (port hints, what a first answer proves, versions in
banners), ``_databases``, ``_remote`` (SSH, FTP, Telnet, VNC, RDP, SMB, X11,
WinRM), ``_mail`` (SMTP, POP3, IMAP), ``_wire`` (bounded connections, the
per-host back-off), ``_family`` (which probes each port gets).
"""

from __future__ import annotations

from vigie.scanner.service._banners import (
    PORT_HINTS,
    Opening,
    PortHint,
    classify_ping_reply,
    classify_reply,
)
from vigie.scanner.service._family import PROBES, check_services, probe_host

__all__ = [
    "PORT_HINTS",
    "PROBES",
    "Opening",
    "PortHint",
    "check_services",
    "classify_ping_reply",
    "classify_reply",
    "probe_host",
]
