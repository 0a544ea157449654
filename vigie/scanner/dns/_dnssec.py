"""DNSSEC: is a zone signed, and does the chain of trust down to it validate? No I/O.

Check IDs: ``dns.dnssec.missing``, ``dns.dnssec.invalid``.

dnspython's ``dns.dnssec.validate`` needs ``cryptography>=50`` (dnspython
2.9 declares it for its ML-DSA support) while sslyze pins ``cryptography<47``:
with the versions vigie installs, dnspython's validation is disabled. So the
chain is checked here with plain queries and the ``cryptography`` primitives
themselves: the DS RRset at the parent must match a DNSKEY of the zone
(RFC 4034 §5.1.4 digest), that key must sign the DNSKEY RRset (RFC 4035
§5.2), the SOA must carry a valid signature by a zone key, and each
signature checked must be inside its validity period (RFC 4034 §3.1.5,
RFC 4035 §5.3.1).

The chain (RFC 4035 §5, RFC 4033 §5): from a trust anchor (DS records of a
zone, by default the root's KSKs) down each delegation, each DNSKEY RRset is
authenticated by a DS RRset that the already validated parent signed
(:func:`chain_keys`), and a delegation without DS must be proven by the
parent's signed NSEC or NSEC3 records (RFC 4035 §5.2, RFC 5155 §8.6): the
zone is then insecure, as is everything below it. A break anywhere makes
the zones below bogus, naming the zone where it breaks. When no anchor can
be reached (a resolver that serves only some zones and refuses the rest),
only the link parent -> zone is judged, as the chain above is unknown.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

import dns.dnssec
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.NSEC
import dns.rdtypes.ANY.NSEC3
import dns.rdtypes.ANY.RRSIG
import dns.rrset
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vigie.model import Finding
from vigie.scanner.lookups import bare

ZONE_KEY = 0x0100  # DNSKEY flags bit 7 (RFC 4034 §2.1.1)
_RSA_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    5: hashes.SHA1,
    7: hashes.SHA1,
    8: hashes.SHA256,
    10: hashes.SHA512,
}
_EC_CURVES: dict[int, tuple[ec.EllipticCurve, type[hashes.HashAlgorithm]]] = {
    13: (ec.SECP256R1(), hashes.SHA256),
    14: (ec.SECP384R1(), hashes.SHA384),
}
SUPPORTED_ALGORITHMS = frozenset({*_RSA_HASHES, *_EC_CURVES, 15, 16})
_DIGESTS = {1: "sha1", 2: "sha256", 4: "sha384"}  # RFC 4034 §5.1.3, RFC 4509, RFC 6605


@dataclass(frozen=True)
class DnssecObservation:
    """What the resolvers answered (DO and CD set) for the zone's DNSSEC records."""

    zone: str  # absolute
    dnskey: dns.rrset.RRset | None = None
    dnskey_sigs: dns.rrset.RRset | None = None
    soa: dns.rrset.RRset | None = None
    soa_sigs: dns.rrset.RRset | None = None
    ds: dns.rrset.RRset | None = None  # at the parent
    # False when the negative DS answer came from the zone itself (its own SOA), not from
    # the parent: the resolver is authoritative for the zone only and never asked the
    # parent, so whether a DS exists is unknown (RFC 4035 §3.1.4.1: DS is parent-side data).
    ds_from_parent: bool = True
    ds_sigs: dns.rrset.RRset | None = None  # the parent's RRSIGs over the DS RRset
    # A negative DS answer's NSEC/NSEC3 RRsets (authority section), each with its RRSIGs.
    denial: tuple[tuple[dns.rrset.RRset, dns.rrset.RRset | None], ...] = ()


def ds_matches(zone: str, key: dns.rdata.Rdata, ds: dns.rdata.Rdata) -> bool | None:
    """RFC 4034 §5.1.4: digest = hash(owner name | DNSKEY RDATA); None: digest type unknown."""
    if not isinstance(ds, dns.rdtypes.ANY.DS.DS) or not isinstance(
        key, dns.rdtypes.ANY.DNSKEY.DNSKEY
    ):
        return False
    algorithm = _DIGESTS.get(ds.digest_type)
    if algorithm is None:
        return None
    owner = _wire(dns.name.from_text(zone))
    digest = hashlib.new(algorithm, owner + key.to_digestable()).digest()
    return ds.key_tag == key_tag(key) and ds.algorithm == key.algorithm and digest == ds.digest


