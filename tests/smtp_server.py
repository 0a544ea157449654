"""A real SMTP server for tests (aiosmtpd), with the behaviours delivery must survive.

- STARTTLS (or implicit TLS) with a certificate from a trustme CA, so the
  client's certificate verification is exercised for real;
- AUTH LOGIN/PLAIN with a known password, required before MAIL;
- a stall: ``stall_s`` seconds of silence after each message's data;
- scripted answers: ``data_replies`` answers the next DATA commands in turn
  (``"451 ..."``, ``"550 ..."``), ``rcpt_replies`` answers RCPT for given
  addresses every time;
- every accepted message recorded with its envelope and parsed form.

    with SmtpServer("127.0.10.1", tls=TlsFiles.make(tmp)) as server:
        settings = ...  # host, port, starttls, username/password, ca_file
        server.data_replies = ["451 4.3.0 try later"]
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "vigie"
PASSWORD = "correct horse battery staple"


def free_port(ip: str) -> int:
    """A TCP port nothing listens on at ``ip`` (for a server to start, or for none to)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """A private CA (its PEM file is what the client trusts) and a server context."""

    ca_file: Path
    server_context: ssl.SSLContext

    @classmethod
    def make(cls, directory: Path, *identities: str) -> TlsFiles:
        ca = trustme.CA()
        leaf = ca.issue_cert(*identities)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        ca_file = directory / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        return cls(ca_file, context)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stall_s: float = 0.0  # after the message's data: say nothing this long, then accept

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            reply = self.rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    accepted = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=accepted, handled=False)


class SmtpServer:
    """A running aiosmtpd server on ``ip``; a context manager that stops it reliably."""

    def __init__(
        self,
        ip: str,
        port: int | None = None,
        *,
        tls: TlsFiles,
        implicit_tls: bool = False,
        require_auth: bool = True,
    ) -> None:
        self.ip = ip
        self.port = port or free_port(ip)
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.handler = _Handler()
        options: dict[str, Any] = {
            "hostname": ip,
            "port": self.port,
            "server_hostname": "smtp.test.invalid",
            "authenticator": _authenticator,
            "auth_required": require_auth,
            "auth_require_tls": True,
        }
        if implicit_tls:
            options["ssl_context"] = tls.server_context
            # aiosmtpd only counts STARTTLS as TLS; here the whole connection is.
            options["auth_require_tls"] = False
        else:
            options["tls_context"] = tls.server_context
            options["require_starttls"] = True
        self._controller = Controller(self.handler, **options)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    # --- what tests look at and script ---

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def messages_to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def script_data(self, *replies: str) -> None:
        with self.handler.lock:
            self.handler.data_replies = list(replies)

    def refuse_recipient(self, address: str, reply: str) -> None:
        with self.handler.lock:
            self.handler.rcpt_replies[address.lower()] = reply

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.data_replies.clear()
            self.handler.rcpt_replies.clear()

    def environ(self, *, starttls: bool = True) -> dict[str, str]:
        """The VIGIE_SMTP_* settings that reach this server, trusting its CA."""
        return {
            "VIGIE_SMTP_HOST": self.ip,
            "VIGIE_SMTP_PORT": str(self.port),
            "VIGIE_SMTP_STARTTLS": "false" if self.implicit_tls or not starttls else "true",
            "VIGIE_SMTP_IMPLICIT_TLS": "true" if self.implicit_tls else "false",
            "VIGIE_SMTP_USERNAME": USERNAME,
            "VIGIE_SMTP_PASSWORD": PASSWORD,
            "VIGIE_SMTP_CA_FILE": str(self.tls.ca_file),
            "VIGIE_SMTP_TIMEOUT_S": "5",
        }


def running_smtp(ip: str, directory: Path, **options: Any) -> Iterator[SmtpServer]:
    """Fixture body: a server with a fresh CA whose certificate names ``ip``."""
    tls = TlsFiles.make(directory, ip)
    with SmtpServer(ip, tls=tls, **options) as server:
        yield server
