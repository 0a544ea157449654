"""A minimal HTTP/1.1 exchange over a bounded stream, for fingerprinting services
that speak HTTP (Elasticsearch, CouchDB, WinRM). Web checks proper belong to
the HTTP family; this reads one small response and nothing more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vigie.scanner.service._wire import Stream

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


def build_request(
    method: str, host: str, path: str = "/", extra: dict[str, str] | None = None
) -> bytes:
    headers = {
        "Host": host,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Connection": "close",
        **(extra or {}),
    }
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("ascii")


def _head_complete(data: bytes) -> bool:
    return b"\r\n\r\n" in data or b"\n\n" in data


def parse_response(data: bytes) -> HttpResponse | None:
    """An HTTP response from raw bytes (possibly truncated), or None if it is not one."""
    if not data.startswith(b"HTTP/"):
        return None
    separator = b"\r\n\r\n" if b"\r\n\r\n" in data else b"\n\n"
    head, _, body = data.partition(separator)
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return HttpResponse(int(parts[1]), parts[2] if len(parts) > 2 else "", headers, body)


def _dechunk(body: bytes) -> bytes:
    """Join the chunks that arrived; a truncated last chunk is kept as it is."""
    out = bytearray()
    rest = body
    while rest:
        size_line, newline, rest = rest.partition(b"\r\n")
        if not newline:
            break
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        rest = rest[size + 2 :]
    return bytes(out)


def _response_complete(data: bytes) -> bool:
    """Stop reading once the announced body is in (servers may ignore Connection: close)."""
    if not _head_complete(data):
        return False
    response = parse_response(data)
    if response is None:
        return True
    length = response.header("content-length")
    if length.isdigit():
        return len(response.body) >= int(length)
    if "chunked" in response.header("transfer-encoding").lower():
        return data.endswith(b"0\r\n\r\n")
    return False


async def http_exchange(
    stream: Stream, method: str, host: str, path: str = "/", extra: dict[str, str] | None = None
) -> tuple[bytes, HttpResponse | None]:
    """Send one request; the raw answer (bounded) and its parse (None if not HTTP)."""
    await stream.send(build_request(method, host, path, extra))
    raw = await stream.read_until(_response_complete, MAX_RESPONSE_BYTES, accept_partial=True)
    return raw, parse_response(raw)
