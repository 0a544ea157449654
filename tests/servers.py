"""Helpers to run real servers for tests: start, wait until they listen, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

# The /24 the shared test servers (tests/lab.py, tests/postgres.py, the Celery broker)
# bind: 127.0.7 unless TEST_LOOPBACK_NET names another, so that several checkouts can
# run their tests side by side on one machine.
TEST_NET = os.environ.get("TEST_LOOPBACK_NET", "127.0.7")


def require_program(name: str) -> str:
    """The path of ``name``; fail (not skip) when setup did not install it."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if path is None:
        pytest.fail(f"{name} is not installed: run 'bash scripts/setup.sh --test'")
    return path


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s}s")


def wait_for_udp_dns(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Wait until a DNS server answers a query on UDP."""
    query = bytes.fromhex("abcd01000001000000000000") + b"\x00\x00\x02\x00\x01"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            try:
                sock.sendto(query, (host, port))
                sock.recvfrom(512)
                return
            except OSError:
                time.sleep(0.05)
    raise TimeoutError(f"no DNS answer from {host}:{port} after {timeout_s}s")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    *,
    listen: tuple[str, int] | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 15.0,
    user: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` in its own process group until the block ends; wait for ``listen``."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        list(argv),
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        user=user,
    )
    try:
        if listen is not None:
            try:
                wait_for_port(*listen, timeout_s=timeout_s)
            except TimeoutError:
                detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
                raise TimeoutError(f"{argv[0]} did not start: {detail}") from None
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if out is not subprocess.DEVNULL:
            out.close()
