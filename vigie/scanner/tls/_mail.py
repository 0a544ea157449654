"""The names a mail server's certificate may present on a mail endpoint (STARTTLS or implicit TLS).

A mail server on the address of a scanned domain serves mail under the name
of a mail exchanger, not under the web name: MTA-STS (RFC 8461 §4.2) and
DANE for SMTP (RFC 7672 §3.2.3) check the certificate against the MX host
name, and for IMAP, POP3 and submission RFC 7817 §3 takes the server name
the client was configured with. So a STARTTLS endpoint of (domain, address)
is covered when its certificate presents the scanned domain itself or one of
the domain's MX hosts that resolve to that address (the domain itself when it
has no MX record: the implicit MX of RFC 5321 §5.1). The MX lookup is made
only when the certificate does not already cover the scanned domain, through
the configured resolvers, once per domain and sweep.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vigie.parsing import ascii_int, is_ascii_digits
from vigie.scanner.resolve import Answer, Resolver
from vigie.scanner.tls._model import Endpoint

MAX_EXCHANGERS = 10  # an MX set longer than this is cut: the first ones by preference
# Implicit-TLS mail ports: submission over TLS (RFC 8314 §3.3), IMAPS, POP3S.
MAIL_TLS_PORTS = frozenset({465, 993, 995})


def serves_mail(endpoint: Endpoint) -> bool:
    """A mail endpoint: STARTTLS (RFC 3207, RFC 2595) or implicit TLS (RFC 8314)."""
    return endpoint.starttls is not None or endpoint.port in MAIL_TLS_PORTS


@dataclass(frozen=True)
class MailExchangers:
    """A domain's MX hosts with their addresses, or why they are unknown."""

    domain: str
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (MX host name, its addresses)
    implicit: bool = False  # no MX record: the domain is its own mail host (RFC 5321 §5.1)
    failure: str = ""  # the lookup failed: nothing can be concluded

    def names_at(self, ip: str) -> tuple[str, ...]:
        """The mail host names that point at ``ip`` (the domain itself when implicit)."""
        if self.implicit:
            return (self.domain,)
        wanted = _normal(ip)
        return tuple(name for name, addresses in self.hosts if wanted in addresses)


def _normal(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def parse_mx(record: str) -> str | None:
    """The exchange of one MX record text (``"10 mx.example.fr."``); None for the null MX."""
    parts = record.split()
    if len(parts) != 2 or not is_ascii_digits(parts[0]):
        return None
    name = parts[1].rstrip(".").lower()
    return name or None  # "0 ." is RFC 7505's null MX: no mail accepted


async def lookup_exchangers(resolver: Resolver, domain: str) -> MailExchangers:
    """MX of ``domain`` and the addresses of each exchange (configured resolvers only)."""
    outcome, records, detail = await resolver.query(domain, "MX")
    if outcome in (Answer.NXDOMAIN, Answer.NODATA):
        return MailExchangers(domain, implicit=True)
    if outcome is not Answer.OK:
        return MailExchangers(domain, failure=f"MX lookup of {domain}: {outcome.value} {detail}")

    def preference(record: str) -> int:
        head = record.split(maxsplit=1)[0] if record.strip() else ""
        value = ascii_int(head, max_digits=5)
        return 65536 if value is None else value

    names = [parse_mx(record) for record in sorted(records, key=preference)]
    exchanges = list(dict.fromkeys(name for name in names if name))[:MAX_EXCHANGERS]
    hosts = []
    for name in exchanges:
        resolution = await resolver.resolve_addresses(name)
        hosts.append((name, tuple(_normal(a) for a in resolution.addresses)))
    return MailExchangers(domain, tuple(hosts))