def _wire(name: dns.name.Name) -> bytes:
    """A name in canonical wire form (RFC 4034 §6.2: lower case, uncompressed)."""
    return name.canonicalize().to_digestable()


def key_tag(key: dns.rdtypes.ANY.DNSKEY.DNSKEY) -> int:
    """RFC 4034 Appendix B: the key tag of a DNSKEY."""
    wire = key.to_digestable()
    total = 0
    for index, byte in enumerate(wire):
        total += byte if index & 1 else byte << 8
    total += (total >> 16) & 0xFFFF
    return total & 0xFFFF


def signed_data(rrset: dns.rrset.RRset, rrsig: dns.rdtypes.ANY.RRSIG.RRSIG) -> bytes:
    """RFC 4034 §3.1.8.1: RRSIG_RDATA (without the signature) | RR(1) | RR(2) ... in canonical form."""
    header = struct.pack(
        "!HBBIIIH",
        rrsig.type_covered,
        rrsig.algorithm,
        rrsig.labels,
        rrsig.original_ttl,
        rrsig.expiration,
        rrsig.inception,
        rrsig.key_tag,
    )
    header += _wire(rrsig.signer)
    owner = rrset.name.canonicalize()
    if rrsig.labels < len(owner) - 1:  # a wildcard expansion (RFC 4035 §5.3.2)
        owner = dns.name.Name((b"*", *owner.split(rrsig.labels + 1)[1].labels))
    fixed = _wire(owner) + struct.pack("!HHI", rrset.rdtype, rrset.rdclass, rrsig.original_ttl)
    rdatas = sorted({rdata.to_digestable() for rdata in rrset})  # RFC 4034 §6.3 order
    return header + b"".join(fixed + struct.pack("!H", len(rd)) + rd for rd in rdatas)


def verify_signature(key: dns.rdtypes.ANY.DNSKEY.DNSKEY, signature: bytes, data: bytes) -> bool:
    """The public-key check of one signature (RFC 3110/5702 RSA, RFC 6605 ECDSA, RFC 8080 EdDSA)."""
    algorithm = int(key.algorithm)
    raw = key.key
    try:
        if algorithm in _RSA_HASHES:
            length, offset = (raw[0], 1) if raw[0] else (int.from_bytes(raw[1:3], "big"), 3)
            exponent = int.from_bytes(raw[offset : offset + length], "big")
            modulus = int.from_bytes(raw[offset + length :], "big")
            public = rsa.RSAPublicNumbers(exponent, modulus).public_key()
            public.verify(signature, data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
        elif algorithm in _EC_CURVES:
            curve, digest = _EC_CURVES[algorithm]
            point = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + raw)
            half = len(signature) // 2
            der = encode_dss_signature(
                int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            )
            point.verify(der, data, ec.ECDSA(digest()))
        elif algorithm == 15:
            ed25519.Ed25519PublicKey.from_public_bytes(raw).verify(signature, data)
        elif algorithm == 16:
            ed448.Ed448PublicKey.from_public_bytes(raw).verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, IndexError, TypeError):
        return False
    return True


