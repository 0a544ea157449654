"""Start and stop the demonstration network: every listener in one background event loop.

:class:`DemoNetwork` owns one thread running one asyncio loop that holds the
DNS server (UDP and TCP), the web applications (HTTP and HTTPS) and the
Redis look-alike. ``stop()`` closes every listening socket and every open
connection and joins the thread, so that nothing is left listening; it is
safe to call twice and after a failed start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import shutil
import socket
import ssl
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigie.demo._dns import Authority, DnsDatagramProtocol, serve_dns_stream
from vigie.demo._http import MAX_HEADER_BYTES, connection_handler
from vigie.demo._pki import Authority as CertificateAuthority
from vigie.demo._pki import IssuedFiles, issue_leaf, make_authority, write_leaf
from vigie.demo._redis import serve_redis
from vigie.demo._world import NAMESERVER, DemoApplication, DemoWorld, PortPlan, TlsProfile
from vigie.errors import VigieError

log = logging.getLogger("vigie.demo")

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
TLS_HANDSHAKE_TIMEOUT_S = 10.0

StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class DemoError(VigieError):
    """The demonstration network could not start (address in use, no loopback range...)."""


def choose_ports(probe_address: str) -> PortPlan:
    """Standard ports when this process may bind them (root), high ports otherwise.

    Raises :class:`DemoError` when the demo's addresses are taken (another
    demo running) or unusable, before anything is written or started.
    """
    try:
        _probe_bind(probe_address, PortPlan().http)
    except PermissionError:
        plan = PortPlan.unprivileged()
        _probe_bind(probe_address, plan.http)
        return plan
    return PortPlan()


def _probe_bind(address: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except PermissionError:
            raise
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise DemoError(
                    f"cannot use the loopback address {address}: this system does not route "
                    "127.0.0.0/8 to the loopback interface (Linux does)"
                ) from None
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"{address}:{port} is already in use: is another 'vigie demo' running?"
                ) from None
            raise


def require_nmap() -> None:
    """The port stage needs nmap; say how to get it before anything starts."""
    if shutil.which("nmap") is None:
        raise DemoError("nmap is required for the port scan: run 'bash scripts/setup.sh' (as root)")


@dataclass(frozen=True)
class Pki:
    """The demo CA (its PEM file is what vigie trusts) and each application's certificate."""

    ca_file: Path
    leaves: dict[str, IssuedFiles]  # by domain


def make_pki(world: DemoWorld, directory: Path) -> Pki:
    """Generate the demo CA and a certificate of the right kind for each HTTPS application."""
    authority: CertificateAuthority = make_authority()
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "demo-ca.pem"
    ca_file.write_bytes(authority.pem())
    leaves = {}
    for app in world.applications:
        if app.tls is None:
            continue
        key, certificate = issue_leaf(
            authority,
            [app.domain, f"www.{app.domain}"],
            app.address,
            app.tls.certificate,
            rsa_key=app.tls.rsa_key,
        )
        leaves[app.domain] = write_leaf(directory, app.domain, key, certificate)
    return Pki(ca_file, leaves)


def legacy_protocols_available() -> bool:
    """Whether this OpenSSL can still be made to serve TLS 1.0."""
    return bool(getattr(ssl, "HAS_TLSv1", False))


def server_context(profile: TlsProfile, files: IssuedFiles) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` configured as the profile says, however outdated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLS 1.0 is deprecated: serving it is the point of the legacy application.
        warnings.simplefilter("ignore", DeprecationWarning)
        minimum = profile.minimum
        if minimum < ssl.TLSVersion.TLSv1_2 and not legacy_protocols_available():
            minimum = ssl.TLSVersion.TLSv1_2
        context.minimum_version = minimum
        context.maximum_version = profile.maximum
    context.set_ciphers(profile.ciphers)
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(files.certificate, files.key)
    return context


class DemoNetwork:
    """The demo's servers, running in a background thread until :meth:`stop`."""

    def __init__(self, world: DemoWorld, pki: Pki) -> None:
        self.world = world
        self.pki = pki
        self.authority = Authority.from_specs(world.zones, NAMESERVER)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._datagrams: list[asyncio.BaseTransport] = []
        self._writers: set[asyncio.StreamWriter] = set()

    # --- lifecycle (called from the main thread) ---

    def start(self) -> None:
        """Open every listener; raise :class:`DemoError` (with nothing left open) on failure."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_exception_handler)
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="vigie-demo-network", daemon=True
        )
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open_all(), loop).result(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every listener and connection, then end the thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._close_all(), loop)
            with contextlib.suppress(Exception):
                future.result(STOP_TIMEOUT_S)
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        if not loop.is_running():
            loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> DemoNetwork:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(loop.shutdown_asyncgens())

    # --- inside the loop ---

    async def _open_all(self) -> None:
        ports = self.world.ports
        address = self.world.dns_address
        with _bind_errors(address, ports.dns):
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: DnsDatagramProtocol(self.authority), local_addr=(address, ports.dns)
            )
        self._datagrams.append(transport)
        await self._listen(address, ports.dns, functools.partial(serve_dns_stream, self.authority))
        for app in self.world.applications:
            await self._open_application(app, ports)

    async def _open_application(self, app: DemoApplication, ports: PortPlan) -> None:
        if app.http_site is not None:
            await self._listen(app.address, ports.http, connection_handler(app.http_site))
        if app.https_site is not None and app.tls is not None:
            context = server_context(app.tls, self.pki.leaves[app.domain])
            await self._listen(
                app.address, ports.https, connection_handler(app.https_site), context
            )
        if app.redis:
            await self._listen(
                app.address, ports.redis, functools.partial(serve_redis, ports.redis)
            )

    async def _listen(
        self, address: str, port: int, handler: StreamHandler, context: ssl.SSLContext | None = None
    ) -> None:
        tracked = self._tracking(handler)
        options: dict[str, Any] = {"limit": MAX_HEADER_BYTES, "reuse_address": True}
        if context is not None:
            options |= {"ssl": context, "ssl_handshake_timeout": TLS_HANDSHAKE_TIMEOUT_S}
        with _bind_errors(address, port):
            server = await asyncio.start_server(tracked, address, port, **options)
        self._servers.append(server)

    def _tracking(self, handler: StreamHandler) -> StreamHandler:
        """Remember open connections, so that stop() can close them too."""

        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            try:
                await handler(reader, writer)
            finally:
                self._writers.discard(writer)

        return tracked

    async def _close_all(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._datagrams:
            transport.close()
        for writer in list(self._writers):
            writer.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()
        self._datagrams.clear()


@contextlib.contextmanager
def _bind_errors(address: str, port: int) -> Iterator[None]:
    """Turn a failed bind into a DemoError that says what to do."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"{address}:{port} is already in use: is another 'vigie demo' running?"
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise DemoError(f"not allowed to listen on {address}:{port} (run as root)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise DemoError(f"cannot use the loopback address {address} on this system") from None
        raise


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Scanners send broken handshakes and drop connections on purpose: that is
    # their job, not an error of the demo. Keep it for -vv only.
    log.debug("demo network: %s", context.get("message"), exc_info=context.get("exception"))
