"""Real servers for the service checks, each on its own 127.0.3.x address.

redis-server (open and with ``requirepass``), vsftpd (anonymous allowed and
refused), OpenSSH (password authentication on, and public key only),
memcached, PostgreSQL (trust and SCRAM), an SMTP server without and with
STARTTLS (aiosmtpd), and a port that accepts and never answers. Each gets its
own configuration in a temporary folder and is stopped when its block ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.servers import require_program, running

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