def check_rrsig(
    rrset: dns.rrset.RRset,
    rrsig: dns.rdtypes.ANY.RRSIG.RRSIG,
    keys: Sequence[dns.rdtypes.ANY.DNSKEY.DNSKEY],
    zone: str,
    now: float,
) -> str:
    """Why ``rrsig`` does not validate ``rrset`` with one of ``keys`` ("" when it does).

    RFC 4035 §5.3.1: the signer is the zone, the key tag and algorithm
    match a zone key, the current time is between inception and expiration.
    """
    if rrsig.signer != dns.name.from_text(zone):
        return f"signed by {rrsig.signer}, not by the zone"
    if rrsig.type_covered != rrset.rdtype:
        return "the signature covers another type"
    if now > rrsig.expiration:
        return f"expired at {_stamp(rrsig.expiration)}"
    if now < rrsig.inception:
        return f"not valid before {_stamp(rrsig.inception)}"
    candidates = [
        k
        for k in keys
        if k.algorithm == rrsig.algorithm and key_tag(k) == rrsig.key_tag and k.flags & ZONE_KEY
    ]
    if not candidates:
        return f"no zone key with tag {rrsig.key_tag} and algorithm {int(rrsig.algorithm)}"
    if int(rrsig.algorithm) not in SUPPORTED_ALGORITHMS:
        return f"algorithm {int(rrsig.algorithm)} is not supported"
    data = signed_data(rrset, rrsig)
    if any(verify_signature(k, rrsig.signature, data) for k in candidates):
        return ""
    return f"the signature by key {rrsig.key_tag} does not verify"


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _validated_by(
    rrset: dns.rrset.RRset,
    sigs: dns.rrset.RRset | None,
    keys: Sequence[dns.rdtypes.ANY.DNSKEY.DNSKEY],
    zone: str,
    now: float,
) -> tuple[bool, list[str]]:
    problems: list[str] = []
    for rrsig in sigs or ():
        if not isinstance(rrsig, dns.rdtypes.ANY.RRSIG.RRSIG):
            continue
        problem = check_rrsig(rrset, rrsig, keys, zone, now)
        if not problem:
            return True, []
        problems.append(f"RRSIG {rrsig.key_tag}/{int(rrsig.algorithm)}: {problem}")
    if not problems:
        problems.append("no signature")
    return False, problems


def dnssec_findings(
    observation: DnssecObservation, parent: ZoneKeys | None = None, now: float | None = None
) -> list[Finding]:
    """``dns.dnssec.missing`` for an unsigned zone; ``dns.dnssec.invalid`` when the zone
    is signed (or its parent says it is) but the chain does not validate:
    no DS at the parent (an island), no DS matching a DNSKEY (RFC 4035 §5.2),
    a DNSKEY RRset not signed by the DS key, signatures that do not verify
    or are outside their validity period (RFC 4035 §5.3).

    ``parent`` is the verdict on the chain above (:func:`chain_keys`): a
    break there is ``dns.dnssec.invalid`` naming the zone where it breaks
    (RFC 4035 §5: everything below a bogus zone is bogus); an insecure
    delegation above (RFC 4035 §5.2, an unsigned parent) leaves the zone
    insecure whatever it does, so only its own signatures are judged; from a
    secure parent, the DS RRset, or the NSEC/NSEC3 proof that there is none,
    must carry the parent's valid signature (RFC 4035 §5.2, RFC 5155 §8.6).
    Without a chain (no trust anchor reached), only the link parent -> zone.
    """
    zone = observation.zone
    moment = time.time() if now is None else now
    keys = [k for k in (observation.dnskey or ()) if isinstance(k, dns.rdtypes.ANY.DNSKEY.DNSKEY)]
    ds = list(observation.ds or ())
    signed = bool(observation.dnskey_sigs)
    evidence: dict[str, object] = {
        "dnskey_records": len(keys),
        "ds_records": len(ds),
        "signed": signed,
    }
    if parent is not None and parent.chain and (ds or observation.ds_from_parent):
        if parent.security is Security.BOGUS:
            where = parent.break_at or parent.zone
            evidence["breaks_at"] = shown(where)
            reason = f"the chain of trust breaks above the zone, at {shown(where)}: {parent.reason}"
            return [_invalid(zone, reason, evidence)]
        if parent.security is Security.INSECURE:
            evidence["insecure_at"] = shown(parent.break_at or parent.zone)
            if not keys or not signed:
                return [_missing(zone, keys, evidence)]
            return _self_signed_problems(observation, keys, moment, evidence)
        if parent.security is Security.SECURE:
            problem = parent_link_problem(observation, parent, moment)
            if problem:
                evidence["breaks_at"] = shown(parent.zone)
                return [_invalid(zone, problem, evidence)]
    if not keys or not signed:
        if ds:
            reason = (
                "the parent publishes DS records but the zone has no DNSKEY"
                if not keys
                else "the parent publishes DS records but the zone's DNSKEY set is unsigned"
            )
            return [_invalid(zone, reason, evidence)]
        return [_missing(zone, keys, evidence)]
    if not ds and not observation.ds_from_parent:
        # The link to the parent is unknown: judge only what the zone signs itself.
        return _self_signed_problems(observation, keys, moment, evidence)
    if not ds:
        reason = (
            "the zone is signed but its parent has no DS record for it (an island of trust): "
            "no validating resolver can authenticate it"
        )
        return [_invalid(zone, reason, evidence)]
    verdicts = [(d, k, ds_matches(zone, k, d)) for d in ds for k in keys]
    if all(matched is None for _, _, matched in verdicts):
        return []  # only digest types vigie does not know: no verdict (RFC 4035 §5.2)
    anchors = [k for _, k, matched in verdicts if matched]
    if not anchors:
        reason = "no DS record at the parent matches a DNSKEY of the zone (a stale or wrong DS)"
        evidence["ds"] = [d.to_text()[:120] for d in ds[:8]]
        evidence["dnskey_tags"] = sorted({key_tag(k) for k in keys})
        return [_invalid(zone, reason, evidence)]
    if not any(int(k.algorithm) in SUPPORTED_ALGORITHMS for k in anchors):
        return []  # RFC 4035 §5.2: an unsupported algorithm makes the zone insecure, not bogus
    assert observation.dnskey is not None
    ok, problems = _validated_by(observation.dnskey, observation.dnskey_sigs, anchors, zone, moment)
    if not ok:
        evidence["problems"] = problems[:8]
        return [
            _invalid(zone, "the DNSKEY set is not validly signed by the key the DS names", evidence)
        ]
    if observation.soa is not None:
        ok, problems = _validated_by(observation.soa, observation.soa_sigs, keys, zone, moment)
        if not ok:
            evidence["problems"] = problems[:8]
            return [_invalid(zone, "the SOA record is not validly signed by a zone key", evidence)]
    return []


