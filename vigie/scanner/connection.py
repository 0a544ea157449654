"""Bounded exchanges with untrusted servers: every connection goes through the
probe context (scope guard, per-host cap, sweep rate), every read has a byte
cap and a deadline, and a host that keeps failing is given up on.

A server may accept and never answer, drip its banner a byte at a time or
send an endless one: none of that may hold a probe longer than its timeout or
make it keep more than a few kilobytes.

Scanner-wide: the port stage, the engine (whether a host was given up on)
and the service family's probes all connect through ``open_stream`` and share
one ``host_health`` per address for the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

from vigie.errors import ProbeError, ProbeTimeout
from vigie.scanner.probe_context import ProbeContext

# What a probe keeps of any answer, and what evidence shows of it.
MAX_REPLY_BYTES = 16_384
EVIDENCE_CHARS = 512
# After the first bytes of a banner arrive, wait this long for the rest of it.
BANNER_SETTLE_S = 0.3
# Per-host state kept for the sweep, least recently used first out.
MAX_TRACKED_HOSTS = 4096


class NotTls(ProbeError):
    """The port refused or broke off a TLS handshake: it does not speak TLS."""


class HostGaveUp(ProbeTimeout):
    """The host failed too many probes in a row: it is not probed any further."""


@dataclass
class HostHealth:
    """Consecutive probe failures on one host, for the sweep's back-off."""

    limit: int
    consecutive_failures: int = 0

    @property
    def given_up(self) -> bool:
        return self.consecutive_failures >= self.limit

    def failed(self) -> None:
        self.consecutive_failures += 1

    def answered(self) -> None:
        self.consecutive_failures = 0


K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def values(self) -> list[V]:
        return list(self._items.values())

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def host_health(ctx: ProbeContext, ip: str) -> HostHealth:
    """The back-off state of ``ip`` for this sweep (shared by every probe of the host)."""
    table = ctx.shared.get("connection.health")
    if not isinstance(table, BoundedCache):
        table = BoundedCache[str, HostHealth](MAX_TRACKED_HOSTS)
        ctx.shared["connection.health"] = table
    health = table.get(ip)
    if health is None:
        health = HostHealth(limit=ctx.settings.scan.backoff_after_failures)
        table.put(ip, health)
    return health


def lenient_tls_context() -> ssl.SSLContext:
    """A new client context that completes a handshake with anything, old or misconfigured.

    It only tells whether a port speaks TLS and carries the probes and the
    HTTP family's requests; judging the TLS configuration (certificates,
    versions, suites) is the TLS family's work. A new one each call, for a
    user that configures it further (httpcore sets ALPN on its own).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


@cache
def probe_tls_context() -> ssl.SSLContext:
    """The one lenient context of the raw probes (port stage, service probes): never altered."""
    return lenient_tls_context()


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close a connection, waiting at most a second for the peer; errors are moot by now."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


def printable(data: bytes | str, limit: int = EVIDENCE_CHARS) -> str:
    """Untrusted bytes as short, safe text for evidence: controls escaped, truncated."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    out: list[str] = []
    for char in text:
        if char in "\r\n\t" or (char.isprintable() and char != "\x7f"):
            out.append(char)
        else:
            out.append(f"\\x{ord(char):02x}" if ord(char) < 256 else "?")
    joined = "".join(out)
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


