"""Zone-level judgments from what the probes observed, no I/O.

Check IDs: ``dns.caa.missing``, ``dns.caa.no_issue_restriction``, ``dns.axfr_open``,
``dns.lame_delegation``, ``dns.ns_unresolvable``, plus ``scan.timeout``,
``scan.error`` and ``scan.out_of_scope`` for name-server probes that could not
be made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA

from vigie.model import Finding
from vigie.scanner.lookups import bare, clip, probe_failed
from vigie.scanner.resolve import Answer, Lookup

SAMPLE_NAMES = 20  # names of a leaked zone shown as evidence


# --- CAA -----------------------------------------------------------


@dataclass(frozen=True)
class CaaSearch:
    """RelevantCAASet(X) of RFC 8659 §3: where the climb from the name X found a
    non-empty CAA RRset (``found_at``, None: nowhere below the root), the names
    asked on the way (X first), and the alias whose CAA RRset it is when
    ``found_at`` is a CNAME (the lookup follows aliases, RFC 1034 §4.3.2)."""

    found_at: str | None
    records: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    alias: str = ""  # the CNAME target that holds the records ("" : found_at itself)
    failure: Lookup | None = None  # a lookup that failed on the way: the set is unknown


@dataclass(frozen=True)
class CaaProperty:
    """One CAA record as dnspython's rdata reads it (RFC 8659 §4.1)."""

    flags: int
    tag: str
    value: str


def parse_caa(text: str) -> CaaProperty | None:
    """One CAA record in presentation form, through dnspython's CAA rdata (None: unreadable)."""
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        return None
    if not isinstance(rdata, dns.rdtypes.ANY.CAA.CAA):
        return None
    tag = rdata.tag.decode("ascii", errors="replace")
    return CaaProperty(rdata.flags, tag, rdata.value.decode("utf-8", errors="replace"))


def restricts_issuance(properties: Sequence[CaaProperty]) -> bool:
    """RFC 8659 §4.2-4.3: only ``issue``/``issuewild`` (tags are case-insensitive)
    restrict which CA may issue; an unknown tag with the critical flag (§4.1,
    bit 128) forbids issuance by CAs that do not understand it.
    """
    known = ("issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc")
    for prop in properties:
        tag = prop.tag.lower()
        if tag in ("issue", "issuewild"):
            return True
        if prop.flags & 128 and tag not in known:
            return True
    return False


def caa_findings(name: str, search: CaaSearch) -> list[Finding]:
    """The verdict on RelevantCAASet(name) (RFC 8659 §3): ``dns.caa.missing`` when
    no CAA RRset is found at the name or any parent below the root; else
    ``dns.caa.no_issue_restriction`` when the relevant RRset has no
    ``issue``/``issuewild`` property (e.g. ``iodef`` only): any CA may issue
    (§4.2-4.3). A subdomain's own RRset counts, whatever its parents publish.
    """
    checked = [bare(asked) for asked in search.checked]
    if search.failure is not None:
        return []  # the relevant set is unknown: the caller reports the failed lookup
    if search.found_at is None:
        evidence: dict[str, object] = {
            "reason": (
                f"no CAA record at {bare(name)} or at any parent below the root: "
                "any CA may issue certificates"
            ),
            "checked": checked,
        }
        return [Finding(check_id="dns.caa.missing", domain=bare(name), evidence=evidence)]
    properties = [p for p in (parse_caa(r) for r in search.records) if p is not None]
    if restricts_issuance(properties):
        return []
    holder = bare(search.found_at) + (f" (alias of {bare(search.alias)})" if search.alias else "")
    evidence = {
        "reason": (
            f"the CAA records relevant to {bare(name)}, found at {holder}, have no "
            "issue/issuewild property: any CA may issue certificates (RFC 8659 §4)"
        ),
        "found_at": bare(search.found_at),
        "checked": checked,
        "records": [clip(r) for r in search.records[:20]],
        "tags": sorted({p.tag.lower() for p in properties}),
    }
    if search.alias:
        evidence["alias_of"] = bare(search.alias)
    return [Finding(check_id="dns.caa.no_issue_restriction", domain=bare(name), evidence=evidence)]


# --- name servers ---------------------------------------------------------------


class NsVerdict(str, Enum):
    AUTHORITATIVE = "authoritative"
    LAME = "lame"
    SILENT = "silent"  # no answer in time: nothing can be said
    OUT_OF_SCOPE = "out_of_scope"  # not contacted
    ERROR = "error"


@dataclass(frozen=True)
class Transfer:
    """An AXFR attempt against one address."""

    allowed: bool
    records: int = 0
    names: tuple[str, ...] = ()
    timed_out: bool = False
    failed: bool = False  # neither a transfer nor a refusal: a broken exchange
    detail: str = ""


@dataclass(frozen=True)
class AddressProbe:
    """What one address of one name server did."""

    ns: str
    ip: str
    verdict: NsVerdict
    reason: str = ""
    transfer: Transfer | None = None


@dataclass(frozen=True)
class NameServer:
    """One NS name of the zone, its addresses, and the probes of those addresses."""

    name: str
    a: Lookup
    aaaa: Lookup
    probes: tuple[AddressProbe, ...] = ()
    skipped_addresses: tuple[str, ...] = field(default=())  # beyond the per-name cap
    # Who lists this name server: "zone" (the zone's own NS records), "parent" (the delegation).
    listed_by: tuple[str, ...] = ("zone",)


