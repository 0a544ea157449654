"""The HTTP client of a sweep: the only module of vigie that imports httpx and httpcore.

Requests name the domain in the URL (so ``Host`` and TLS SNI are the
domain's) while the packets go to the address under test, never to what the
system resolver says. That pinning is a network backend per address: one
httpcore pool per address, behind one ``httpx.AsyncClient`` for the whole
sweep. Pooling per address keeps each connection bound to one (address, SNI)
pair: two domains on one server never share a TLS session, and one domain on
two addresses never mixes them. A pool lives while some host scan leases its
address, so a long sweep does not accumulate idle connections.

Safety: TLS is not verified (the TLS family judges certificates), redirects
are never followed here (the caller follows them hop by hop, through the
scope guard), bodies are read through :class:`BoundedDecoder`, header blocks
are bounded (h11 refuses more than 100 KiB, h2 more than 64 KiB; anything
larger than ``http.max_header_bytes`` is refused here), and every exchange
runs under connect/read timeouts plus an overall ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy

import h2.exceptions
import httpcore
import httpx

from vigie.config import HttpSettings
from vigie.errors import ProbeError, ProbeTimeout
from vigie.scanner.base import ProbeContext
from vigie.scanner.http._decode import BodyDecodeError, BoundedDecoder, content_codings
from vigie.scanner.http._model import HttpObservation
from vigie.scanner.scope import ScopeGuard

SHARED_KEY = "http"
# Request extension carrying the address a request must be sent to.
PIN_EXTENSION = "vigie.address"
ACCEPT_ENCODING = "gzip, deflate"  # the codings BoundedDecoder can bound
KEEPALIVE_EXPIRY_S = 5.0


def _lenient_tls_context() -> ssl.SSLContext:
    """Talk TLS to anything, old servers included: certificates are another family's job."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with suppress(ValueError, ssl.SSLError):
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Open every TCP connection to one address, whatever host name the URL carries."""

    def __init__(self, address: str, scope: ScopeGuard) -> None:
        self._address = address
        self._scope = scope
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # The last line of defence: no packet to an address the scope refuses.
        self._scope.require(self._address)
        return await self._inner.connect_tcp(
            self._address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("UNIX sockets are never probed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CoreStream(httpx.AsyncByteStream):
    """An httpcore response body as the byte stream httpx expects."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


@dataclass
class _Lease:
    pool: httpcore.AsyncConnectionPool
    holders: int = 0


class PinnedTransport(httpx.AsyncBaseTransport):
    """Routes each request to the connection pool of the address it is pinned to."""

    def __init__(self, connections: int, scope: ScopeGuard) -> None:
        self._connections = connections
        self._scope = scope
        self._tls = _lenient_tls_context()
        self._leases: dict[str, _Lease] = {}

    def _new_pool(self, address: str) -> httpcore.AsyncConnectionPool:
        return httpcore.AsyncConnectionPool(
            ssl_context=self._tls,
            max_connections=self._connections,
            max_keepalive_connections=self._connections,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
            http1=True,
            http2=True,
            retries=0,
            network_backend=_PinnedBackend(address, self._scope),
        )

    @asynccontextmanager
    async def lease(self, address: str) -> AsyncIterator[None]:
        """Keep ``address``'s pool (and its idle connections) open inside the block."""
        lease = self._leases.get(address)
        if lease is None:
            lease = _Lease(self._new_pool(address))
            self._leases[address] = lease
        lease.holders += 1
        try:
            yield
        finally:
            lease.holders -= 1
            if lease.holders == 0 and self._leases.get(address) is lease:
                del self._leases[address]
                await lease.pool.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = request.extensions.get(PIN_EXTENSION)
        lease = self._leases.get(address) if isinstance(address, str) else None
        if lease is None:
            raise httpcore.UnsupportedProtocol("request not pinned to a leased address")
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        core_response = await lease.pool.handle_async_request(core_request)
        assert isinstance(core_response.stream, AsyncIterable)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_CoreStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        leases, self._leases = list(self._leases.values()), {}
        for lease in leases:
            await lease.pool.aclose()


