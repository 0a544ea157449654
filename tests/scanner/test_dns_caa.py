"""CAA is judged per name, climbing from the name itself (RFC 8659 §3).

Oracle: the RFC's own pseudocode run here over ``dig`` answers through a
real recursive resolver (Unbound, which chases CNAME and DNAME across zones),
the records read by dnspython's CAA rdata; and the two example trees of
RFC 8659 §3. vigie itself asks Knot directly (its own alias chasing), and
Unbound for the agreement test. The world: tests/scanner/dns_caa_world.py.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import pytest

from tests.dns_server import world_settings
from tests.scanner.dns_caa_world import COUNTER, FLAKY, KNOT, CaaWorld, caa_world
from tests.servers import require_program
from vigie.config import Settings
from vigie.model import FamilyResult, Finding
from vigie.scanner.dns import caa_findings, check_domain, remember_registered_domains
from vigie.scanner.dns._family import relevant_caa
from vigie.scanner.dns._zone import CaaSearch
from vigie.scanner.probe_context import ProbeContext

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CaaWorld]:
    with caa_world(tmp_path_factory.mktemp("dns-caa")) as built:
        yield built


def settings_for(world: CaaWorld, resolver: str = KNOT) -> Settings:
    return world_settings(resolver, world.port, "127.0.41.0/24")


def scan(world: CaaWorld, name: str, registered: set[str], resolver: str = KNOT) -> FamilyResult:
    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(settings_for(world, resolver))
        try:
            remember_registered_domains(ctx, registered | {name})
            return await check_domain(ctx, name, False)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def climb(world: CaaWorld, name: str, resolver: str = KNOT) -> CaaSearch:
    async def run() -> CaaSearch:
        ctx = ProbeContext.from_settings(settings_for(world, resolver))
        try:
            return await relevant_caa(ctx, name)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def caa_findings_of(result: FamilyResult) -> list[Finding]:
    return [
        f
        for f in result.findings
        if f.check_id.startswith("dns.caa.") or f.discriminator == "dns:caa"
    ]


# --- the oracle: RFC 8659 §3 pseudocode over dig answers through Unbound ----------------------


def dig_caa(world: CaaWorld, name: str) -> list[dns.rdtypes.ANY.CAA.CAA]:
    """CAA(X): the CAA records ``dig`` gets from a recursive resolver (aliases chased)."""
    done = subprocess.run(
        [
            *(require_program("dig"), f"@{world.unbound.address}", "-p", str(world.port)),
            *("+noall", "+answer", "+tries=2", "+time=2", name, "CAA"),
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    records = []
    for line in done.stdout.splitlines():
        fields = line.split(None, 4)
        if len(fields) == 5 and fields[3] == "CAA":
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, fields[4])
            assert isinstance(rdata, dns.rdtypes.ANY.CAA.CAA)
            records.append(rdata)
    return records


def oracle(world: CaaWorld, name: str) -> tuple[str | None, list[str], set[str]]:
    """RelevantCAASet(name) as RFC 8659 §3 writes it: (where found, names asked, the
    check IDs it means: empty set -> dns.caa.missing; no issue/issuewild -> any CA may issue)."""
    domain = dns.name.from_text(name)
    asked: list[str] = []
    while domain != dns.name.root:
        asked.append(domain.to_text(omit_final_dot=True))
        records = dig_caa(world, domain.to_text())
        if records:
            tags = {r.tag.decode().lower() for r in records}
            critical_unknown = any(
                r.flags & 128 and r.tag.decode().lower() not in ("issue", "issuewild", "iodef")
                for r in records
            )
            restricts = bool(tags & {"issue", "issuewild"}) or critical_unknown
            ids = set() if restricts else {"dns.caa.no_issue_restriction"}
            return asked[-1], asked, ids
        domain = domain.parent()
    return None, asked, {"dns.caa.missing"}


CASES = [
    "x.y.z",  # RFC 8659 §3 example: nothing anywhere -> Empty
    "a.b.c",  # RFC 8659 §3 example: found at b.c
    "apex.caa41",
    "own.apex.caa41",  # its own iodef-only set, although the apex restricts
    "none.apex.caa41",  # none: the apex's set
    "deep.none.apex.caa41",
    "www.apex.caa41",  # CNAME to an iodef-only set
    "alias-empty.apex.caa41",  # CNAME to a name without CAA: climb from the alias's parent
    "target.old.apex.caa41",  # DNAME
    "iodefonly.caa41",
    "sub.iodefonly.caa41",  # restricts, below an iodef-only apex
    "bare.iodefonly.caa41",  # inherits the iodef-only set
]


@pytest.mark.parametrize("name", CASES)
def test_the_caa_verdict_of_each_name_is_the_rfc_8659_climb(world: CaaWorld, name: str) -> None:
    # Given the relevant CAA set of the name, as the RFC's pseudocode finds it through Unbound
    found_at, asked, expected = oracle(world, name)
    # When vigie scans the name alone (no registered parent to defer to), asking Knot
    result = scan(world, name, set())
    # Then its CAA verdict is the oracle's
    assert {f.check_id for f in caa_findings_of(result)} == expected
    # and its climb asked the same names in the same order, through Knot (vigie chases
    # the aliases) and through Unbound (the resolver chases them)
    for resolver in (KNOT, world.unbound.address):
        search = climb(world, name, resolver)
        assert [n.rstrip(".") for n in search.checked] == asked
        assert (search.found_at or "").rstrip(".") == (found_at or "")
        assert {f.check_id for f in caa_findings(name, search)} == expected


def test_rfc_8659_example_no_caa_anywhere(world: CaaWorld) -> None:
    # Given X.Y.Z with no CAA at any level (RFC 8659 §3)
    result = scan(world, "x.y.z", set())
    # Then the search asked X.Y.Z, Y.Z, Z and returned Empty: dns.caa.missing
    (finding,) = caa_findings_of(result)
    assert finding.check_id == "dns.caa.missing"
    assert finding.evidence["checked"] == ["x.y.z", "y.z", "z"]


def test_rfc_8659_example_found_at_the_parent(world: CaaWorld) -> None:
    # Given A.B.C and 'issue "example.com"' at B.C (RFC 8659 §3)
    search = climb(world, "a.b.c")
    # Then the search stops at B.C with that record, and nothing is reported
    assert search.checked == ("a.b.c.", "b.c.")
    assert search.found_at == "b.c."
    assert search.records == ('0 issue "example.com"',)
    assert caa_findings_of(scan(world, "a.b.c", set())) == []


def test_a_subdomain_set_that_permits_any_ca_overrides_a_restricting_apex(
    world: CaaWorld,
) -> None:
    # Given apex.caa41 restricts issuance and own.apex.caa41 publishes iodef only
    result = scan(world, "own.apex.caa41", {"apex.caa41"})
    # Then own.apex.caa41 is reported, under its own name, with its own set as evidence
    (finding,) = caa_findings_of(result)
    assert finding.check_id == "dns.caa.no_issue_restriction"
    assert finding.domain == "own.apex.caa41"
    assert finding.evidence["found_at"] == "own.apex.caa41"
    assert finding.evidence["tags"] == ["iodef"]
    # and the apex itself is fine
    assert caa_findings_of(scan(world, "apex.caa41", set())) == []


def test_a_subdomain_without_caa_inherits_and_is_reported_with_its_registered_parent(
    world: CaaWorld,
) -> None:
    # Given bare.iodefonly.caa41 has no CAA and its registered parent publishes iodef only
    alone = scan(world, "bare.iodefonly.caa41", set())
    with_parent = scan(world, "bare.iodefonly.caa41", {"iodefonly.caa41"})
    # Then alone it carries the inherited verdict, saying where the set was found
    (finding,) = caa_findings_of(alone)
    assert finding.check_id == "dns.caa.no_issue_restriction"
    assert finding.evidence["found_at"] == "iodefonly.caa41"
    assert finding.evidence["checked"] == ["bare.iodefonly.caa41", "iodefonly.caa41"]
    # and with its parent registered the verdict is the parent's, reported once under it
    assert caa_findings_of(with_parent) == []
    assert {f.check_id for f in caa_findings_of(scan(world, "iodefonly.caa41", set()))} == {
        "dns.caa.no_issue_restriction"
    }


def test_a_cname_is_followed_and_the_climb_goes_on_from_the_alias_parent(
    world: CaaWorld,
) -> None:
    # Given www -> target.other.caa41 (iodef only) and alias-empty -> plain.other.caa41 (none)
    www = scan(world, "www.apex.caa41", {"apex.caa41"})
    (finding,) = caa_findings_of(www)
    # Then www's set is its target's (CAA(X) follows aliases, RFC 1034 §4.3.2)
    assert finding.check_id == "dns.caa.no_issue_restriction"
    assert finding.evidence["found_at"] == "www.apex.caa41"
    assert finding.evidence["alias_of"] == "target.other.caa41"
    # and an alias to a name without CAA climbs from its own parent, apex.caa41 (which
    # restricts), not from the target's (other.caa41 and caa41 have none)
    search = climb(world, "alias-empty.apex.caa41")
    assert search.found_at == "apex.caa41."
    assert caa_findings_of(scan(world, "alias-empty.apex.caa41", set())) == []


def test_a_dname_is_followed(world: CaaWorld) -> None:
    search = climb(world, "target.old.apex.caa41")
    assert search.found_at == "target.old.apex.caa41."
    assert search.alias == "target.other.caa41."


def test_servfail_while_climbing_is_a_scan_error_but_a_name_own_set_still_counts(
    world: CaaWorld,
) -> None:
    # Given a resolver that fails "apex.caa41. CAA"
    below = scan(world, "none.apex.caa41", set(), FLAKY)
    own = scan(world, "own.apex.caa41", set(), FLAKY)
    # Then the name whose climb needs the apex gets a scan error, never dns.caa.missing
    assert [(f.check_id, f.discriminator) for f in caa_findings_of(below)] == [
        ("scan.error", "dns:caa")
    ]
    assert "SERVFAIL" in caa_findings_of(below)[0].evidence["detail"]
    assert not below.complete
    # and a name with its own set never asks the apex
    assert [f.check_id for f in caa_findings_of(own)] == ["dns.caa.no_issue_restriction"]


def test_each_name_caa_is_asked_once_per_sweep(world: CaaWorld) -> None:
    # Given four names of one zone scanned concurrently in one sweep
    names = ["apex.caa41", "none.apex.caa41", "deep.none.apex.caa41", "own.apex.caa41"]
    before = len(world.counter.queries)

    async def run() -> list[FamilyResult]:
        ctx = ProbeContext.from_settings(settings_for(world, COUNTER))
        try:
            remember_registered_domains(ctx, names)
            return list(await asyncio.gather(*(check_domain(ctx, n, False) for n in names)))
        finally:
            await ctx.aclose()

    results = asyncio.run(run())
    asked = [(n, t) for n, t, _ in world.counter.queries[before:] if t == "CAA"]
    # Then each name's CAA was asked once: the climbs share their upper steps
    assert sorted(asked) == sorted(
        {
            (n, "CAA")
            for n in ("apex.caa41.", "none.apex.caa41.", "deep.none.apex.caa41.", "own.apex.caa41.")
        }
    )
    assert [len(caa_findings_of(r)) for r in results] == [0, 0, 0, 1]
