"""Knot DNS answering for the farm: ``gouv.example`` delegates ``bench.gouv.example``.

vigie is pointed at this server as its resolver (``dns.resolvers``); it is also
the zone's only name server, so the DNS family's zone checks (SOA, NS, AXFR
refused, no DNSKEY, CAA) get real answers. Knot is C and multi-threaded: it
takes little CPU from the tools being measured, unlike a Python DNS server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _farm.hosts import DNS_ADDRESS, PARENT_ZONE, ZONE, FarmHost

DNS_PORT = 53
READY_TIMEOUT_S = 20.0
SERIAL = 2026010101


@dataclass
class DnsServer:
    process: subprocess.Popen[bytes]
    run_dir: Path

    @property
    def resolver(self) -> str:
        return f"{DNS_ADDRESS}:{DNS_PORT}"


def _soa(zone: str) -> str:
    return f"@ 3600 IN SOA ns1.{ZONE}. hostmaster.{zone}. {SERIAL} 3600 600 86400 300"


def _parent_zone() -> str:
    return "\n".join(
        [
            f"$ORIGIN {PARENT_ZONE}.",
            _soa(PARENT_ZONE),
            f"@ 3600 IN NS ns1.{ZONE}.",
            f"bench 3600 IN NS ns1.{ZONE}.",
            f"ns1.bench 3600 IN A {DNS_ADDRESS}",
            "",
        ]
    )


def _farm_zone(hosts: list[FarmHost]) -> str:
    lines = [
        f"$ORIGIN {ZONE}.",
        _soa(ZONE),
        f"@ 3600 IN NS ns1.{ZONE}.",
        f"ns1 3600 IN A {DNS_ADDRESS}",
    ]
    lines += [f"host-{h.index} 3600 IN A {h.ip}" for h in hosts]
    return "\n".join(lines) + "\n"


def _knot_config(folder: Path, run_dir: Path) -> str:
    return f"""\
server:
    rundir: "{run_dir}"
    listen: {DNS_ADDRESS}@{DNS_PORT}
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{run_dir / "knot.sock"}"
log:
  - target: stderr
    any: warning
database:
    storage: "{folder / "db"}"
template:
  - id: default
    storage: "{folder / "zones"}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {PARENT_ZONE}.
  - domain: {ZONE}.
"""


def start_dns(folder: Path, hosts: list[FarmHost]) -> DnsServer:
    """Start knotd on DNS_ADDRESS:53 serving the farm zone and its parent."""
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    for sub in ("db", "zones"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "zones" / f"{PARENT_ZONE}.zone").write_text(_parent_zone())
    (folder / "zones" / f"{ZONE}.zone").write_text(_farm_zone(hosts))
    # The control socket path must stay short (UNIX socket limit): a private temp dir.
    run_dir = Path(tempfile.mkdtemp(prefix="vigie-bench-knot-"))
    config = folder / "knot.conf"
    config.write_text(_knot_config(folder, run_dir))
    log = open(folder / "knot.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [knotd, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    server = DnsServer(process, run_dir)
    try:
        _wait_for_answers(hosts[-1].name)
    except TimeoutError:
        stop_dns(server)
        raise
    return server


def _query(name: str) -> bytes:
    header = bytes.fromhex("b3e1 0000 0001 0000 0000 0000")  # one question, no RD
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return header + labels + b"\x00\x00\x01\x00\x01"


def _wait_for_answers(name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            try:
                sock.sendto(_query(name), (DNS_ADDRESS, DNS_PORT))
                answer = sock.recv(512)
            except OSError:
                time.sleep(0.1)
                continue
            if len(answer) > 12 and answer[3] & 0x0F == 0 and answer[7] > 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"knotd does not answer for {name} after {READY_TIMEOUT_S}s")


def stop_dns(server: DnsServer) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    shutil.rmtree(server.run_dir, ignore_errors=True)
