"""Name resolution through the configured resolvers (dnspython), never the
system's when resolvers are configured.

A name that does not exist and a resolver that failed are different answers:
callers must never read a timeout or SERVFAIL as "no record".
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from enum import Enum

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

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


# A CNAME chain longer than this is treated as broken (resolvers stop near 8-16).
MAX_CNAME_HOPS = 8
EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragmentation


@dataclass(frozen=True)
class Exchange:
    """One query sent to one server: its response, or why there is none."""

    response: dns.message.Message | None
    outcome: Answer  # OK when a response came back, whatever its rcode
    detail: str = ""


async def ask_server(query: dns.message.Message, ip: str, port: int, timeout_s: float) -> Exchange:
    """Send ``query`` to one server over UDP, retrying over TCP when truncated."""
    try:
        response, _ = await dns.asyncquery.udp_with_fallback(
            query, ip, timeout=timeout_s, port=port
        )
    except dns.exception.Timeout:
        return Exchange(None, Answer.TIMEOUT, f"{ip}:{port}: no answer within {timeout_s:g}s")
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return Exchange(None, Answer.SERVFAIL, f"{ip}:{port}: {type(exc).__name__}: {exc}")
    return Exchange(response, Answer.OK)


@dataclass(frozen=True)
class Lookup:
    """One record type of one name, as the configured resolvers answered it.

    CNAMEs are followed (also when the resolver is an authoritative server
    that does not chase them itself); ``cnames`` lists the targets in order.
    """

    name: str
    rdtype: str
    outcome: Answer
    records: tuple[str, ...] = ()  # TXT: the strings joined; others: presentation form
    cnames: tuple[str, ...] = ()
    zone: str = ""  # owner of the SOA in a negative answer: the enclosing zone
    authenticated: bool = False  # the resolver set the AD flag
    signed: bool = False  # RRSIGs over the records came with them
    cname_loop: bool = False
    refused: bool = False  # every resolver answered REFUSED (e.g. an authoritative-only server)
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome in (Answer.TIMEOUT, Answer.SERVFAIL)

    @property
    def owner(self) -> str:
        """The name the records belong to: the last CNAME target, or the name."""
        return self.cnames[-1] if self.cnames else self.name


def absolute_name(name: str) -> str:
    """``WWW.Example.ml`` -> ``www.example.ml.``: the form lookups use."""
    return name.lower().rstrip(".") + "."


def make_query(
    name: str, rdtype: str, *, dnssec: bool = False, recursion: bool = True
) -> dns.message.Message:
    """A query with EDNS0 (and the DO and AD bits when ``dnssec``)."""
    query = dns.message.make_query(
        name, rdtype, use_edns=0, payload=EDNS_PAYLOAD, want_dnssec=dnssec
    )
    if dnssec:
        query.flags |= dns.flags.AD  # "I understand AD": ask the resolver to report validation
    if not recursion:
        query.flags &= ~dns.flags.RD
    return query


def _record_texts(rrset: dns.rrset.RRset) -> tuple[str, ...]:
    texts = []
    for rdata in rrset:
        if rrset.rdtype == dns.rdatatype.TXT:
            texts.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
        else:
            texts.append(rdata.to_text())
    return tuple(texts)


def _negative_zone(response: dns.message.Message) -> str:
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return absolute_name(rrset.name.to_text())
    return ""


def _has_signatures(response: dns.message.Message, owner: dns.name.Name, rdtype: str) -> bool:
    covered = dns.rdatatype.from_text(rdtype)
    return any(
        rrset.rdtype == dns.rdatatype.RRSIG and rrset.name == owner and rrset.covers == covered
        for rrset in response.answer
    )


def _loop(name: str, rdtype: str, cnames: list[str], why: str) -> Lookup:
    chain = " -> ".join([name, *cnames])
    return Lookup(
        name,
        rdtype,
        Answer.SERVFAIL,
        cnames=tuple(cnames),
        cname_loop=True,
        detail=f"{why}: {chain}",
    )


def _cname_trail(response: dns.message.Message, start: str) -> list[str]:
    """The CNAME targets in an answer from ``start``, up to the first repeat."""
    trail: list[str] = []
    current = dns.name.from_text(start)
    seen = {current}
    for _ in range(MAX_CNAME_HOPS * 2):
        rrset = next(
            (r for r in response.answer if r.rdtype == dns.rdatatype.CNAME and r.name == current),
            None,
        )
        if rrset is None:
            break
        current = rrset[0].target
        trail.append(absolute_name(current.to_text()))
        if current in seen:
            break
        seen.add(current)
    return trail


@dataclass
class _Attempts:
    """What the resolvers said while none gave a usable answer."""

    problems: list[str]
    timed_out: bool = False
    refusals: int = 0
    failures: int = 0


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
        self._lookups: dict[tuple[str, str, bool], Lookup] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Resolver:
        servers = [parse_host_port(value, 53) for value in settings.dns.resolvers]
        return cls(
            servers, settings.dns.timeout_s, settings.dns.lifetime_s, settings.dns.max_addresses
        )

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

    # --- whole-answer lookups (the DNS family, discovery) ---------------------

    def servers(self) -> list[tuple[str, int]]:
        """The (ip, port) of every resolver queried: configured, else the system's."""
        if self.nameservers:
            return list(self.nameservers)
        found: list[tuple[str, int]] = []
        for server in self._resolver.nameservers:
            if isinstance(server, str):
                found.append((server, 53))
            elif isinstance(server, dns.nameserver.Do53Nameserver):
                found.append((server.address, server.port))
        return found

    def resolver_port(self, ip: str) -> int | None:
        """The port of the resolver at ``ip``, or None when ``ip`` is no resolver.

        Resolvers are infrastructure: reached whatever the scope says.
        """
        wanted = ipaddress.ip_address(ip)
        for server_ip, port in self.servers():
            if ipaddress.ip_address(server_ip) == wanted:
                return port
        return None

    async def lookup(self, name: str, rdtype: str, *, dnssec: bool = False) -> Lookup:
        """One record type of ``name``, CNAMEs followed; a failure is never a negative answer."""
        key = (absolute_name(name), rdtype.upper(), dnssec)
        cached = self._lookups.get(key)
        if cached is not None:
            return cached
        try:
            dns.name.from_text(key[0])
        except dns.exception.DNSException as exc:
            # Names built from untrusted records (SPF redirects...) may be malformed.
            detail = f"{name!r} is not a valid DNS name: {type(exc).__name__}"
            return Lookup(key[0], key[1], Answer.SERVFAIL, detail=detail)
        result = await self._follow(key[0], key[1], dnssec)
        if not result.failed:
            self._lookups[key] = result
        return result

    async def _follow(self, name: str, rdtype: str, dnssec: bool) -> Lookup:
        cnames: list[str] = []
        current = name
        for _ in range(MAX_CNAME_HOPS):
            exchange, attempts = await self._ask_resolvers(current, rdtype, dnssec)
            response = exchange.response
            if not isinstance(response, dns.message.QueryMessage):
                # No usable answer (a non-query message cannot come back for a query).
                refused = attempts.refusals > 0 and attempts.refusals == attempts.failures
                outcome = Answer.SERVFAIL if exchange.outcome is Answer.OK else exchange.outcome
                return Lookup(
                    name,
                    rdtype,
                    outcome,
                    cnames=tuple(cnames),
                    refused=refused,
                    detail=exchange.detail,
                )
            try:
                chain = response.resolve_chaining()
            except dns.message.ChainTooLong:
                trail = _cname_trail(response, current)
                return _loop(
                    name, rdtype, cnames + trail, "the CNAME chain in the answer never ends"
                )
            except dns.exception.DNSException as exc:
                detail = f"malformed answer for {current} {rdtype}: {type(exc).__name__}"
                return Lookup(name, rdtype, Answer.SERVFAIL, cnames=tuple(cnames), detail=detail)
            for crrset in chain.cnames:
                target = absolute_name(crrset[0].target.to_text())
                if target == name or target in cnames:
                    return _loop(name, rdtype, [*cnames, target], "CNAME loop")
                cnames.append(target)
            if chain.answer is not None:
                return Lookup(
                    name,
                    rdtype,
                    Answer.OK,
                    records=_record_texts(chain.answer),
                    cnames=tuple(cnames),
                    authenticated=bool(response.flags & dns.flags.AD),
                    signed=_has_signatures(response, chain.canonical_name, rdtype),
                )
            negative = Answer.NXDOMAIN if response.rcode() == dns.rcode.NXDOMAIN else Answer.NODATA
            target = absolute_name(chain.canonical_name.to_text())
            if negative is Answer.NODATA and target != current:
                # An authoritative server stops at the edge of its zones: ask for the target.
                current = target
                continue
            return Lookup(
                name,
                rdtype,
                negative,
                cnames=tuple(cnames),
                zone=_negative_zone(response),
                authenticated=bool(response.flags & dns.flags.AD),
            )
        return _loop(name, rdtype, cnames, f"CNAME chain longer than {MAX_CNAME_HOPS}")

    async def _ask_resolvers(
        self, name: str, rdtype: str, dnssec: bool
    ) -> tuple[Exchange, _Attempts]:
        """Ask the resolvers in turn until one answers NOERROR/NXDOMAIN or time runs out.

        A resolver that answered with an error rcode is not asked again; one
        that stayed silent is retried while the lifetime lasts.
        """
        query = make_query(name, rdtype, dnssec=dnssec)
        deadline = time.monotonic() + self.lifetime_s
        attempts = _Attempts(problems=[])
        pending = self.servers()
        while pending and deadline > time.monotonic():
            silent: list[tuple[str, int]] = []
            for ip, port in pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                exchange = await ask_server(query, ip, port, min(self.timeout_s, remaining))
                if exchange.response is None:
                    attempts.problems.append(exchange.detail)
                    if exchange.outcome is Answer.TIMEOUT:
                        attempts.timed_out = True
                        silent.append((ip, port))
                    else:
                        attempts.failures += 1
                    continue
                rcode = exchange.response.rcode()
                if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                    return exchange, attempts
                attempts.failures += 1
                if rcode == dns.rcode.REFUSED:
                    attempts.refusals += 1
                attempts.problems.append(f"{ip}:{port}: {dns.rcode.to_text(rcode)}")
            pending = silent
        detail = f"{name} {rdtype}: " + ("; ".join(attempts.problems[-4:]) or "no resolver to ask")
        outcome = Answer.TIMEOUT if attempts.timed_out else Answer.SERVFAIL
        return Exchange(None, outcome, detail), attempts
