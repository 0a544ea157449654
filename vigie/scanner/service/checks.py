"""The service family's check IDs, each with the function(s) that produce it."""

from __future__ import annotations

from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.service import _common, _databases, _mail, _remote

CHECKS: ChecksTable = {
    "service.open_port": (_common.open_port_findings,),
    "service.database.exposed": (_databases.exposed,),
    "service.database.no_auth": (_databases.no_auth,),
    "service.remote_admin.exposed": (_remote.remote_admin,),
    "service.ssh.exposed": (_remote.ssh_banner_findings,),
    "service.ssh.password_auth": (_remote.ssh_auth_findings,),
    "service.ftp.exposed": (_remote.ftp_findings,),
    "service.ftp.anonymous": (_remote.ftp_findings,),
    "service.cleartext_mail": (_mail.mail_findings,),
    "service.version_disclosed": (
        _databases.version_disclosed,
        _remote.banner_version,
        _remote.ssh_banner_findings,
    ),
}
