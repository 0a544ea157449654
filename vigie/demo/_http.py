"""A small HTTP/1.1 server for the demo's web applications (plain or over TLS).

Enough of HTTP/1.1 for a scanner and a browser: request line and headers
(bounded), a request body read and dropped, keep-alive, HEAD, TRACE when the
site allows it. What a site answers is data (:class:`Site`), so each demo
application is a value, not a subclass.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

MAX_HEADER_BYTES = 32_768
MAX_BODY_BYTES = 1_048_576
IDLE_TIMEOUT_S = 10.0
MAX_REQUESTS_PER_CONNECTION = 200
ALLOWED_METHODS = ("GET", "HEAD", "POST", "OPTIONS")


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names; the last one wins
    raw_head: bytes  # what TRACE echoes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0].split("#", 1)[0] or "/"

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Page:
    """A fixed resource: its body, type and any headers of its own."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Site:
    """What one web application serves on one port.

    ``redirect_to_https`` answers every request with a 301 to the same path on
    ``https://<host>``. ``headers`` go on every response; ``pages`` map exact
    paths; everything else is a 404 page. ``reflect_cors`` echoes any Origin
    with credentials allowed (the classic permissive CORS mistake).
    """

    host: str
    headers: tuple[tuple[str, str], ...] = ()
    pages: dict[str, Page] = field(default_factory=dict)
    redirect_to_https: bool = False
    trace_enabled: bool = False
    reflect_cors: bool = False
    not_found: Page = Page(b"<!doctype html><title>404</title><h1>Page introuvable</h1>\n")


def respond(site: Site, request: Request) -> Response:
    """The site's answer to one request."""
    if site.redirect_to_https:
        location = f"https://{site.host}{request.target if request.target.startswith('/') else '/'}"
        return Response(
            HTTPStatus.MOVED_PERMANENTLY,
            b"<!doctype html><title>301</title><p>Moved</p>\n",
            headers=(("Location", location), *site.headers),
        )
    if request.method == "TRACE":
        if site.trace_enabled:
            return Response(HTTPStatus.OK, request.raw_head, "message/http", site.headers)
        return Response(
            HTTPStatus.METHOD_NOT_ALLOWED,
            b"<!doctype html><title>405</title>\n",
            headers=(("Allow", ", ".join(ALLOWED_METHODS)), *site.headers),
        )
    if request.method not in ALLOWED_METHODS:
        return Response(HTTPStatus.METHOD_NOT_ALLOWED, b"", headers=site.headers)
    extra = _cors_headers(site, request)
    page = site.pages.get(request.path)
    if page is None:
        return Response(HTTPStatus.NOT_FOUND, site.not_found.body, headers=site.headers + extra)
    return Response(
        HTTPStatus.OK, page.body, page.content_type, site.headers + page.headers + extra
    )


def _cors_headers(site: Site, request: Request) -> tuple[tuple[str, str], ...]:
    origin = request.headers.get("origin")
    if not (site.reflect_cors and origin):
        return ()
    return (
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    )


def _encode(response: Response, method: str, keep_alive: bool) -> bytes:
    reason = HTTPStatus(response.status).phrase
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if method == "HEAD" else head + response.body


def _parse_head(raw: bytes) -> Request | None:
    try:
        text = raw.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers[name.strip().lower()] = value.strip()
    return Request(method.upper(), target, version, headers, raw)


async def _drop_body(reader: asyncio.StreamReader, request: Request) -> bool:
    """Read and discard the request body; False when it cannot be framed."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return False  # nobody sends chunked bodies to these pages: just close afterwards
    try:
        length = int(request.headers.get("content-length", "0"))
    except ValueError:
        return False
    if length < 0 or length > MAX_BODY_BYTES:
        return False
    if length:
        await reader.readexactly(length)
    return True


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
    return _parse_head(raw[:-4])


def connection_handler(
    site: Site,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """An ``asyncio.start_server`` callback serving ``site``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                request = await _read_request(reader)
                if request is None:
                    writer.write(_encode(Response(HTTPStatus.BAD_REQUEST), "GET", False))
                    await writer.drain()
                    return
                framed = await _drop_body(reader, request)
                keep_alive = request.keep_alive and framed
                writer.write(_encode(respond(site, request), request.method, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            OSError,
        ):
            return  # the client went away, stalled or sent too much: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    return handle
