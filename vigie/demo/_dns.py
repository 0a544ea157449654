"""The demo's DNS server: authoritative for the demo zones, and the resolver vigie asks.

Built on dnspython (already a dependency of vigie), which parses zone text,
signs a zone for DNSSEC and reads and writes DNS messages. The server answers
with the AA flag for every zone it holds, follows CNAMEs inside them (as the
resolver of the demo world it must), serves AXFR over TCP to the zones that
allow it and refuses everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.node
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from vigie.model import utcnow

log = logging.getLogger("vigie.demo.dns")

MAX_CNAME_HOPS = 8
UDP_PAYLOAD_WITHOUT_EDNS = 512
MAX_TCP_MESSAGE = 65535
TCP_IDLE_S = 10.0
SIGNATURE_LIFETIME = timedelta(days=14)
ZONE_TTL = 300
DNSKEY_FLAGS_KSK = 257  # zone key + secure entry point
DNSKEY_PROTOCOL = 3


@dataclass(frozen=True)
class ZoneSpec:
    """One zone the demo serves: its apex, its records (zone-file text), its policy."""

    apex: str  # "finances.gouv.example" (no trailing dot)
    records: str  # zone-file lines, names relative to the apex ("@", "www", "_dmarc")
    allow_transfer: bool = False
    signed: bool = False


@dataclass
class Authority:
    """Every demo zone, ready to answer queries. Pure: no sockets here."""

    zones: dict[dns.name.Name, dns.zone.Zone] = field(default_factory=dict)
    transferable: set[dns.name.Name] = field(default_factory=set)

    @classmethod
    def from_specs(cls, specs: Iterable[ZoneSpec], nameserver: str) -> Authority:
        authority = cls()
        for spec in specs:
            zone = _build_zone(spec, nameserver)
            assert zone.origin is not None
            authority.zones[zone.origin] = zone
            if spec.allow_transfer:
                authority.transferable.add(zone.origin)
        return authority

    def zone_for(self, name: dns.name.Name) -> dns.zone.Zone | None:
        """The most specific zone holding ``name`` (a child zone wins over its parent)."""
        best: dns.zone.Zone | None = None
        for origin, zone in self.zones.items():
            if name.is_subdomain(origin) and (
                best is None or best.origin is None or len(origin) > len(best.origin)
            ):
                best = zone
        return best

    def respond(self, query: dns.message.Message, over_tcp: bool) -> dns.message.Message:
        """The answer to ``query``, as an authoritative server that also resolves demo names."""
        response = dns.message.make_response(query, recursion_available=True)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        if question.rdtype == dns.rdatatype.AXFR:
            return self._transfer(response, question.name, over_tcp)
        if question.rdtype in (dns.rdatatype.IXFR, dns.rdatatype.ANY):
            response.set_rcode(dns.rcode.REFUSED)
            return response
        want_dnssec = bool(query.ednsflags & dns.flags.DO)
        self._answer(response, question.name, question.rdtype, want_dnssec)
        return response

    def _answer(
        self,
        response: dns.message.Message,
        qname: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        want_dnssec: bool,
    ) -> None:
        name = qname
        for hop in range(MAX_CNAME_HOPS):
            zone = self.zone_for(name)
            if zone is None:
                if hop == 0:
                    response.set_rcode(dns.rcode.REFUSED)  # not a demo name
                return
            response.flags |= dns.flags.AA
            node = zone.get_node(name)
            if node is None:
                if not _has_descendant(zone, name):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                _add_soa(response, zone, want_dnssec)
                return
            found = node.get_rdataset(dns.rdataclass.IN, qtype)
            if found is not None:
                _add_rrset(response.answer, name, found, node, want_dnssec)
                return
            alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if alias is None or qtype == dns.rdatatype.CNAME:
                _add_soa(response, zone, want_dnssec)  # the name exists, without this type
                return
            _add_rrset(response.answer, name, alias, node, want_dnssec)
            name = alias[0].target  # type: ignore[attr-defined]
        response.set_rcode(dns.rcode.SERVFAIL)  # a CNAME chain longer than any sane one

    def _transfer(
        self, response: dns.message.Message, qname: dns.name.Name, over_tcp: bool
    ) -> dns.message.Message:
        zone = self.zones.get(qname)
        if zone is None or not over_tcp or qname not in self.transferable:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        soa = zone.get_rdataset(qname, dns.rdatatype.SOA)
        assert soa is not None
        response.answer.append(_rrset(qname, soa))
        for name, node in sorted(zone.nodes.items()):
            absolute = name.derelativize(qname)
            for rdataset in node.rdatasets:
                if absolute == qname and rdataset.rdtype == dns.rdatatype.SOA:
                    continue
                response.answer.append(_rrset(absolute, rdataset))
        response.answer.append(_rrset(qname, soa))
        return response


def _build_zone(spec: ZoneSpec, nameserver: str) -> dns.zone.Zone:
    header = (
        f"$TTL {ZONE_TTL}\n"
        f"@ IN SOA {nameserver}. hostmaster.{spec.apex}. 2026010101 3600 600 604800 300\n"
        f"@ IN NS {nameserver}.\n"
    )
    zone = dns.zone.from_text(
        header + spec.records, origin=spec.apex + ".", relativize=False, check_origin=True
    )
    if spec.signed:
        _sign(zone)
    return zone


def _sign(zone: dns.zone.Zone) -> None:
    """Sign every RRset of the zone with one fresh ECDSA P-256 key (a combined KSK/ZSK).

    dnspython's own signer needs a newer cryptography than sslyze allows, so
    the RRSIGs are computed here (RFC 4034 section 3.1.8.1, RFC 6605). The
    zone carries no NSEC chain: negative answers are unsigned, which the demo
    does not need.
    """
    origin = zone.origin
    assert origin is not None
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    dnskey = DNSKEY(
        dns.rdataclass.IN,
        dns.rdatatype.DNSKEY,
        DNSKEY_FLAGS_KSK,
        DNSKEY_PROTOCOL,
        dns.dnssec.Algorithm.ECDSAP256SHA256,
        point[1:],  # X || Y without the 0x04 prefix
    )
    apex = zone.find_node(origin)
    apex.replace_rdataset(dns.rdataset.from_rdata(ZONE_TTL, dnskey))
    now = utcnow()
    window = (
        int((now - timedelta(hours=1)).timestamp()),
        int((now + SIGNATURE_LIFETIME).timestamp()),
    )
    for name, node in list(zone.nodes.items()):
        owner = name.derelativize(origin)
        for rdataset in list(node.rdatasets):
            if rdataset.rdtype == dns.rdatatype.RRSIG:
                continue
            signature = rrsig_for(owner, rdataset, origin, dnskey, key, window)
            node.replace_rdataset(_merged_signatures(node, rdataset.ttl, signature))


def _merged_signatures(node: dns.node.Node, ttl: int, signature: RRSIG) -> dns.rdataset.Rdataset:
    existing = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.RRSIG, signature.type_covered)
    merged = dns.rdataset.from_rdata(ttl, signature)
    if existing is not None:
        merged.update(existing)
    return merged


def rrsig_for(
    owner: dns.name.Name,
    rdataset: dns.rdataset.Rdataset,
    signer: dns.name.Name,
    dnskey: DNSKEY,
    key: ec.EllipticCurvePrivateKey,
    window: tuple[int, int],
) -> RRSIG:
    """The RRSIG over ``owner``/``rdataset`` made with ``key`` (ECDSA P-256, SHA-256)."""
    inception, expiration = window
    unsigned = RRSIG(
        dns.rdataclass.IN,
        dns.rdatatype.RRSIG,
        rdataset.rdtype,
        dns.dnssec.Algorithm.ECDSAP256SHA256,
        len(owner) - 1 - (1 if owner.labels[0] == b"*" else 0),  # the root label is not counted
        rdataset.ttl,
        expiration,
        inception,
        dns.dnssec.key_id(dnskey),
        signer,
        b"",
    )
    data = unsigned.to_digestable(signer) + _canonical_rrset(owner, rdataset)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    signed = unsigned.replace(signature=r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return cast(RRSIG, signed)


def _canonical_rrset(owner: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> bytes:
    """The RRset in canonical form and order: what an RRSIG signs."""
    header = owner.canonicalize().to_wire() or b""
    fixed = struct.pack("!HHI", rdataset.rdtype, rdataset.rdclass, rdataset.ttl)
    rdatas = sorted(rdata.to_digestable(owner) for rdata in rdataset)
    return b"".join(header + fixed + struct.pack("!H", len(r)) + r for r in rdatas)


def _has_descendant(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    """An empty non-terminal (``_domainkey`` above ``s1._domainkey``) exists: NODATA, not NXDOMAIN."""
    origin = zone.origin
    assert origin is not None
    return any(
        other.derelativize(origin).is_subdomain(name) and other.derelativize(origin) != name
        for other in zone.nodes
    )


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rrset.update(rdataset)
    return rrset


def _add_rrset(
    section: list[dns.rrset.RRset],
    name: dns.name.Name,
    rdataset: dns.rdataset.Rdataset,
    node: dns.node.Node,
    want_dnssec: bool,
) -> None:
    section.append(_rrset(name, rdataset))
    if want_dnssec:
        signatures = node.get_rdataset(
            dns.rdataclass.IN, dns.rdatatype.RRSIG, covers=rdataset.rdtype
        )
        if signatures is not None:
            section.append(_rrset(name, signatures))


def _add_soa(response: dns.message.Message, zone: dns.zone.Zone, want_dnssec: bool) -> None:
    origin = zone.origin
    assert origin is not None
    node = zone.get_node(origin)
    assert node is not None
    soa = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.SOA)
    assert soa is not None
    _add_rrset(response.authority, origin, soa, node, want_dnssec)


# --- wire: UDP and TCP ------------------------------------------------------------


def _udp_limit(query: dns.message.Message) -> int:
    if query.edns >= 0:
        return max(UDP_PAYLOAD_WITHOUT_EDNS, min(query.payload, 4096))
    return UDP_PAYLOAD_WITHOUT_EDNS


def answer_wire(authority: Authority, data: bytes, over_tcp: bool) -> bytes | None:
    """The wire answer to one wire query; None for garbage that deserves no answer."""
    try:
        query = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return None
    if query.flags & dns.flags.QR:
        return None  # a response, not a query
    response = authority.respond(query, over_tcp)
    limit = MAX_TCP_MESSAGE if over_tcp else _udp_limit(query)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        truncated = dns.message.make_response(query, recursion_available=True)
        truncated.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
        truncated.set_rcode(response.rcode())
        return truncated.to_wire()


class DnsDatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector's datagram transport does not inherit DatagramTransport in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        reply = answer_wire(self.authority, data, over_tcp=False)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve_dns_stream(
    authority: Authority, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """DNS over TCP: length-prefixed queries, one answer each, until the client closes."""
    try:
        while True:
            prefix = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S)
            (length,) = struct.unpack("!H", prefix)
            data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_S)
            reply = answer_wire(authority, data, over_tcp=True)
            if reply is None:
                return
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
