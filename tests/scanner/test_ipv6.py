"""IPv6 family: web host AAAA and reachability, name servers' AAAA, on real servers.

Knot (127.0.22.3) serves ``v6-lab.`` (its name server has no AAAA) and
``v6ns-lab.`` (its name server has one) and is vigie's resolver; the web
host's IPv6 address is ``::1``, where a real TCP listener answers on one
port (and nothing on another). ``dig`` and plain sockets are the oracles.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.dns_server import ZoneServer, free_port, start_zone_server
from tests.servers import require_program
from vigie.config import Settings
from vigie.model import FamilyResult
from vigie.scanner.ipv6 import PortAttempt, check_ipv6, web_findings
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup

KNOT = "127.0.22.3"
WEB4 = "127.0.22.31"
SOA = "@ SOA ns1 hostmaster 1 3600 600 86400 300"


# --- pure -----------------------------------------------------------------------------------------


def test_no_route_from_the_scanner_is_no_verdict() -> None:
    # Given an AAAA address this scanner has no IPv6 route to (ENETUNREACH)
    attempts = {"2001:db8::1": [PortAttempt(80, "no route"), PortAttempt(443, "no route")]}
    # Then the web host is not called unreachable
    assert web_findings("a.example.ml", "a.example.ml", [], attempts) == []
    # And a refused and a silent port are
    closed = {"2001:db8::1": [PortAttempt(80, "refused"), PortAttempt(443, "timeout")]}
    found = web_findings("a.example.ml", "a.example.ml", [], closed)
    assert [f.check_id for f in found] == ["ipv6.web.unreachable"]
    assert found[0].evidence["ports"] == {"80": "refused", "443": "timeout"}


# --- the world ------------------------------------------------------------------------------------


@dataclass
class Listener:
    """A TCP server on [::1] that accepts and counts connections."""

    sock: socket.socket
    accepted: list[int] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


@contextlib.contextmanager
def ipv6_listener() -> Iterator[Listener]:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.bind(("::1", 0))
    sock.listen(16)
    listener = Listener(sock)

    def serve() -> None:
        while True:
            try:
                connection, _ = sock.accept()
            except OSError:
                return
            listener.accepted.append(1)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        thread.join(5)


def closed_ipv6_port() -> int:
    """A port nothing listens on at [::1] (bound, never listening: connections are refused)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
        return int(sock.getsockname()[1])


ZONES = {
    "v6-lab": "\n".join(
        [
            "$ORIGIN v6-lab.",
            "$TTL 300",
            SOA,
            "@ NS ns1",
            f"ns1 A {KNOT}",
            f"reach A {WEB4}",
            "reach AAAA ::1",
            f"v4only A {WEB4}",
            "www.nakedapex AAAA ::1",
            'nakedapex TXT "v=spf1 -all"',
            'noweb TXT "v=spf1 -all"',
        ]
    )
    + "\n",
    "v6ns-lab": "\n".join(
        [
            "$ORIGIN v6ns-lab.",
            "$TTL 300",
            SOA,
            "@ NS ns1",
            f"ns1 A {KNOT}",
            "ns1 AAAA ::1",
            f"dual A {WEB4}",
            "dual AAAA ::1",
        ]
    )
    + "\n",
}


@dataclass
class V6World:
    knot: ZoneServer
    listener: Listener


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[V6World]:
    folder: Path = tmp_path_factory.mktemp("ipv6")
    port = free_port([KNOT])
    with start_zone_server(folder, KNOT, port, ZONES) as knot, ipv6_listener() as listener:
        yield V6World(knot, listener)


def settings(world: V6World, web_ports: list[int], allow_ipv6: bool = True) -> Settings:
    allow = ["127.0.22.0/24", *(["::1/128"] if allow_ipv6 else [])]
    return Settings.model_validate(
        {
            "dns": {"resolvers": [world.knot.resolver], "timeout_s": 1.0, "lifetime_s": 2.0},
            "scope": {"allow": allow},
            "ipv6": {"web_ports": web_ports, "connect_timeout_s": 2.0},
        }
    )


