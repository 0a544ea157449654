"""Bounded decompression of response bodies: a decompression bomb stops at the limit.

A generic decoder inflates a whole input chunk at once: 64 KiB of gzip can
expand to 64 MiB in a single call. Here every call to zlib is capped at the
room left, so memory never exceeds the configured body size, whatever the
server sends.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from vigie.errors import VigieError

# Content codings decoded here; the others leave the body unread.
GZIP_WBITS = 16 + zlib.MAX_WBITS
ZLIB_WBITS = zlib.MAX_WBITS
RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
SUPPORTED_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})


class BodyDecodeError(VigieError):
    """The body cannot be decoded (unsupported coding or corrupt stream)."""


def content_codings(header_values: Sequence[str]) -> list[str]:
    """The codings of ``Content-Encoding`` values, in the order applied, without identity."""
    codings = []
    for value in header_values:
        for part in value.split(","):
            coding = part.strip().lower()
            if coding and coding != "identity":
                codings.append(coding)
    return codings


class BoundedDecoder:
    """Feed raw body chunks; keep at most ``limit`` decoded bytes.

    ``full`` turns True once the limit is reached: the caller stops reading.
    One compression layer is supported (gzip, several gzip members, deflate
    with or without the zlib wrapper): anything else raises BodyDecodeError.
    """

    def __init__(self, codings: Sequence[str], limit: int) -> None:
        if len(codings) > 1 or any(c not in SUPPORTED_CODINGS for c in codings):
            raise BodyDecodeError(f"unsupported content-encoding: {', '.join(codings)[:100]}")
        self._coding = codings[0] if codings else ""
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._inflater: zlib._Decompress | None = None
        self._ended = False  # trailing garbage after a complete stream: ignored

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def full(self) -> bool:
        return self._size >= self._limit

    @property
    def body(self) -> bytes:
        return b"".join(self._parts)

    def feed(self, raw: bytes) -> None:
        if self.full or self._ended or not raw:
            return
        if not self._coding:
            self._keep(raw[: self._limit - self._size])
            return
        self._inflate(raw)

    def _keep(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self._size += len(data)

    def _new_inflater(self, raw: bytes) -> zlib._Decompress:
        if self._coding in ("gzip", "x-gzip"):
            return zlib.decompressobj(GZIP_WBITS)
        # "deflate" is meant to carry the zlib wrapper; some servers send raw deflate.
        wrapped = len(raw) >= 2 and (raw[0] & 0x0F) == 8 and ((raw[0] << 8) | raw[1]) % 31 == 0
        return zlib.decompressobj(ZLIB_WBITS if wrapped else RAW_DEFLATE_WBITS)

    def _inflate(self, raw: bytes) -> None:
        pending = raw
        try:
            while pending and not self.full:
                if self._inflater is None:
                    self._inflater = self._new_inflater(pending)
                inflater = self._inflater
                # max_length bounds the output of this one call: the bomb defence.
                self._keep(inflater.decompress(pending, self._limit - self._size))
                if inflater.unconsumed_tail:
                    pending = inflater.unconsumed_tail
                elif inflater.eof and self._coding != "deflate":
                    # Another gzip member may follow (RFC 1952 allows several).
                    pending = inflater.unused_data
                    self._inflater = None
                else:
                    pending = b""
        except zlib.error as exc:
            if self._size == 0:
                raise BodyDecodeError(f"corrupt {self._coding} body: {exc}") from None
            # Browsers keep what decoded before the garbage; so do we.
            self._ended = True