class Stream:
    """One TCP (or TLS) connection to a probed port, with bounded reads."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        health: HostHealth,
        timeout_s: float,
        where: str,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._health = health
        self.timeout_s = timeout_s
        self.where = where

    @property
    def tls_version(self) -> str | None:
        ssl_object = self._writer.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object is not None else None

    async def send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            async with asyncio.timeout(self.timeout_s):
                await self._writer.drain()
        except TimeoutError:
            self._health.failed()
            raise ProbeTimeout(f"{self.where}: could not send within {self.timeout_s:g}s") from None
        except OSError as exc:
            raise ProbeError(f"{self.where}: send failed: {type(exc).__name__}: {exc}") from None

    async def banner(self, wait_s: float, max_bytes: int = 4096) -> bytes:
        """What the server says unprompted within ``wait_s`` (b"" if nothing): no failure."""
        data = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while len(data) < max_bytes:
            remaining = deadline - loop.time()
            if data:
                remaining = min(remaining, BANNER_SETTLE_S)
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    chunk = await self._reader.read(max_bytes - len(data))
            except TimeoutError:
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        if data:
            self._health.answered()
        return bytes(data)

    async def read_until(
        self,
        complete: Callable[[bytes], bool],
        max_bytes: int = MAX_REPLY_BYTES,
        *,
        accept_partial: bool = False,
    ) -> bytes:
        """Read until ``complete(data)``, the end of the stream or ``max_bytes``.

        Raises ProbeTimeout when the server goes quiet before any of these,
        unless ``accept_partial`` and something arrived.
        """
        data = bytearray()
        try:
            async with asyncio.timeout(self.timeout_s):
                while len(data) < max_bytes and not complete(bytes(data)):
                    chunk = await self._reader.read(max_bytes - len(data))
                    if not chunk:
                        break
                    data += chunk
        except TimeoutError:
            if data and accept_partial:
                self._health.answered()
                return bytes(data)
            self._health.failed()
            shown = f" after {printable(bytes(data), 80)!r}" if data else ""
            raise ProbeTimeout(
                f"{self.where}: no complete answer within {self.timeout_s:g}s{shown}"
            ) from None
        except OSError as exc:
            if data:
                return bytes(data)
            raise ProbeError(f"{self.where}: read failed: {type(exc).__name__}: {exc}") from None
        if data:
            self._health.answered()
        return bytes(data)

    async def read_exactly(self, count: int) -> bytes:
        """Exactly ``count`` bytes (at most MAX_REPLY_BYTES), else ProbeError/ProbeTimeout."""
        if count > MAX_REPLY_BYTES:
            raise ProbeError(f"{self.where}: announced {count} bytes, more than a probe reads")
        data = await self.read_until(lambda got: len(got) >= count, max_bytes=count)
        if len(data) < count:
            raise ProbeError(f"{self.where}: connection closed after {len(data)} of {count} bytes")
        return data

    async def line(self, max_bytes: int = 4096) -> bytes:
        """One line (up to and including LF), or what came before the stream ended."""
        return await self.read_until(lambda got: b"\n" in got, max_bytes)


@contextlib.asynccontextmanager
async def open_stream(
    ctx: ProbeContext,
    ip: str,
    port: int,
    *,
    tls: bool = False,
    timeout_s: float | None = None,
) -> AsyncIterator[Stream]:
    """Connect to ``ip:port`` inside the host's connection slot; close on exit.

    Raises HostGaveUp without connecting once the host has failed too often,
    ProbeTimeout when the connection or TLS handshake does not complete in
    time, ProbeError when it is refused or the handshake fails.
    """
    timeout = timeout_s if timeout_s is not None else ctx.settings.scan.probe_timeout_s
    health = host_health(ctx, ip)
    where = f"{ip}:{port}{'/tls' if tls else ''}"
    if health.given_up:
        raise HostGaveUp(
            f"{where}: not probed, the host failed {health.consecutive_failures} probes in a row"
        )
    async with ctx.connection(ip):
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(ip, port, limit=MAX_REPLY_BYTES)
        except TimeoutError:
            health.failed()
            raise ProbeTimeout(f"{where}: no connection within {timeout:g}s") from None
        except OSError as exc:
            health.failed()
            raise ProbeError(f"{where}: connection failed: {type(exc).__name__}: {exc}") from None
        try:
            if tls:
                await _start_tls(writer, health, timeout, where)
            yield Stream(reader, writer, health, timeout, where)
        finally:
            await close_quietly(writer)


async def _start_tls(
    writer: asyncio.StreamWriter, health: HostHealth, timeout: float, where: str
) -> None:
    """Upgrade the connection; a refused handshake is an answer (not TLS), silence a failure."""
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(probe_tls_context())
    except TimeoutError:
        health.failed()
        raise ProbeTimeout(f"{where}: no TLS handshake within {timeout:g}s") from None
    except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
        raise NotTls(f"{where}: TLS handshake failed: {type(exc).__name__}: {exc}") from None


async def cancel_pending(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Stop probes still running for waiters that gave up (the sweep is ending)."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
