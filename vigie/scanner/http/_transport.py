"""httpcore's network layer on plain asyncio, each connection pinned to one address.

httpcore ships an anyio backend; under a sweep's load its per-call
bookkeeping (cancel scopes on every read and write, the socket attributes
rebuilt on every idle-connection check) cost about a fifth of the HTTP
family's CPU. This backend speaks to the event loop directly: one
``asyncio.Protocol`` per connection, a buffer with flow control, and TLS
through ``loop.start_tls``. It works on asyncio's loop and on uvloop.

Every connection goes to the address the backend was made for, whatever host
name the URL carries (``Host`` and SNI stay the domain's), after one more
scope check: the last line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable
from typing import Any, cast

import httpcore

from vigie.scanner.scope import ScopeGuard

# Past this much unread data the socket stops being read until the reader catches up.
READ_HIGH_WATER = 256 * 1024
# A closed TLS connection waits this long for the server's close_notify (asyncio's
# default, 30 s, would keep a silent server's sockets open long after the scan).
TLS_SHUTDOWN_TIMEOUT_S = 2.0


class _StreamProtocol(asyncio.Protocol):
    """Buffers what a connection receives; wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio's classes: no isinstance here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_readable(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) <= READ_HIGH_WATER // 2:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            await self._drained


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP connection (TLS once ``start_tls`` ran) as httpcore wants it."""

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                async with asyncio.timeout(timeout):
                    while not protocol.buffer and not protocol.eof:
                        await protocol.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout:g}s") from None
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the peer closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await self._protocol.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"write not drained within {timeout:g}s") from None
        if self._protocol.error is not None:
            raise httpcore.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport,
                    self._protocol,
                    ssl_context,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeout,
                    ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT_S,
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout:g}s") from None
        except (OSError, ssl.SSLError, ConnectionError, EOFError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(f"{type(exc).__name__}: {exc}") from None
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        tls_transport = cast(asyncio.Transport, transport)
        self._protocol.transport = tls_transport
        return AsyncioStream(tls_transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # What the event loop already received: an idle keep-alive connection with
            # data or an end of stream waiting is not to be reused.
            return bool(self._protocol.buffer) or self._protocol.eof
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Open every TCP connection to one address, whatever host name the URL carries."""

    def __init__(self, address: str, scope: ScopeGuard) -> None:
        self._address = address
        self._scope = scope

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._scope.require(self._address)
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _StreamProtocol, self._address, port, local_addr=local
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout:g}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"{type(exc).__name__}: {exc}") from None
        raw = transport.get_extra_info("socket")
        if raw is not None:
            with contextlib.suppress(OSError):
                for option in socket_options or ():
                    raw.setsockopt(*option)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return AsyncioStream(cast(asyncio.Transport, transport), protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("UNIX sockets are never probed")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
