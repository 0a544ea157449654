"""Real servers for the service checks, each on its own 127.0.3.x address.

redis-server (open and with ``requirepass``), vsftpd (anonymous allowed and
refused), OpenSSH (password authentication on, and public key only),
memcached, PostgreSQL (trust and SCRAM), an SMTP server without and with
STARTTLS (aiosmtpd), and a port that accepts and never answers. Each gets its
own configuration in a temporary folder and is stopped when its block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.servers import require_program, running, wait_for_port
from vigie.config import Settings
from vigie.model import Family, FamilyResult, HostResult
from vigie.scanner.engine import DomainJob, SweepEngine
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Resolution
from vigie.scanner.service import check_services

ZONE = "svc.test"

REDIS_OPEN = "127.0.3.10"
REDIS_PASSWORD = "127.0.3.11"
FTP_ANONYMOUS = "127.0.3.20"
FTP_CLOSED = "127.0.3.21"
SSH_PASSWORD = "127.0.3.30"
SSH_PUBKEY_ONLY = "127.0.3.31"
MEMCACHED = "127.0.3.40"
SILENT = "127.0.3.50"
SILENT_PORTS = (6379, 8081, 22)
POSTGRES_TRUST = "127.0.3.60"
POSTGRES_SCRAM = "127.0.3.61"
SMTP_CLEARTEXT = "127.0.3.70"
SMTP_STARTTLS = "127.0.3.71"


@contextlib.contextmanager
def redis(folder: Path, address: str, password: str | None = None) -> Iterator[None]:
    argv = [
        require_program("redis-server"),
        "--bind", address, "--port", "6379", "--protected-mode", "no",
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]  # fmt: skip
    if password:
        argv += ["--requirepass", password]
    with running(argv, listen=(address, 6379), log=folder / f"redis-{address}.log"):
        yield


@contextlib.contextmanager
def vsftpd(folder: Path, address: str, anonymous: bool) -> Iterator[None]:
    root = folder / f"ftp-{address}"
    empty = folder / f"ftp-empty-{address}"
    for path in (root, empty):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)  # vsftpd refuses a writable anonymous root
    # vsftpd refuses to start with no access at all: without anonymous access, local
    # users are enabled and "anonymous" is refused by name before any password.
    refused = folder / f"vsftpd-refused-{address}"
    refused.write_text("anonymous\nftp\n", encoding="utf-8")
    local = (
        []
        if anonymous
        else ["userlist_enable=YES", "userlist_deny=YES", f"userlist_file={refused}"]
    )
    config = folder / f"vsftpd-{address}.conf"
    config.write_text(
        "\n".join(
            [
                "listen=YES",
                "listen_ipv6=NO",
                f"listen_address={address}",
                "listen_port=21",
                "background=NO",
                f"anonymous_enable={'YES' if anonymous else 'NO'}",
                f"local_enable={'NO' if anonymous else 'YES'}",
                *local,
                "write_enable=NO",
                f"anon_root={root}",
                f"secure_chroot_dir={empty}",
                "seccomp_sandbox=NO",
                "ftp_username=ftp",
                "nopriv_user=nobody",
                "xferlog_enable=NO",
                "pasv_enable=NO",
                "",
            ]
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)
    argv = [require_program("vsftpd"), str(config)]
    with running(argv, listen=(address, 21), log=folder / f"vsftpd-{address}.log"):
        yield


@contextlib.contextmanager
def sshd(folder: Path, address: str, password_auth: bool) -> Iterator[None]:
    key = folder / f"ssh_host_ed25519_key-{address}"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-f", str(key), "-N", ""],
            check=True,
            capture_output=True,
        )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation folder
    config = folder / f"sshd-{address}.conf"
    methods = "yes" if password_auth else "no"
    config.write_text(
        "\n".join(
            [
                "Port 22",
                f"ListenAddress {address}",
                f"HostKey {key}",
                f"PidFile {folder / f'sshd-{address}.pid'}",
                f"PasswordAuthentication {methods}",
                f"KbdInteractiveAuthentication {methods}",
                "PubkeyAuthentication yes",
                "UsePAM no",
                "StrictModes no",
                "AuthorizedKeysFile none",
                *([] if password_auth else ["AuthenticationMethods publickey"]),
                "",
            ]
        ),
        encoding="utf-8",
    )
    argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
    with running(argv, listen=(address, 22), log=folder / f"sshd-{address}.log"):
        yield


@contextlib.contextmanager
def memcached(folder: Path, address: str) -> Iterator[None]:
    argv = [require_program("memcached"), "-l", address, "-p", "11211", "-U", "0", "-u", "root"]
    with running(argv, listen=(address, 11211), log=folder / "memcached.log"):
        yield


class SilentPorts:
    """Accepts connections and never says a word; counts what it accepted."""

    def __init__(self, address: str, ports: tuple[int, ...]) -> None:
        self.accepted: list[socket.socket] = []
        self._listeners = []
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(64)
            sock.setblocking(False)
            self._listeners.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        for sock in self._listeners:
            selector.register(sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.05):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    self.accepted.append(listener.accept()[0])
        selector.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for sock in self._listeners + self.accepted:
            sock.close()


@contextlib.contextmanager
def silent_ports(address: str, ports: tuple[int, ...]) -> Iterator[SilentPorts]:
    server = SilentPorts(address, ports)
    try:
        yield server
    finally:
        server.close()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else require_program(name)


@contextlib.contextmanager
def postgres(address: str, auth: str) -> Iterator[None]:
    """A PostgreSQL cluster on ``address:5432`` whose pg_hba says ``auth`` for everyone."""
    root = Path(tempfile.mkdtemp(prefix="vigie-svc-pg-"))
    data = root / "data"
    shutil.chown(root, user="postgres")
    try:
        password = [] if auth == "trust" else ["--pwfile", _password_file(root)]
        subprocess.run(
            [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth", auth, "--no-sync",
             *password],
            check=True, capture_output=True, user="postgres",
        )  # fmt: skip
        (data / "pg_hba.conf").write_text(f"host all all 127.0.0.0/8 {auth}\n", encoding="utf-8")
        argv = [
            _pg_bin("postgres"), "-D", str(data), "-h", address, "-p", "5432",
            "-k", str(root), "-c", "fsync=off",
        ]  # fmt: skip
        with running(argv, listen=(address, 5432), user="postgres", log=root / "pg.log"):
            yield
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _password_file(root: Path) -> str:
    path = root / "pw"
    path.write_text("not-a-real-secret\n", encoding="utf-8")
    shutil.chown(path, user="postgres")
    os.chmod(path, 0o600)
    return str(path)


@contextlib.contextmanager
def smtp_server(address: str, port: int, folder: Path, starttls: bool) -> Iterator[None]:
    """aiosmtpd on ``address:port``; with ``starttls`` it offers STARTTLS (self-signed)."""
    import ssl

    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    tls_context = None
    if starttls:
        authority = trustme.CA()
        certificate = authority.issue_cert("mail.vigie.test")
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(tls_context)
    controller = Controller(
        Sink(),
        hostname=address,
        port=port,
        server_hostname="mail.vigie.test",
        ident="Vigie Test SMTP 1.2.3",
        tls_context=tls_context,
        require_starttls=False,
    )
    controller.start()
    try:
        yield
    finally:
        controller.stop()


# --- Debian-packaged daemons on 127.0.26.x ----------------------------------------------------
#
# Each runs from a private configuration in a folder of its own, bound to one
# address of 127.0.26.0/24, in the foreground, and is stopped when its block ends.

MARIADB_OPEN = "127.0.26.10"  # --skip-grant-tables: any user logs in without a password
MARIADB_GRANTS = "127.0.26.11"  # grant tables: 'app'@'%' with a password, root local only
SAMBA = "127.0.26.20"
SAMBA_SMB1 = "127.0.26.21"  # server min/max protocol = NT1: SMB1 only
XRDP = "127.0.26.30"  # security_layer = negotiate (TLS)
XRDP_RDP_SECURITY = "127.0.26.31"  # security_layer = rdp (standard RDP security only)
VNC_NONE = "127.0.26.40"  # TigerVNC, security type None
VNC_PASSWORD = "127.0.26.41"  # TigerVNC, VNC authentication
X11_OPEN = "127.0.26.45"  # Xvnc -ac: access control off
X11_AUTH = "127.0.26.46"  # Xvnc -auth: an MIT-MAGIC-COOKIE-1 required
TELNET = "127.0.26.50"  # inetutils telnetd under inetutils-inetd
DOVECOT_PLAIN = "127.0.26.60"  # ssl = no
DOVECOT_STARTTLS = "127.0.26.61"  # ssl = yes: STARTTLS/STLS on 143/110, and 993/995
POSTFIX_PLAIN = "127.0.26.70"  # submission without TLS
POSTFIX_STARTTLS = "127.0.26.71"  # submission with STARTTLS


@contextlib.contextmanager
def private_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder the daemons' unprivileged users can traverse (pytest's is 0700).

    Removed with everything in it when the block ends.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"vigie-svc-{prefix}-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate and key for ``name`` (PEM files in ``folder``), from a throwaway CA."""
    import trustme

    certificate = trustme.CA().issue_cert(name)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    key.write_bytes(certificate.private_key_pem.bytes())
    key.chmod(0o644)  # read by the daemons' unprivileged users
    return cert, key


