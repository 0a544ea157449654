"""Is one answer DNSSEC-secure? For the families whose checks need secure data (DANE).

The resolver's AD bit is enough when it set it (RFC 4035 §3.2.3, RFC 6840
§5.8: a validating resolver the scanner trusts). Otherwise vigie validates
itself, with the DNS family's code (:mod:`._dnssec`): the answer is asked
again with DO and CD set (RFC 4035 §3.2.2), so that a validating resolver
hands over bogus data instead of SERVFAIL and a non-validating one its
RRSIGs; the signing zone's DNSKEY RRset is authenticated along the chain of
trust from the configured anchors (:func:`~._chain.zone_keys`, cached per
sweep: RFC 4035 §5), and one RRSIG of the RRset must verify with one of those
keys (:func:`~._dnssec.rrset_validation`).
"""

from __future__ import annotations

from dataclasses import replace

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.RRSIG
import dns.rrset

from vigie.scanner.dns._chain import rrset_and_signatures, zone_keys
from vigie.scanner.dns._dnssec import Security, Validation, rrset_validation
from vigie.scanner.dns._probes import ask_resolvers
from vigie.scanner.dns._sweep import find_zone
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup


async def validate_rrset(
    ctx: ProbeContext, rrset: dns.rrset.RRset, rrsigs: dns.rrset.RRset | None
) -> Validation:
    """vigie's own verdict on ``rrset``: the signer named by its RRSIGs (the zone that
    holds the name when there are none) must be secure, and one RRSIG must verify."""
    signers = {
        sig.signer
        for sig in rrsigs or ()
        if isinstance(sig, dns.rdtypes.ANY.RRSIG.RRSIG) and rrset.name.is_subdomain(sig.signer)
    }
    if signers:
        zone = max(signers, key=len).to_text()  # the deepest signer: the owner's zone
    else:
        found, failure = await find_zone(ctx, rrset.name.to_text())
        if found is None:
            detail = failure.detail if failure is not None else "no zone"
            return Validation(Security.INDETERMINATE, f"the zone of {rrset.name}: {detail}")
        zone = found
    return rrset_validation(rrset, rrsigs, await zone_keys(ctx, zone))


async def lookup_validation(ctx: ProbeContext, lookup: Lookup) -> Validation:
    """Is the RRset a lookup answered (or failed to answer: a validating resolver says
    SERVFAIL for bogus data) DNSSEC-secure? Negative answers are not judged (insecure)."""
    if lookup.outcome is Answer.OK and lookup.authenticated:
        return Validation(Security.SECURE, by="resolver")
    if lookup.outcome not in (Answer.OK, Answer.SERVFAIL) or lookup.cname_loop:
        return Validation(Security.INSECURE, f"{lookup.outcome.value}: no records to validate")
    response, failure = await ask_resolvers(ctx, lookup.owner, lookup.rdtype)
    rdtype = dns.rdatatype.from_text(lookup.rdtype)
    rrset, rrsigs = rrset_and_signatures(response, lookup.owner, rdtype)
    if rrset is None:
        detail = failure.detail if failure is not None else "no records with checking disabled"
        return Validation(Security.INDETERMINATE, f"{lookup.owner} {lookup.rdtype}: {detail}")
    validation = await validate_rrset(ctx, rrset, rrsigs)
    return replace(validation, records=tuple(rdata.to_text() for rdata in rrset))
