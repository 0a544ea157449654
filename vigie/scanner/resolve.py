"""Name resolution through the configured resolvers (dnspython), never the
system's when resolvers are configured.

A name that does not exist and a resolver that failed are different answers:
callers must never read a timeout or SERVFAIL as "no record".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver
import dns.rdatatype

from vigie.config import Settings, parse_host_port


class Answer(str, Enum):
    OK = "ok"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, without records of that type
    TIMEOUT = "timeout"
    SERVFAIL = "servfail"  # every resolver failed (SERVFAIL, REFUSED, bad answer)


@dataclass(frozen=True)
class Resolution:
    """The addresses of a name, or why there are none."""

    name: str
    addresses: tuple[str, ...]
    outcome: Answer
    truncated: bool = False  # more addresses than ``dns.max_addresses``
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in (Answer.TIMEOUT, Answer.SERVFAIL)


class Resolver:
    """A thin, typed wrapper around dnspython's async resolver."""

    def __init__(
        self,
        nameservers: list[tuple[str, int]],
        timeout_s: float = 3.0,
        lifetime_s: float = 8.0,
        max_addresses: int = 16,
    ) -> None:
        self.nameservers = nameservers
        self.timeout_s = timeout_s
        self.lifetime_s = lifetime_s
        self.max_addresses = max_addresses
        self._resolver = self._build()

    @classmethod
    def from_settings(cls, settings: Settings) -> Resolver:
        servers = [parse_host_port(value, 53) for value in settings.dns.resolvers]
        return cls(servers, settings.dns.timeout_s, settings.dns.lifetime_s, settings.dns.max_addresses)

    def _build(self) -> dns.asyncresolver.Resolver:
        if self.nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ip, port) for ip, port in self.nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.timeout = self.timeout_s
        resolver.lifetime = self.lifetime_s
        resolver.cache = dns.resolver.Cache()
        return resolver

    @property
    def dnspython(self) -> dns.asyncresolver.Resolver:
        """The underlying resolver, for families that need other record types."""
        return self._resolver

    async def query(self, name: str, rdtype: str) -> tuple[Answer, list[str], str]:
        """Resolve one record type: (outcome, texts of the records, detail)."""
        try:
            answer = await self._resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Answer.NXDOMAIN, [], "NXDOMAIN"
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
            return Answer.TIMEOUT, [], str(exc)
        except dns.resolver.NoNameservers as exc:
            return Answer.SERVFAIL, [], str(exc)
        except dns.resolver.YXDOMAIN as exc:
            return Answer.SERVFAIL, [], str(exc)
        except dns.exception.DNSException as exc:
            return Answer.SERVFAIL, [], f"{type(exc).__name__}: {exc}"
        if answer.rrset is None:
            return Answer.NODATA, [], ""
        return Answer.OK, [rdata.to_text() for rdata in answer.rrset], ""

    async def resolve_addresses(self, name: str) -> Resolution:
        """A and AAAA of ``name`` (following CNAMEs), capped at ``max_addresses``."""
        addresses: list[str] = []
        outcomes: list[Answer] = []
        details: list[str] = []
        for rdtype in ("A", "AAAA"):
            outcome, records, detail = await self.query(name, rdtype)
            outcomes.append(outcome)
            if detail:
                details.append(f"{rdtype}: {detail}")
            for record in records:
                try:
                    addresses.append(str(ipaddress.ip_address(record)))
                except ValueError:
                    continue
        unique = list(dict.fromkeys(addresses))
        if unique:
            outcome = Answer.OK
        elif Answer.NXDOMAIN in outcomes:
            outcome = Answer.NXDOMAIN
        elif Answer.TIMEOUT in outcomes:
            outcome = Answer.TIMEOUT
        elif Answer.SERVFAIL in outcomes:
            outcome = Answer.SERVFAIL
        else:
            outcome = Answer.NODATA
        return Resolution(
            name=name,
            addresses=tuple(unique[: self.max_addresses]),
            outcome=outcome,
            truncated=len(unique) > self.max_addresses,
            detail="; ".join(details),
        )