def scan(config: Settings, domain: str) -> FamilyResult:
    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(config)
        try:
            return await check_ipv6(ctx, domain, False)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def dig_aaaa(world: V6World, name: str) -> list[str]:
    result = subprocess.run(
        [require_program("dig"), f"@{KNOT}", "-p", str(world.knot.port), "+short", name, "AAAA"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout.split()


def ids(result: FamilyResult) -> set[str]:
    return {f.check_id for f in result.findings}


# --- the checks -----------------------------------------------------------------------------------


@pytest.mark.network
def test_web_host_answering_on_its_aaaa(world: V6World) -> None:
    # Given dig: reach.v6-lab has AAAA ::1, and a socket connects to the listener there
    assert dig_aaaa(world, "reach.v6-lab") == ["::1"]
    with socket.create_connection(("::1", world.listener.port), timeout=2):
        pass
    before = len(world.listener.accepted)
    # When vigie checks it with the listener's port as the web port
    result = scan(settings(world, [world.listener.port]), "reach.v6-lab")
    # Then it connected, and the only finding is the zone's name server without IPv6
    assert len(world.listener.accepted) > before
    assert ids(result) == {"ipv6.ns.missing"} and result.complete


@pytest.mark.network
def test_web_host_not_answering_on_its_aaaa(world: V6World) -> None:
    # Given a port on ::1 where a plain socket is refused
    closed = closed_ipv6_port()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("::1", closed), timeout=2)
    # When vigie checks reach.v6-lab on that port only
    result = scan(settings(world, [closed]), "reach.v6-lab")
    # Then the AAAA address does not answer
    found = [f for f in result.findings if f.check_id == "ipv6.web.unreachable"]
    assert len(found) == 1 and found[0].ip == "::1"
    assert found[0].evidence["ports"] == {str(closed): "refused"}


@pytest.mark.network
def test_web_host_without_aaaa(world: V6World) -> None:
    # Given dig: no AAAA for v4only.v6-lab
    assert dig_aaaa(world, "v4only.v6-lab") == []
    # Then vigie reports ipv6.web.missing with the IPv4 address it has
    result = scan(settings(world, [world.listener.port]), "v4only.v6-lab")
    missing = [f for f in result.findings if f.check_id == "ipv6.web.missing"]
    assert len(missing) == 1 and missing[0].evidence["ipv4_addresses"] == [WEB4]


@pytest.mark.network
def test_the_web_host_is_the_name_itself(world: V6World) -> None:
    # Given dig: nakedapex.v6-lab has no address, www.nakedapex.v6-lab has AAAA ::1
    assert dig_aaaa(world, "nakedapex.v6-lab") == []
    assert dig_aaaa(world, "www.nakedapex.v6-lab") == ["::1"]
    # When vigie checks nakedapex.v6-lab with nothing listening on the web port
    result = scan(settings(world, [closed_ipv6_port()]), "nakedapex.v6-lab")
    # Then it judges no web host (internet.nl tests the name given, not www.)
    assert ids(result) == {"ipv6.ns.missing"}
    # And the www name, registered on its own, is judged
    www = scan(settings(world, [closed_ipv6_port()]), "www.nakedapex.v6-lab")
    assert "ipv6.web.unreachable" in ids(www)


@pytest.mark.network
def test_name_servers_with_ipv6(world: V6World) -> None:
    # Given dig: ns1.v6ns-lab has AAAA, ns1.v6-lab has none
    assert dig_aaaa(world, "ns1.v6ns-lab") == ["::1"]
    assert dig_aaaa(world, "ns1.v6-lab") == []
    # Then only v6-lab's domains are told their name servers lack IPv6
    assert ids(scan(settings(world, [world.listener.port]), "dual.v6ns-lab")) == set()
    found = scan(settings(world, [world.listener.port]), "v4only.v6-lab").findings
    ns = [f for f in found if f.check_id == "ipv6.ns.missing"]
    assert len(ns) == 1 and ns[0].evidence["nameservers"] == ["ns1.v6-lab"]


@pytest.mark.network
def test_ipv6_address_outside_scope_is_never_contacted(world: V6World) -> None:
    # Given a scope that does not allow ::1, and a listener of this test's own there (the
    # module's listener may still be accepting the previous tests' connections)
    with ipv6_listener() as own:
        result = scan(settings(world, [own.port], allow_ipv6=False), "reach.v6-lab")
        time.sleep(0.3)  # what reached the socket has been accepted by now
        # Then no connection reached the listener, and the scan says why it did not judge
        assert own.accepted == []
    assert "scan.out_of_scope" in ids(result) and not result.complete
    assert "ipv6.web.unreachable" not in ids(result)


def test_ipv6_lookup_failure_is_no_verdict() -> None:
    # Given a failed NS AAAA lookup: no ipv6.ns.missing, a scan problem instead
    from vigie.scanner.ipv6 import ns_findings

    failed = Lookup("ns1.example.ml.", "AAAA", Answer.TIMEOUT, detail="no answer")
    found = ns_findings("example.ml.", "example.ml", {"ns1.example.ml.": failed})
    assert [f.check_id for f in found] == ["scan.timeout"]
