"""Direct exchanges with a zone's name servers: the SOA question and the AXFR attempt.

A name server is contacted only when the scope guard allows its address, or
when it is one of the configured resolvers (infrastructure, reached whatever
the scope). Each exchange holds one of the address's connection slots.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone

from vigie.scanner.dns._zone import AddressProbe, NsVerdict, Transfer, judge_soa_response
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup, ask_server, make_query

SOA_ATTEMPTS = 2  # UDP tries before falling back to one TCP try


@contextlib.asynccontextmanager
async def nameserver_slot(ctx: ProbeContext, ip: str, infrastructure: bool) -> AsyncIterator[None]:
    """One connection slot of ``ip``; a configured resolver skips the scope guard."""
    if infrastructure:
        await ctx.rate.wait()
        yield
        return
    async with ctx.connection(ip):
        yield


def nameserver_port(ctx: ProbeContext, ip: str) -> tuple[int, bool]:
    """(port, is a configured resolver) for a name server address."""
    resolver_port = ctx.resolver.resolver_port(ip)
    if resolver_port is not None:
        return resolver_port, True
    return ctx.settings.dns.nameserver_port, False


async def probe_address(ctx: ProbeContext, zone: str, ns: str, ip: str) -> AddressProbe:
    """Ask one address of a name server for the zone's SOA, then for the zone (AXFR)."""
    port, infrastructure = nameserver_port(ctx, ip)
    if not infrastructure and not ctx.scope.allows(ip):
        reason = f"{ip} is outside the scanning scope ({ctx.scope.decide(ip).value}): not contacted"
        return AddressProbe(ns, ip, NsVerdict.OUT_OF_SCOPE, reason)
    verdict, reason = await _ask_soa(ctx, zone, ip, port, infrastructure)
    if verdict in (NsVerdict.SILENT, NsVerdict.ERROR):
        return AddressProbe(ns, ip, verdict, reason)
    async with nameserver_slot(ctx, ip, infrastructure):
        transfer = await transfer_zone(
            ip, port, zone, ctx.settings.dns.timeout_s, ctx.settings.dns.axfr_lifetime_s
        )
    return AddressProbe(ns, ip, verdict, reason, transfer)


async def _ask_soa(
    ctx: ProbeContext, zone: str, ip: str, port: int, infrastructure: bool
) -> tuple[NsVerdict, str]:
    query = make_query(zone, "SOA", recursion=False)
    timeout = ctx.settings.dns.timeout_s
    detail = ""
    for _ in range(SOA_ATTEMPTS):
        async with nameserver_slot(ctx, ip, infrastructure):
            exchange = await ask_server(query, ip, port, timeout)
        if exchange.response is not None:
            reason = judge_soa_response(zone, exchange.response)
            return (NsVerdict.LAME, reason) if reason else (NsVerdict.AUTHORITATIVE, "")
        detail = exchange.detail
        if exchange.outcome is not Answer.TIMEOUT:
            return NsVerdict.ERROR, detail
    return await _ask_soa_over_tcp(ctx, zone, ip, port, infrastructure, detail)


async def _ask_soa_over_tcp(
    ctx: ProbeContext, zone: str, ip: str, port: int, infrastructure: bool, udp_detail: str
) -> tuple[NsVerdict, str]:
    """UDP stayed silent: TCP tells "nothing listens" (refused) from "filtered" (silent)."""
    query = make_query(zone, "SOA", recursion=False)
    try:
        async with nameserver_slot(ctx, ip, infrastructure):
            response = await dns.asyncquery.tcp(
                query, ip, timeout=ctx.settings.dns.timeout_s, port=port
            )
    except ConnectionRefusedError:
        return (
            NsVerdict.LAME,
            f"no DNS service: UDP unanswered ({udp_detail}) and TCP port {port} refused",
        )
    except dns.exception.Timeout:
        return NsVerdict.SILENT, f"no answer over UDP ({udp_detail}) nor TCP"
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return NsVerdict.ERROR, f"UDP unanswered ({udp_detail}); TCP: {type(exc).__name__}: {exc}"
    reason = judge_soa_response(zone, response)
    return (NsVerdict.LAME, reason) if reason else (NsVerdict.AUTHORITATIVE, "")