def _self_signed_problems(
    observation: DnssecObservation,
    keys: Sequence[dns.rdtypes.ANY.DNSKEY.DNSKEY],
    moment: float,
    evidence: dict[str, object],
) -> list[Finding]:
    """Signatures that fail whatever the parent says: the DNSKEY and SOA sets (RFC 4035 §5.3)."""
    zone = observation.zone
    if not any(int(k.algorithm) in SUPPORTED_ALGORITHMS for k in keys):
        return []
    for rrset, sigs, what in (
        (observation.dnskey, observation.dnskey_sigs, "DNSKEY set"),
        (observation.soa, observation.soa_sigs, "SOA record"),
    ):
        if rrset is None:
            continue
        ok, problems = _validated_by(rrset, sigs, keys, zone, moment)
        if not ok:
            evidence["problems"] = problems[:8]
            return [_invalid(zone, f"the {what} is not validly signed by a zone key", evidence)]
    return []


def _invalid(zone: str, reason: str, evidence: dict[str, object]) -> Finding:
    evidence = {"reason": reason, **evidence}
    evidence.setdefault("breaks_at", shown(zone))
    return Finding(check_id="dns.dnssec.invalid", domain=bare(zone), evidence=evidence)


def shown(zone: str) -> str:
    """A zone as evidence names it: ``gouv.ml``, or ``.`` for the root."""
    return bare(zone) or "."


def _missing(
    zone: str, keys: Sequence[dns.rdtypes.ANY.DNSKEY.DNSKEY], evidence: dict[str, object]
) -> Finding:
    evidence["reason"] = (
        "the zone apex has no DNSKEY record"
        if not keys
        else "DNSKEY records are published but answers carry no signatures"
    )
    return Finding(check_id="dns.dnssec.missing", domain=bare(zone), evidence=evidence)


# --- validating one RRset (for the families that need secure data: DANE) -------------------


class Security(str, Enum):
    """The four states of RFC 4035 §4.3, as vigie can tell them."""

    SECURE = "secure"  # a chain of signatures from the DS at the parent validates it
    INSECURE = "insecure"  # unsigned, or no DS at the parent (an island): DNSSEC does not apply
    BOGUS = "bogus"  # the parent says the zone is signed, and validation fails
    INDETERMINATE = "indeterminate"  # the answers needed could not be had


