"""The HTTP client of a sweep: with ``_transport``, the only modules of vigie that import
httpx and httpcore.

Requests name the domain in the URL (so ``Host`` and TLS SNI are the
domain's) while the packets go to the address under test, never to what the
system resolver says. That pinning is a network backend per address
(``_transport.PinnedBackend``): one httpcore pool per address. Pooling per
address keeps each connection bound to one (address, SNI) pair: two domains
on one server never share a TLS session, and one domain on two addresses
never mixes them. A pool lives while some host scan leases its address, so a
long sweep does not accumulate idle connections. httpx parses the URLs; the
exchanges go straight to httpcore: httpx's client layer (cookies, auth,
redirects, its own models) cost a sixth of the family's CPU for nothing a
scan needs (it never keeps cookies and follows redirects itself).

Safety: TLS is not verified (the TLS family judges certificates), redirects
are never followed here (the caller follows them hop by hop, through the
scope guard), bodies are read through :class:`BoundedDecoder`, header blocks
are bounded (h11 refuses more than 100 KiB, h2 more than 64 KiB; anything
larger than ``http.max_header_bytes`` is refused here), and every exchange
runs under connect/read timeouts plus an overall ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field

import h2.exceptions
import httpcore
import httpx

from vigie.config import HttpSettings
from vigie.errors import ProbeError, ProbeTimeout
from vigie.scanner.connection import lenient_tls_context
from vigie.scanner.http._decode import BodyDecodeError, BoundedDecoder, content_codings
from vigie.scanner.http._model import HttpObservation
from vigie.scanner.http._transport import PinnedBackend
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.scope import ScopeGuard

SHARED_KEY = "http"
ACCEPT_ENCODING = "gzip, deflate"  # the codings BoundedDecoder can bound
KEEPALIVE_EXPIRY_S = 5.0


@dataclass
class _Lease:
    pool: httpcore.AsyncConnectionPool
    holders: int = 0


class AddressPools:
    """One httpcore connection pool per address under test, open while a scan leases it."""

    def __init__(self, connections: int, scope: ScopeGuard) -> None:
        self._connections = connections
        self._scope = scope
        self._tls = lenient_tls_context()  # its own: httpcore sets ALPN on it
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
            network_backend=PinnedBackend(address, self._scope),
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

    def pool(self, address: str) -> httpcore.AsyncConnectionPool:
        lease = self._leases.get(address)
        if lease is None:
            raise httpcore.UnsupportedProtocol(f"no leased connection pool for {address}")
        return lease.pool

    async def aclose(self) -> None:
        leases, self._leases = list(self._leases.values()), {}
        for lease in leases:
            await lease.pool.aclose()


@contextmanager
def _probe_errors(what: str) -> Iterator[None]:
    """Map the client libraries' errors to vigie's: ProbeTimeout or ProbeError."""
    try:
        yield
    except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
        raise ProbeTimeout(f"{what}: {type(exc).__name__} {exc}".strip()) from None
    except (
        httpx.HTTPError,
        httpx.InvalidURL,
        httpcore.ConnectionNotAvailable,
        httpcore.ProxyError,
    ) as exc:
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
        self.pools = AddressPools(connections, scope)
        self._timeouts = {
            "connect": settings.connect_timeout_s,
            "read": settings.read_timeout_s,
            "write": settings.read_timeout_s,
            "pool": settings.total_timeout_s,
        }
        self._default_headers = {
            "user-agent": ("User-Agent", settings.user_agent),
            "accept": ("Accept", "*/*"),
            "accept-encoding": ("Accept-Encoding", ACCEPT_ENCODING),
        }
        self.loop = asyncio.get_running_loop()

    def pinned(self, address: str) -> AbstractAsyncContextManager[None]:
        """Keep connections to ``address`` open for several requests."""
        return self.pools.lease(address)

    async def aclose(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            return  # its connections belonged to an event loop that is gone
        await self.pools.aclose()

    async def fetch(self, ctx: ProbeContext, request: FetchRequest) -> HttpObservation:
        """Send ``request`` and read a bounded response.

        ProbeTimeout / ProbeError when no complete header block came back. A
        body that stops arriving before ``http.total_timeout_s`` is kept as far
        as it came, with ``stalled`` set: the headers are still worth judging.
        """
        what = f"{request.method} {request.url}"
        total = self.settings.total_timeout_s
        async with self.pools.lease(request.address), ctx.connection(request.address):
            deadline = asyncio.get_running_loop().time() + total
            try:
                async with asyncio.timeout_at(deadline):
                    with _probe_errors(what):
                        url, response = await self._send(request)
            except TimeoutError:
                raise ProbeTimeout(f"{what}: no response headers within {total:g}s") from None
            try:
                return await self._observe(request, url, response, deadline)
            finally:
                # Closing a half-read response drops its connection: it never waits.
                with suppress(httpcore.NetworkError, httpcore.ProtocolError, OSError):
                    await response.aclose()

    def _headers(self, url: httpx.URL, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
        """Host first, then the client's headers, each replaced by the request's own."""
        merged = dict(self._default_headers)
        merged.update((name.lower(), (name, value)) for name, value in extra.items())
        headers = [(b"Host", url.netloc)]
        headers += [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in merged.values()
        ]
        return headers

    async def _send(self, request: FetchRequest) -> tuple[httpx.URL, httpcore.Response]:
        # httpx parses and normalises the URL as it would send it; the exchange itself
        # goes straight to the address's httpcore pool (no cookies, no redirects).
        url = httpx.URL(request.url)
        outgoing = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=self._headers(url, request.headers),
            extensions={"timeout": self._timeouts},
        )
        return url, await self.pools.pool(request.address).handle_async_request(outgoing)

    async def _observe(
        self, request: FetchRequest, url: httpx.URL, response: httpcore.Response, deadline: float
    ) -> HttpObservation:
        what = f"{request.method} {request.url}"
        headers = tuple(
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in response.headers
        )
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > self.settings.max_header_bytes:
            raise ProbeError(
                f"{what}: response headers are {header_bytes} bytes, "
                f"more than http.max_header_bytes ({self.settings.max_header_bytes})"
            )
        limit = request.body_limit or self.settings.max_body_bytes
        note, truncated, stalled = "", False, False
        encodings = [value for name, value in headers if name.lower() == "content-encoding"]
        try:
            decoder = BoundedDecoder(content_codings(encodings), limit)
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
        version = response.extensions.get("http_version", b"HTTP/1.1")
        return HttpObservation(
            method=request.method,
            url=str(url),
            status=response.status,
            headers=headers,
            body=decoder.body,
            truncated=truncated,
            body_note=note,
            stalled=stalled,
            chain=(),
            http_version=version.decode("ascii", "replace"),
        )


async def _read_body(response: httpcore.Response, decoder: BoundedDecoder, limit: int) -> bool:
    """Feed the raw body to ``decoder``; True when cut at the limit (decoded or raw)."""
    received = 0
    assert isinstance(response.stream, AsyncIterable)
    async for raw in response.stream:
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
