"""Connection faults make findings or log lines, never tracebacks: a host whose every
connection is reset (at once, after the client's first bytes, after a banner) is swept
by the real command, whose output must stay clean."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import free_port, start_zone_server
from tests.lab import Lab, Tripwire, prepare_lab_database, write_registry
from tests.servers import TEST_NET

DNS = f"{TEST_NET}.153"
RESETTING = tuple(f"{TEST_NET}.{host}" for host in range(90, 96))
PORTS = (25, 80, 443, 465, 587, 993, 995, 6379, 8443)
ZONE = "reset.gouv.example"
NOISE = ("Traceback", "RuntimeError", "Exception in callback", "Task exception", "Error on")


def _reset(connection: socket.socket, rng: random.Random) -> None:
    """Reset the connection (RST, not FIN): at once, after a read, or after a banner."""
    mode = rng.choice(("now", "after_read", "after_banner"))
    with contextlib.suppress(OSError):
        if mode == "after_read":
            connection.settimeout(2)
            connection.recv(16)
        elif mode == "after_banner":
            connection.sendall(rng.choice((b"220 ready\r\n", b"HTTP/1.1 200 OK\r\n")))
            time.sleep(rng.random() * 0.2)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


@contextlib.contextmanager
def resetting_hosts() -> Iterator[None]:
    selector = selectors.DefaultSelector()
    listeners = []
    for address in RESETTING:
        for port in PORTS:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(128)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            listeners.append(sock)
    stop = threading.Event()
    rng = random.Random(18)

    def serve() -> None:
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    connection, _ = listener.accept()
                    threading.Thread(target=_reset, args=(connection, rng), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
        for sock in listeners:
            sock.close()


@pytest.mark.network
@pytest.mark.slow
def test_hosts_that_reset_every_connection_leave_no_traceback(tmp_path: Path) -> None:
    # Given names for six hosts that reset every connection on mail, web, TLS and Redis ports
    zone = (
        f"$ORIGIN {ZONE}.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
        f"@ IN NS ns1\nns1 IN A {DNS}\n@ IN A {RESETTING[0]}\n"
        + "".join(f"h{index} IN A {ip}\n" for index, ip in enumerate(RESETTING))
    )
    domains = (ZONE, *(f"h{index}.{ZONE}" for index in range(len(RESETTING))))
    port = free_port([DNS])
    with resetting_hosts(), start_zone_server(tmp_path, DNS, port, {ZONE: zone}) as server:
        lab = Lab(server.resolver, Tripwire(), write_registry(tmp_path, domains))
        text = "\n".join(
            [
                "[database]", f'url = "sqlite:///{tmp_path}/vigie.db"',
                "[scope]", f'allow = ["{TEST_NET}.0/24"]',
                "[dns]", f'resolvers = ["{server.resolver}"]', "timeout_s = 2", "lifetime_s = 4",
                "[scan]", f"ports = [{', '.join(map(str, PORTS))}]", "host_deadline_s = 15",
                "probe_timeout_s = 2", "concurrency = 8", "",
            ]
        )  # fmt: skip
        config = prepare_lab_database(lab, tmp_path / "vigie.toml", text)
        # When the real command sweeps them, twice (the fault is a race: not every run)
        for _ in range(2):
            swept = subprocess.run(
                [sys.executable, "-m", "vigie", "--config", str(config), "scan", "--all"],
                capture_output=True,
                text=True,
                timeout=240,
            )
            # Then it completes, and nothing but its own report reaches the output
            assert swept.returncode == 0, swept.stderr
            for noise in NOISE:
                assert noise not in swept.stderr + swept.stdout, swept.stderr
            assert "completed" in swept.stdout


@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
def test_a_closed_transport_met_outside_a_probe_is_a_debug_line(
    event_loop: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vigie import event_loop as vigie_loop
    from vigie.config import Settings

    # Given the loop a sweep runs on, and a callback failing as uvloop's TLS setup fails
    # when the peer reset the connection before it ran (its own words)
    settings = Settings.model_validate({"scan": {"event_loop": event_loop}})

    def connection_made() -> None:
        raise RuntimeError(
            "unable to perform operation on <TCPTransport closed=True reading=False "
            "0x5626>; the handler is closed"
        )

    def vigie_bug() -> None:
        raise KeyError("a bug of vigie's")

    async def sweep() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(connection_made)
        loop.call_soon(functools.partial(os.strerror, 0))
        loop.call_soon(vigie_bug)
        await asyncio.sleep(0.05)

    # When it runs (vigie's loggers propagate even after a command configured them)
    monkeypatch.setattr(logging.getLogger("vigie"), "propagate", True)
    with caplog.at_level("DEBUG", logger="vigie"), caplog.at_level("DEBUG"):
        vigie_loop.run(sweep(), settings)
    # Then the connection fault is a debug line, and vigie's own bug is still shown
    faults = [r for r in caplog.records if r.name == "vigie.event_loop"]
    assert faults and {r.levelname for r in faults} == {"DEBUG"}
    assert all("connection_made" in r.getMessage() for r in faults)
    shown = [r for r in caplog.records if r.name == "asyncio" and r.levelname == "ERROR"]
    assert shown and all("KeyError" in str(r.exc_info) for r in shown)
    assert "handler is closed" not in capsys.readouterr().err
