"""The little BSON that a MongoDB handshake and ``listDatabases`` need.

Encoding covers the command documents vigie sends; decoding reads the
replies of an untrusted server defensively: every length is checked against
the buffer, nesting is bounded, and anything malformed raises ValueError.
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 16

# Fixed-size element types: type byte -> size of the value in bytes.
_FIXED_SIZES = {0x07: 12, 0x09: 8, 0x11: 8, 0x13: 16, 0x0A: 0, 0x06: 0, 0x7F: 0, 0xFF: 0}


def encode(document: dict[str, Any]) -> bytes:
    """A command document: str keys; int, float, bool, str, dict, list or None values."""
    body = b"".join(_encode_element(key, value) for key, value in document.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _encode_element(key: str, value: Any) -> bytes:
    name = key.encode() + b"\x00"
    if isinstance(value, bool):
        return b"\x08" + name + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"\x10" + name + struct.pack("<i", value)
        return b"\x12" + name + struct.pack("<q", value)
    if isinstance(value, float):
        return b"\x01" + name + struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode() + b"\x00"
        return b"\x02" + name + struct.pack("<i", len(data)) + data
    if isinstance(value, dict):
        return b"\x03" + name + encode(value)
    if isinstance(value, list):
        return b"\x04" + name + encode({str(i): item for i, item in enumerate(value)})
    if value is None:
        return b"\x0a" + name
    raise TypeError(f"cannot encode {type(value).__name__} in BSON")


def decode(data: bytes) -> dict[str, Any]:
    """One BSON document that fills ``data`` exactly (ValueError otherwise)."""
    try:
        return _decode_document(data, 0)
    except struct.error as exc:
        raise ValueError(f"truncated BSON: {exc}") from None


def _decode_document(data: bytes, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ValueError("BSON nested too deeply")
    if len(data) < 5:
        raise ValueError("BSON document shorter than its header")
    (length,) = struct.unpack_from("<i", data)
    if length != len(data) or data[-1] != 0:
        raise ValueError(f"BSON length {length} does not match {len(data)} bytes")
    document: dict[str, Any] = {}
    offset = 4
    end = length - 1
    while offset < end:
        kind = data[offset]
        name_end = data.index(b"\x00", offset + 1, end)
        key = data[offset + 1 : name_end].decode("utf-8", errors="replace")
        value, offset = _decode_value(kind, data, name_end + 1, end, depth)
        document[key] = value
    return document


def _decode_value(kind: int, data: bytes, offset: int, end: int, depth: int) -> tuple[Any, int]:
    if kind in (0x02, 0x0D, 0x0E):  # string, JavaScript code, symbol
        (size,) = struct.unpack_from("<i", data, offset)
        _check(offset + 4 + size, end, size >= 1)
        return data[offset + 4 : offset + 3 + size].decode(
            "utf-8", errors="replace"
        ), offset + 4 + size
    if kind in (0x03, 0x04):  # document, array
        (size,) = struct.unpack_from("<i", data, offset)
        _check(offset + size, end, size >= 5)
        inner = _decode_document(data[offset : offset + size], depth + 1)
        return (inner if kind == 0x03 else list(inner.values())), offset + size
    if kind == 0x01:
        _check(offset + 8, end)
        return struct.unpack_from("<d", data, offset)[0], offset + 8
    if kind == 0x08:
        _check(offset + 1, end)
        return data[offset] != 0, offset + 1
    if kind == 0x10:
        _check(offset + 4, end)
        return struct.unpack_from("<i", data, offset)[0], offset + 4
    if kind == 0x12:
        _check(offset + 8, end)
        return struct.unpack_from("<q", data, offset)[0], offset + 8
    if kind == 0x05:  # binary: length, subtype, bytes (kept as a length only)
        (size,) = struct.unpack_from("<i", data, offset)
        _check(offset + 5 + size, end, size >= 0)
        return f"<binary {size} bytes>", offset + 5 + size
    if kind == 0x0B:  # regular expression: two C strings
        first = data.index(b"\x00", offset, end)
        second = data.index(b"\x00", first + 1, end)
        return "<regex>", second + 1
    if kind in _FIXED_SIZES:
        size = _FIXED_SIZES[kind]
        _check(offset + size, end)
        return (None if size == 0 else data[offset : offset + size].hex()), offset + size
    raise ValueError(f"unsupported BSON element type 0x{kind:02x}")


def _check(stop: int, end: int, sane: bool = True) -> None:
    if not sane or stop > end:
        raise ValueError("BSON element runs past its document")
