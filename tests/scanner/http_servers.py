"""Web servers for the HTTP family's tests: real nginx sites and small hostile servers.

nginx runs once per test module with one server block per case, each site on
its own loopback address (ports 80 and 443), with a certificate from a
trustme CA. The hostile servers are asyncio servers on a background thread:
each plays one misbehaviour (redirect loops, redirects out of scope, headers
dripped one byte a second, endless headers, a gzip bomb, TRACE echo) and
counts the connections it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ssl
import subprocess
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

from tests.servers import require_program, running

GOOD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# RFC 9116 §2.5.5 recommends an expiry less than a year ahead: half a year from today.
IN_SIX_MONTHS = (datetime.now(UTC) + timedelta(days=182)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
VALID_SECURITY_TXT = (
    "# How to report a vulnerability to the agency\n"
    "Contact: mailto:security@vigie-http.test\n"
    f"Expires: {IN_SIX_MONTHS}\n"
    "Preferred-Languages: fr, en\n"
)
EXPIRED_SECURITY_TXT = (
    "Contact: mailto:security@vigie-http.test\nExpires: 2020-01-31T23:59:59.000Z\n"
)
FAR_SECURITY_TXT = "Contact: mailto:security@vigie-http.test\nExpires: 2099-12-31T23:59:59.000Z\n"
# CSP3 §3.3: a policy delivered in the head; this one lets inline scripts run.
META_CSP_HTML = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'>"
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'self'; script-src 'self' 'unsafe-inline'\">"
    "<title>Agence</title></head><body><p>Bienvenue</p></body></html>\n"
)
# One script from a CDN without integrity, one with; a stylesheet on the same origin.
SRI_HTML = (
    "<!DOCTYPE html><html><head><title>Agence</title>"
    '<script src="https://cdn.example.net/jquery.min.js"></script>'
    '<script src="https://cdn.example.net/app.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC" crossorigin="anonymous"></script>'
    '<link rel="stylesheet" href="/style.css"></head><body></body></html>\n'
)
# A nonce-based policy without base-uri, and a page with a form without form-action.
NONCE_CSP = "default-src 'self'; script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'; frame-ancestors 'none'"
FORM_HTML = (
    "<!DOCTYPE html><html><head><title>Connexion</title></head><body>"
    '<form method="post" action="/login"><input name="user"></form></body></html>\n'
)
# Adobe's cross-domain policy file specification, its permissive example.
CROSSDOMAIN_ANY = (
    '<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM '
    '"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">\n'
    '<cross-domain-policy>\n  <allow-access-from domain="*" />\n</cross-domain-policy>\n'
)
CROSSDOMAIN_LISTED = (
    '<?xml version="1.0"?>\n<cross-domain-policy>\n'
    '  <allow-access-from domain="*.gouv.ml" />\n</cross-domain-policy>\n'
)
# Silverlight's "allow all" client access policy, as Microsoft documented it.
CLIENTACCESS_ANY = (
    '<?xml version="1.0" encoding="utf-8"?>\n<access-policy>\n  <cross-domain-access>\n'
    '    <policy>\n      <allow-from http-request-headers="*">\n        <domain uri="*"/>\n'
    '      </allow-from>\n      <grant-to>\n        <resource path="/" include-subpaths="true"/>\n'
    "      </grant-to>\n    </policy>\n  </cross-domain-access>\n</access-policy>\n"
)
INDEX_HTML = (
    "<!DOCTYPE html><html><head><title>Agence</title></head><body><p>Bienvenue</p></body></html>\n"
)


def _small_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("www/index.php", "<?php echo 'site';")
    return buffer.getvalue()


def _git_repository_files() -> dict[str, str | bytes]:
    """``.git/HEAD`` and ``.git/config`` as git itself writes them (the detector's oracle),
    with a remote URL carrying a deploy token, as careless deployments have."""
    with tempfile.TemporaryDirectory() as folder:
        git = require_program("git")
        subprocess.run([git, "init", "-q", "-b", "main", folder], check=True)
        remote = "https://deploy:gitS3cret@git.vigie-http.test/site.git"
        subprocess.run([git, "-C", folder, "remote", "add", "origin", remote], check=True)
        return {
            f".git/{name}": (Path(folder) / ".git" / name).read_text()
            for name in ("HEAD", "config")
        }


EXPOSED_FILES: dict[str, str | bytes] = {
    **_git_repository_files(),
    ".svn/entries": "12\n",
    ".env": "APP_KEY=base64:q0Zx1Y2\nDB_PASSWORD=hunter2-secret\nDB_HOST=127.0.0.1\n",
    "phpinfo.php": (
        "<!DOCTYPE html><html><head><title>PHP 8.2.7 - phpinfo()</title></head><body>"
        '<table><tr class="h"><td><h1 class="p">PHP Version 8.2.7</h1></td></tr></table>'
        '<table><tr><td class="e">System </td><td class="v">Linux web 6.1</td></tr></table>'
        "</body></html>\n"
    ),
    "backup.sql": (
        "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n"
        "CREATE TABLE `users` (`id` int, `email` varchar(200));\n"
        "INSERT INTO `users` VALUES (1,'ministre@vigie-http.test');\n"
    ),
    "backup.zip": _small_zip(),
    "phpmyadmin/index.html": (
        "<html><head><title>phpMyAdmin</title></head><body>"
        '<form><input name="pma_username"><input name="pma_password"></form></body></html>\n'
    ),
}


@dataclass
class Site:
    """One nginx case: a domain on its own address, with its headers and files."""

    name: str
    address: str
    https: bool = True
    redirect: bool = True  # port 80 sends to https://; else port 80 serves the site
    headers: dict[str, str] = field(default_factory=lambda: dict(GOOD_HEADERS))
    files: dict[str, str | bytes] = field(default_factory=dict)
    extra: str = ""  # more nginx directives for the server blocks that serve the site
    security_txt: str | None = VALID_SECURITY_TXT
    index: bool = True
    server_tokens: bool = False
    log_requests: bool = False  # "<port> <request line>" per request, in <folder>/<name>.log

    def log_file(self, folder: Path) -> Path:
        return folder / f"{self.name}.log"

    def server_blocks(self, www: Path, cert: Path, key: Path) -> str:
        root = www / self.name
        root.mkdir(parents=True, exist_ok=True)
        if self.index:
            (root / "index.html").write_text(INDEX_HTML)
        files = dict(self.files)
        if self.security_txt is not None:
            files[".well-known/security.txt"] = self.security_txt
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        headers = "".join(
            f'    add_header {name} "{value}" always;\n' for name, value in self.headers.items()
        )
        body = (
            f"    server_name {self.name};\n    root {root};\n"
            f"    server_tokens {'on' if self.server_tokens else 'off'};\n"
            f"    location = /.well-known/security.txt {{ default_type text/plain; }}\n"
            f"{headers}{self.extra}"
        )
        if self.log_requests:
            body += f"    access_log {self.log_file(www.parent)} ports;\n"
        blocks = []
        if self.redirect and self.https:
            blocks.append(
                f"server {{\n    listen {self.address}:80;\n    server_name {self.name};\n"
                f"    server_tokens off;\n    return 301 https://$host$request_uri;\n}}\n"
            )
        else:
            blocks.append(f"server {{\n    listen {self.address}:80;\n{body}}}\n")
        if self.https:
            blocks.append(
                f"server {{\n    listen {self.address}:443 ssl http2;\n"
                f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
                # A request whose SNI is not its Host is refused: proves SNI = domain.
                "    if ($ssl_server_name != $host) { return 421; }\n"
                f"{body}}}\n"
            )
        return "".join(blocks)


def nginx_config(sites: list[Site], folder: Path, ca: trustme.CA) -> Path:
    cert = ca.issue_cert(*[site.name for site in sites])
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    www = folder / "www"
    servers = "".join(site.server_blocks(www, cert_file, key_file) for site in sites)
    config = folder / "nginx.conf"
    config.write_text(
        "user root;\ndaemon off;\nworker_processes 1;\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 512; }\n"
        "http {\n    access_log off;\n    default_type application/octet-stream;\n"
        "    log_format ports '$server_port $request';\n"
        "    types { text/html html; text/plain txt; }\n"
        f"    client_body_temp_path {folder}/tmp;\n    proxy_temp_path {folder}/tmp;\n"
        f"    fastcgi_temp_path {folder}/tmp;\n    uwsgi_temp_path {folder}/tmp;\n"
        f"    scgi_temp_path {folder}/tmp;\n"
        f"{servers}}}\n",
        # ISO-8859-1: a header value with a byte above 0x7F is sent as that one byte
        encoding="latin-1",
    )
    (folder / "tmp").mkdir(exist_ok=True)
    return config


@contextlib.contextmanager
def run_nginx(sites: list[Site], folder: Path) -> Iterator[None]:
    """nginx serving every site until the block ends."""
    nginx = require_program("nginx")
    folder.mkdir(parents=True, exist_ok=True)
    config = nginx_config(sites, folder, trustme.CA())
    first = sites[0]
    port = 443 if first.https else 80
    with running(
        [nginx, "-c", str(config), "-e", str(folder / "error.log")],
        listen=(first.address, port),
        log=folder / "nginx.out",
    ):
        for site in sites:
            from tests.servers import wait_for_port

            wait_for_port(site.address, 443 if site.https else 80)
        yield


# --- hostile servers ----------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, list[str]]:
    """(method, target, header lines) of one request; ('', '', []) when the peer left."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return "", "", []
    lines = head.decode("latin-1").split("\r\n")
    method, target, *_ = [*lines[0].split(" "), "", ""]
    return method, target, [line for line in lines[1:] if line]


class HostileServers:
    """Asyncio servers on one background thread; each counts its connections."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.connections: dict[tuple[str, int], int] = {}
        self._servers: list[asyncio.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def serve(
        self, address: str, port: int, handler: Handler, tls: ssl.SSLContext | None = None
    ) -> None:
        """Run ``handler`` for each connection to ``address:port`` (over TLS with ``tls``)."""
        key = (address, port)
        self.connections[key] = 0

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections[key] += 1
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(counted, address, port, ssl=tls)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self._servers.append(server)

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def respond(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def redirect_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """/a -> /b -> /a ...; anything else -> /a. Keeps the connection alive."""
    while True:
        method, target, _ = await read_request(reader)
        if not method:
            return
        location = "/b" if target == "/a" else "/a"
        writer.write(respond("302 Found", {"Location": location}))
        await writer.drain()


def redirect_to(location: str) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, _, _ = await read_request(reader)
            if not method:
                return
            writer.write(respond("302 Found", {"Location": location}))
            await writer.drain()

    return handler


async def endless_chain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """/ -> /hop/1 -> /hop/2 -> ...: never the same URL twice."""
    while True:
        method, target, _ = await read_request(reader)
        if not method:
            return
        number = int(target.rsplit("/", 1)[-1]) + 1 if target.startswith("/hop/") else 1
        writer.write(respond("302 Found", {"Location": f"/hop/{number}"}))
        await writer.drain()


async def slow_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then one header byte a second, forever."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    await writer.drain()
    while True:
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(1.0)


async def endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Header lines as fast as the client takes them, never a blank line."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    while True:
        writer.write(line * 64)
        await writer.drain()


def big_headers(total: int) -> Handler:
    """A complete response whose header block is ``total`` bytes (under h11's own cap)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, _, _ = await read_request(reader)
            if not method:
                return
            count = total // 1012
            filler = "".join(f"X-Filler-{i:04d}: {'a' * 996}\r\n" for i in range(count))
            head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + filler + "\r\n"
            writer.write(head.encode() + b"ok")
            await writer.drain()

    return handler


def gzip_member(size: int) -> bytes:
    """One gzip member holding ``size`` zero bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(member: bytes, members: int) -> Handler:
    """200 with Content-Encoding: gzip, ``members`` gzip members back to back, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
            b"Connection: close\r\n\r\n"
        )
        for _ in range(members):
            writer.write(member)
            await writer.drain()

    return handler


async def trace_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tidy site that answers TRACE by echoing the request (as old servers did)."""
    while True:
        method, target, headers = await read_request(reader)
        if not method:
            return
        if method == "TRACE":
            echo = "\r\n".join([f"TRACE {target} HTTP/1.1", *headers]).encode()
            writer.write(respond("200 OK", {"Content-Type": "message/http"}, echo))
        elif target == "/":
            writer.write(
                respond(
                    "200 OK", {"Content-Type": "text/html", **GOOD_HEADERS}, INDEX_HTML.encode()
                )
            )
        elif target == "/.well-known/security.txt":
            writer.write(
                respond("200 OK", {"Content-Type": "text/plain"}, VALID_SECURITY_TXT.encode())
            )
        else:
            writer.write(respond("404 Not Found", {"Content-Type": "text/plain"}, b"not found"))
        await writer.drain()


async def count_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A listener that must never be reached: it only counts."""
    await read_request(reader)
    writer.write(respond("200 OK", {}, b"you should not be here"))
    await writer.drain()


async def slow_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Tidy headers at once, then a body that arrives one byte a second, forever."""
    await read_request(reader)
    head = "".join(f"{k}: {v}\r\n" for k, v in GOOD_HEADERS.items())
    writer.write(
        f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{head}Content-Length: 1000000\r\n\r\n".encode()
    )
    await writer.drain()
    while True:
        writer.write(b"<")
        await writer.drain()
        await asyncio.sleep(1.0)
