"""Mail access protocols in clear text: POP3, IMAP and SMTP without STARTTLS.

A port that speaks implicit TLS (995, 993, 465) is not clear text. Each probe
reads the greeting, asks for the capabilities and leaves (QUIT / LOGOUT).

Check IDs: ``service.cleartext_mail``, ``service.version_disclosed``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.connection import Stream, open_stream, printable
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service._common import CLEARTEXT_MAIL, port_finding
from vigie.scanner.service._remote import banner_version, reply_code, reply_complete

EHLO_NAME = "vigie.invalid"
SMTP_SUBMISSION_PORTS = frozenset({587, 2525})


@dataclass(frozen=True)
class MailSession:
    """What a mail server said: its greeting and the capabilities it listed."""

    protocol: str  # "SMTP", "POP3", "IMAP"
    greeting: str
    capabilities: tuple[str, ...] = ()
    starttls_word: str = "STARTTLS"  # POP3 calls it STLS

    @property
    def offers_starttls(self) -> bool:
        # Keywords compare ASCII case-insensitively ("ſtarttls".upper() is "STARTTLS")
        return any(
            cap.split()[0].isascii() and cap.split()[0].upper() == self.starttls_word
            for cap in self.capabilities
            if cap.split()
        )


def mail_findings(target: HostTarget, port: int, session: MailSession, tls: bool) -> list[Finding]:
    """Clear-text access without STARTTLS, and a version in the greeting.

    RFC 3207 (SMTP STARTTLS), RFC 2595 §3.1 (IMAP STARTTLS) and §4 (POP3
    STLS): without them, credentials and mail cross in clear; RFC 8314 §3
    and §4 prefer implicit TLS (465, 993, 995), which is not judged here.
    """
    findings: list[Finding] = []
    if not tls and not session.offers_starttls:
        findings.append(
            port_finding(
                target,
                CLEARTEXT_MAIL,
                port,
                {
                    "port": port,
                    "protocol": session.protocol,
                    "role": _role(session.protocol, port),
                    "greeting": printable(session.greeting, 200),
                    "capabilities": [printable(c, 80) for c in session.capabilities[:30]],
                },
            )
        )
    return findings + banner_version(
        target, port, session.greeting.splitlines()[0] if session.greeting else ""
    )


def _role(protocol: str, port: int) -> str:
    if protocol != "SMTP":
        return "mailbox access"
    return "submission" if port in SMTP_SUBMISSION_PORTS else "mail transfer"


# --- SMTP ---------------------------------------------------------------------------


def ehlo_extensions(reply: str) -> tuple[str, ...]:
    """The extension keywords of a 250 EHLO reply (the first line is the greeting).

    RFC 5321 §4.1.1.1: ``250-domain`` then one ``250-keyword params`` line per
    extension; RFC 3207 §4: STARTTLS is the keyword ``STARTTLS``.
    """
    lines = [line[4:].strip() for line in reply.splitlines() if line[:3] == "250"]
    return tuple(lines[1:])


async def _smtp_command(stream: Stream, line: str) -> str:
    await stream.send(line.encode("ascii") + b"\r\n")
    return (await stream.read_until(reply_complete, 8192)).decode("latin-1")


async def probe_smtp(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Greeting, EHLO, QUIT (RFC 5321 §4.1.1.1, §4.1.1.10): is STARTTLS (RFC 3207) offered?

    On 587 this is message submission (RFC 6409 §3.1).
    """
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = (await stream.read_until(reply_complete, 8192)).decode("latin-1")
        if reply_code(greeting.encode("latin-1")) != 220:
            return []
        reply = await _smtp_command(stream, f"EHLO {EHLO_NAME}")
        extensions: tuple[str, ...] = ()
        if reply.startswith("250"):
            extensions = ehlo_extensions(reply)
        else:
            await _smtp_command(stream, f"HELO {EHLO_NAME}")  # no ESMTP: no STARTTLS either
        await stream.send(b"QUIT\r\n")
    return mail_findings(target, port.port, MailSession("SMTP", greeting, extensions), port.tls)


# --- POP3 ---------------------------------------------------------------------------


def _pop3_capa_complete(data: bytes) -> bool:
    if data.startswith(b"-ERR"):
        return b"\n" in data
    return data.endswith(b"\r\n.\r\n") or data.endswith(b"\n.\n")


def pop3_capabilities(reply: str) -> tuple[str, ...]:
    """The capability lines of a CAPA answer (RFC 2449 §5: ``+OK``, lines, ``.``)."""
    if not reply.startswith("+OK"):
        return ()
    lines = reply.splitlines()[1:]
    return tuple(line.strip() for line in lines if line.strip() and line.strip() != ".")


async def probe_pop3(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Greeting, CAPA (RFC 2449 §5), QUIT (RFC 1939 §6): is STLS (RFC 2595 §4) listed?"""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = (await stream.line()).decode("latin-1")
        if not greeting.startswith("+OK"):
            return []
        await stream.send(b"CAPA\r\n")
        capa = (await stream.read_until(_pop3_capa_complete, 8192)).decode("latin-1")
        await stream.send(b"QUIT\r\n")
    session = MailSession("POP3", greeting.strip(), pop3_capabilities(capa), "STLS")
    return mail_findings(target, port.port, session, port.tls)


# --- IMAP ---------------------------------------------------------------------------


def imap_capabilities(*texts: str) -> tuple[str, ...]:
    """Capabilities from ``* CAPABILITY`` lines and ``[CAPABILITY ...]`` response codes.

    RFC 3501 §6.1.1 and §7.2.1 (the untagged CAPABILITY response), §7.1
    (the CAPABILITY response code, often in the greeting).
    """
    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            upper = line.upper()
            if upper.startswith("* CAPABILITY "):
                found += line.split()[2:]
            elif "[CAPABILITY " in upper:
                start = upper.index("[CAPABILITY ") + len("[CAPABILITY ")
                end = upper.find("]", start)
                found += line[start : end if end >= 0 else None].split()
    return tuple(dict.fromkeys(found))


async def probe_imap(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Greeting, CAPABILITY, LOGOUT (RFC 3501 §6.1.1, §6.1.3): is STARTTLS (RFC 2595 §3.1) listed?"""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = (await stream.line()).decode("latin-1")
        if not greeting.startswith(("* OK", "* PREAUTH")):
            return []
        await stream.send(b"v1 CAPABILITY\r\n")
        reply = (
            await stream.read_until(
                lambda got: b"\nv1 " in b"\n" + got and got.endswith(b"\n"), 8192
            )
        ).decode("latin-1")
        await stream.send(b"v2 LOGOUT\r\n")
    session = MailSession("IMAP", greeting.strip(), imap_capabilities(greeting, reply))
    return mail_findings(target, port.port, session, port.tls)