def _install_mariadb(data: Path, attempts: int = 2) -> None:
    """The system tables in ``data`` (once seen failing on a loaded machine: one retry)."""
    output = ""
    for _ in range(attempts):
        shutil.rmtree(data, ignore_errors=True)
        installed = subprocess.run(
            [require_program("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
             "--user=root", "--skip-test-db"],
            capture_output=True, text=True,
        )  # fmt: skip
        if installed.returncode == 0:
            return
        output = installed.stdout + installed.stderr
    raise RuntimeError(f"mariadb-install-db failed: {output[-3000:]}")


@contextlib.contextmanager
def mariadb(address: str, grant_tables: bool) -> Iterator[None]:
    """MariaDB on ``address:3306`` from a private datadir (mariadb-install-db)."""
    with private_folder("mariadb") as root:
        data = root / "data"
        _install_mariadb(data)
        argv = [
            require_program("mariadbd"), "--no-defaults", "--user=root", f"--datadir={data}",
            f"--bind-address={address}", "--port=3306", f"--socket={root / 'mysqld.sock'}",
            f"--pid-file={root / 'mysqld.pid'}", "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M", f"--log-error={root / 'error.log'}",
        ]  # fmt: skip
        if grant_tables:
            init = root / "init.sql"
            init.write_text(
                "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'not-a-real-secret';\n",
                encoding="utf-8",
            )
            argv.append(f"--init-file={init}")
        else:
            argv.append("--skip-grant-tables")
        with running(argv, listen=(address, 3306), log=root / "mariadbd.out"):
            yield


@contextlib.contextmanager
def loopback_alias(address: str) -> Iterator[None]:
    """``address`` as an address of ``lo`` while the block runs.

    Samba's ``interfaces`` (with ``bind interfaces only``) names interface
    addresses, not any address routed to lo: without the alias it finds no
    interface and refuses to start.
    """
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", "lo"], check=True, capture_output=True, text=True
    ).stdout
    present = f" {address}/" in shown
    if not present:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    try:
        yield
    finally:
        if not present:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False)