@dataclass(frozen=True)
class Validation:
    """Whether one RRset is DNSSEC-secure, who said so, and why not."""

    security: Security
    reason: str = ""
    zone: str = ""  # the signing zone (absolute), when known
    by: str = "vigie"  # "resolver" (its AD bit) or "vigie" (the chain checked here)
    records: tuple[str, ...] = ()  # the RRset judged (presentation form), when vigie fetched it

    @property
    def secure(self) -> bool:
        return self.security is Security.SECURE


@dataclass(frozen=True)
class ZoneKeys:
    """The zone keys the chain (or the link parent -> zone) authenticates (empty unless SECURE)."""

    zone: str
    security: Security
    keys: tuple[dns.rdtypes.ANY.DNSKEY.DNSKEY, ...] = ()
    reason: str = ""
    # True: judged along a chain from a trust anchor; False: the link parent -> zone only
    # (no anchor could be reached above), as is every zone below it.
    chain: bool = False
    break_at: str = ""  # the zone where the chain breaks (bogus) or stops (insecure)
    timed_out: bool = False  # indeterminate because an answer never came


def trusted_keys(observation: DnssecObservation, now: float | None = None) -> ZoneKeys:
    """The DNSKEY RRset of a zone, authenticated from the DS RRset at its parent.

    RFC 4035 §5.2: a DS record must match a DNSKEY of the zone (RFC 4034
    §5.1.4) whose signature over the DNSKEY RRset verifies (RFC 4035 §5.3);
    no DS at the parent (an island, or an unsigned zone) makes the zone
    insecure, and so do only unknown digest types or algorithms (RFC 4035
    §5.2, RFC 6840 §5.2). A DS matching nothing, or a DNSKEY RRset that does
    not verify, is bogus. As in :func:`dnssec_findings`, only the link parent
    -> zone is checked.
    """
    zone = observation.zone
    moment = time.time() if now is None else now
    keys = [k for k in (observation.dnskey or ()) if isinstance(k, dns.rdtypes.ANY.DNSKEY.DNSKEY)]
    ds = list(observation.ds or ())
    if not ds:
        reason = (
            "no DS record at the parent (unsigned, or an island of trust)"
            if observation.ds_from_parent
            else "the zone itself answered for its DS: the parent's link is unknown"
        )
        return ZoneKeys(zone, Security.INSECURE, reason=reason)
    if not keys or not observation.dnskey_sigs:
        return ZoneKeys(zone, Security.BOGUS, reason="DS at the parent, no signed DNSKEY set")
    verdicts = [(k, ds_matches(zone, k, d)) for d in ds for k in keys]
    if all(matched is None for _, matched in verdicts):
        return ZoneKeys(zone, Security.INSECURE, reason="only DS digest types vigie does not know")
    anchors = [k for k, matched in verdicts if matched]
    if not anchors:
        return ZoneKeys(zone, Security.BOGUS, reason="no DS at the parent matches a DNSKEY")
    if not any(int(k.algorithm) in SUPPORTED_ALGORITHMS for k in anchors):
        return ZoneKeys(zone, Security.INSECURE, reason="only algorithms vigie does not know")
    assert observation.dnskey is not None
    ok, problems = _validated_by(observation.dnskey, observation.dnskey_sigs, anchors, zone, moment)
    if not ok:
        reason = "the DNSKEY set is not validly signed by the DS key: " + "; ".join(problems[:4])
        return ZoneKeys(zone, Security.BOGUS, reason=reason)
    return ZoneKeys(zone, Security.SECURE, tuple(keys))


def rrset_validation(
    rrset: dns.rrset.RRset,
    rrsigs: dns.rrset.RRset | None,
    zone: ZoneKeys,
    now: float | None = None,
) -> Validation:
    """RFC 4035 §5.3: an RRset of a secure zone is secure when one of its RRSIGs, by the
    zone, verifies with an authenticated zone key inside its validity period; unsigned or
    with no verifying signature it is bogus (§5.5). In an insecure zone it is insecure."""
    if zone.security is not Security.SECURE:
        return Validation(zone.security, f"zone {zone.zone}: {zone.reason}", zone.zone)
    moment = time.time() if now is None else now
    ok, problems = _validated_by(rrset, rrsigs, zone.keys, zone.zone, moment)
    if ok:
        return Validation(Security.SECURE, zone=zone.zone)
    reason = f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)}: " + "; ".join(problems[:4])
    return Validation(Security.BOGUS, reason, zone.zone)


