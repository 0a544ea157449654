"""Handshake messages fragmented over several TLS records, for sslyze's raw probes.

sslyze's Heartbleed, CCS-injection and ROBOT probes read the server's flight
with ``tls_parser``, which parses each record on its own. A handshake message
may be split over several records (RFC 5246 §6.2.1, RFC 8446 §5.1: "handshake
messages MAY be fragmented across several TLSPlaintext records"), and is as
soon as it exceeds 16 KiB: a certificate list of about 30 kB (badssl.com's
1000-sans) made the three probes fail on the continuation record ("... is not
a valid TlsHandshakeTypeByte"), so the family was incomplete on a sound server.

:func:`install` makes ``TlsRecordParser.parse_bytes`` read consecutive
handshake records as one until their messages end on a record boundary, and
return them as one record. A flight whose messages fit their records is read
exactly as before; anything else (alerts, other record types) goes to the
original parser. Check IDs: none.
"""

from __future__ import annotations

from collections.abc import Callable

from tls_parser.exceptions import NotEnoughData
from tls_parser.handshake_protocol import (
    TlsHandshakeMessage,
    TlsHandshakeRecord,
    TlsHandshakeTypeByte,
)
from tls_parser.parser import TlsRecordParser
from tls_parser.record_protocol import TlsRecord, TlsRecordHeader, TlsRecordTypeByte

_HANDSHAKE_HEADER = 4  # msg_type (1) and length (3), RFC 5246 §7.4

Parser = Callable[[bytes], tuple[TlsRecord, int]]


def _whole_messages(payload: bytes) -> list[TlsHandshakeMessage] | None:
    """The handshake messages of ``payload``; None when the last one is cut short."""
    messages, position = [], 0
    while position < len(payload):
        if len(payload) - position < _HANDSHAKE_HEADER:
            return None
        length = int.from_bytes(payload[position + 1 : position + _HANDSHAKE_HEADER], "big")
        end = position + _HANDSHAKE_HEADER + length
        if end > len(payload):
            return None
        kind = TlsHandshakeTypeByte(payload[position])  # ValueError, as tls_parser's own
        messages.append(TlsHandshakeMessage(kind, payload[position + _HANDSHAKE_HEADER : end]))
        position = end
    return messages


def reassembling(original: Parser) -> Parser:
    """``original`` (tls_parser's record parser), reading fragmented handshake messages whole."""

    def parse_bytes(raw_bytes: bytes) -> tuple[TlsRecord, int]:
        first, _ = TlsRecordHeader.from_bytes(raw_bytes)  # NotEnoughData when short
        if first.type != TlsRecordTypeByte.HANDSHAKE:
            return original(raw_bytes)
        payload, offset = b"", 0
        while True:
            header, header_length = TlsRecordHeader.from_bytes(raw_bytes[offset:])
            if header.type != TlsRecordTypeByte.HANDSHAKE:
                return original(raw_bytes)  # a message cut by another record type
            end = offset + header_length + header.length
            if len(raw_bytes) < end:
                raise NotEnoughData()
            payload += raw_bytes[offset + header_length : end]
            offset = end
            messages = _whole_messages(payload)
            if messages is not None:
                merged = TlsRecordHeader(first.type, first.tls_version, len(payload))
                return TlsHandshakeRecord(merged, messages), offset

    return parse_bytes


def install() -> None:
    """Replace ``TlsRecordParser.parse_bytes`` once (sslyze's probes call it by that name)."""
    current = TlsRecordParser.parse_bytes
    if getattr(current, "_vigie_reassembling", False):
        return
    patched = reassembling(current)
    patched._vigie_reassembling = True  # type: ignore[attr-defined]
    patched.__wrapped__ = current  # type: ignore[attr-defined]
    TlsRecordParser.parse_bytes = staticmethod(patched)  # type: ignore[method-assign,assignment]
