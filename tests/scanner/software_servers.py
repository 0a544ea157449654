"""Servers for the software and vuln families' tests, each on its own 127.0.20.x address.

Real daemons from this machine's Debian packages (OpenSSH, vsftpd, Redis,
nginx, Apache httpd, Dovecot, MariaDB, Postfix) show their own banners; their versions
are read from the packages themselves (dpkg-query, ``--version``), never
written here. Older and vulnerable versions cannot be installed beside them,
so ``RecordedBanners`` serves banners recorded from real servers of those
versions, byte for byte, on their own addresses (see each entry). Edge
appliances' login pages are served by the real nginx with the markers the
appliances' pages carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.scanner.mail_servers import Smtpd, run_postfix
from tests.servers import require_program, running, wait_for_port

SSHD = "127.0.20.10"
VSFTPD = "127.0.20.11"
REDIS = "127.0.20.12"
NGINX = "127.0.20.13"
APACHE = "127.0.20.14"
DOVECOT = "127.0.20.15"
MARIADB = "127.0.20.16"
OLD_SSH = "127.0.20.20"
OLD_APACHE = "127.0.20.21"
BACKPORTED_SSH = "127.0.20.22"
WORDPRESS = "127.0.20.23"
FORTIGATE = "127.0.20.24"
GLOBALPROTECT = "127.0.20.25"
OLD_VSFTPD = "127.0.20.27"
POSTFIX = "127.0.20.28"
UPSTREAM_SSH = "127.0.20.29"

# Banners recorded from real servers (first line each sends, or its HTTP response head).
RECORDED: dict[tuple[str, int], bytes] = {
    # Debian 12 "bookworm" before DSA-5586-1 (OpenSSH 1:9.2p1-2+deb12u1, July 2023)
    (OLD_SSH, 22): b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1\r\n",
    # Debian 12 after DSA-5724-1 (1:9.2p1-2+deb12u3, July 2024): the fixes are backported
    (BACKPORTED_SSH, 22): b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    # An upstream build without a distribution comment (as OpenBSD and source builds send)
    (UPSTREAM_SSH, 22): b"SSH-2.0-OpenSSH_9.2p1\r\n",
    # vsftpd 2.3.4's greeting (the release whose tarball was backdoored, CVE-2011-2523)
    (OLD_VSFTPD, 21): b"220 (vsFTPd 2.3.4)\r\n",
}
# Apache httpd 2.4.49 built from source (ServerTokens Full), CVE-2021-41773's version.
OLD_APACHE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Date: Tue, 05 Oct 2021 10:00:00 GMT\r\n"
    b"Server: Apache/2.4.49 (Unix)\r\n"
    b'ETag: "2d-5cd5b1d5c2b80"\r\n'
    b"Content-Length: 45\r\n"
    b"Content-Type: text/html\r\n\r\n"
    b"<html><body><h1>It works!</h1></body></html>\n"
)

WORDPRESS_PAGE = """<!DOCTYPE html>
<html lang="fr-FR">
<head>
<meta charset="UTF-8" />
<title>Ministère - Accueil</title>
<link rel='stylesheet' id='wp-block-library-css' href='/wp-includes/css/dist/block-library/style.min.css?ver=6.4.2' media='all' />
<script src="/wp-includes/js/jquery/jquery.min.js?ver=3.7.1" id="jquery-core-js"></script>
<meta name="generator" content="WordPress 6.4.2" />
</head>
<body class="home blog"><div id="page"><a href="/wp-content/uploads/2023/12/logo.png">logo</a></div></body>
</html>
"""
FORTIGATE_LOGIN = """<!DOCTYPE html>
<html lang="en" class="main-app">
<head>
<meta charset="UTF-8">
<title></title>
<link href="/styles.css" rel="stylesheet" type="text/css">
<script src="/remote/fgt_lang?lang=en"></script>
<script type="text/javascript" src="/sslvpn/js/login.js?q=8f7b1f2b"></script>
</head>
<body class="main-app">
<div class="ftnt-fortinet-grid"><form action="/remote/logincheck" method="post" name="f">
<input type="text" name="username"><input type="password" name="credential"></form></div>
</body>
</html>
"""
GLOBALPROTECT_LOGIN = """<html>
<head><title>GlobalProtect Portal</title>
<link type="text/css" rel="stylesheet" href="/global-protect/portal/css/login.css" />
</head>
<body><form name="login" method="post" action="/global-protect/login.esp">
<input type="hidden" name="prot" value="https:" /><input type="text" name="user" />
</form></body></html>
"""


def package_version(package: str) -> str:
    """The installed version of a Debian package, as dpkg records it."""
    return subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def program_version(argv: list[str], pattern: str) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    found = re.search(pattern, out.stdout + out.stderr)
    assert found, f"{argv}: no version in {out.stdout + out.stderr!r}"
    return found.group(1)


class RecordedBanners:
    """Plain TCP servers that send a recorded banner (or HTTP response) and wait."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.AbstractServer] = []

    async def _start(self) -> None:
        for (address, port), banner in RECORDED.items():
            self.servers.append(await asyncio.start_server(self._greeter(banner), address, port))
        self.servers.append(await asyncio.start_server(self._http, OLD_APACHE, 80))

    def _greeter(self, banner: bytes):  # type: ignore[no-untyped-def]
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(banner)
            with contextlib.suppress(ConnectionError, asyncio.TimeoutError):
                await writer.drain()
                await asyncio.wait_for(reader.read(4096), 1.0)  # the client's first words
                writer.write(b"421 closing\r\n" if not banner.startswith(b"SSH") else b"")
                await writer.drain()
            writer.close()

        return greet

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(
            ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError
        ):
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2.0)
                if head.startswith(b"GET / "):
                    writer.write(OLD_APACHE_RESPONSE)
                else:
                    body = b"<html><body><h1>Not Found</h1></body></html>\n"
                    writer.write(
                        b"HTTP/1.1 404 Not Found\r\nServer: Apache/2.4.49 (Unix)\r\n"
                        + f"Content-Length: {len(body)}\r\nContent-Type: text/html\r\n\r\n".encode()
                        + body
                    )
                await writer.drain()
        writer.close()

    def __enter__(self) -> RecordedBanners:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextlib.contextmanager