@contextlib.contextmanager
def samba(address: str, smb1_only: bool = False) -> Iterator[None]:
    """smbd in the foreground on ``address`` (445 and 139), from a private smb.conf."""
    with private_folder("samba") as root:
        folders = {
            name: root / name
            for name in ("lock", "state", "cache", "pid", "private", "ncalrpc", "share", "log")
        }
        for folder in folders.values():
            folder.mkdir()
        config = root / "smb.conf"
        config.write_text(
            "\n".join(
                [
                    "[global]",
                    f"interfaces = {address}",
                    "bind interfaces only = yes",
                    "smb ports = 445 139",
                    "disable netbios = yes",
                    "server role = standalone server",
                    *(f"{name} directory = {folders[name]}" for name in ("lock", "state", "cache")),
                    f"pid directory = {folders['pid']}",
                    f"private dir = {folders['private']}",
                    f"ncalrpc dir = {folders['ncalrpc']}",
                    f"log file = {folders['log']}/log.%m",
                    "load printers = no",
                    "printing = bsd",
                    "printcap name = /dev/null",
                    "disable spoolss = yes",
                    *(
                        ["server min protocol = NT1", "server max protocol = NT1"]
                        if smb1_only
                        else []
                    ),
                    "[share]",
                    f"path = {folders['share']}",
                    "read only = yes",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        argv = [
            require_program("smbd"), "--foreground", "--no-process-group", "--debug-stdout",
            f"--configfile={config}",
        ]  # fmt: skip
        with loopback_alias(address), running(argv, listen=(address, 445), log=root / "smbd.log"):
            yield


@contextlib.contextmanager
def xrdp(address: str, security_layer: str = "negotiate") -> Iterator[None]:
    """xrdp in the foreground on ``address:3389``, with ``security_layer`` (negotiate: TLS)."""
    with private_folder("xrdp") as root:
        cert, key = self_signed(root, "rdp.svc.test")
        lines = []
        for line in Path("/etc/xrdp/xrdp.ini").read_text(encoding="utf-8").splitlines():
            key_name = line.split("=", 1)[0]
            replacement = {
                "port": f"port=tcp://{address}:3389" if line == "port=3389" else line,
                "fork": "fork=false",
                "certificate": f"certificate={cert}",
                "key_file": f"key_file={key}",
                "LogFile": f"LogFile={root / 'xrdp.log'}",
                "EnableSyslog": "EnableSyslog=false",
                "security_layer": f"security_layer={security_layer}",
            }
            lines.append(replacement.get(key_name, line))
        config = root / "xrdp.ini"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv = [require_program("xrdp"), "--nodaemon", "--config", str(config)]
        with running(argv, listen=(address, 3389), log=root / "xrdp.out"):
            yield


@contextlib.contextmanager
def tigervnc(address: str, display: int, password: bool) -> Iterator[None]:
    """TigerVNC's Xvnc: RFB on ``address:5900`` only (no X11 listener), None or VncAuth."""
    with private_folder("vnc") as root:
        security = ["-SecurityTypes", "None"]
        if password:
            secret = root / "passwd"
            encoded = subprocess.run(
                [require_program("vncpasswd"), "-f"], input=b"not-a-real-secret\n",
                check=True, capture_output=True,
            ).stdout  # fmt: skip
            secret.write_bytes(encoded)
            security = ["-SecurityTypes", "VncAuth", "-PasswordFile", str(secret)]
        argv = [
            require_program("Xvnc"), f":{display}", "-interface", address, "-rfbport", "5900",
            "-nolisten", "tcp", "-nolisten", "unix", "-geometry", "320x240", "-depth", "16",
            *security,
        ]  # fmt: skip
        with running(argv, listen=(address, 5900), log=root / "xvnc.log"):
            yield


@contextlib.contextmanager
def x11(address: str, display: int, open_access: bool) -> Iterator[None]:
    """An X server (TigerVNC's Xvnc, no RFB listener) reached on ``address:6000``.

    X servers bind their TCP port on every address, so the server listens on
    its Unix socket only and socat relays ``address:6000`` to it, one
    connection at a time as the X server sees them (a local client).
    """
    with private_folder("x11") as root:
        access = ["-ac"]
        if not open_access:
            cookie = root / "Xauthority"
            subprocess.run(
                [require_program("xauth"), "-f", str(cookie), "add", f":{display}", ".",
                 os.urandom(16).hex()],
                check=True, capture_output=True,
            )  # fmt: skip
            access = ["-auth", str(cookie)]
        server = [
            require_program("Xvnc"), f":{display}", "-rfbport", "-1", "-nolisten", "tcp",
            "-geometry", "320x240", "-depth", "16", *access,
        ]  # fmt: skip
        unix_socket = Path(f"/tmp/.X11-unix/X{display}")
        relay = [
            require_program("socat"), f"TCP-LISTEN:6000,bind={address},reuseaddr,fork",
            f"UNIX-CONNECT:{unix_socket}",
        ]  # fmt: skip
        with running(server, log=root / "xvnc.log"):
            deadline = time.monotonic() + 10
            while not unix_socket.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            with running(relay, listen=(address, 6000), log=root / "socat.log"):
                yield


@contextlib.contextmanager
def telnetd(address: str) -> Iterator[None]:
    """inetutils telnetd started per connection by inetutils-inetd on ``address:23``."""
    with private_folder("telnet") as root:
        config = root / "inetd.conf"
        config.write_text(
            f"{address}:telnet stream tcp nowait root {require_program('telnetd')} telnetd\n",
            encoding="utf-8",
        )
        argv = [
            require_program("inetutils-inetd"),
            "-d",
            "-p",
            str(root / "inetd.pid"),
            str(config),
        ]
        with running(argv, listen=(address, 23), log=root / "inetd.log"):
            yield


@contextlib.contextmanager
def dovecot(address: str, starttls: bool) -> Iterator[None]:
    """Dovecot IMAP and POP3 on ``address``; with ``starttls``, ssl = yes (and 993/995)."""
    with private_folder("dovecot") as root:
        (root / "run").mkdir()
        (root / "state").mkdir()
        tls = ["ssl = no"]
        if starttls:
            cert, key = self_signed(root, "mail.svc.test")
            tls = ["ssl = yes", f"ssl_cert = <{cert}", f"ssl_key = <{key}"]
        config = root / "dovecot.conf"
        config.write_text(
            "\n".join(
                [
                    f"base_dir = {root / 'run'}",
                    f"state_dir = {root / 'state'}",
                    f"log_path = {root / 'dovecot.log'}",
                    "protocols = imap pop3",
                    f"listen = {address}",
                    *tls,
                    "auth_mechanisms = plain",
                    "passdb {",
                    "  driver = static",
                    "  args = password=not-a-real-secret",
                    "}",
                    "userdb {",
                    "  driver = static",
                    f"  args = uid=nobody gid=nogroup home={root / 'home'}",
                    "}",
                    f"mail_location = maildir:{root / 'mail'}/%u",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        argv = [require_program("dovecot"), "-F", "-c", str(config)]
        with running(argv, listen=(address, 143), log=root / "dovecot.out"):
            wait_for_port(address, 110)
            yield


POSTFIX_MASTER_CF = """\
{address}:submission inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000 0 flush
proxymap unix - - n - - proxymap
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


@contextlib.contextmanager
def postfix(address: str, starttls: bool) -> Iterator[None]:
    """Postfix submission on ``address:587``, its own config, queue and data folders.

    The address is given in master.cf (``address:submission``): Postfix only
    accepts interface addresses in ``inet_interfaces``.
    """
    with private_folder("postfix") as root:
        conf, queue, data = root / "conf", root / "queue", root / "data"
        for folder in (conf, queue, data):
            folder.mkdir()
        shutil.chown(data, user="postfix")
        tls = ["smtpd_tls_security_level = none"]
        if starttls:
            cert, key = self_signed(root, "mail.svc.test")
            tls = [
                "smtpd_tls_security_level = may",
                f"smtpd_tls_cert_file = {cert}",
                f"smtpd_tls_key_file = {key}",
            ]
        (conf / "main.cf").write_text(
            "\n".join(
                [
                    "compatibility_level = 3.6",
                    f"queue_directory = {queue}",
                    f"data_directory = {data}",
                    "mail_owner = postfix",
                    "setgid_group = postdrop",
                    "inet_interfaces = loopback-only",
                    "inet_protocols = ipv4",
                    "myhostname = mail.svc.test",
                    "mydestination =",
                    "alias_maps =",
                    "alias_database =",
                    f"maillog_file = {root / 'maillog'}",
                    f"maillog_file_prefixes = {root}",
                    *tls,
                    "",
                ]
            ),
            encoding="utf-8",
        )
        (conf / "master.cf").write_text(POSTFIX_MASTER_CF.format(address=address), encoding="utf-8")
        postfix_command = require_program("postfix")
        # "check" creates the queue folders with their owners and modes
        subprocess.run([postfix_command, "-c", str(conf), "check"], check=True, capture_output=True)
        # master itself in the foreground ("postfix start-fg" lets it leave our process group)
        argv = ["/usr/lib/postfix/sbin/master", "-c", str(conf), "-d"]
        with running(argv, listen=(address, 587), log=root / "postfix.out"):
            yield


# --- starting many servers, sweeping them -----------------------------------------------------


@contextlib.contextmanager
def all_running(*managers: contextlib.AbstractContextManager[Any]) -> Iterator[None]:
    """Enter every server's block at once (one thread each), leave them all at once too."""
    entered: list[contextlib.AbstractContextManager[Any]] = []
    with ThreadPoolExecutor(len(managers)) as pool:
        try:
            futures = [pool.submit(manager.__enter__) for manager in managers]
            failures: list[BaseException] = []
            for manager, future in zip(managers, futures, strict=True):
                try:
                    future.result()
                except BaseException as exc:  # the first failure is raised below
                    failures.append(exc)
                else:
                    entered.append(manager)
            if failures:
                raise failures[0]
            yield
        finally:
            for stopped in [pool.submit(m.__exit__, None, None, None) for m in entered]:
                stopped.result()


class FixedResolver:
    """Names of a test world ``<label>.svc.test`` -> their address (DNS is tested elsewhere)."""

    def __init__(self, hosts: Mapping[str, str]) -> None:
        self.addresses = {label: address for address, label in hosts.items()}

    async def resolve_addresses(self, name: str) -> Resolution:
        address = self.addresses[name.removesuffix(f".{ZONE}")]
        return Resolution(name, (address,), Answer.OK)


async def _no_dns(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    return FamilyResult(Family.DNS)


def sweep(
    hosts: Mapping[str, str], allow: str, scan: Mapping[str, Any]
) -> tuple[dict[str, HostResult], float]:
    """Sweep ``hosts`` (address -> label) with the real engine, nmap included.

    Returns each address's result and the seconds the sweep took.
    """
    config = Settings.model_validate({"scope": {"allow": [allow]}, "scan": dict(scan)})
    ctx = ProbeContext.from_settings(config)
    ctx.resolver = FixedResolver(hosts)  # type: ignore[assignment]
    engine = SweepEngine(ctx, host_families={Family.SERVICE: check_services}, domain_check=_no_dns)
    jobs = [
        DomainJob(f"{label}.{ZONE}", families=frozenset({Family.SERVICE}))
        for label in hosts.values()
    ]
    collected: dict[str, HostResult] = {}

    class Keep:
        def hosts_planned(self, count: int) -> None:
            pass

        def host_done(self, result: HostResult) -> None:
            if result.target.ip:
                collected[result.target.ip] = result

    started = time.monotonic()
    asyncio.run(engine.run(jobs, Keep()))
    return collected, time.monotonic() - started


class ScriptedServer:
    """A TCP server on ``address:port`` whose every connection runs ``handle(connection)``.

    For the databases Debian does not package: the handler speaks the
    protocol through the reference client library's own encoders.
    """

    def __init__(self, address: str, port: int, handle: Any) -> None:
        self.handle = handle
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                connection, _ = self.sock.accept()
                worker = threading.Thread(target=self._serve, args=(connection,), daemon=True)
                worker.start()
                self.threads.append(worker)

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(5)
            self.handle(connection)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=2)
        self.sock.close()


@contextlib.contextmanager
def scripted(address: str, port: int, handle: Any) -> Iterator[ScriptedServer]:
    server = ScriptedServer(address, port, handle)
    try:
        yield server
    finally:
        server.close()


def recv_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {count} bytes")
        data += chunk
    return data
