"""DNSSEC records as the resolvers give them, and the chain of trust down to a zone.

Every zone's DNSKEY, SOA and DS are asked once per sweep (DO and CD set,
:func:`observe_dnssec`), and every zone's place in the chain from the trust
anchors is worked out once per sweep (:func:`zone_keys`): the parents many
domains share (``gouv.ml``, ``ml``, the root) are validated once, not once per
domain. The judgments themselves are in :mod:`._dnssec` (no I/O).

Trust anchors (RFC 4033 §5, RFC 4035 §4.4): DS records in presentation format,
from ``dns.trust_anchors`` or, by default, the root zone's KSKs as IANA
publishes them (``vigie/data/root-anchors.txt``).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import replace
from importlib import resources
from pathlib import Path

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rrset

from vigie.scanner.dns._dnssec import (
    DnssecObservation,
    Security,
    ZoneKeys,
    anchored_keys,
    chain_keys,
    parse_trust_anchors,
    unreachable_keys,
)
from vigie.scanner.dns._probes import ask_resolvers
from vigie.scanner.dns._sweep import (
    Observed,
    find_zone,
    once_per_sweep,
    parent_name,
    sweep_state,
)
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup, absolute_name

Anchors = dict[str, tuple[dns.rdtypes.ANY.DS.DS, ...]]
DEFAULT_ANCHORS = "data/root-anchors.txt"


@functools.lru_cache(maxsize=8)
def _read_anchors(path: str | None) -> Anchors:
    if path is None:
        text = resources.files("vigie").joinpath(DEFAULT_ANCHORS).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_trust_anchors(text)


def load_trust_anchors(path: Path | None) -> Anchors:
    """The DS records of the trust anchors, by zone (``path`` None: the IANA root KSKs).

    ValueError or OSError when the file cannot be read or holds no DS record.
    """
    return _read_anchors(None if path is None else str(path))


def trust_anchors(ctx: ProbeContext) -> Anchors:
    return load_trust_anchors(ctx.settings.dns.trust_anchors)


# --- what the resolvers answer ------------------------------------------------------------


def rrset_and_signatures(
    response: dns.message.Message | None, zone: str, rdtype: dns.rdatatype.RdataType
) -> tuple[dns.rrset.RRset | None, dns.rrset.RRset | None]:
    """The ``rdtype`` RRset owned by ``zone`` (a name) in an answer, and its RRSIGs."""
    if response is None:
        return None, None
    name = dns.name.from_text(zone)
    found: dns.rrset.RRset | None = None
    sigs: dns.rrset.RRset | None = None
    for rrset in response.answer:
        if rrset.name != name or rrset.rdclass != dns.rdataclass.IN:
            continue
        if rrset.rdtype == rdtype:
            found = rrset
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == rdtype:
            sigs = rrset
    return found, sigs


def _denial(
    response: dns.message.Message | None,
) -> tuple[tuple[dns.rrset.RRset, dns.rrset.RRset | None], ...]:
    """The NSEC/NSEC3 RRsets of a negative answer's authority section, with their RRSIGs."""
    if response is None:
        return ()
    proofs = []
    for rrset in response.authority:
        if rrset.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            sigs = next(
                (
                    r
                    for r in response.authority
                    if r.rdtype == dns.rdatatype.RRSIG
                    and r.name == rrset.name
                    and r.covers == rrset.rdtype
                ),
                None,
            )
            proofs.append((rrset, sigs))
    return tuple(proofs)


async def observe_dnssec(ctx: ProbeContext, zone: str) -> Observed:
    """The zone's DNSKEY and SOA and the DS at its parent, with their RRSIGs (DO and CD
    set), or the first lookup that failed; asked once per zone and sweep."""
    key = absolute_name(zone)
    return await once_per_sweep(sweep_state(ctx).observed, key, lambda: _observe(ctx, key))


