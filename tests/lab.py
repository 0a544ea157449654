"""A small lab of real servers for whole-sweep tests (embedded and distributed).

Addresses 127.0.7.0/25 are in scope; 127.0.6.1 is a tripwire outside scope
that records every connection it receives. Names resolve through a real Knot
DNS server.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.dns_server import free_port, start_zone_server
from tests.servers import TEST_NET, require_program, running

ZONE = "lab.gouv.example"
DNS_ADDRESS = f"{TEST_NET}.53"
REDIS_ADDRESS = f"{TEST_NET}.10"
WEB_ADDRESS = f"{TEST_NET}.11"
DEAD_ADDRESS = f"{TEST_NET}.12"
SLOW_ADDRESSES = tuple(f"{TEST_NET}.{host}" for host in (20, 21, 22, 23))
# In scope: the lower half of the /24; the tripwire sits outside it.
SCOPE = f"{TEST_NET}.0/25"
TRIPWIRE_ADDRESS = "127.0.6.1" if TEST_NET == "127.0.7" else f"{TEST_NET}.201"
LAB_PORTS = (80, 6379, 2222)

ZONE_TEXT = f"""$ORIGIN {ZONE}.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 300
@       IN NS  ns1
ns1     IN A   {DNS_ADDRESS}
@       IN A   {WEB_ADDRESS}
@       IN MX  10 mail
@       IN TXT "v=spf1 +all"
_dmarc  IN TXT "v=DMARC1; p=none"
cache   IN A   {REDIS_ADDRESS}
old     IN A   {DEAD_ADDRESS}
outside IN A   {TRIPWIRE_ADDRESS}
""" + "".join(f"slow{index} IN A {address}\n" for index, address in enumerate(SLOW_ADDRESSES))

LAB_DOMAINS = (
    ZONE,
    f"cache.{ZONE}",
    f"old.{ZONE}",
    f"outside.{ZONE}",
)
SLOW_DOMAINS = tuple(f"slow{index}.{ZONE}" for index in range(len(SLOW_ADDRESSES)))


@dataclass
class Tripwire:
    """Listens outside scope on the lab's ports; any connection is a scope violation."""

    connections: list[tuple[str, int]] = field(default_factory=list)


class _Silent:
    """Accepts connections on the lab ports and never answers: each costs its deadline."""

    def __init__(self, addresses: tuple[str, ...], ports: tuple[int, ...]) -> None:
        self.sockets: list[socket.socket] = []
        self.accepted: list[socket.socket] = []
        for address in addresses:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
                self.sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    connection, _peer = listener.accept()
                    self.accepted.append(connection)
        selector.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for sock in self.sockets + self.accepted:
            sock.close()


@contextlib.contextmanager
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    listeners = []
    for port in LAB_PORTS:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((TRIPWIRE_ADDRESS, port))
        sock.listen(16)
        sock.settimeout(0.1)
        listeners.append(sock)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for sock in listeners:
                with contextlib.suppress(TimeoutError, OSError):
                    connection, peer = sock.accept()
                    wire.connections.append((peer[0], sock.getsockname()[1]))
                    connection.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield wire
    finally:
        stop.set()
        thread.join(timeout=2)
        for sock in listeners:
            sock.close()


@dataclass(frozen=True)
class Lab:
    resolver: str
    tripwire: Tripwire
    registry: Path

    def config_text(self, database_url: str) -> str:
        lines = [
            "[database]",
            f'url = "{database_url}"',
            "[scope]",
            f'allow = ["{SCOPE}"]',
            "[dns]",
            f'resolvers = ["{self.resolver}"]',
            "timeout_s = 2",
            "lifetime_s = 4",
            "[scan]",
            f"ports = [{', '.join(str(p) for p in LAB_PORTS)}]",
            "host_deadline_s = 20",
            "probe_timeout_s = 2",
            "concurrency = 8",
        ]
        return "\n".join(lines) + "\n"


def write_registry(folder: Path, domains: tuple[str, ...]) -> Path:
    path = folder / "lab-registry.csv"
    rows = ["agency,agency_code,agency_email,domain,mail_domain"]
    for domain in domains:
        rows.append(
            f"Agence du Laboratoire,LAB,rssi@lab.gouv.example,{domain},{'yes' if domain == ZONE else 'no'}"
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def running_lab(
    folder: Path, domains: tuple[str, ...] = LAB_DOMAINS, slow: bool = False
) -> Iterator[Lab]:
    """DNS, an open Redis, a tiny web server, and a tripwire outside scope."""
    redis_server = require_program("redis-server")
    port = free_port([DNS_ADDRESS])
    redis_argv = [
        redis_server, "--bind", REDIS_ADDRESS, "--port", "6379", "--protected-mode", "no",
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]  # fmt: skip
    web_argv = [
        sys.executable, "-m", "http.server", "80", "--bind", WEB_ADDRESS, "--directory", str(folder),
    ]  # fmt: skip
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            start_zone_server(folder, DNS_ADDRESS, port, {ZONE: ZONE_TEXT})
        )
        stack.enter_context(running(redis_argv, listen=(REDIS_ADDRESS, 6379)))
        stack.enter_context(running(web_argv, listen=(WEB_ADDRESS, 80)))
        wire = stack.enter_context(tripwire())
        if slow:
            silent = _Silent(SLOW_ADDRESSES, LAB_PORTS)
            stack.callback(silent.close)
        yield Lab(resolver=server.resolver, tripwire=wire, registry=write_registry(folder, domains))


def prepare_lab_database(lab: Lab, config: Path, text: str) -> Path:
    """Write ``text`` as the configuration ``config``, then init and import the lab's registry."""
    from click.testing import CliRunner

    from vigie.cli import main
    from vigie.db.session import dispose_engines

    config.write_text(text, encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "init"]).exit_code == 0
    imported = runner.invoke(
        main, ["--config", str(config), "targets", "import", str(lab.registry)]
    )
    assert imported.exit_code == 0, imported.output
    dispose_engines()
    return config
