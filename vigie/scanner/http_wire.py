"""One HTTP/1.1 exchange over a bounded stream, for fingerprinting services that
speak HTTP (Elasticsearch, CouchDB, WinRM) and for the port stage's sniffing
of plain HTTP. Web checks proper belong to the HTTP family (httpx); this
reads one small response and nothing more.

The wire format is h11's (RFC 9112), not a hand-written reader: the request is
serialised by h11 and the response parsed by it, so framing (Content-Length of
ASCII digits only, RFC 9110 §8.6; chunked coding, RFC 9112 §7.1; a body that
ends with the connection, RFC 9112 §6.3) follows the standard. A response h11
refuses is not HTTP for the purpose of fingerprinting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import h11

from vigie.scanner.connection import Stream

MAX_RESPONSE_BYTES = 65_536
USER_AGENT = "vigie/0.1 (CERT exposure scan)"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, last wins
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8", errors="replace"))
        except ValueError:
            return None


def _request_event(method: str, host: str, path: str, extra: dict[str, str] | None) -> h11.Request:
    headers = {
        "Host": host,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Connection": "close",
        **(extra or {}),
    }
    return h11.Request(method=method, target=path, headers=list(headers.items()))


def build_request(
    method: str, host: str, path: str = "/", extra: dict[str, str] | None = None
) -> bytes:
    """The request's bytes as h11 serialises them (RFC 9112 §3)."""
    client = h11.Connection(h11.CLIENT)
    data = client.send(_request_event(method, host, path, extra))
    ended = client.send(h11.EndOfMessage())
    return (data or b"") + (ended or b"")


@dataclass
class _Parsed:
    response: h11.Response | None = None
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False  # the whole message arrived (or h11 refused it: stop reading)
    refused: bool = False


def _parse(data: bytes, method: str = "GET", *, closed: bool = False) -> _Parsed:
    """Feed ``data`` to an h11 client that sent ``method``; what came out of it.

    ``closed``: the connection ended after ``data`` (a body delimited by the
    close is then complete).
    """
    parsed = _Parsed()
    if not data and not closed:
        return parsed  # h11 reads b"" as the end of the stream: nothing arrived yet
    client = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_BYTES)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "vigie")]))
    client.send(h11.EndOfMessage())
    try:
        if data:
            client.receive_data(data)
        if closed:
            client.receive_data(b"")
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                parsed.response = event
            elif isinstance(event, h11.Data):
                parsed.body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                parsed.complete = True
                return parsed
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                return parsed
            # InformationalResponse (1xx): the final response follows.
    except h11.RemoteProtocolError:
        parsed.complete = parsed.refused = True
        return parsed


def parse_response(data: bytes, method: str = "GET") -> HttpResponse | None:
    """An HTTP response from raw bytes (possibly truncated), or None if h11 finds none.

    A body cut short is kept as far as it came; a response whose head h11
    refuses (bad status line, bad Content-Length, ...) is None.
    """
    parsed = _parse(data, method)
    if parsed.response is None:
        return None
    response = parsed.response
    headers: dict[str, str] = {}
    for name, value in response.headers:
        headers[name.decode("latin-1")] = value.decode("latin-1")
    return HttpResponse(
        response.status_code, response.reason.decode("latin-1"), headers, bytes(parsed.body)
    )


def response_complete(data: bytes) -> bool:
    """Stop reading once h11 has the whole message, or refuses it, or it is not HTTP."""
    if not b"HTTP/".startswith(data[:5]):
        return True
    return _parse(data).complete


async def http_exchange(
    stream: Stream, method: str, host: str, path: str = "/", extra: dict[str, str] | None = None
) -> tuple[bytes, HttpResponse | None]:
    """Send one request; the raw answer (bounded) and its parse (None if not HTTP)."""
    await stream.send(build_request(method, host, path, extra))
    raw = await stream.read_until(response_complete, MAX_RESPONSE_BYTES, accept_partial=True)
    return raw, parse_response(raw, method)