def nginx(folder: Path) -> Iterator[None]:
    """nginx with version tokens on (its default), a WordPress page and two appliance pages."""
    www = folder / "nginx-www"
    for name, page in (
        ("plain", "<html><body>ok</body></html>\n"),
        ("wordpress", WORDPRESS_PAGE),
        ("fortigate", FORTIGATE_LOGIN),
        ("globalprotect", GLOBALPROTECT_LOGIN),
    ):
        (www / name).mkdir(parents=True, exist_ok=True)
        (www / name / "index.html").write_text(page, encoding="utf-8")
    (folder / "nginx-tmp").mkdir(exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(
        "user root;\ndaemon off;\nworker_processes 1;\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/nginx-error.log;\n"
        "events { worker_connections 256; }\n"
        "http {\n access_log off;\n types { text/html html; }\n default_type text/html;\n"
        f" client_body_temp_path {folder}/nginx-tmp;\n proxy_temp_path {folder}/nginx-tmp;\n"
        f" fastcgi_temp_path {folder}/nginx-tmp;\n uwsgi_temp_path {folder}/nginx-tmp;\n"
        f" scgi_temp_path {folder}/nginx-tmp;\n"
        f" server {{ listen {NGINX}:80; root {www}/plain; }}\n"
        f" server {{ listen {WORDPRESS}:80; root {www}/wordpress; server_tokens off; }}\n"
        f" server {{ listen {FORTIGATE}:80; server_tokens off;\n"
        "   location = / { return 302 /remote/login?lang=en; }\n"
        f"   location = /remote/login {{ default_type text/html; alias {www}/fortigate/index.html; }}\n"
        "   location / { return 404; } }\n"
        f" server {{ listen {GLOBALPROTECT}:80; server_tokens off;\n"
        "   location = / { return 302 /global-protect/login.esp; }\n"
        "   location = /global-protect/login.esp { default_type text/html;\n"
        f"     alias {www}/globalprotect/index.html; }}\n"
        "   location / { return 404; } }\n"
        "}\n",
        encoding="utf-8",
    )
    argv = [require_program("nginx"), "-c", str(config), "-e", str(folder / "nginx-error.log")]
    with running(argv, listen=(NGINX, 80), log=folder / "nginx.out"):
        for address in (WORDPRESS, FORTIGATE, GLOBALPROTECT):
            wait_for_port(address, 80)
        yield


@contextlib.contextmanager
def apache(folder: Path) -> Iterator[None]:
    """Apache httpd from apache2-bin, default ServerTokens (Full)."""
    root = folder / "apache"
    (root / "www").mkdir(parents=True, exist_ok=True)
    (root / "www" / "index.html").write_text("<html><body>It works</body></html>\n")
    modules = Path("/usr/lib/apache2/modules")
    config = root / "httpd.conf"
    config.write_text(
        "\n".join(
            [
                f"ServerRoot {root}",
                f"LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so",
                f"LoadModule authz_core_module {modules}/mod_authz_core.so",
                f"LoadModule dir_module {modules}/mod_dir.so",
                f"Listen {APACHE}:80",
                f"PidFile {root}/httpd.pid",
                f"ErrorLog {root}/error.log",
                f"Mutex file:{root} default",
                f"DocumentRoot {root}/www",
                "ServerName apache.vigie.test",
                "User www-data",
                "Group www-data",
                "StartServers 1",
                "MinSpareServers 1",
                "MaxSpareServers 2",
                "",
            ]
        ),
        encoding="utf-8",
    )
    argv = [require_program("apache2"), "-f", str(config), "-DFOREGROUND"]
    with running(argv, listen=(APACHE, 80), log=root / "apache.out"):
        yield


@contextlib.contextmanager
def dovecot(folder: Path) -> Iterator[None]:
    """Dovecot IMAP and POP3 (no TLS: only its greetings are read)."""
    root = folder / "dovecot"
    for sub in ("run", "state", "home", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    config = root / "dovecot.conf"
    config.write_text(
        "protocols = imap pop3\n"
        f"listen = {DOVECOT}\n"
        f"base_dir = {root}/run\nstate_dir = {root}/state\nlog_path = {root}/dovecot.log\n"
        "ssl = no\nauth_mechanisms = plain\ndisable_plaintext_auth = no\n"
        f"mail_location = mbox:{root}/mail\n"
        "passdb {\n  driver = static\n  args = password=unused-vigie-test\n}\n"
        f"userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={root}/home\n}}\n",
        encoding="utf-8",
    )
    argv = [require_program("dovecot"), "-F", "-c", str(config)]
    with running(argv, listen=(DOVECOT, 143), log=root / "dovecot.out"):
        wait_for_port(DOVECOT, 110)
        yield


@contextlib.contextmanager
def mariadb(folder: Path) -> Iterator[None]:
    """MariaDB from mariadb-server, a throw-away data directory."""
    root = folder / "mariadb"
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            require_program("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={root}/data",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    argv = [
        require_program("mariadbd"),
        "--no-defaults",
        f"--datadir={root}/data",
        f"--bind-address={MARIADB}",
        "--port=3306",
        f"--socket={root}/mariadb.sock",
        f"--pid-file={root}/mariadb.pid",
        "--user=root",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=16M",
    ]
    with running(argv, listen=(MARIADB, 3306), log=root / "mariadb.out", timeout_s=30):
        yield


# Debian's main.cf (/usr/share/postfix/main.cf.debian) sets this; Postfix's built-in
# default (postconf -d) is "$myhostname ESMTP $mail_name", without the platform.
POSTFIX_DEBIAN_BANNER = "$myhostname ESMTP $mail_name (Debian/GNU)"


@contextlib.contextmanager
def postfix() -> Iterator[None]:
    """Postfix from the postfix package: one smtpd on ``POSTFIX:25`` with Debian's banner.

    Started by ``run_postfix`` of the mail tests (``master -d``, a private
    configuration folder, the address in master.cf, its own process group).
    """
    with run_postfix([Smtpd(POSTFIX)], "mail.vigie.test", {"smtpd_banner": POSTFIX_DEBIAN_BANNER}):
        yield