def _refusing_jar() -> CookieJar:
    """A cookie jar that keeps nothing: a scan never replays one site's cookies."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


@contextmanager
def _probe_errors(what: str) -> Iterator[None]:
    """Map the client libraries' errors to vigie's: ProbeTimeout or ProbeError."""
    try:
        yield
    except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
        raise ProbeTimeout(f"{what}: {type(exc).__name__} {exc}".strip()) from None
    except (httpx.HTTPError, httpcore.ConnectionNotAvailable, httpcore.ProxyError) as exc:
        raise ProbeError(f"{what}: {type(exc).__name__} {exc}".strip()) from None
    except (
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
        # httpcore re-raises some of h2's own errors as they are (a hostile HTTP/2 peer).
        h2.exceptions.H2Error,
        OSError,
    ) as exc:
        raise ProbeError(f"{what}: {type(exc).__name__} {exc}".strip()) from None


@dataclass(frozen=True)
class FetchRequest:
    """One request to send: where, to which address, and how much of the body to keep."""

    url: str
    address: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body_limit: int | None = None  # None: http.max_body_bytes


class HttpClient:
    """The sweep's client: ``fetch`` one request, pinned and bounded."""

    def __init__(self, settings: HttpSettings, connections: int, scope: ScopeGuard) -> None:
        self.settings = settings
        self.transport = PinnedTransport(connections, scope)
        timeout = httpx.Timeout(
            connect=settings.connect_timeout_s,
            read=settings.read_timeout_s,
            write=settings.read_timeout_s,
            pool=settings.total_timeout_s,
        )
        self._client = httpx.AsyncClient(
            transport=self.transport,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            cookies=_refusing_jar(),
            headers={
                "User-Agent": settings.user_agent,
                "Accept": "*/*",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
        )
        self.loop = asyncio.get_running_loop()

    def pinned(self, address: str) -> AbstractAsyncContextManager[None]:
        """Keep connections to ``address`` open for several requests."""
        return self.transport.lease(address)

    async def aclose(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            return  # its connections belonged to an event loop that is gone
        await self._client.aclose()

    async def fetch(self, ctx: ProbeContext, request: FetchRequest) -> HttpObservation:
        """Send ``request`` and read a bounded response.

        ProbeTimeout / ProbeError when no complete header block came back. A
        body that stops arriving before ``http.total_timeout_s`` is kept as far
        as it came, with ``stalled`` set: the headers are still worth judging.
        """
        what = f"{request.method} {request.url}"
        total = self.settings.total_timeout_s
        async with self.transport.lease(request.address), ctx.connection(request.address):
            deadline = asyncio.get_running_loop().time() + total
            try:
                async with asyncio.timeout_at(deadline):
                    with _probe_errors(what):
                        response = await self._send(request)
            except TimeoutError:
                raise ProbeTimeout(f"{what}: no response headers within {total:g}s") from None
            try:
                return await self._observe(request, response, deadline)
            finally:
                # Closing a half-read response drops its connection: it never waits.
                with suppress(httpx.HTTPError, httpcore.NetworkError, OSError):
                    await response.aclose()

    async def _send(self, request: FetchRequest) -> httpx.Response:
        outgoing = self._client.build_request(
            request.method,
            request.url,
            headers=dict(request.headers),
            extensions={PIN_EXTENSION: request.address},
        )
        return await self._client.send(outgoing, stream=True)

    async def _observe(
        self, request: FetchRequest, response: httpx.Response, deadline: float
    ) -> HttpObservation:
        what = f"{request.method} {request.url}"
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in response.headers.raw
        )
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > self.settings.max_header_bytes:
            raise ProbeError(
                f"{what}: response headers are {header_bytes} bytes, "
                f"more than http.max_header_bytes ({self.settings.max_header_bytes})"
            )
        limit = request.body_limit or self.settings.max_body_bytes
        note, truncated, stalled = "", False, False
        try:
            decoder = BoundedDecoder(
                content_codings(response.headers.get_list("content-encoding")), limit
            )
        except BodyDecodeError as exc:
            decoder, note = BoundedDecoder([], 0), str(exc)
        if not note:
            try:
                async with asyncio.timeout_at(deadline):
                    with _probe_errors(what):
                        truncated = await _read_body(response, decoder, limit)
            except TimeoutError:
                note, stalled = f"body incomplete after {self.settings.total_timeout_s:g}s", True
            except ProbeTimeout as exc:
                note, stalled = str(exc), True
            except ProbeError as exc:
                note = f"body cut short: {exc}"
            except BodyDecodeError as exc:
                note = str(exc)
        return HttpObservation(
            method=request.method,
            url=str(response.request.url),
            status=response.status_code,
            headers=headers,
            body=decoder.body,
            truncated=truncated,
            body_note=note,
            stalled=stalled,
            chain=(),
            http_version=response.http_version,
        )


async def _read_body(response: httpx.Response, decoder: BoundedDecoder, limit: int) -> bool:
    """Feed the raw body to ``decoder``; True when cut at the limit (decoded or raw)."""
    received = 0
    async for raw in response.aiter_raw():
        received += len(raw)
        decoder.feed(raw)
        if decoder.full or received >= limit:
            return True
        if decoder.ended:
            break
    return False


def http_client(ctx: ProbeContext) -> HttpClient:
    """The sweep's client, created on first use and closed with the sweep."""
    client = ctx.shared.get(SHARED_KEY)
    loop = asyncio.get_running_loop()
    # A context reused across event loops (one asyncio.run per job) gets a fresh client.
    if not isinstance(client, HttpClient) or client.loop is not loop:
        client = HttpClient(ctx.settings.http, ctx.settings.scan.connections_per_host, ctx.scope)
        ctx.shared[SHARED_KEY] = client
        ctx.closers.append(client.aclose)
    return client