# --- the chain of trust from an anchor (RFC 4035 §5) -----------------------------------------


def parse_trust_anchors(text: str) -> dict[str, tuple[dns.rdtypes.ANY.DS.DS, ...]]:
    """DS records in presentation format (``owner [TTL] [IN] DS tag alg type digest``, one a
    line, ``;`` comments), by owner (absolute, lower case). ValueError when one is
    unreadable or none is given."""
    anchors: dict[str, list[dns.rdtypes.ANY.DS.DS]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        upper = [f.upper() for f in fields]
        if "DS" not in upper or upper.index("DS") == 0:
            raise ValueError(f"line {number}: not a DS record: {line[:80]!r}")
        at = upper.index("DS")
        try:
            owner = dns.name.from_text(fields[0]).to_text().lower()
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.DS, " ".join(fields[at + 1 :])
            )
        except (dns.exception.DNSException, ValueError) as exc:
            raise ValueError(f"line {number}: unreadable DS record: {exc}") from None
        assert isinstance(rdata, dns.rdtypes.ANY.DS.DS)
        anchors.setdefault(owner, []).append(rdata)
    if not anchors:
        raise ValueError("no DS record")
    return {owner: tuple(records) for owner, records in anchors.items()}


def anchored_keys(
    observation: DnssecObservation,
    anchors: Iterable[dns.rdtypes.ANY.DS.DS],
    now: float | None = None,
) -> ZoneKeys:
    """The DNSKEY RRset of a trust-anchor zone, authenticated by the configured DS
    records as by a parent's (RFC 4035 §5: the anchor starts the chain)."""
    ds = dns.rrset.RRset(dns.name.from_text(observation.zone), dns.rdataclass.IN, dns.rdatatype.DS)
    for record in anchors:
        ds.add(record)
    verdict = trusted_keys(replace(observation, ds=ds, ds_from_parent=True), now)
    reason = f"trust anchor {shown(observation.zone)}: {verdict.reason}" if verdict.reason else ""
    secure = verdict.security is Security.SECURE
    return replace(verdict, chain=True, reason=reason, break_at="" if secure else observation.zone)


def unreachable_keys(zone: str, failure_detail: str, refused: bool, timed_out: bool) -> ZoneKeys:
    """A zone whose DNSSEC records could not be had. Refused: the resolver does not serve
    it (an authoritative-only server), so there is no chain through it, not a failure."""
    return ZoneKeys(
        zone,
        Security.INDETERMINATE,
        reason=failure_detail,
        chain=not refused,
        break_at=zone,
        timed_out=timed_out,
    )


def chain_keys(
    observation: DnssecObservation, parent: ZoneKeys, now: float | None = None
) -> ZoneKeys:
    """The zone's place in the chain of trust, given the verdict on its parent (RFC 4035 §5).

    Bogus or indeterminate above stays so below, naming the same zone; an
    insecure parent makes the zone insecure (§5.2: the chain ends there).
    Below a secure parent, the DS RRset must be signed by the parent's keys,
    or the parent must prove with signed NSEC/NSEC3 records that no DS
    exists (then the zone is insecure: unsigned, or an island); the DS must
    then authenticate the zone's DNSKEY RRset (:func:`trusted_keys`).
    """
    zone = observation.zone
    moment = time.time() if now is None else now
    if not parent.chain or (not observation.ds and not observation.ds_from_parent):
        return replace(trusted_keys(observation, moment), chain=False)
    where = parent.break_at or parent.zone
    if parent.security in (Security.BOGUS, Security.INDETERMINATE):
        return replace(parent, zone=zone, keys=())
    if parent.security is Security.INSECURE:
        reason = f"insecure delegation above the zone, at {shown(where)}"
        return ZoneKeys(zone, Security.INSECURE, reason=reason, chain=True, break_at=where)
    problem = parent_link_problem(observation, parent, moment)
    if problem:
        return ZoneKeys(zone, Security.BOGUS, reason=problem, chain=True, break_at=parent.zone)
    if not observation.ds:
        reason = f"{shown(parent.zone)} proves there is no DS for the zone (unsigned, or an island)"
        return ZoneKeys(zone, Security.INSECURE, reason=reason, chain=True, break_at=zone)
    verdict = trusted_keys(observation, moment)
    if verdict.security is Security.SECURE:
        return replace(verdict, chain=True)
    reason = f"{verdict.reason} ({shown(zone)}, below {shown(parent.zone)})"
    return replace(verdict, chain=True, break_at=zone, reason=reason)


