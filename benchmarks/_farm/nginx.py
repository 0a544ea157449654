"""One nginx process serving every farm host: a server block per address, TLS and HTTP.

Profiles differ in protocols, suites, key type, DH group and HTTP headers, so
that the scanners have the same kind of work a national sweep gives them:
some clean hosts, some with a dozen findings. nginx runs under a private
OpenSSL configuration at security level 0 (Debian's OpenSSL 3 otherwise
refuses TLS 1.0/1.1 and 1024-bit DH); each server block narrows its own
protocols and suites. Every HTTP request is logged with its connection serial
number, so requests per tool can be counted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from _farm.hosts import FarmHost, Profile
from _farm.pki import FarmPki

STATUS_ADDRESS = "127.100.0.1"
STATUS_PORT = 8080
READY_TIMEOUT_S = 60.0

_OPENSSL_CNF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
CipherString = DEFAULT:@SECLEVEL=0
MinProtocol = TLSv1
"""

_TLS = {
    Profile.MODERN: (
        "TLSv1.2 TLSv1.3",
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    Profile.INTERMEDIATE: (
        "TLSv1.2 TLSv1.3",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
    ),
    Profile.LEGACY: ("TLSv1 TLSv1.1 TLSv1.2", "ALL:!aNULL:!eNULL:@SECLEVEL=0"),
    Profile.SLOPPY: (
        "TLSv1.2",
        "AES128-SHA:AES256-SHA:AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
    ),
}

_HEADERS = {
    Profile.MODERN: [
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ],
    Profile.INTERMEDIATE: [
        ("Strict-Transport-Security", "max-age=86400"),
        ("X-Frame-Options", "SAMEORIGIN"),
        ("X-Content-Type-Options", "nosniff"),
    ],
    Profile.LEGACY: [],
    Profile.SLOPPY: [
        ("Set-Cookie", "sessionid=bench; Path=/"),
        ("Content-Security-Policy", "script-src 'self' 'unsafe-inline'"),
    ],
}


@dataclass(frozen=True)
class NginxFarm:
    """Where the running farm keeps its files."""

    folder: Path
    access_log: Path
    pid_file: Path

    def master_pid(self) -> int:
        return int(self.pid_file.read_text().strip())


def _write_sites(folder: Path) -> dict[Profile, Path]:
    """The document roots: modern hosts publish security.txt, legacy ones list a folder."""
    roots = {}
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 200 * 86400))
    for profile in Profile:
        root = folder / "www" / profile.value
        root.mkdir(parents=True, exist_ok=True)
        roots[profile] = root
        if profile is Profile.LEGACY:
            for name in ("rapport-2025.pdf", "notes.txt", "archive"):
                (root / name).write_text("benchmark\n")
            continue
        (root / "index.html").write_text(f"<html><body>farm host ({profile.value})</body></html>\n")
        if profile is Profile.MODERN:
            well_known = root / ".well-known"
            well_known.mkdir(exist_ok=True)
            (well_known / "security.txt").write_text(
                f"Contact: mailto:cert@bench.gouv.example\nExpires: {expires}\n"
            )
    return roots


def _server_block(host: FarmHost, pki: FarmPki, root: Path, dh2048: Path, backlog: int) -> str:
    protocols, ciphers = _TLS[host.profile]
    lines = [
        "server {",
        f"  listen {host.ip}:80 backlog={backlog};",
        f"  listen {host.ip}:443 ssl backlog={backlog};",
        f"  server_name {host.name};",
        f"  ssl_certificate {pki.cert_file(host)};",
        f"  ssl_certificate_key {pki.key_file(host)};",
        f"  ssl_protocols {protocols};",
        f"  ssl_ciphers '{ciphers}';",
        "  ssl_prefer_server_ciphers on;",
        f"  root {root};",
    ]
    if host.profile is Profile.INTERMEDIATE:
        lines.append(f"  ssl_dhparam {dh2048};")
    if host.profile is Profile.LEGACY:
        lines += [f"  ssl_dhparam {pki.dh1024_file};", "  autoindex on;"]
    if host.profile in (Profile.LEGACY, Profile.SLOPPY):
        lines.append("  server_tokens on;")
    for name, value in _HEADERS[host.profile]:
        lines.append(f'  add_header {name} "{value}" always;')
    if host.profile is Profile.MODERN:
        lines.append("  if ($scheme = http) { return 301 https://$host$request_uri; }")
    lines.append("}")
    return "\n".join(lines)


def _write_config(folder: Path, hosts: list[FarmHost], pki: FarmPki, dh2048: Path) -> Path:
    roots = _write_sites(folder)
    backlog = 4096
    blocks = [_server_block(host, pki, roots[host.profile], dh2048, backlog) for host in hosts]
    config = f"""\
user root;
worker_processes 2;
worker_rlimit_nofile 65536;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
  types {{ text/html html; text/plain txt; application/pdf pdf; }}
  default_type text/html;
  server_tokens off;
  keepalive_timeout 5s;
  client_body_temp_path {folder / "tmp-body"};
  proxy_temp_path {folder / "tmp-proxy"};
  fastcgi_temp_path {folder / "tmp-fastcgi"};
  uwsgi_temp_path {folder / "tmp-uwsgi"};
  scgi_temp_path {folder / "tmp-scgi"};
  log_format bench '$server_addr $server_port $connection $ssl_protocol $status "$request"';
  access_log {folder / "access.log"} bench;
  server {{
    listen {STATUS_ADDRESS}:{STATUS_PORT};
    access_log off;
    location = /status {{ stub_status; }}
  }}
{chr(10).join(blocks)}
}}
"""
    path = folder / "nginx.conf"
    path.write_text(config)
    return path


def _dh2048(folder: Path) -> Path:
    """RFC 7919's ffdhe2048 group, as OpenSSL writes it (no generation needed)."""
    path = folder / "ffdhe2048.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:ffdhe2048",
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    return path


def start_nginx(folder: Path, hosts: list[FarmHost], pki: FarmPki) -> NginxFarm:
    """Write the configuration, start nginx and wait until every host listens."""
    folder.mkdir(parents=True, exist_ok=True)
    config = _write_config(folder, hosts, pki, _dh2048(folder))
    cnf = folder / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    env = {**os.environ, "OPENSSL_CONF": str(cnf)}
    subprocess.run(
        ["nginx", "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(config)],
        check=True,
        env=env,
        capture_output=True,
    )
    farm = NginxFarm(folder=folder, access_log=folder / "access.log", pid_file=folder / "nginx.pid")
    _wait_listening([(STATUS_ADDRESS, STATUS_PORT)] + [(h.ip, 443) for h in hosts[-1:]])
    return farm


def _wait_listening(endpoints: list[tuple[str, int]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for endpoint in endpoints:
        while True:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(endpoint) == 0:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx does not listen on {endpoint} after {READY_TIMEOUT_S}s")
            time.sleep(0.05)


def stop_nginx(farm: NginxFarm) -> None:
    """Stop the master (it stops its workers) and wait until it is gone."""
    try:
        pid = farm.master_pid()
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def worker_pids(farm: NginxFarm) -> list[int]:
    """The master and its workers, for the farm's own CPU time."""
    master = farm.master_pid()
    pids = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
    return pids