async def transfer_zone(
    ip: str, port: int, zone: str, timeout_s: float, lifetime_s: float
) -> Transfer:
    """Try AXFR of ``zone`` from ``ip``: the records and names it leaks, or the refusal."""
    received = dns.zone.Zone(dns.name.from_text(zone))
    try:
        await dns.asyncquery.inbound_xfr(
            ip, received, port=port, timeout=timeout_s, lifetime=lifetime_s
        )
    except dns.xfr.TransferError as exc:
        return Transfer(allowed=False, detail=f"refused: {dns.rcode.to_text(exc.rcode)}")
    except dns.exception.Timeout:
        return Transfer(
            allowed=False, timed_out=True, detail=f"AXFR from {ip}:{port}: no answer in time"
        )
    except (ConnectionError, EOFError) as exc:
        # Closing or resetting the connection is how many servers say no.
        return Transfer(allowed=False, detail=f"connection closed: {type(exc).__name__}")
    except (OSError, dns.exception.DNSException) as exc:
        return Transfer(
            allowed=False, failed=True, detail=f"AXFR from {ip}:{port}: {type(exc).__name__}: {exc}"
        )
    return _transfer_of(received)


def _transfer_of(received: dns.zone.Zone) -> Transfer:
    origin = received.origin or dns.name.root
    records = 0
    names: list[str] = []
    for name, node in received.nodes.items():
        names.append(name.derelativize(origin).to_text())
        records += sum(len(rdataset) for rdataset in node.rdatasets)
    return Transfer(allowed=True, records=records, names=tuple(sorted(names)))


async def ask_delegation(ctx: ProbeContext, zone: str, ip: str) -> frozenset[str] | None:
    """The NS names a parent-zone server lists for ``zone`` (None: not asked or no answer).

    The parent answers with a referral (NS in the authority section), or from
    the child zone itself when it also serves it (NS in the answer section).
    """
    port, infrastructure = nameserver_port(ctx, ip)
    if not infrastructure and not ctx.scope.allows(ip):
        return None
    query = make_query(zone, "NS", recursion=False)
    async with nameserver_slot(ctx, ip, infrastructure):
        exchange = await ask_server(query, ip, port, ctx.settings.dns.timeout_s)
    response = exchange.response
    if response is None or response.rcode() != dns.rcode.NOERROR:
        return None
    apex = dns.name.from_text(zone)
    names = {
        rdata.target.to_text().lower()
        for section in (response.answer, response.authority)
        for rrset in section
        if rrset.rdtype == dns.rdatatype.NS and rrset.name == apex
        for rdata in rrset
    }
    return frozenset(names) if names else None


async def ask_resolvers(
    ctx: ProbeContext, name: str, rdtype: str
) -> tuple[dns.message.Message | None, Lookup | None]:
    """``name rdtype`` with the DO and CD bits, to each configured resolver in turn.

    CD (RFC 4035 §3.2.2) makes a validating resolver hand over the records
    and signatures even when they do not validate, so that vigie can say
    why; the answer is the first NOERROR or NXDOMAIN response. On failure,
    the second value says what went wrong, as a lookup would.
    """
    query = make_query(name, rdtype, dnssec=True)
    query.flags |= dns.flags.CD
    problems: list[str] = []
    timed_out = False
    refusals = 0
    servers = ctx.resolver.servers()
    for ip, port in servers:
        exchange = await ask_server(query, ip, port, ctx.settings.dns.timeout_s)
        response = exchange.response
        if response is None:
            timed_out = timed_out or exchange.outcome is Answer.TIMEOUT
            problems.append(exchange.detail)
            continue
        if response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return response, None
        refusals += response.rcode() == dns.rcode.REFUSED
        problems.append(f"{ip}:{port}: {dns.rcode.to_text(response.rcode())}")
    outcome = Answer.TIMEOUT if timed_out else Answer.SERVFAIL
    detail = f"{name} {rdtype}: " + ("; ".join(problems[-4:]) or "no resolver to ask")
    failure = Lookup(
        name, rdtype, outcome, refused=bool(servers) and refusals == len(servers), detail=detail
    )
    return None, failure