async def _observe(ctx: ProbeContext, zone: str) -> Observed:
    # The root has no parent to hold a DS for it.
    rdtypes = ("DNSKEY", "SOA") if zone == "." else ("DNSKEY", "SOA", "DS")
    answers = await asyncio.gather(*(ask_resolvers(ctx, zone, rdtype) for rdtype in rdtypes))
    for _, failure in answers:
        if failure is not None:
            return None, failure
    dnskey, dnskey_sigs = rrset_and_signatures(answers[0][0], zone, dns.rdatatype.DNSKEY)
    soa, soa_sigs = rrset_and_signatures(answers[1][0], zone, dns.rdatatype.SOA)
    ds_answer = answers[2][0] if len(answers) > 2 else None
    ds, ds_sigs = rrset_and_signatures(ds_answer, zone, dns.rdatatype.DS)
    from_parent = ds is not None or not _answered_by_the_zone_itself(ds_answer, zone)
    observation = DnssecObservation(
        zone,
        dnskey,
        dnskey_sigs,
        soa,
        soa_sigs,
        ds,
        from_parent,
        ds_sigs,
        () if ds is not None else _denial(ds_answer),
    )
    return observation, None


def _answered_by_the_zone_itself(response: dns.message.Message | None, zone: str) -> bool:
    """A negative DS answer carrying the zone's own SOA: the parent was never asked."""
    if response is None or zone == ".":
        return False
    apex = dns.name.from_text(zone)
    return any(
        rrset.rdtype == dns.rdatatype.SOA and rrset.name == apex for rrset in response.authority
    )


# --- the chain --------------------------------------------------------------------------


async def zone_keys(ctx: ProbeContext, zone: str) -> ZoneKeys:
    """The zone's place in the chain of trust (absolute name), worked out once per sweep."""
    key = absolute_name(zone)
    return await once_per_sweep(sweep_state(ctx).keys, key, lambda: _zone_keys(ctx, key))


async def _zone_keys(ctx: ProbeContext, zone: str) -> ZoneKeys:
    observation, failure = await observe_dnssec(ctx, zone)
    anchors = trust_anchors(ctx)
    if observation is None:
        verdict = _unreachable(zone, failure)
        if zone in anchors:
            # The resolvers cannot answer for the anchor itself (a lab's resolver serving a
            # few zones): there is no chain to follow, the links below are judged alone.
            reason = f"the trust anchor {zone} could not be had: {verdict.reason}"
            return replace(verdict, chain=False, reason=reason)
        return verdict
    if zone in anchors:
        return anchored_keys(observation, anchors[zone])
    return chain_keys(observation, await parent_keys(ctx, zone))


def _unreachable(zone: str, failure: Lookup | None) -> ZoneKeys:
    if failure is None:
        return unreachable_keys(zone, "no answer", refused=False, timed_out=False)
    return unreachable_keys(
        zone,
        f"{failure.rdtype} of {zone}: {failure.detail}",
        refused=failure.refused,
        timed_out=failure.outcome is Answer.TIMEOUT,
    )


async def parent_keys(ctx: ProbeContext, zone: str) -> ZoneKeys:
    """The verdict on the chain above ``zone`` (absolute), worked out once per sweep."""
    key = absolute_name(zone)
    return await once_per_sweep(sweep_state(ctx).above, key, lambda: _parent_keys(ctx, key))


async def _parent_keys(ctx: ProbeContext, zone: str) -> ZoneKeys:
    """The verdict on the zone above ``zone``: where the DS for it must come from
    (RFC 4035 §5: the parent is validated before the child).

    Not under any trust anchor, or above it a zone the resolver refuses to
    answer for, or an anchor the resolvers cannot give: no chain
    (``chain=False``), the link parent -> zone is judged alone.
    """
    name = dns.name.from_text(zone)
    anchors = trust_anchors(ctx)
    if not any(name.is_subdomain(dns.name.from_text(a)) and a != zone for a in anchors):
        return ZoneKeys(zone, Security.INDETERMINATE, reason="no trust anchor above the zone")
    above = parent_name(zone)
    if above == ".":
        return await zone_keys(ctx, ".")
    parent, failure = await find_zone(ctx, above)
    if parent is None:
        return _unreachable(above, failure)
    if parent not in anchors:
        # Top-down: with no chain above the parent, its own records are not needed here.
        grandparent = await parent_keys(ctx, parent)
        if not grandparent.chain:
            return replace(grandparent, zone=parent)
    return await zone_keys(ctx, parent)
