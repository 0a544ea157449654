"""One SMTP dialogue with an MX address: greeting, EHLO, and whether STARTTLS is offered.

RFC 5321 §4.2 (replies, multi-line ``250-``), §4.1.1.1 (EHLO) and RFC 3207
§4 (the ``STARTTLS`` EHLO keyword). The dialogue ends with QUIT; the TLS
handshakes themselves are sslyze's (``vigie.scanner.tls``), after its own
EHLO and STARTTLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from dataclasses import dataclass

from vigie.errors import VigieError
from vigie.parsing import is_ascii_digits
from vigie.scanner.connection import close_quietly

# The scanner has no route for this address family: says nothing about the MX host.
NO_LOCAL_ROUTE = frozenset({errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})
MAX_REPLY_LINES = 64
MAX_LINE = 2048


@dataclass(frozen=True)
class SmtpDialogue:
    """What an MX address said (``error`` set when the dialogue could not be held)."""

    greeting: str = ""
    ehlo_code: int = 0
    keywords: tuple[str, ...] = ()  # EHLO extension keywords, upper case
    error: str = ""
    timed_out: bool = False
    no_route: bool = False  # this scanner cannot reach the address family (IPv6 without a route)

    @property
    def offers_starttls(self) -> bool:
        return "STARTTLS" in self.keywords


class SmtpFailure(VigieError):
    pass


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One (possibly multi-line) reply: its code and the text of each line (RFC 5321 §4.2.1)."""
    lines: list[str] = []
    for _ in range(MAX_REPLY_LINES):
        raw = await reader.readline()
        if not raw:
            raise SmtpFailure("the server closed the connection")
        line = raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r\n")
        if len(line) < 3 or not is_ascii_digits(line[:3]):
            raise SmtpFailure(f"not an SMTP reply: {line[:120]!r}")
        lines.append(line[4:])
        if len(line) == 3 or line[3] != "-":
            return int(line[:3]), lines
    raise SmtpFailure(f"reply longer than {MAX_REPLY_LINES} lines")


async def ehlo_dialogue(ip: str, port: int, helo_name: str, timeout_s: float) -> SmtpDialogue:
    """Connect, read the greeting, send EHLO, note the keywords, QUIT; within ``timeout_s``."""
    writer: asyncio.StreamWriter | None = None
    greeting = ""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(ip, port, limit=MAX_LINE * 4)
            code, lines = await _reply(reader)
            greeting = lines[0][:200] if lines else ""
            if code != 220:
                return SmtpDialogue(greeting, error=f"greeting {code}: {greeting}")
            writer.write(f"EHLO {helo_name}\r\n".encode("ascii"))
            await writer.drain()
            code, lines = await _reply(reader)
            keywords = tuple(line.split(" ", 1)[0].upper() for line in lines[1:] if line)
            with contextlib.suppress(OSError):
                writer.write(b"QUIT\r\n")
                await writer.drain()
            if code != 250:
                return SmtpDialogue(greeting, code, error=f"EHLO refused: {code} {lines[0][:200]}")
            return SmtpDialogue(greeting, code, keywords)
    except TimeoutError:
        return SmtpDialogue(
            greeting, error=f"no SMTP dialogue within {timeout_s:g}s", timed_out=True
        )
    except (OSError, SmtpFailure, asyncio.IncompleteReadError, ValueError) as exc:
        no_route = isinstance(exc, OSError) and exc.errno in NO_LOCAL_ROUTE
        return SmtpDialogue(greeting, error=f"{type(exc).__name__}: {exc}"[:300], no_route=no_route)
    finally:
        if writer is not None:
            await close_quietly(writer)
