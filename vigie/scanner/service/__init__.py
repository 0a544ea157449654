"""The service family: what each open TCP port exposes, from real protocol exchanges.

Check IDs: ``service.open_port``, ``service.database.exposed``,
``service.database.no_auth``, ``service.remote_admin.exposed``,
``service.ssh.exposed``, ``service.ssh.password_auth``,
``service.ftp.exposed``, ``service.ftp.anonymous``,
``service.cleartext_mail``, ``service.version_disclosed``; and
``scan.timeout`` / ``scan.error`` for a probe that could not be made (the
family is then incomplete, so nothing is resolved on its strength).

Modules: ``_databases``, ``_remote`` (SSH, FTP, Telnet, VNC, RDP, SMB, X11,
WinRM), ``_mail`` (SMTP, POP3, IMAP), ``_common`` (check IDs, the port
finding builders), ``_family`` (which probes each port gets). Bounded
connections and the per-host back-off are the scanner's
(``vigie.scanner.connection``), as are port hints and banner reading
(``vigie.scanner.banners``) and the small HTTP/1.1 exchange
(``vigie.scanner.http_wire``).
"""

from __future__ import annotations

from vigie.scanner.service._common import open_port_findings
from vigie.scanner.service._family import PROBES, check_services, probe_host

__all__ = [
    "PROBES",
    "check_services",
    "open_port_findings",
    "probe_host",
]