def judge_soa_response(zone: str, response: dns.message.Message) -> str:
    """Why a name server's answer to ``<zone> SOA`` is not authoritative ("" when it is)."""
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        return f"answered {dns.rcode.to_text(rcode)} for the zone"
    if not response.flags & dns.flags.AA:
        return "answered without the AA flag (not authoritative for the zone)"
    apex = dns.name.from_text(zone)
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == apex:
            return ""
    return "answered authoritatively but without the zone's SOA record"


def ns_unresolvable_findings(zone: str, server: NameServer) -> list[Finding]:
    """``dns.ns_unresolvable`` when the NS name does not exist or has no address.

    RFC 1034 §4.2: a zone is served by the servers its NS records name, which a
    resolver reaches through their addresses; an NS name under a domain that does not
    exist (NXDOMAIN, RFC 2308 §2.1) can be registered by anyone, who then answers
    for the zone.
    """
    outcomes = {server.a.outcome, server.aaaa.outcome}
    if Answer.OK in outcomes:
        return []
    if Answer.NXDOMAIN in outcomes:
        reason = f"{bare(server.name)} does not exist (NXDOMAIN): whoever registers its domain controls the zone"
    elif outcomes == {Answer.NODATA}:
        reason = f"{bare(server.name)} exists but has no A or AAAA record"
    else:
        return []  # a lookup failed: the caller reports the failure instead
    evidence = {"ns": bare(server.name), "reason": reason, "listed_by": list(server.listed_by)}
    return [
        Finding(
            check_id="dns.ns_unresolvable",
            domain=bare(zone),
            discriminator=bare(server.name),
            evidence=evidence,
        )
    ]


def nameserver_findings(zone: str, server: NameServer) -> list[Finding]:
    """Lame delegation, open zone transfer and probe problems of one NS name.

    - ``dns.lame_delegation``: a delegated server that does not answer
      authoritatively for the zone (RFC 1912 §2.8 and RFC 8499 §7, "lame
      delegation"; RFC 1035 §4.1.1: an authoritative answer sets AA);
    - ``dns.axfr_open``: the server hands the whole zone (AXFR, RFC 5936 §6: access
      control is a local policy, and the RFC's own advice is to restrict it) to
      an unknown client.
    """
    findings: list[Finding] = []
    lame = [p for p in server.probes if p.verdict is NsVerdict.LAME]
    if lame:
        findings.append(_lame_finding(zone, server, lame))
    leaking = [p for p in server.probes if p.transfer is not None and p.transfer.allowed]
    if leaking:
        findings.append(_axfr_finding(zone, server.name, leaking))
    for probe in server.probes:
        findings.extend(_probe_problems(zone, probe))
    return findings


def _lame_finding(zone: str, server: NameServer, lame: Sequence[AddressProbe]) -> Finding:
    evidence: dict[str, object] = {
        "ns": bare(server.name),
        "zone": bare(zone),
        "addresses": {p.ip: clip(p.reason) for p in lame},
        "addresses_probed": len(server.probes),
        "listed_by": list(server.listed_by),
    }
    if server.skipped_addresses:
        evidence["addresses_not_probed"] = len(server.skipped_addresses)
    return Finding(
        check_id="dns.lame_delegation",
        domain=bare(zone),
        discriminator=bare(server.name),
        evidence=evidence,
    )


def _axfr_finding(zone: str, ns: str, leaking: Sequence[AddressProbe]) -> Finding:
    transfers = [p.transfer for p in leaking if p.transfer is not None]
    largest = max(transfers, key=lambda t: t.records)
    evidence = {
        "ns": bare(ns),
        "zone": bare(zone),
        "addresses": [p.ip for p in leaking],
        "records": largest.records,
        "names": len(largest.names),
        "sample_names": [bare(n) for n in largest.names[:SAMPLE_NAMES]],
    }
    return Finding(
        check_id="dns.axfr_open", domain=bare(zone), discriminator=bare(ns), evidence=evidence
    )


def _probe_problems(zone: str, probe: AddressProbe) -> list[Finding]:
    where = f"dns:ns {bare(probe.ns)} {probe.ip}"
    problems: list[Finding] = []
    if probe.verdict is NsVerdict.SILENT:
        problems.append(probe_failed(bare(zone), where, True, probe.reason))
    elif probe.verdict is NsVerdict.ERROR:
        problems.append(probe_failed(bare(zone), where, False, probe.reason))
    elif probe.verdict is NsVerdict.OUT_OF_SCOPE:
        evidence = {
            "probe": where,
            "ns": bare(probe.ns),
            "address": probe.ip,
            "detail": probe.reason,
        }
        problems.append(
            Finding(
                check_id="scan.out_of_scope",
                domain=bare(zone),
                discriminator=where,
                evidence=evidence,
            )
        )
    transfer = probe.transfer
    if transfer is not None and (transfer.timed_out or transfer.failed):
        problems.append(
            probe_failed(
                bare(zone),
                f"dns:axfr {bare(probe.ns)} {probe.ip}",
                transfer.timed_out,
                transfer.detail,
            )
        )
    return problems
