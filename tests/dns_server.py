"""Real DNS servers for tests: Knot DNS serving zone files, and a fault-injecting proxy.

``start_zone_server`` runs ``knotd`` with its own configuration in a temporary
folder: it answers authoritatively for the zones it is given, allows AXFR only
for the zones named in ``axfr_allowed`` and signs (DNSSEC) the zones named in
``signed``. Knot cannot time out, fail or truncate on purpose, so
``start_faulty_proxy`` puts a small dnslib server in front of it that drops,
fails, refuses, strips the AA flag or truncates on request.

Both bind one given 127.x address and port; ``free_port`` finds a port free on
several addresses at once, so that a whole test world (resolver and name
servers on different addresses) shares one port.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
from dnslib import QTYPE, RCODE, DNSError, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from tests.servers import require_program, running
from vigie.config import Settings

READY_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ZoneServer:
    """A running Knot instance: where it listens and what it serves."""

    address: str
    port: int
    zones: tuple[str, ...]
    folder: Path | None = None  # configuration, key database and zone files
    run_dir: Path | None = None  # holds the control socket

    @property
    def resolver(self) -> str:
        """The ``dns.resolvers`` entry that points at this server."""
        return f"{self.address}:{self.port}"

    def ds_records(self, zone: str) -> list[str]:
        """The DS records of a zone Knot signs, as Knot's own ``keymgr`` computes them."""
        assert self.folder is not None
        keymgr = require_program("keymgr")
        done = subprocess.run(
            [keymgr, "-c", str(self.folder / "knot.conf"), _absolute(zone), "ds"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [line.strip() for line in done.stdout.splitlines() if " DS " in line]

    def dnskey_records(self, zone: str) -> list[str]:
        """The DNSKEY records Knot serves for a zone it signs (for trust anchors)."""
        response = dns.query.tcp(
            dns.message.make_query(_absolute(zone), "DNSKEY"),
            self.address,
            port=self.port,
            timeout=2,
        )
        return [
            rrset.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.DNSKEY
        ]

    def replace_zone(self, zone: str, text: str, expect: tuple[str, str] | None = None) -> None:
        """Rewrite a zone file and make Knot reload it; wait until ``expect`` (name, type) answers."""
        assert self.folder is not None and self.run_dir is not None
        (self.folder / "zones" / f"{_absolute(zone)}zone").write_text(text, encoding="utf-8")
        knotc = require_program("knotc")
        subprocess.run(
            [knotc, "-s", str(self.run_dir / "knot.sock"), "zone-reload", _absolute(zone)],
            capture_output=True,
            timeout=30,
            check=True,
        )
        if expect is None:
            return
        deadline = time.monotonic() + READY_TIMEOUT_S
        query = dns.message.make_query(expect[0], expect[1])
        while time.monotonic() < deadline:
            try:
                response = dns.query.udp(query, self.address, port=self.port, timeout=0.3)
            except (OSError, dns.exception.DNSException):
                response = None
            if response is not None and response.answer:
                return
            time.sleep(0.05)
        raise TimeoutError(f"{expect} not served after reloading {zone}")


def world_settings(resolver: str, port: int, allow: str, **dns: object) -> Settings:
    """Settings for a DNS test world: one resolver (``ip``, on ``port``), short timeouts,
    name servers asked on ``port``, the scope ``allow`` (a CIDR); ``dns`` adds keys."""
    return Settings.model_validate(
        {
            "dns": {
                "resolvers": [f"{resolver}:{port}"],
                "timeout_s": 0.5,
                "lifetime_s": 1.5,
                "nameserver_port": port,
                "axfr_lifetime_s": 2.0,
                "max_addresses": 1,
                **dns,
            },
            "scope": {"allow": [allow]},
        }
    )


def free_port(addresses: Iterable[str], low: int = 20000, high: int = 60000) -> int:
    """A port that is free for UDP and TCP on every one of ``addresses``."""
    wanted = list(addresses)
    for _ in range(200):
        port = random.randint(low, high)
        if all(_port_is_free(address, port) for address in wanted):
            return port
    raise RuntimeError(f"no free port shared by {wanted}")


def _port_is_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _absolute(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _knot_config(
    folder: Path,
    run_dir: Path,
    addresses: Sequence[str],
    port: int,
    zones: Iterable[str],
    axfr_allowed: set[str],
    signed: set[str],
    nsec3: dict[str, bool] | None = None,
) -> str:
    lines = [
        "server:",
        f'    rundir: "{run_dir}"',
        f"    listen: [ {', '.join(f'{a}@{port}' for a in addresses)} ]",
        "    udp-workers: 1",
        "    tcp-workers: 1",
        "    background-workers: 1",
        "control:",
        f'    listen: "{run_dir / "knot.sock"}"',
        "log:",
        "  - target: stderr",
        "    any: info",
        "database:",
        f'    storage: "{folder / "db"}"',
        "acl:",
        "  - id: transfer_allowed",
        "    address: 127.0.0.0/8",
        "    action: transfer",
        "policy:",
        "  - id: nsec3",
        "    nsec3: on",
        "  - id: nsec3-opt-out",
        "    nsec3: on",
        "    nsec3-opt-out: on",
        "template:",
        "  - id: default",
        f'    storage: "{folder / "zones"}"',
        '    file: "%s.zone"',
        "    zonefile-sync: -1",
        "    journal-content: none",
        "zone:",
    ]
    for zone in zones:
        lines.append(f"  - domain: {zone}")
        if zone in axfr_allowed:
            lines.append("    acl: transfer_allowed")
        if zone in signed:
            lines.append("    dnssec-signing: on")
        if nsec3 is not None and zone in nsec3:
            lines.append("    dnssec-policy: " + ("nsec3-opt-out" if nsec3[zone] else "nsec3"))
    return "\n".join(lines) + "\n"


def wait_for_zones(
    address: str, port: int, zones: Iterable[str], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Wait until the server answers authoritatively for the SOA of every zone."""
    deadline = time.monotonic() + timeout_s
    for zone in zones:
        while not _serves(address, port, zone):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address}:{port} does not serve {zone} after {timeout_s}s")
            time.sleep(0.05)


def _serves(address: str, port: int, zone: str) -> bool:
    query = dns.message.make_query(zone, "SOA")
    try:
        response = dns.query.udp(query, address, port=port, timeout=0.3)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.flags & dns.flags.AA)


@contextlib.contextmanager
def start_zone_server(
    tmp_path: Path,
    address: str,
    port: int,
    zones: dict[str, str],
    axfr_allowed: set[str] | frozenset[str] = frozenset(),
    signed: set[str] | frozenset[str] = frozenset(),
    also_listen: Sequence[str] = (),
    with_parents: bool = False,
    nsec3: dict[str, bool] | None = None,
) -> Iterator[ZoneServer]:
    """Run knotd on ``address:port`` serving ``zones`` ({origin: zone file text}).

    Zones in ``axfr_allowed`` accept AXFR from 127.0.0.0/8; the others refuse
    it. Zones in ``signed`` are signed by Knot (DNSSEC, ECDSA P-256).
    ``also_listen`` adds addresses (same port) that serve the same zones, to
    play a zone's second name server.

    ``with_parents`` makes the server answer like the real tree above the
    zones: every missing ancestor up to the top-level domain is served as a
    zone of its own that delegates to its children (NS) and publishes the DS
    records ``keymgr`` gives for the signed ones. Climbs towards the root (CAA,
    RFC 8659 §3) then meet NODATA instead of REFUSED, and a signed zone has the
    DS at its parent that validation needs (RFC 4035 §5.2).

    ``nsec3`` ({zone: opt-out}) signs those zones (also in ``signed``) with
    NSEC3 instead of NSEC (RFC 5155), with the opt-out flag when True.
    """
    knotd = require_program("knotd")
    folder = tmp_path / f"knot-{address}-{port}"
    for sub in ("db", "zones"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    parents = _missing_ancestors(zones) if with_parents else {}
    zones = {**zones, **{parent: _parent_text(parent, address, 1) for parent in parents}}
    origins = [_absolute(zone) for zone in zones]
    for zone, text in zones.items():
        (folder / "zones" / f"{_absolute(zone)}zone").write_text(text, encoding="utf-8")
    allowed = {_absolute(z) for z in axfr_allowed}
    to_sign = {_absolute(z) for z in signed}
    config = folder / "knot.conf"
    # Knot exits when its control socket path is longer than a UNIX socket
    # allows (~107 bytes), which a deep pytest tmp_path can be: keep it short.
    run_dir = Path(tempfile.mkdtemp(prefix="vigie-knot-"))
    config.write_text(
        _knot_config(
            folder,
            run_dir,
            [address, *also_listen],
            port,
            origins,
            allowed,
            to_sign,
            {_absolute(z): out for z, out in (nsec3 or {}).items()},
        ),
        encoding="utf-8",
    )
    log = folder / "knot.log"
    try:
        with running([knotd, "-c", str(config)], listen=(address, port), log=log):
            try:
                wait_for_zones(address, port, origins)
            except TimeoutError as exc:
                detail = log.read_text(errors="replace")[-3000:]
                raise TimeoutError(f"{exc}\n{detail}") from None
            server = ZoneServer(address, port, tuple(origins), folder, run_dir)
            for parent, children in parents.items():
                _publish_delegations(server, parent, children, to_sign)
            yield server
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _missing_ancestors(zones: dict[str, str]) -> dict[str, list[str]]:
    """{ancestor not served: the zones (served or added) directly below it}."""
    served = {_absolute(zone) for zone in zones}
    parents: dict[str, list[str]] = {}
    for zone in sorted(served, key=len, reverse=True):
        child = zone
        labels = zone.rstrip(".").split(".")
        for index in range(1, len(labels)):
            ancestor = ".".join(labels[index:]) + "."
            if ancestor in served:
                break
            below = parents.setdefault(ancestor, [])
            if child not in below:
                below.append(child)
            child = ancestor
            if len(below) > 1:
                break  # this ancestor's own ancestors were recorded with its first child
    return parents


def _parent_text(parent: str, address: str, serial: int, extra: str = "") -> str:
    return (
        f"$ORIGIN {parent}\n$TTL 300\n"
        f"@ SOA ns.{parent} hostmaster.{parent} {serial} 3600 600 86400 300\n"
        f"@ NS ns.{parent}\nns A {address}\n{extra}"
    )


def _publish_delegations(
    server: ZoneServer, parent: str, children: list[str], signed: set[str]
) -> None:
    """Add NS (and DS, for signed children) of ``children`` to ``parent`` and reload it."""
    lines: list[str] = []
    for child in children:
        response = dns.query.tcp(
            dns.message.make_query(child, "NS"), server.address, port=server.port, timeout=2
        )
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.NS:
                lines.extend(f"{child} NS {rdata.target}" for rdata in rrset)
        if child in signed:
            lines.extend(server.ds_records(child))
    if not lines:
        return
    text = _parent_text(parent, server.address, 2, "".join(f"{line}\n" for line in lines))
    expect = next(((c, "DS") for c in children if c in signed), None)
    server.replace_zone(parent, text, expect=expect)


# --- a fault-injecting proxy in front of a zone server ---------------------


@dataclass(frozen=True)
class Faults:
    """What the proxy does instead of forwarding faithfully.

    Entries are a query name (``"_dmarc.example.test."``: every type) or a
    name and a type (``"example.test. TXT"``), matched case-insensitively.
    """

    drop: frozenset[str] = frozenset()  # never answer (the client times out)
    servfail: frozenset[str] = frozenset()  # answer SERVFAIL
    refuse_all: bool = False  # answer REFUSED to everything (a lame server)
    strip_aa: bool = False  # forward, but clear the AA flag (a caching server)
    truncate_udp: bool = False  # over UDP, answer TC with no records (TCP works)


def _fault_key(entry: str) -> str:
    name, _, rdtype = entry.strip().partition(" ")
    return f"{_absolute(name)} {rdtype.strip().upper()}" if rdtype.strip() else _absolute(name)


class _FaultyResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, upstream: tuple[str, int], faults: Faults) -> None:
        self.upstream = upstream
        self.faults = faults
        self.drop = {_fault_key(entry) for entry in faults.drop}
        self.servfail = {_fault_key(entry) for entry in faults.servfail}
        self.queries: list[tuple[str, str, str]] = []  # (name, type, protocol)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name = _absolute(str(request.q.qname))
        rdtype = str(QTYPE[request.q.qtype])
        self.queries.append((name, rdtype, handler.protocol))
        keys = {name, f"{name} {rdtype}"}
        if keys & self.drop:
            raise DNSError(f"dropping the query for {name} {rdtype}")
        reply = request.reply()
        if self.faults.refuse_all:
            reply.header.rcode = RCODE.REFUSED
            return reply
        if keys & self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if self.faults.truncate_udp and handler.protocol == "udp":
            reply.header.tc = 1
            return reply
        forwarded = DNSRecord.parse(request.send(*self.upstream, tcp=True, timeout=2.0))
        if self.faults.strip_aa:
            forwarded.header.aa = 0
        return forwarded


class _QuietLogger(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error", prefix=False)


@dataclass
class FaultyProxy:
    address: str
    port: int
    resolver: _FaultyResolver

    @property
    def queries(self) -> list[tuple[str, str, str]]:
        """Every (name, type, protocol) received so far."""
        return self.resolver.queries

    @property
    def resolver_entry(self) -> str:
        return f"{self.address}:{self.port}"


@contextlib.contextmanager
def start_faulty_proxy(
    address: str, port: int, upstream: tuple[str, int], faults: Faults
) -> Iterator[FaultyProxy]:
    """Run a dnslib server on ``address:port`` (UDP and TCP) that forwards to ``upstream``."""
    resolver = _FaultyResolver(upstream, faults)
    servers = [
        DNSServer(resolver, address=address, port=port, tcp=tcp, logger=_QuietLogger())
        for tcp in (False, True)
    ]
    for server in servers:
        # A short poll interval makes stopping quick (the default waits 0.5 s per server).
        server.thread = threading.Thread(
            target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        server.thread.start()
    try:
        yield FaultyProxy(address, port, resolver)
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()