def parent_link_problem(observation: DnssecObservation, parent: ZoneKeys, now: float) -> str:
    """Why the parent's side of the delegation does not validate ("" when it does).

    RFC 4035 §5.2: the DS RRset is the parent's data, signed by the
    parent's keys; a delegation without DS is authenticated by the parent's
    signed NSEC (RFC 4035 §5.4) or NSEC3 (RFC 5155 §8.6) records.
    """
    zone = observation.zone
    if observation.ds:
        ok, problems = _validated_by(
            observation.ds, observation.ds_sigs, parent.keys, parent.zone, now
        )
        if ok:
            return ""
        return (
            f"the DS RRset of {bare(zone)} is not validly signed by {shown(parent.zone)}: "
            + "; ".join(problems[:4])
        )
    if not observation.denial:
        return f"{shown(parent.zone)} gives no signed NSEC/NSEC3 proof that {bare(zone)} has no DS"
    for rrset, sigs in observation.denial:
        ok, problems = _validated_by(rrset, sigs, parent.keys, parent.zone, now)
        if not ok:
            what = dns.rdatatype.to_text(rrset.rdtype)
            return (
                f"the {what} proof that {bare(zone)} has no DS is not validly signed by "
                f"{shown(parent.zone)}: " + "; ".join(problems[:4])
            )
    if not denies_ds(zone, [rrset for rrset, _ in observation.denial]):
        return f"the NSEC/NSEC3 records of {shown(parent.zone)} do not prove that {bare(zone)} has no DS"
    return ""


def _types(rdata: dns.rdtypes.ANY.NSEC.NSEC | dns.rdtypes.ANY.NSEC3.NSEC3) -> set[int]:
    """The types an NSEC/NSEC3 type bit map lists (RFC 4034 §4.1.2)."""
    found = set()
    for window, bitmap in rdata.windows:
        for index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    found.add(window * 256 + index * 8 + bit)
    return found


def denies_ds(zone: str, records: Sequence[dns.rrset.RRset]) -> bool:
    """Do these NSEC/NSEC3 RRsets prove that ``zone`` has no DS at its parent?

    NSEC (RFC 4035 §5.4): one owned by the name without the DS bit, or one
    covering the name (it does not exist). NSEC3 (RFC 5155 §8.5-8.6): the
    matching hash without the DS bit, or a covering opt-out NSEC3 (an
    unsigned delegation in an opt-out span).
    """
    name = dns.name.from_text(zone)
    for rrset in records:
        for rdata in rrset:
            if isinstance(rdata, dns.rdtypes.ANY.NSEC.NSEC):
                if rrset.name == name:
                    return dns.rdatatype.DS not in _types(rdata)
                if _covers(rrset.name, rdata.next, name):
                    return True
            elif isinstance(rdata, dns.rdtypes.ANY.NSEC3.NSEC3):
                hashed = dns.dnssec.nsec3_hash(name, rdata.salt, rdata.iterations, rdata.algorithm)
                owner = rrset.name.labels[0].decode("ascii").upper()
                following = base64.b32encode(rdata.next).decode("ascii").translate(_B32HEX)
                if owner == hashed:
                    return dns.rdatatype.DS not in _types(rdata)
                if rdata.flags & 1 and _hash_between(owner, following, hashed):
                    return True
    return False


_B32HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=", "0123456789ABCDEFGHIJKLMNOPQRSTUV=")


def _covers(owner: dns.name.Name, following: dns.name.Name, name: dns.name.Name) -> bool:
    """Canonical order (RFC 4034 §6.1): owner < name < next, the last NSEC wrapping."""
    if owner < following:
        return owner < name < following
    return name > owner or name < following


def _hash_between(owner: str, following: str, hashed: str) -> bool:
    following = following.rstrip("=")
    if owner < following:
        return owner < hashed < following
    return hashed > owner or hashed < following
