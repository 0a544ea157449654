"""Test-wide safety: no test may open a connection outside 127.0.0.0/8 (or ::1).

Per-family fixtures start real servers on their own 127.x addresses; see
``tests/servers.py`` for helpers to start and stop them reliably.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = address[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise AssertionError(f"test tried to connect outside loopback: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise AssertionError(f"test tried to connect outside loopback: {address!r}")
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    address = args[-1]
    if not _is_local(address):
        raise AssertionError(f"test tried to send outside loopback: {address!r}")
    return _real_sendto(self, data, *args)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", _guarded_sendto)
    yield


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No test reads the developer's configuration, proxies or certificates."""
    import os

    for name in list(os.environ):
        if name.startswith("VIGIE_") or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
            "ssl_cert_file",
            "requests_ca_bundle",
        ):
            monkeypatch.delenv(name, raising=False)
    # Relative defaults such as ./vigie.db land in the test's own folder.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _fresh_rate_budgets() -> None:
    """Each test starts with full rate budgets, as a new process would."""
    from vigie.scanner.probe_context import process_budget

    process_budget.cache_clear()


pytest_plugins = ["tests.postgres"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Run a database test against both supported engines, each a real server or file."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/vigie.db"
    from tests.postgres import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))
