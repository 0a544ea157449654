"""SMTP delivery with smtplib: STARTTLS or implicit TLS, verified certificates.

Only this module imports smtplib. Its errors are mapped once, in
:func:`smtp_errors`, to two kinds of :class:`~vigie.errors.DeliveryError`:

- :class:`ServerUnavailable`: nothing is wrong with the message (connection
  refused, timeout, TLS or authentication failure, disconnection); it stays
  queued and the run stops;
- :class:`MessageRefused`: the server answered this message with a 4xx
  (temporary: try again later) or 5xx (permanent) code, possibly per recipient.

The password comes from ``VIGIE_SMTP_PASSWORD`` only, and is never sent over
a connection that is not encrypted.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType

from vigie.config import Settings
from vigie.errors import DeliveryError
from vigie.notify._safety import visible_text

log = logging.getLogger("vigie.notify")

SERVER_REPLY_CHARS = 200


class ServerUnavailable(DeliveryError):
    """The server could not be used at all; the message is not at fault."""

    def __init__(self, message: str, *, misconfigured: bool = False) -> None:
        self.misconfigured = misconfigured  # TLS, STARTTLS or login problem: a person must act
        super().__init__(message, permanent=False)


@dataclass(frozen=True)
class Refusal:
    """One recipient the server refused, with its reply."""

    address: str
    code: int
    reply: str

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class MessageRefused(DeliveryError):
    """The server refused this message: for every recipient, or at MAIL FROM or DATA."""

    def __init__(self, message: str, code: int, refusals: Sequence[Refusal] = ()) -> None:
        self.code = code
        self.refusals = tuple(refusals)
        super().__init__(message, permanent=code >= 500)


def server_reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return visible_text(f"{code} {text}", SERVER_REPLY_CHARS)


@contextmanager
def smtp_errors() -> Iterator[None]:
    """Map smtplib, ssl and socket errors to ServerUnavailable or MessageRefused."""
    try:
        yield
    except smtplib.SMTPRecipientsRefused as exc:
        refusals = [
            Refusal(address, code, server_reply(code, reply))
            for address, (code, reply) in exc.recipients.items()
        ]
        code = min(r.code for r in refusals) if refusals else 550
        raise MessageRefused("every recipient was refused", code, refusals) from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        raise MessageRefused(server_reply(exc.smtp_code, exc.smtp_error), exc.smtp_code) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise ServerUnavailable(
            f"login refused: {server_reply(exc.smtp_code, exc.smtp_error)}", misconfigured=True
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ServerUnavailable(f"not supported by the server: {exc}", misconfigured=True) from None
    except ssl.SSLError as exc:
        # SSLCertVerificationError included: never fall back to an unverified connection.
        raise ServerUnavailable(f"TLS failed: {exc}", misconfigured=True) from None
    except smtplib.SMTPResponseException as exc:
        # A reply outside a message transaction (greeting, HELO, STARTTLS): the server, not us.
        raise ServerUnavailable(server_reply(exc.smtp_code, exc.smtp_error)) from None
    except (smtplib.SMTPException, OSError) as exc:
        # Refused, reset, timed out, disconnected: all temporary by nature.
        raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from None


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Certificate and host name verification on, against the system CAs or ``smtp.ca_file``."""
    ca_file = settings.smtp.ca_file
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not settings.smtp.verify:
        log.warning("smtp.verify is false: the mail server's certificate is not checked")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class SmtpConnection:
    """One SMTP session for a delivery run: open, send many, close."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: smtplib.SMTP | None = None

    def open(self) -> None:
        smtp = self.settings.smtp
        if smtp.username and not (smtp.starttls or smtp.implicit_tls):
            raise ServerUnavailable(
                "smtp.username is set but neither smtp.starttls nor smtp.implicit_tls: "
                "the password would travel in clear; nothing sent",
                misconfigured=True,
            )
        with smtp_errors():
            self._client = self._connect()

    def _connect(self) -> smtplib.SMTP:
        smtp = self.settings.smtp
        # An explicit EHLO name: smtplib's default looks the host up in the DNS.
        helo = socket.gethostname() or "vigie"
        client: smtplib.SMTP
        if smtp.implicit_tls:
            client = smtplib.SMTP_SSL(
                smtp.host,
                smtp.port,
                local_hostname=helo,
                timeout=smtp.timeout_s,
                context=tls_context(self.settings),
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, local_hostname=helo, timeout=smtp.timeout_s)
        try:
            client.ehlo()
            if smtp.starttls and not smtp.implicit_tls:
                if not client.has_extn("starttls"):
                    raise ServerUnavailable(
                        "the server does not offer STARTTLS; refusing to send in clear",
                        misconfigured=True,
                    )
                client.starttls(context=tls_context(self.settings))
                client.ehlo()
            if smtp.username:
                password = smtp.password.get_secret_value() if smtp.password else ""
                client.login(smtp.username, password)
        except BaseException:
            client.close()
            raise
        return client

    def send(self, message: EmailMessage, recipients: Sequence[str]) -> list[Refusal]:
        """Hand ``message`` to the server; the recipients it refused while accepting the rest."""
        if self._client is None:
            raise ServerUnavailable("the SMTP connection is not open")
        with smtp_errors():
            refused = self._client.send_message(
                message, from_addr=self.settings.smtp.from_, to_addrs=list(recipients)
            )
        return [
            Refusal(address, code, server_reply(code, reply))
            for address, (code, reply) in refused.items()
        ]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()  # the messages are already accepted or not: nothing to do

    def __enter__(self) -> SmtpConnection:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
