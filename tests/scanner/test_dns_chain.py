"""DNSSEC validated from a trust anchor down every delegation (RFC 4035 §5).

Oracle: BIND's ``delv``, validating itself from the same trust anchor (the DS
records of the test root that Knot's ``keymgr`` computes) and asking the same
Knot server; it must agree with vigie on every zone of the world, secure,
insecure or bogus, and on the zone where a chain breaks. Signatures and DS
records come from Knot; altered copies of them check that a bad signature, a
missing proof or an expired RRSIG anywhere breaks the chain. The world:
tests/scanner/dns_chain_world.py (127.0.41.11-12).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import dns.rrset
import pytest

from tests.dns_server import world_settings
from tests.scanner.dns_chain_world import COUNTER, DROPPER, KNOT, ChainWorld, chain_world
from tests.servers import require_program
from vigie.config import Settings
from vigie.errors import ConfigError
from vigie.model import FamilyResult
from vigie.scanner.dns import (
    DnssecObservation,
    Security,
    ZoneKeys,
    chain_keys,
    check_domain,
    dnssec_findings,
    load_trust_anchors,
    lookup_validation,
    zone_keys,
)
from vigie.scanner.dns._chain import observe_dnssec
from vigie.scanner.dns._dnssec import anchored_keys, parse_trust_anchors
from vigie.scanner.probe_context import ProbeContext
from vigie.services.preflight import check_named_files

T = TypeVar("T")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainWorld]:
    with chain_world(tmp_path_factory.mktemp("dns-chain")) as built:
        yield built


def settings_for(world: ChainWorld, resolver: str = KNOT) -> Settings:
    return world_settings(
        resolver, world.port, "127.0.41.0/24", trust_anchors=str(world.anchor_file)
    )


def run_in_sweep(
    world: ChainWorld, work: Callable[[ProbeContext], Awaitable[T]], resolver: str = KNOT
) -> T:
    """``work`` in one sweep (one probe context) against the world."""

    async def run() -> T:
        ctx = ProbeContext.from_settings(settings_for(world, resolver))
        try:
            return await work(ctx)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def scan(world: ChainWorld, zone: str, resolver: str = KNOT) -> FamilyResult:
    result: FamilyResult = run_in_sweep(world, lambda ctx: check_domain(ctx, zone, False), resolver)
    return result


def keys_of(world: ChainWorld, zone: str) -> ZoneKeys:
    return run_in_sweep(world, lambda ctx: zone_keys(ctx, zone))


def observed(world: ChainWorld, zone: str) -> DnssecObservation:
    async def work(ctx: ProbeContext) -> DnssecObservation:
        observation, failure = await observe_dnssec(ctx, zone)
        assert observation is not None, failure
        return observation

    return run_in_sweep(world, work)


def dnssec_ids(result: FamilyResult) -> set[str]:
    return {f.check_id for f in result.findings if f.check_id.startswith("dns.dnssec.")}


# --- the oracle: delv from the same anchor -------------------------------------------------


def delv(world: ChainWorld, zone: str, tmp_path: Path) -> tuple[Security, str]:
    """delv's verdict on ``zone SOA`` (secure, insecure or bogus), and the zone whose
    DNSKEY it could not validate when bogus."""
    keys = []
    for line in world.anchors:  # ". DS tag algorithm type digest"
        owner, *_, tag, algorithm, digest_type, digest = line.split()
        keys.append(f'  {owner} static-ds {tag} {algorithm} {digest_type} "{digest}";')
    anchors = tmp_path / "delv-anchors.conf"
    anchors.write_text("trust-anchors {\n" + "\n".join(keys) + "\n};\n", encoding="utf-8")
    done = subprocess.run(
        [
            *(require_program("delv"), f"@{KNOT}", "-p", str(world.port)),
            *("-a", str(anchors), zone, "SOA"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    said = done.stdout + done.stderr
    if "; fully validated" in said:
        return Security.SECURE, ""
    if "; unsigned answer" in said:
        return Security.INSECURE, ""
    broken = re.search(r"validating ([^/\s]+)/DNSKEY", said)
    assert broken is not None and "resolution failed" in said, said
    return Security.BOGUS, broken.group(1).rstrip(".") + "."


# zone: the findings vigie gives it (TLDs are the registry's business: no findings)
CASES: dict[str, set[str]] = {
    "sec41.": set(),
    "good.sec41.": set(),
    "island.sec41.": {"dns.dnssec.invalid"},  # signed, no DS: an island (published meaning)
    "wrongds.sec41.": {"dns.dnssec.invalid"},
    "plain.sec41.": {"dns.dnssec.missing"},
    "broken41.": set(),
    "child.broken41.": {"dns.dnssec.invalid"},  # the chain breaks above it, at broken41.
    "open41.": set(),
    "signed.open41.": set(),  # below an unsigned TLD: not secure, never invalid
    "plain.open41.": {"dns.dnssec.missing"},
    "n3sec41.": set(),
    "good.n3sec41.": set(),
    "island.n3sec41.": {"dns.dnssec.invalid"},  # no DS, proven by NSEC3 (RFC 5155 §8.6)
    "n3opt41.": set(),
    "good.n3opt41.": set(),
    "plain.n3opt41.": {"dns.dnssec.missing"},  # in an opt-out span: a covering NSEC3
}


@pytest.mark.network
@pytest.mark.parametrize("zone", list(CASES))
def test_vigie_agrees_with_delv_from_the_same_trust_anchor(
    world: ChainWorld, zone: str, tmp_path: Path
) -> None:
    # Given delv's verdict on the zone, validating from the test root's DS
    security, breaks_at = delv(world, zone, tmp_path)
    # When vigie works out the zone's place in the chain, and scans it
    verdict = keys_of(world, zone)
    result = scan(world, zone)
    # Then both say secure, insecure or bogus alike, and name the same broken zone
    assert verdict.security is security, verdict
    assert verdict.chain
    if security is Security.BOGUS:
        assert verdict.break_at == breaks_at
    # and the findings follow: invalid names where the chain breaks
    assert dnssec_ids(result) == CASES[zone]
    assert not {f.check_id for f in result.findings if f.discriminator.startswith("dns:d")}
    for finding in result.findings:
        if finding.check_id == "dns.dnssec.invalid" and security is Security.BOGUS:
            assert finding.evidence["breaks_at"] == breaks_at.rstrip(".")


@pytest.mark.network
@pytest.mark.parametrize("zone", [z for z in CASES if z.count(".") > 1])
def test_the_mail_family_validation_of_a_record_agrees_with_delv(
    world: ChainWorld, zone: str, tmp_path: Path
) -> None:
    # Given delv's verdict on the zone's SOA
    security, _ = delv(world, zone, tmp_path)

    # When the mail family's entry point judges the same RRset (Knot sets no AD bit:
    # vigie validates it along the chain itself)
    async def work(ctx: ProbeContext) -> Security:
        validation = await lookup_validation(ctx, await ctx.resolver.lookup(zone, "SOA"))
        assert validation.by == "vigie"
        return validation.security

    # Then both say the same
    assert run_in_sweep(world, work) is security


@pytest.mark.network
def test_the_evidence_of_a_break_at_the_tld_names_the_tld(world: ChainWorld) -> None:
    result = scan(world, "child.broken41")
    (finding,) = [f for f in result.findings if f.check_id.startswith("dns.dnssec.")]
    assert finding.check_id == "dns.dnssec.invalid"
    assert finding.evidence["breaks_at"] == "broken41"
    assert "broken41" in finding.evidence["reason"]


@pytest.mark.network
def test_parents_are_validated_once_per_sweep(world: ChainWorld) -> None:
    # Given four zones under sec41. scanned concurrently in one sweep, through a counting proxy
    zones = ["good.sec41", "island.sec41", "wrongds.sec41", "plain.sec41"]
    before = len(world.counter.queries)

    async def work(ctx: ProbeContext) -> list[FamilyResult]:
        return list(await asyncio.gather(*(check_domain(ctx, z, False) for z in zones)))

    results = run_in_sweep(world, work, COUNTER)
    asked = [(n, t) for n, t, _ in world.counter.queries[before:] if t in ("DNSKEY", "DS")]
    # Then the root's and sec41.'s DNSKEY and DS were each asked once
    for name in (".", "sec41."):
        assert asked.count((name, "DNSKEY")) == 1, asked
    assert asked.count(("sec41.", "DS")) == 1
    assert [dnssec_ids(r) for r in results] == [CASES[f"{z}."] for z in zones]


@pytest.mark.network
@pytest.mark.parametrize(
    ("zone", "opt_out"), [("island.n3sec41.", False), ("plain.n3opt41.", True)]
)
def test_a_delegation_without_ds_is_proven_by_nsec3(
    world: ChainWorld, zone: str, opt_out: bool
) -> None:
    # Given Knot's answer to the DS question in an NSEC3-signed parent
    observation = observed(world, zone)
    # Then the proof is NSEC3 records (opt-out: one covering the name, flag 1)
    assert {r.rdtype for r, _ in observation.denial} == {dns.rdatatype.NSEC3}
    flags = {rdata.flags for rrset, _ in observation.denial for rdata in rrset}
    assert (1 in flags) is opt_out
    parent = keys_of(world, zone.split(".", 1)[1])
    assert chain_keys(observation, parent).security is Security.INSECURE


@pytest.mark.network
def test_a_chain_that_cannot_be_had_is_a_scan_problem_not_a_verdict(world: ChainWorld) -> None:
    # Given a resolver that never answers "sec41. DNSKEY"
    result = scan(world, "good.sec41", DROPPER)
    # Then good.sec41's verdict is unknown: a timeout, no DNSSEC finding, the scan incomplete
    assert dnssec_ids(result) == set()
    assert ("scan.timeout", "dns:dnssec-chain") in {
        (f.check_id, f.discriminator) for f in result.findings
    }
    assert not result.complete


# --- breaks made from Knot's real records -------------------------------------------------


def _resigned(sigs: dns.rrset.RRset, **changes: object) -> dns.rrset.RRset:
    altered = dns.rrset.RRset(sigs.name, sigs.rdclass, sigs.rdtype, sigs.covers)
    for sig in sigs:
        altered.add(sig.replace(**changes), sigs.ttl)
    return altered


def _flipped(sigs: dns.rrset.RRset) -> dns.rrset.RRset:
    altered = dns.rrset.RRset(sigs.name, sigs.rdclass, sigs.rdtype, sigs.covers)
    for sig in sigs:
        broken = bytearray(sig.signature)
        broken[3] ^= 0x01
        altered.add(sig.replace(signature=bytes(broken)), sigs.ttl)
    return altered


@pytest.mark.network
def test_an_expired_root_signature_breaks_every_chain_at_the_root(world: ChainWorld) -> None:
    # Given the real root and sec41. records, judged a second after the root's DNSKEY RRSIG expires
    root, sec41 = observed(world, "."), observed(world, "sec41.")
    assert root.dnskey_sigs is not None
    late = max(sig.expiration for sig in root.dnskey_sigs) + 1
    anchors = parse_trust_anchors("\n".join(world.anchors))["."]
    assert anchored_keys(root, anchors).security is Security.SECURE
    expired = anchored_keys(root, anchors, now=late)
    # Then the root is bogus, and so is sec41. below it, naming the root
    assert (expired.security, expired.break_at) == (Security.BOGUS, ".")
    assert "expired" in expired.reason
    below = chain_keys(sec41, expired)
    assert (below.security, below.break_at) == (Security.BOGUS, ".")


@pytest.mark.network
def test_a_ds_rrset_the_parent_did_not_sign_breaks_the_chain_at_the_parent(
    world: ChainWorld,
) -> None:
    sec41 = keys_of(world, "sec41.")
    good = observed(world, "good.sec41.")
    assert sec41.security is Security.SECURE and good.ds_sigs is not None
    assert chain_keys(good, sec41).security is Security.SECURE
    # Given the DS RRSIG altered by one bit
    tampered = DnssecObservation(
        good.zone, good.dnskey, good.dnskey_sigs, good.soa, good.soa_sigs, good.ds,
        ds_sigs=_flipped(good.ds_sigs),
    )  # fmt: skip
    verdict = chain_keys(tampered, sec41)
    # Then the chain breaks at sec41. (the DS is its data), and the finding says so
    assert (verdict.security, verdict.break_at) == (Security.BOGUS, "sec41.")
    (finding,) = dnssec_findings(tampered, sec41)
    assert finding.check_id == "dns.dnssec.invalid"
    assert finding.evidence["breaks_at"] == "sec41"


@pytest.mark.network
def test_no_ds_needs_the_parent_signed_proof(world: ChainWorld) -> None:
    sec41 = keys_of(world, "sec41.")
    island = observed(world, "island.sec41.")
    # Given Knot's NSEC at the delegation: it proves there is no DS (RFC 4035 §5.4)
    assert [r.rdtype for r, _ in island.denial] == [dns.rdatatype.NSEC]
    assert chain_keys(island, sec41).security is Security.INSECURE
    # When the proof is missing, or its signature altered
    (nsec, sigs) = island.denial[0]
    assert sigs is not None
    for denial in ((), ((nsec, _flipped(sigs)),)):
        stripped = DnssecObservation(
            island.zone, island.dnskey, island.dnskey_sigs, island.soa, island.soa_sigs,
            denial=denial,
        )  # fmt: skip
        # Then the chain breaks at the parent
        verdict = chain_keys(stripped, sec41)
        assert (verdict.security, verdict.break_at) == (Security.BOGUS, "sec41."), denial


# --- the trust anchors -------------------------------------------------------------------

# The root KSK-2017 as IANA publishes it (root-anchors.xml) and BIND ships it (bind.keys)
KSK_2017 = (
    "257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5e"
    "mLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLH"
    "wVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXx"
    "uOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="
)


def test_the_packaged_root_anchors_are_the_iana_ksks() -> None:
    # Given vigie's default trust anchors
    anchors = load_trust_anchors(None)
    # Then they are the root's KSK-2017 and KSK-2024, algorithm 8, SHA-256 digests
    assert list(anchors) == ["."]
    assert sorted((d.key_tag, d.algorithm, d.digest_type) for d in anchors["."]) == [
        (20326, 8, 2),
        (38696, 8, 2),
    ]
    # and KSK-2017's DS is what dnspython computes from the published key
    key = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, KSK_2017)
    assert isinstance(key, dns.rdtypes.ANY.DNSKEY.DNSKEY)
    assert dns.dnssec.key_id(key) == 20326
    expected = dns.dnssec.make_ds(dns.name.root, key, "SHA256")
    assert expected in anchors["."]


@pytest.mark.parametrize(
    "line",
    [
        ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
        ". 172800 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
        "Gouv.ML. DS 12345 13 2 " + "AB" * 32 + " ; a comment",
    ],
)
def test_trust_anchor_lines_read_as_dnspython_reads_the_record(line: str) -> None:
    # Given one DS line, with or without TTL and class, a comment, any case
    owner, *_, tag, algorithm, digest_type, digest = line.split(";")[0].split()
    expected = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.DS, f"{tag} {algorithm} {digest_type} {digest}"
    )
    # Then vigie files it under the absolute, lower-case owner, as dnspython's rdata
    anchors = parse_trust_anchors(f"; anchors\n\n{line}\n")
    assert anchors == {dns.name.from_text(owner).to_text().lower(): (expected,)}


def test_a_bad_trust_anchor_file_stops_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "anchors.txt"
    bad.write_text(". IN DNSKEY 257 3 8 AwEAAQ==\n", encoding="utf-8")
    settings = Settings.model_validate({"dns": {"trust_anchors": str(bad)}})
    with pytest.raises(ConfigError, match=r"dns\.trust_anchors"):
        check_named_files(settings)
    with pytest.raises(ValueError, match="readable file"):
        Settings.model_validate({"dns": {"trust_anchors": str(tmp_path / "none.txt")}})
