"""DNS family: pure judgments (unit) and the wiring against a real Knot DNS server.

The test world: Knot serves ``test.`` and a zone per case on 127.0.9.1 (the
configured resolver; ``good.test`` is signed by Knot and ``test.`` carries
the DS records Knot's ``keymgr`` gives for it, so the chain validates;
configured resolver, so ``ns1.test``) and 127.0.9.6 (``ns2.test``, a plain
name server). dnslib proxies in front of it play the servers Knot cannot:
one that refuses everything (127.0.9.2), one that answers without AA
(127.0.9.3), one that drops or fails chosen queries (127.0.9.4), one that
truncates every UDP answer (127.0.9.5). Addresses 127.0.9.100-159 hold
nothing: they are the 60 addresses of ``ns-many.test``.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.dns_server import (
    Faults,
    FaultyProxy,
    ZoneServer,
    free_port,
    start_faulty_proxy,
    start_zone_server,
)
from tests.scanner.mail_oracles import (
    dmarc_ids,
    oracle_resolver,
    pyspf_result,
    spf_ids_from_result,
    txt_reader,
)
from vigie.config import Settings
from vigie.model import Family, FamilyResult, Finding
from vigie.scanner.dns import (
    DnssecObservation,
    caa_findings,
    check_domain,
    dmarc_findings,
    dnssec_findings,
    evaluate_spf,
    judge_soa_response,
    organisational_domain,
    parse_dmarc,
    parse_spf,
    remember_registered_domains,
    spf_findings,
)
from vigie.scanner.dns._zone import (
    AddressProbe,
    CaaSearch,
    NameServer,
    NsVerdict,
    Transfer,
    nameserver_findings,
    ns_unresolvable_findings,
)
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup, Resolver

KNOT = "127.0.9.1"
REFUSER = "127.0.9.2"
NO_AA = "127.0.9.3"
FLAKY = "127.0.9.4"
TRUNCATOR = "127.0.9.5"
SECOND_NS = "127.0.9.6"
PARENT_ONLY = "127.0.9.8"  # a second Knot serving only test.: the registry's view
ALL_ADDRESSES = (KNOT, REFUSER, NO_AA, FLAKY, TRUNCATOR, SECOND_NS, PARENT_ONLY)

SOA = "@ SOA ns1.test. hostmaster.test. 1 3600 600 86400 300"
TWO_NS = "@ NS ns1.test.\n@ NS ns2.test.\n"
GOOD_MAIL = (
    "@ MX 10 mail\n"
    "mail A 127.0.9.30\n"
    '@ TXT "v=spf1 mx -all"\n'
    '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"\n'
)


def zone(origin: str, body: str, ns: str = TWO_NS) -> str:
    return f"$ORIGIN {origin}.\n$TTL 300\n{SOA}\n{ns}{body}"


SIXTY = "".join(f"ns-many A 127.0.9.{100 + i}\n" for i in range(60))
APEX_SIXTY = "".join(f"@ A 127.0.9.{100 + i}\n" for i in range(60))

ZONES: dict[str, str] = {
    "test": zone(
        "test",
        "ns1 A 127.0.9.1\nns2 A 127.0.9.6\nns-refuse A 127.0.9.2\nns-noaa A 127.0.9.3\n"
        "ns-parent A 127.0.9.8\n"
        "delegated NS ns1.test.\ndelegated NS ns-refuse.test.\n"
        + SIXTY
        + "".join(
            f"{child} NS ns1.test.\n"
            for child in [
                "good",
                "open",
                "spfplus",
                "spfneutral",
                "nospf",
                "dmarcnone",
                "nodmarc",
                "cname",
                "wild",
                "badns",
                "lame",
                "sixty",
                "nomx",
                "nomail",
            ]
        ),
        ns="@ NS ns1.test.\n@ NS ns-parent.test.\n",
    ),
    # The zone lists two good servers; the parent also delegates to a lame one.
    "delegated.test": zone("delegated.test", ""),
    "good.test": zone(
        "good.test",
        GOOD_MAIL + '@ CAA 0 issue "letsencrypt.org"\nwww CNAME good.test.\n',
    ),
    "open.test": zone(
        "open.test",
        GOOD_MAIL + "www A 127.0.9.31\nintranet A 127.0.9.32\nvpn A 127.0.9.33\n",
    ),
    "spfplus.test": zone(
        "spfplus.test",
        GOOD_MAIL.replace("v=spf1 mx -all", "v=spf1 mx +all"),
    ),
    "spfneutral.test": zone(
        "spfneutral.test",
        GOOD_MAIL.replace("v=spf1 mx -all", "v=spf1 ip4:192.0.2.0/24 ?all"),
    ),
    "nospf.test": zone("nospf.test", GOOD_MAIL.replace('@ TXT "v=spf1 mx -all"\n', "")),
    "dmarcnone.test": zone("dmarcnone.test", GOOD_MAIL.replace("p=reject", "p=none")),
    "nodmarc.test": zone(
        "nodmarc.test",
        GOOD_MAIL.replace('_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"\n', ""),
    ),
    "nomail.test": zone("nomail.test", "@ MX 10 mail.good.test.\n"),
    "nomx.test": zone("nomx.test", "@ A 127.0.9.34\n"),
    "cname.test": zone(
        "cname.test",
        "dangling CNAME gone.nowhere.test.\n"
        "chain CNAME dangling.cname.test.\n"
        "loop1 CNAME loop2.cname.test.\n"
        "loop2 CNAME loop1.cname.test.\n"
        "alias CNAME www.open.test.\n",
    ),
    "wild.test": zone("wild.test", "* A 127.0.9.35\n* MX 10 mail.good.test.\n"),
    "badns.test": zone("badns.test", "", ns="@ NS ns1.test.\n@ NS ns.gone.test.\n"),
    "lame.test": zone(
        "lame.test",
        "",
        ns="@ NS ns1.test.\n@ NS ns-refuse.test.\n@ NS ns-noaa.test.\n",
    ),
    "sixty.test": zone("sixty.test", APEX_SIXTY, ns="@ NS ns1.test.\n@ NS ns-many.test.\n"),
    # No zone serves example.: climbing for CAA above this zone meets REFUSED.
    "orphan.example": zone("orphan.example", "@ A 127.0.9.36\n"),
}


ZONE_DEFAULTS = {("dns.dnssec.missing", ""), ("dns.caa.missing", "")}


@dataclass(frozen=True)
class World:
    knot: ZoneServer
    port: int
    flaky: FaultyProxy
    truncator: FaultyProxy


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path: Path = tmp_path_factory.mktemp("dns")
    port = free_port(ALL_ADDRESSES)
    upstream = (KNOT, port)
    flaky_faults = Faults(
        drop=frozenset({"_dmarc.nodmarc.test."}),
        servfail=frozenset({"nomail.test. TXT", "_dmarc.nomail.test."}),
    )
    with (
        start_zone_server(
            tmp_path,
            KNOT,
            port,
            ZONES,
            axfr_allowed={"open.test"},
            signed={"good.test"},
            also_listen=[SECOND_NS],
        ) as knot,
        start_zone_server(tmp_path, PARENT_ONLY, port, {"test": ZONES["test"]}),
        start_faulty_proxy(REFUSER, port, upstream, Faults(refuse_all=True)),
        start_faulty_proxy(NO_AA, port, upstream, Faults(strip_aa=True)),
        start_faulty_proxy(FLAKY, port, upstream, flaky_faults) as flaky,
        start_faulty_proxy(TRUNCATOR, port, upstream, Faults(truncate_udp=True)) as truncator,
    ):
        # The parent publishes the DS records of the signed zone (serial bumped for the reload).
        with_ds = ZONES["test"].replace("hostmaster.test. 1 ", "hostmaster.test. 2 ", 1)
        with_ds += "".join(f"{line}\n" for line in knot.ds_records("good.test"))
        knot.replace_zone("test", with_ds, expect=("good.test.", "DS"))
        yield World(knot=knot, port=port, flaky=flaky, truncator=truncator)


def settings_for(
    world: World, resolver: str = KNOT, allow: tuple[str, ...] = ("127.0.9.0/24",)
) -> Settings:
    return Settings.model_validate(
        {
            "dns": {
                "resolvers": [f"{resolver}:{world.port}"],
                "timeout_s": 0.3,
                "lifetime_s": 1.0,
                "nameserver_port": world.port,
                "axfr_lifetime_s": 3.0,
                "max_addresses": 4,
            },
            "scope": {"allow": list(allow)},
        }
    )


def scan(
    settings: Settings,
    domain: str,
    *,
    mail_domain: bool = False,
    registered: set[str] | None = None,
) -> FamilyResult:
    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(settings)
        try:
            if registered is not None:
                remember_registered_domains(ctx, registered)
            return await check_domain(ctx, domain, mail_domain)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def ids(result: FamilyResult) -> set[tuple[str, str]]:
    return {(f.check_id, f.discriminator) for f in result.findings}


def finding(result: FamilyResult, check_id: str) -> Any:
    matches = [f for f in result.findings if f.check_id == check_id]
    assert len(matches) == 1, result.findings
    return matches[0]


# --- against the real server ----------------------------------------------------------


@pytest.mark.network
def test_a_well_configured_signed_zone_yields_no_finding(world: World) -> None:
    # Given SPF -all, DMARC reject, CAA, a signed zone refusing AXFR, two good name servers
    # When the apex is scanned
    result = scan(settings_for(world), "good.test")
    # Then nothing is reported and the result is complete
    assert result.family is Family.DNS
    assert ids(result) == set()
    assert result.complete


@pytest.mark.network
def test_an_alias_of_a_good_domain_inherits_its_mail_policy(world: World) -> None:
    result = scan(settings_for(world), "www.good.test", registered={"good.test", "www.good.test"})
    assert ids(result) == set()
    assert result.complete


@pytest.mark.network
def test_zone_open_to_axfr_is_reported_per_name_server_with_the_leak_size(world: World) -> None:
    result = scan(settings_for(world), "open.test")
    assert ids(result) == ZONE_DEFAULTS | {
        ("dns.axfr_open", "ns1.test"),
        ("dns.axfr_open", "ns2.test"),
    }
    leak = next(f for f in result.findings if f.discriminator == "ns2.test")
    assert leak.evidence["records"] == 10
    assert "intranet.open.test" in leak.evidence["sample_names"]
    assert leak.evidence["addresses"] == [SECOND_NS]
    assert leak.ip is None and leak.port is None
    assert result.complete


@pytest.mark.network
@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("spfplus.test", {("dns.spf.permissive", "")}),
        ("spfneutral.test", {("dns.spf.permissive", "")}),
        ("nospf.test", {("dns.spf.missing", "")}),
        ("dmarcnone.test", {("dns.dmarc.policy_none", "")}),
        ("nodmarc.test", {("dns.dmarc.missing", "")}),
        ("nomail.test", {("dns.spf.missing", ""), ("dns.dmarc.missing", "")}),
        ("badns.test", {("dns.ns_unresolvable", "ns.gone.test")}),
        (
            "lame.test",
            {("dns.lame_delegation", "ns-refuse.test"), ("dns.lame_delegation", "ns-noaa.test")},
        ),
        ("wild.test", set()),
        ("nomx.test", set()),
    ],
)
def test_each_bad_zone_yields_exactly_its_findings(
    world: World, domain: str, expected: set[tuple[str, str]]
) -> None:
    result = scan(settings_for(world), domain)
    assert ids(result) == ZONE_DEFAULTS | expected
    assert result.complete


@pytest.mark.network
def test_a_lame_server_listed_only_by_the_parent_delegation_is_found(world: World) -> None:
    # Given a zone whose own NS records are fine, delegated by its parent to a refusing server too
    result = scan(settings_for(world), "delegated.test")
    # Then that server is reported as lame, saying the parent lists it
    assert ids(result) == ZONE_DEFAULTS | {("dns.lame_delegation", "ns-refuse.test")}
    assert finding(result, "dns.lame_delegation").evidence["listed_by"] == ["parent"]


@pytest.mark.network
def test_permissive_spf_evidence_names_the_all_term(world: World) -> None:
    plus = finding(scan(settings_for(world), "spfplus.test"), "dns.spf.permissive")
    neutral = finding(scan(settings_for(world), "spfneutral.test"), "dns.spf.permissive")
    assert plus.evidence["all"] == "+all"
    assert neutral.evidence["all"] == "?all"
    assert neutral.evidence["records"] == ["spfneutral.test: v=spf1 ip4:192.0.2.0/24 ?all"]


@pytest.mark.network
def test_lame_delegation_evidence_says_what_each_server_did(world: World) -> None:
    result = scan(settings_for(world), "lame.test")
    refused = next(f for f in result.findings if f.discriminator == "ns-refuse.test")
    no_aa = next(f for f in result.findings if f.discriminator == "ns-noaa.test")
    assert "REFUSED" in refused.evidence["addresses"][REFUSER]
    assert "AA" in no_aa.evidence["addresses"][NO_AA]


@pytest.mark.network
def test_a_declared_mail_domain_without_mx_gets_the_mail_checks(world: World) -> None:
    result = scan(settings_for(world), "nomx.test", mail_domain=True)
    assert ids(result) == ZONE_DEFAULTS | {("dns.spf.missing", ""), ("dns.dmarc.missing", "")}


@pytest.mark.network
def test_dangling_cname_is_reported_directly_and_through_a_chain(world: World) -> None:
    registered = {"cname.test", "dangling.cname.test", "chain.cname.test"}
    direct = scan(settings_for(world), "dangling.cname.test", registered=registered)
    chained = scan(settings_for(world), "chain.cname.test", registered=registered)
    assert ids(direct) == {("dns.dangling_cname", "dangling.cname.test")}
    assert ids(chained) == {("dns.dangling_cname", "chain.cname.test")}
    assert finding(chained, "dns.dangling_cname").evidence["cname_chain"] == [
        "chain.cname.test",
        "dangling.cname.test",
        "gone.nowhere.test",
    ]


@pytest.mark.network
def test_a_cname_to_an_existing_name_is_not_dangling(world: World) -> None:
    result = scan(settings_for(world), "alias.cname.test", registered={"cname.test"})
    assert ids(result) == set()


@pytest.mark.network
def test_a_cname_loop_is_a_scan_error_not_a_dangling_cname(world: World) -> None:
    result = scan(settings_for(world), "loop1.cname.test", registered={"cname.test"})
    # CAA(loop1) follows the alias too (RFC 8659 §3): its relevant set is unknown as well
    assert ids(result) == {
        ("scan.error", "dns:mx"),
        ("scan.error", "dns:cname"),
        ("scan.error", "dns:caa"),
    }
    assert "CNAME loop" in finding_with(result, "dns:cname").evidence["detail"]
    assert not result.complete


@pytest.mark.network
def test_a_name_under_a_wildcard_is_neither_dangling_nor_crashing(world: World) -> None:
    # The wildcard gives every name an address and an MX, so the mail checks apply.
    result = scan(settings_for(world), "anything.wild.test", registered={"wild.test"})
    assert ids(result) == {("dns.spf.missing", ""), ("dns.dmarc.missing", "")}


@pytest.mark.network
def test_sixty_addresses_for_one_name_server_are_capped(world: World) -> None:
    result = scan(settings_for(world), "sixty.test")
    assert ids(result) == ZONE_DEFAULTS | {("dns.lame_delegation", "ns-many.test")}
    lame = finding(result, "dns.lame_delegation")
    assert lame.evidence["addresses_probed"] == 4
    assert lame.evidence["addresses_not_probed"] == 56


@pytest.mark.network
def test_a_refused_answer_while_climbing_for_caa_is_a_scan_error_not_caa_missing(
    world: World,
) -> None:
    # Given a zone whose parent (example.) the resolver refuses to answer for
    result = scan(settings_for(world), "orphan.example")
    # Then the relevant CAA set is unknown (RFC 8659 §3): a scan problem, the family incomplete
    assert ids(result) == {("dns.dnssec.missing", ""), ("scan.error", "dns:caa")}
    assert "refused" in finding_with(result, "dns:caa").evidence["detail"]
    assert not result.complete


@pytest.mark.network
def test_a_dmarc_query_that_times_out_is_a_timeout_never_a_missing_record(world: World) -> None:
    # Given the resolver drops the _dmarc query of a zone that indeed has no DMARC record
    settings = settings_for(world, resolver=FLAKY)
    # When the domain is scanned
    result = scan(settings, "nodmarc.test")
    # Then the probe is reported as timed out, DMARC is not called missing, and nothing may resolve
    assert ids(result) == ZONE_DEFAULTS | {("scan.timeout", "dns:dmarc")}
    assert ("dns.dmarc.missing", "") not in ids(result)
    assert not result.complete


@pytest.mark.network
def test_servfail_is_a_scan_error_never_a_missing_record(world: World) -> None:
    # Control: through the faithful resolver both records are really missing.
    assert ids(scan(settings_for(world), "nomail.test")) >= {
        ("dns.spf.missing", ""),
        ("dns.dmarc.missing", ""),
    }
    result = scan(settings_for(world, resolver=FLAKY), "nomail.test")
    assert ids(result) == ZONE_DEFAULTS | {("scan.error", "dns:spf"), ("scan.error", "dns:dmarc")}
    assert "SERVFAIL" in finding_with(result, "dns:spf").evidence["detail"]
    assert not result.complete


OLD_WORLD_MAIL_NAMES = [
    "good.test",
    "www.good.test",
    "open.test",
    "spfplus.test",
    "spfneutral.test",
    "nospf.test",
    "dmarcnone.test",
    "nodmarc.test",
    "nomail.test",
    "nomx.test",
    "anything.wild.test",
]


@pytest.mark.network
@pytest.mark.parametrize("name", OLD_WORLD_MAIL_NAMES)
def test_mail_verdicts_agree_with_pyspf_and_the_dmarc_package(world: World, name: str) -> None:
    # Given each mail name of this world, judged by pyspf and the dmarc package
    resolver = oracle_resolver(KNOT, world.port)
    spf_expected = spf_ids_from_result(pyspf_result(name, resolver))
    dmarc_expected = dmarc_ids(name, txt_reader(resolver))
    # When vigie scans it as a mail domain
    result = scan(settings_for(world), name, mail_domain=True, registered={"test", name})
    # Then vigie's SPF and DMARC verdicts are theirs
    found = {f.check_id for f in result.findings}
    assert {i for i in found if i.startswith("dns.spf.")} == spf_expected
    assert {i for i in found if i.startswith("dns.dmarc.")} == dmarc_expected


def finding_with(result: FamilyResult, discriminator: str) -> Any:
    return next(f for f in result.findings if f.discriminator == discriminator)


@pytest.mark.network
def test_truncated_udp_answers_are_retried_over_tcp(world: World) -> None:
    before = len(world.truncator.queries)
    result = scan(settings_for(world, resolver=TRUNCATOR), "good.test")
    assert ids(result) == set()
    protocols = {protocol for _, _, protocol in world.truncator.queries[before:]}
    assert protocols == {"udp", "tcp"}


@pytest.mark.network
def test_name_servers_outside_the_scope_are_not_contacted(world: World) -> None:
    # Given no allow list: loopback name servers are out of scope, except the configured resolver
    result = scan(settings_for(world, allow=()), "open.test")
    # Then ns1 (the resolver, infrastructure) is probed and ns2 is recorded as out of scope
    assert ids(result) == ZONE_DEFAULTS | {
        ("dns.axfr_open", "ns1.test"),
        ("scan.out_of_scope", f"dns:ns ns2.test {SECOND_NS}"),
    }
    assert result.complete


@pytest.mark.network
def test_zone_findings_go_to_the_registered_apex_only(world: World) -> None:
    registered = {"open.test", "www.open.test"}
    assert ids(scan(settings_for(world), "www.open.test", registered=registered)) == set()
    unregistered_apex = scan(settings_for(world), "www.open.test", registered={"www.open.test"})
    assert ids(unregistered_apex) >= ZONE_DEFAULTS
    assert {f.domain for f in unregistered_apex.findings} == {"www.open.test"}


@pytest.mark.network
def test_zone_checks_run_once_per_sweep(world: World) -> None:
    async def run() -> tuple[list[FamilyResult], list[str]]:
        ctx = ProbeContext.from_settings(settings_for(world))
        try:
            results = await asyncio.gather(
                check_domain(ctx, "open.test", False),
                check_domain(ctx, "www.open.test", False),
                check_domain(ctx, "intranet.open.test", False),
            )
            return list(results), list(ctx.shared["dns"].zones)  # type: ignore[attr-defined]
        finally:
            await ctx.aclose()

    results, zones = asyncio.run(run())
    assert zones == ["open.test."]
    apex, www, intranet = results
    assert ("dns.axfr_open", "ns1.test") in ids(apex)
    assert ids(www) == ids(apex) == ids(intranet)


# --- pure judgments (no network) ------------------------------------------------------


def check_ids(findings: list[Finding]) -> list[str]:
    return sorted(f.check_id for f in findings)


@pytest.mark.parametrize(
    ("record", "qualifier", "errors"),
    [
        ("v=spf1 mx -all", "-", 0),
        ("v=spf1 +all", "+", 0),
        ("v=spf1 all", "+", 0),
        ("V=SPF1 ip4:192.0.2.0/24 ~all", "~", 0),
        ("v=spf1 a mx", None, 0),
        (
            "v=spf1 a/24 mx:example.org/24//64 ip6:2001:db8::/32 include:_spf.example.org -all",
            "-",
            0,
        ),
        ("v=spf1 foo:bar -all", "-", 1),
        ("v=spf1 ip4:300.1.1.1 -all", "-", 1),
        ("v=spf1 ip4:2001:db8::1 -all", "-", 1),
        ("v=spf1 include: -all", "-", 1),
        ("v=spf1 a: -all", "-", 1),
        ("v=spf1 a/33 -all", "-", 1),
        ("v=spf1 -all:x", None, 1),
        ("v=spf1 redirect=a.example redirect=b.example", None, 1),
        ("v=spf1 include:%{z}.example -all", "-", 1),
        ("v=spf1 ip4:192.0.2.0/024 -all", "-", 1),
        # The 10-term limit is counted while evaluating the tree, not per record.
        ("v=spf1 " + " ".join(f"include:i{n}.example" for n in range(11)) + " -all", "-", 0),
    ],
)
def test_parse_spf_finds_the_all_term_and_syntax_errors(
    record: str, qualifier: str | None, errors: int
) -> None:
    policy = parse_spf(record)
    assert policy.all_qualifier == qualifier
    assert len(policy.errors) == errors, policy.errors


def test_parse_spf_warns_about_terms_after_all_and_ptr() -> None:
    policy = parse_spf("v=spf1 ptr -all mx")
    assert policy.errors == ()
    assert len(policy.warnings) == 2


def test_parse_spf_keeps_the_redirect_only_without_all() -> None:
    assert parse_spf("v=spf1 redirect=_spf.example.org").redirect == "_spf.example.org"
    assert parse_spf("v=spf1 -all redirect=_spf.example.org").redirect is None


def txt_zone(records: dict[str, list[str]]) -> Any:
    """A lookup function answering TXT from ``records`` (A for every listed name)."""

    async def lookup(name: str, rdtype: str) -> Lookup:
        key = name.lower().rstrip(".")
        if key not in records:
            return Lookup(name, rdtype, Answer.NXDOMAIN)
        if rdtype == "TXT" and records[key]:
            return Lookup(name, rdtype, Answer.OK, records=tuple(records[key]))
        if rdtype == "A":
            return Lookup(name, rdtype, Answer.OK, records=("192.0.2.1",))
        return Lookup(name, rdtype, Answer.NODATA)

    return lookup


def judge_spf(records: dict[str, list[str]], domain: str = "example.ml") -> list[Finding]:
    return spf_findings(asyncio.run(evaluate_spf(domain, txt_zone(records))))


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], ["dns.spf.missing"]),
        (["google-site-verification=abc", "v=spf10 -all"], ["dns.spf.missing"]),
        (["v=spf1 mx -all", "v=spf1 a -all"], ["dns.spf.invalid"]),
        (["v=spf1 +all"], ["dns.spf.permissive"]),
        (["v=spf1 mx ?all"], ["dns.spf.permissive"]),
        (["v=spf1 mx"], ["dns.spf.permissive"]),
        (["v=spf1 mx ~all"], []),
        (["v=spf1 -all"], []),
        (["v=spf1 mx bogus -all"], ["dns.spf.invalid"]),
    ],
)
def test_spf_findings(records: list[str], expected: list[str]) -> None:
    assert check_ids(judge_spf({"example.ml": records})) == expected


def test_spf_syntax_errors_and_multiple_records_are_evidence() -> None:
    broken = judge_spf({"example.ml": ["v=spf1 mx bogus -all"]})[0]
    assert "unknown mechanism 'bogus'" in broken.evidence["reason"]
    assert broken.evidence["result"] == "permerror"
    multiple = judge_spf({"example.ml": ["v=spf1 -all", "v=spf1 mx -all"]})[0]
    assert multiple.evidence["records"] == [
        "example.ml: v=spf1 -all",
        "example.ml: v=spf1 mx -all",
    ]
    assert "2 SPF records" in multiple.evidence["reason"]


def test_spf_untrusted_text_is_clipped() -> None:
    finding = judge_spf({"example.ml": ["v=spf1 " + "ip4:192.0.2.1 " * 60 + "+all"]})[0]
    assert len(finding.evidence["records"][0]) <= 513 + len("example.ml: ")


@pytest.mark.parametrize(
    ("target_records", "expected"),
    [
        (["v=spf1 -all"], []),
        (["v=spf1 +all"], ["dns.spf.permissive"]),
        ([], ["dns.spf.invalid"]),  # RFC 7208 §6.1: a redirect to no record is a permerror
    ],
)
def test_spf_redirects_are_judged_on_their_target(
    target_records: list[str], expected: list[str]
) -> None:
    records = {"example.ml": ["v=spf1 redirect=_spf.example.ml"], "_spf.example.ml": target_records}
    assert check_ids(judge_spf(records)) == expected


def test_spf_include_of_a_record_passing_everyone_is_permissive() -> None:
    # RFC 7208 §5.2: include matches when the included domain gives pass.
    records = {
        "example.ml": ["v=spf1 include:open.example.ml -all"],
        "open.example.ml": ["v=spf1 +all"],
    }
    finding = judge_spf(records)[0]
    assert finding.check_id == "dns.spf.permissive"
    assert "open.example.ml" in finding.evidence["reason"]


def test_spf_six_plus_six_through_redirect_exceeds_the_lookup_limit() -> None:
    six = " ".join(f"a:h{n}.example.ml" for n in range(5))
    records = {
        "example.ml": [f"v=spf1 {six} redirect=b.example.ml"],
        "b.example.ml": [f"v=spf1 {six} a:h5.example.ml -all"],
        **{f"h{n}.example.ml": [] for n in range(6)},
    }
    finding = judge_spf(records)[0]
    assert finding.check_id == "dns.spf.invalid"
    assert finding.evidence["dns_lookups"] == 11


def test_spf_macro_only_a_receiver_can_expand_gives_no_verdict() -> None:
    assert judge_spf({"example.ml": ["v=spf1 include:%{i}.spf.example.ml -all"]}) == []


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], ["dns.dmarc.missing"]),
        (["some other text"], ["dns.dmarc.missing"]),
        (["v=DMARC1; p=reject"], []),
        (["v=DMARC1; p=quarantine; pct=50"], ["dns.dmarc.partial"]),
        (["v=DMARC1; p=reject; pct=0"], ["dns.dmarc.partial"]),
        (["v=DMARC1; p=quarantine; pct=0"], ["dns.dmarc.policy_none"]),
        (["v=DMARC1; p=quarantine; pct=100"], []),
        (["v=DMARC1; p=none; rua=mailto:d@example.ml"], ["dns.dmarc.policy_none"]),
        (["v=DMARC1;p=NONE"], ["dns.dmarc.policy_none"]),
        (["v=DMARC1; p=reject", "v=DMARC1; p=none"], ["dns.dmarc.invalid"]),
        (["v=DMARC1; rua=mailto:d@example.ml"], ["dns.dmarc.policy_none"]),
        (["v=DMARC1; p=bogus"], ["dns.dmarc.invalid"]),
        (["v=dmarc1; p=reject"], ["dns.dmarc.invalid"]),
        (["p=reject; v=DMARC1"], ["dns.dmarc.invalid"]),
        # RFC 7489 §6.3: other syntax errors are discarded for the default (pct=100)
        (["v=DMARC1; p=reject; pct=150"], []),
        (["v=DMARC1; p=quarantine; pct=abc; adkim=x"], []),
        # §6.6.3 step 6: an invalid sp= spoils the record like an invalid p=
        (["v=DMARC1; p=reject; sp=bogus"], ["dns.dmarc.invalid"]),
        (["v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.ml"], ["dns.dmarc.policy_none"]),
    ],
)
def test_dmarc_findings(records: list[str], expected: list[str]) -> None:
    assert check_ids(dmarc_findings("example.ml", records)) == expected


@pytest.mark.parametrize(
    ("parent_records", "expected"),
    [
        (["v=DMARC1; p=reject"], []),
        (["v=DMARC1; p=reject; sp=none"], ["dns.dmarc.policy_none"]),
        (["v=DMARC1; p=none; sp=reject"], []),
        ([], ["dns.dmarc.missing"]),
    ],
)
def test_dmarc_falls_back_to_the_organisational_domain(
    parent_records: list[str], expected: list[str]
) -> None:
    findings = dmarc_findings("www.example.ml", [], ("example.ml", parent_records))
    assert check_ids(findings) == expected
    if expected == ["dns.dmarc.policy_none"]:
        assert findings[0].evidence["inherited"] is True


def test_parse_dmarc_reads_tags() -> None:
    record = parse_dmarc("v=DMARC1; p=Quarantine; sp=none; rua=mailto:a@example.ml,https://x")
    assert record.policy == "quarantine"
    assert record.subdomain_policy == "none"
    assert record.has_report_address


@pytest.mark.parametrize(
    ("name", "organisational"),
    [
        ("www.example.ml", "example.ml"),
        ("agence.gouv.ml", "agence.gouv.ml"),  # gouv.ml is a public suffix
        ("a.b.example.co.uk", "example.co.uk"),
        ("gouv.ml", None),
        ("sub.org.vtest", "org.vtest"),  # an unlisted suffix: the PSL's default rule "*"
    ],
)
def test_organisational_domain_comes_from_the_public_suffix_list(
    name: str, organisational: str | None
) -> None:
    assert organisational_domain(name) == organisational


def lookup(outcome: Answer, records: tuple[str, ...] = (), **extra: Any) -> Lookup:
    return Lookup("example.ml.", "A", outcome, records=records, **extra)


def test_dnssec_findings_for_unsigned_zones() -> None:
    assert check_ids(dnssec_findings(DnssecObservation("example.ml."))) == ["dns.dnssec.missing"]


def test_caa_findings() -> None:
    assert (
        caa_findings(
            "example.ml.", CaaSearch("ml.", ('0 issue "ca.example"',), ("example.ml.", "ml."))
        )
        == []
    )
    missing = caa_findings("example.ml.", CaaSearch(None, checked=("example.ml.", "ml.")))
    assert check_ids(missing) == ["dns.caa.missing"]
    assert missing[0].evidence["checked"] == ["example.ml", "ml"]


def soa_response(
    *, aa: bool, rcode: int = dns.rcode.NOERROR, with_soa: bool = True
) -> dns.message.Message:
    query = dns.message.make_query("example.ml.", "SOA")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if aa:
        response.flags |= dns.flags.AA
    if with_soa:
        response.answer.append(
            dns.rrset.from_text(
                "example.ml.", 300, "IN", "SOA", "ns1.example.ml. h.example.ml. 1 2 3 4 5"
            )
        )
    return response


def test_judge_soa_response() -> None:
    assert judge_soa_response("example.ml.", soa_response(aa=True)) == ""
    assert "AA" in judge_soa_response("example.ml.", soa_response(aa=False))
    assert "REFUSED" in judge_soa_response(
        "example.ml.", soa_response(aa=False, rcode=dns.rcode.REFUSED, with_soa=False)
    )
    assert "without the zone's SOA" in judge_soa_response(
        "example.ml.", soa_response(aa=True, with_soa=False)
    )


@pytest.mark.parametrize(
    ("a", "aaaa", "expected"),
    [
        (Answer.NXDOMAIN, Answer.NXDOMAIN, ["dns.ns_unresolvable"]),
        (Answer.NODATA, Answer.NODATA, ["dns.ns_unresolvable"]),
        (Answer.TIMEOUT, Answer.NODATA, []),
        (Answer.OK, Answer.SERVFAIL, []),
    ],
)
def test_ns_unresolvable_only_on_a_negative_answer(
    a: Answer, aaaa: Answer, expected: list[str]
) -> None:
    server = NameServer("ns.example.ml.", lookup(a), lookup(aaaa))
    assert check_ids(ns_unresolvable_findings("example.ml.", server)) == expected


def test_nameserver_findings_per_address_verdict() -> None:
    open_transfer = Transfer(allowed=True, records=12, names=("a.example.ml.", "b.example.ml."))
    probes = (
        AddressProbe(
            "ns.example.ml.", "192.0.2.1", NsVerdict.AUTHORITATIVE, transfer=open_transfer
        ),
        AddressProbe(
            "ns.example.ml.", "192.0.2.2", NsVerdict.LAME, "answered REFUSED for the zone"
        ),
        AddressProbe("ns.example.ml.", "192.0.2.3", NsVerdict.SILENT, "no answer"),
        AddressProbe("ns.example.ml.", "192.0.2.4", NsVerdict.OUT_OF_SCOPE, "not allowed"),
        AddressProbe(
            "ns.example.ml.",
            "192.0.2.5",
            NsVerdict.AUTHORITATIVE,
            transfer=Transfer(allowed=False, timed_out=True, detail="slow"),
        ),
    )
    server = NameServer("ns.example.ml.", lookup(Answer.OK), lookup(Answer.NODATA), probes)
    findings = nameserver_findings("example.ml.", server)
    assert sorted((f.check_id, f.discriminator) for f in findings) == [
        ("dns.axfr_open", "ns.example.ml"),
        ("dns.lame_delegation", "ns.example.ml"),
        ("scan.out_of_scope", "dns:ns ns.example.ml 192.0.2.4"),
        ("scan.timeout", "dns:axfr ns.example.ml 192.0.2.5"),
        ("scan.timeout", "dns:ns ns.example.ml 192.0.2.3"),
    ]
    axfr = next(f for f in findings if f.check_id == "dns.axfr_open")
    assert axfr.evidence["records"] == 12
    assert all(f.ip is None and f.port is None for f in findings)


def test_the_public_interface_is_complete() -> None:
    import vigie.scanner.dns as family

    assert sorted(family.__all__) == sorted(
        # (submodules such as checks.py are imported by the registry, not re-exported)
        name
        for name, value in vars(family).items()
        if not name.startswith("_")
        and name not in ("annotations",)
        and not isinstance(value, types.ModuleType)
    )


def test_a_malformed_name_is_a_failed_lookup_not_a_crash() -> None:
    # No server is contacted: the name is refused before any query is built.
    resolver = Resolver([("127.0.9.250", 9)], timeout_s=0.1, lifetime_s=0.2)
    result = asyncio.run(resolver.lookup("a" * 70 + ".example.ml", "TXT"))
    assert result.outcome is Answer.SERVFAIL and result.failed
    assert "not a valid DNS name" in result.detail
