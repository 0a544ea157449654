"""A Redis look-alike that answers without authentication, as a forgotten cache does.

It speaks enough RESP (the Redis protocol) for a client or a scanner to see
what a real unprotected Redis would show: ``PING`` answers ``PONG``, ``INFO``
describes the server, ``DBSIZE`` counts keys, ``AUTH`` says no password is
set. It stores nothing and executes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

REDIS_VERSION = "6.0.16"
MAX_LINE_BYTES = 65_536
MAX_ARGUMENTS = 64
IDLE_TIMEOUT_S = 10.0
FAKE_KEY_COUNT = 1274

_STARTED = time.monotonic()


def _bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _error(text: str) -> bytes:
    return f"-{text}\r\n".encode()


def info_text(port: int) -> str:
    """What ``INFO`` returns: the sections a Redis 6.0 on Debian shows first."""
    uptime = int(time.monotonic() - _STARTED)
    lines = [
        "# Server",
        f"redis_version:{REDIS_VERSION}",
        "redis_git_sha1:00000000",
        "redis_mode:standalone",
        "os:Linux 5.10.0-28-amd64 x86_64",
        "arch_bits:64",
        "process_id:731",
        f"tcp_port:{port}",
        f"uptime_in_seconds:{uptime}",
        "",
        "# Clients",
        "connected_clients:1",
        "",
        "# Memory",
        "used_memory:1069824",
        "used_memory_human:1.02M",
        "",
        "# Persistence",
        "rdb_last_save_time:1767225600",
        "",
        "# Keyspace",
        f"db0:keys={FAKE_KEY_COUNT},expires=0,avg_ttl=0",
        "",
    ]
    return "\r\n".join(lines)


def hello(arguments: list[str]) -> bytes:
    """``HELLO [2|3] [AUTH user pass]``: the handshake of RESP3-aware clients (Redis 6)."""
    version = arguments[0] if arguments else "2"
    if version not in ("2", "3"):
        return _error("NOPROTO unsupported protocol version")
    fields: list[tuple[str, bytes]] = [
        ("server", _bulk("redis")),
        ("version", _bulk(REDIS_VERSION)),
        ("proto", b":%s\r\n" % version.encode()),
        ("id", b":7\r\n"),
        ("mode", _bulk("standalone")),
        ("role", _bulk("master")),
        ("modules", b"*0\r\n"),
    ]
    header = b"%%%d\r\n" % len(fields) if version == "3" else b"*%d\r\n" % (2 * len(fields))
    return header + b"".join(_bulk(key) + value for key, value in fields)


def reply_to(command: list[str], port: int) -> tuple[bytes, bool]:
    """(reply, keep the connection open) for one command."""
    if not command:
        return b"", True
    name = command[0].upper()
    if name == "PING":
        return (_bulk(command[1]) if len(command) > 1 else b"+PONG\r\n"), True
    if name == "INFO":
        return _bulk(info_text(port)), True
    if name == "HELLO":
        return hello(command[1:]), True
    if name == "DBSIZE":
        return b":%d\r\n" % FAKE_KEY_COUNT, True
    if name == "AUTH":
        return _error(
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?"
        ), True
    if name in ("CLIENT", "SELECT"):
        return b"+OK\r\n", True
    if name == "QUIT":
        return b"+OK\r\n", False
    if name in ("POST", "HOST:"):
        # Real Redis closes on what looks like HTTP: a cross-protocol attack guard.
        return b"", False
    arguments = " ".join(f"'{a[:32]}'" for a in command[1:4])
    return _error(
        f"ERR unknown command '{command[0][:32]}', with args beginning with: {arguments}"
    ), True


async def _read_command(reader: asyncio.StreamReader) -> list[str] | None:
    """One command, either a RESP array of bulk strings or an inline line."""
    line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.decode("latin-1").split()
    count = int(line[1:].strip() or b"0")
    if not 0 <= count <= MAX_ARGUMENTS:
        return None
    arguments = []
    for _ in range(count):
        header = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT_S)
        if not header.startswith(b"$"):
            return None
        size = int(header[1:].strip())
        if not 0 <= size <= MAX_LINE_BYTES:
            return None
        data = await asyncio.wait_for(reader.readexactly(size + 2), IDLE_TIMEOUT_S)
        arguments.append(data[:-2].decode("latin-1"))
    return arguments


async def serve_redis(
    port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer RESP commands until QUIT, garbage, silence or the client leaving."""
    try:
        while True:
            command = await _read_command(reader)
            if command is None:
                return
            reply, keep_open = reply_to(command, port)
            if reply:
                writer.write(reply)
                await writer.drain()
            if not keep_open:
                return
    except (
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        TimeoutError,
        ValueError,
        ConnectionError,
        OSError,
    ):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2.0)
