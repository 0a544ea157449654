"""The service family against the real daemons Debian packages, on 127.0.26.x.

MariaDB (with and without grant tables), Samba's smbd, xrdp, TigerVNC's Xvnc
(no authentication, and VNC authentication), inetutils telnetd under
inetutils-inetd, Dovecot IMAP/POP3 (without TLS, and with STARTTLS plus
993/995) and Postfix submission (without and with STARTTLS), each from a
private configuration, all started at once and swept by the real engine
(nmap, port identification, probes). The oracle is the daemon itself: what
it is configured to allow is what vigie must report, no more.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scanner import service_servers as servers
from vigie.model import Family, Finding, HostResult

pytestmark = pytest.mark.network

HOSTS = {
    servers.MARIADB_OPEN: "mariadb-open",
    servers.MARIADB_GRANTS: "mariadb-grants",
    servers.SAMBA: "samba",
    servers.SAMBA_SMB1: "samba-smb1",
    servers.XRDP: "xrdp",
    servers.XRDP_RDP_SECURITY: "xrdp-rdp-security",
    servers.VNC_NONE: "vnc-none",
    servers.VNC_PASSWORD: "vnc-password",
    servers.X11_OPEN: "x11-open",
    servers.X11_AUTH: "x11-auth",
    servers.TELNET: "telnet",
    servers.DOVECOT_PLAIN: "dovecot-plain",
    servers.DOVECOT_STARTTLS: "dovecot-starttls",
    servers.POSTFIX_PLAIN: "postfix-plain",
    servers.POSTFIX_STARTTLS: "postfix-starttls",
}

OPEN_PORT = "service.open_port"
EXPOSED = "service.database.exposed"
NO_AUTH = "service.database.no_auth"
REMOTE_ADMIN = "service.remote_admin.exposed"
CLEARTEXT_MAIL = "service.cleartext_mail"
VERSION = "service.version_disclosed"

# (check ID, port) pairs each daemon must give, and no other service.* pair.
EXPECTED: dict[str, set[tuple[str, int]]] = {
    servers.MARIADB_OPEN: {(OPEN_PORT, 3306), (EXPOSED, 3306), (NO_AUTH, 3306), (VERSION, 3306)},
    servers.MARIADB_GRANTS: {(OPEN_PORT, 3306), (EXPOSED, 3306), (VERSION, 3306)},
    servers.SAMBA: {(OPEN_PORT, 445), (OPEN_PORT, 139), (REMOTE_ADMIN, 445), (REMOTE_ADMIN, 139)},
    servers.SAMBA_SMB1: {
        (OPEN_PORT, 445),
        (OPEN_PORT, 139),
        (REMOTE_ADMIN, 445),
        (REMOTE_ADMIN, 139),
    },
    servers.XRDP: {(OPEN_PORT, 3389), (REMOTE_ADMIN, 3389)},
    servers.XRDP_RDP_SECURITY: {(OPEN_PORT, 3389), (REMOTE_ADMIN, 3389)},
    servers.VNC_NONE: {(OPEN_PORT, 5900), (REMOTE_ADMIN, 5900)},
    servers.VNC_PASSWORD: {(OPEN_PORT, 5900), (REMOTE_ADMIN, 5900)},
    servers.X11_OPEN: {(OPEN_PORT, 6000), (REMOTE_ADMIN, 6000)},
    servers.X11_AUTH: {(OPEN_PORT, 6000), (REMOTE_ADMIN, 6000)},
    servers.TELNET: {(OPEN_PORT, 23), (REMOTE_ADMIN, 23)},
    servers.DOVECOT_PLAIN: {
        (OPEN_PORT, 143),
        (OPEN_PORT, 110),
        (CLEARTEXT_MAIL, 143),
        (CLEARTEXT_MAIL, 110),
    },
    servers.DOVECOT_STARTTLS: {
        (OPEN_PORT, 143),
        (OPEN_PORT, 110),
        (OPEN_PORT, 993),
        (OPEN_PORT, 995),
    },
    servers.POSTFIX_PLAIN: {(OPEN_PORT, 587), (CLEARTEXT_MAIL, 587)},
    servers.POSTFIX_STARTTLS: {(OPEN_PORT, 587)},
}


@pytest.fixture(scope="module")
def swept() -> Iterator[tuple[dict[str, HostResult], float]]:
    """Every daemon started in parallel, then one sweep of them all."""
    with servers.all_running(
        servers.mariadb(servers.MARIADB_OPEN, grant_tables=False),
        servers.mariadb(servers.MARIADB_GRANTS, grant_tables=True),
        servers.samba(servers.SAMBA),
        servers.samba(servers.SAMBA_SMB1, smb1_only=True),
        servers.xrdp(servers.XRDP),
        servers.xrdp(servers.XRDP_RDP_SECURITY, security_layer="rdp"),
        servers.tigervnc(servers.VNC_NONE, 2640, password=False),
        servers.tigervnc(servers.VNC_PASSWORD, 2641, password=True),
        servers.x11(servers.X11_OPEN, 2645, open_access=True),
        servers.x11(servers.X11_AUTH, 2646, open_access=False),
        servers.telnetd(servers.TELNET),
        servers.dovecot(servers.DOVECOT_PLAIN, starttls=False),
        servers.dovecot(servers.DOVECOT_STARTTLS, starttls=True),
        servers.postfix(servers.POSTFIX_PLAIN, starttls=False),
        servers.postfix(servers.POSTFIX_STARTTLS, starttls=True),
    ):
        yield servers.sweep(
            HOSTS,
            "127.0.26.0/24",
            {"probe_timeout_s": 2, "host_deadline_s": 30, "max_rate_per_s": 20_000},
        )


def pairs(result: HostResult) -> set[tuple[str, int]]:
    return {(f.check_id, f.port or 0) for f in result.findings if f.check_id.startswith("service.")}


def finding(result: HostResult, check_id: str, port: int) -> Finding:
    (found,) = [f for f in result.findings if f.check_id == check_id and f.port == port]
    return found


@pytest.mark.parametrize("address", list(EXPECTED), ids=[HOSTS[a] for a in EXPECTED])
def test_each_daemon_gets_exactly_its_findings(
    swept: tuple[dict[str, HostResult], float], address: str
) -> None:
    # Given the daemon, configured as its name says, swept by the real engine
    result = swept[0][address]
    # Then exactly the expected service.* findings fire, port by port
    assert pairs(result) == EXPECTED[address]
    # And every probe completed: no scan.timeout / scan.error
    assert result.families[Family.SERVICE].complete is True
    assert [f.check_id for f in result.findings if f.check_id.startswith("scan.")] == []


def test_mariadb_evidence_tells_open_from_password_protected(
    swept: tuple[dict[str, HostResult], float],
) -> None:
    results = swept[0]
    # Given --skip-grant-tables: the empty-password login as root is let in (OK packet)
    open_server = results[servers.MARIADB_OPEN]
    assert finding(open_server, EXPOSED, 3306).evidence["authentication"] == "none"
    assert "OK packet" in str(finding(open_server, NO_AUTH, 3306).evidence["answer"])
    # Given grant tables (root only through the Unix socket): the same login is refused
    # with an ERR packet, 1045 or 1698 (ER_ACCESS_DENIED_NO_PASSWORD_ERROR)
    locked = finding(results[servers.MARIADB_GRANTS], EXPOSED, 3306).evidence
    assert locked["authentication"] == "required"
    assert str(locked["answer"]).startswith(("ERR 1045: Access denied", "ERR 1698: Access denied"))
    # And the version comes from the handshake, as mariadbd --version says
    version = finding(open_server, VERSION, 3306).evidence
    assert version["product"] == "MariaDB"
    assert str(version["version"]).count(".") == 2


def test_remote_admin_evidence_names_each_protocol(
    swept: tuple[dict[str, HostResult], float],
) -> None:
    results = swept[0]

    def evidence(address: str, port: int) -> dict[str, object]:
        return dict(finding(results[address], REMOTE_ADMIN, port).evidence)

    # smbd answers the SMB1 NEGOTIATE that offers "SMB 2.???" with an SMB2 response
    smb = evidence(servers.SAMBA, 445)
    assert (smb["protocol"], smb["smb1"], smb["dialect"]) == ("SMB", False, "0x02ff")
    assert evidence(servers.SAMBA, 139)["session_answer"] == "positive"
    # xrdp (security_layer=negotiate) picks TLS among the TLS and CredSSP offered
    assert evidence(servers.XRDP, 3389)["selected_security"] == "TLS"
    # Xvnc: None is flagged, VncAuth is not
    assert evidence(servers.VNC_NONE, 5900)["no_authentication"] is True
    assert evidence(servers.VNC_NONE, 5900)["security_types"] == ["None"]
    assert evidence(servers.VNC_PASSWORD, 5900)["no_authentication"] is False
    assert evidence(servers.VNC_PASSWORD, 5900)["security_types"] == ["VNC authentication"]
    # SMB1 only (server max protocol = NT1): the SMB1 NEGOTIATE response, flagged as such
    smb1 = evidence(servers.SAMBA_SMB1, 445)
    assert (smb1["smb1"], smb1["dialect"]) == (True, "NT LM 0.12")
    # xrdp with security_layer=rdp picks standard RDP security (no TLS at all)
    assert evidence(servers.XRDP_RDP_SECURITY, 3389)["selected_security"] == "standard RDP security"
    # X11: access control off is granted, a required cookie is a refusal with its reason
    assert evidence(servers.X11_OPEN, 6000)["access"] == "granted without authentication"
    refused = evidence(servers.X11_AUTH, 6000)
    assert refused["access"] == "refused"
    assert str(refused["reason"]).startswith("Authorization required")
    # telnetd opens with option negotiation (RFC 854 IAC DO/WILL), read as such
    telnet = evidence(servers.TELNET, 23)
    assert telnet["protocol"] == "Telnet"
    assert "DO TERMINAL-TYPE" in telnet["negotiation"]  # type: ignore[operator]


def test_mail_evidence_and_the_identified_ports(
    swept: tuple[dict[str, HostResult], float],
) -> None:
    results = swept[0]
    plain = results[servers.DOVECOT_PLAIN]
    assert finding(plain, CLEARTEXT_MAIL, 143).evidence["protocol"] == "IMAP"
    assert finding(plain, CLEARTEXT_MAIL, 110).evidence["protocol"] == "POP3"
    submission = finding(results[servers.POSTFIX_PLAIN], CLEARTEXT_MAIL, 587).evidence
    assert (submission["protocol"], submission["role"]) == ("SMTP", "submission")
    assert "STARTTLS" not in submission["capabilities"]  # type: ignore[operator]
    # The implicit-TLS ports were identified as such, so they are not clear text
    tls_ports = {p.port: (p.service, p.tls) for p in results[servers.DOVECOT_STARTTLS].open_ports}
    assert tls_ports == {
        143: ("imap", False),
        110: ("pop3", False),
        993: ("imap", True),
        995: ("pop3", True),
    }


def test_the_daemon_sweep_stays_fast(swept: tuple[dict[str, HostResult], float]) -> None:
    # Eleven daemons, one sweep: well inside the host deadline
    assert swept[1] < 20
