"""The DNS checks against the standards and against references vigie did not write.

Oracles:
- SPF: pyspf's check_host() over every mail name of the test world, and the
  openspf.org RFC 7208 test suite (tests/data/spf) run through vigie's evaluator;
- DMARC: the ``dmarc`` package's parser (receiver mode) and evaluation, with
  publicsuffix2 for the organisational domain, over every mail name; the
  record examples of RFC 7489 Appendix B;
- DNSSEC: Knot signs the zones and its ``keymgr`` computes the DS records;
  BIND's ``delv`` validates each zone from the trust anchor of the parent;
- CAA: dnspython's CAA rdata, on the RFC 8659 examples.
The world (tests/scanner/dns_standards_world.py) runs on 127.0.24.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.dnssec
import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CAA
import dns.rrset
import pytest

from tests.dns_server import free_port, start_zone_server
from tests.scanner.dns_standards_world import (
    KNOT,
    MAIL_NAMES,
    REGISTERED,
    StandardsWorld,
    standards_world,
)
from tests.scanner.mail_oracles import (
    dmarc_ids,
    oracle_resolver,
    pyspf_result,
    spf_ids_from_result,
    txt_reader,
)
from tests.scanner.spf_suite import SuiteCase, load_cases, lookup_function
from tests.servers import require_program
from vigie.config import Settings
from vigie.model import FamilyResult
from vigie.scanner.dns import (
    DnssecObservation,
    Sender,
    check_domain,
    dmarc_findings,
    dnssec_findings,
    evaluate_spf,
    parse_caa,
    remember_registered_domains,
)
from vigie.scanner.dns._dnssec import ds_matches, key_tag
from vigie.scanner.probe_context import ProbeContext


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandardsWorld]:
    with standards_world(tmp_path_factory.mktemp("dns-standards")) as built:
        yield built


def settings_for(world: StandardsWorld) -> Settings:
    return Settings.model_validate(
        {
            "dns": {
                "resolvers": [world.resolver],
                "timeout_s": 0.5,
                "lifetime_s": 1.5,
                "nameserver_port": world.port,
                "axfr_lifetime_s": 2.0,
                "max_addresses": 2,
            },
            "scope": {"allow": ["127.0.24.0/24"]},
        }
    )


def scan(world: StandardsWorld, domain: str) -> FamilyResult:
    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(settings_for(world))
        try:
            remember_registered_domains(ctx, REGISTERED | {domain})
            return await check_domain(ctx, domain, True)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def family_ids(result: FamilyResult, prefix: str) -> set[str]:
    return {f.check_id for f in result.findings if f.check_id.startswith(prefix)}


# --- SPF and DMARC: vigie against pyspf and the dmarc package, every mail name --------------


@pytest.mark.network
@pytest.mark.parametrize("name", MAIL_NAMES)
def test_mail_verdicts_agree_with_pyspf_and_the_dmarc_package(
    world: StandardsWorld, name: str
) -> None:
    # Given a mail name of the world, judged by references vigie did not write
    spf_expected = spf_ids_from_result(pyspf_result(name, oracle_resolver(KNOT, world.port)))
    dmarc_expected = dmarc_ids(name, txt_reader(oracle_resolver(KNOT, world.port)))
    # When vigie scans it
    result = scan(world, name)
    # Then its SPF and DMARC verdicts are the references' and the scan is complete
    assert family_ids(result, "dns.spf.") == spf_expected
    assert family_ids(result, "dns.dmarc.") == dmarc_expected
    assert not family_ids(result, "scan."), result.findings


@pytest.mark.network
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("spf-includes-open", {"dns.spf.permissive"}),  # include:x where x is +all (§5.2)
        ("spf-redirect-open", {"dns.spf.permissive"}),
        ("spf-six", {"dns.spf.invalid"}),  # 6 + 6 through redirect= (§4.6.4)
        ("spf-ten", set()),  # exactly 10: allowed
        ("spf-three-voids", {"dns.spf.invalid"}),
        ("spf-two-voids", set()),
        ("spf-include-none", {"dns.spf.invalid"}),
        ("spf-two", {"dns.spf.invalid"}),
        ("spf-exists-all", {"dns.spf.permissive"}),
        ("spf-mx-many", {"dns.spf.invalid"}),
    ],
)
def test_spf_deviations_of_issue_17(world: StandardsWorld, name: str, expected: set[str]) -> None:
    result = scan(world, f"{name}.vtest")
    assert family_ids(result, "dns.spf.") == expected


@pytest.mark.network
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub.org.vtest", set()),  # a delegated sub-zone inherits sp=quarantine
        ("sub.orgnone.vtest", {"dns.dmarc.policy_none"}),  # sp=none
        ("agence.gouv.ml", {"dns.dmarc.missing"}),  # never the public suffix's policy
        ("dm-lower.vtest", {"dns.dmarc.invalid"}),  # v=dmarc1: case-sensitive (§6.4)
        ("dm-notfirst.vtest", {"dns.dmarc.invalid"}),
        ("dm-pct50.vtest", {"dns.dmarc.partial"}),
        ("dm-pct0-reject.vtest", {"dns.dmarc.partial"}),
        ("dm-pct0-quarantine.vtest", {"dns.dmarc.policy_none"}),
    ],
)
def test_dmarc_deviations_of_issue_17(world: StandardsWorld, name: str, expected: set[str]) -> None:
    result = scan(world, name)
    assert family_ids(result, "dns.dmarc.") == expected


@pytest.mark.network
def test_inherited_dmarc_evidence_names_the_organisational_record(world: StandardsWorld) -> None:
    finding = next(
        f for f in scan(world, "sub.orgnone.vtest").findings if f.check_id.startswith("dns.dmarc")
    )
    assert finding.evidence["source"] == "_dmarc.orgnone.vtest"
    assert finding.evidence["inherited"] is True


# --- SPF: the openspf.org RFC 7208 test suite -------------------------------------------------

SUITE = load_cases()


@pytest.mark.parametrize("case", SUITE, ids=[f"{c.scenario[:20]}:{c.name}" for c in SUITE])
def test_rfc7208_test_suite(case: SuiteCase) -> None:
    # Given a scenario of the suite: its zone, client, MAIL FROM and HELO
    sender = case.mailfrom
    domain = sender.rpartition("@")[2] if sender else case.helo
    if sender.startswith("@"):
        sender = "postmaster" + sender
    who = Sender(ipaddress.ip_address(case.host), sender, case.helo)
    # When vigie's evaluator runs check_host()
    evaluation = asyncio.run(evaluate_spf(domain, lookup_function(case.zone), who))
    # Then its result is one the suite accepts
    assert evaluation.result in case.results, (case.spec, evaluation.reason)


# --- DMARC: the examples of RFC 7489 Appendix B ---------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # B.2.1: entire domain, monitoring only
        ("v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com", ["dns.dmarc.policy_none"]),
        # B.2.2: per-message failure reports directed to a third party
        (
            "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com; "
            "ruf=mailto:auth-reports@thirdparty.example.net",
            ["dns.dmarc.policy_none"],
        ),
        # B.2.4: subdomain, testing, and multiple aggregate report URIs (quarantine 25%)
        (
            "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com,"
            "mailto:tld-test@thirdparty.example.net!10m; pct=25",
            ["dns.dmarc.partial"],
        ),
    ],
)
def test_rfc7489_appendix_b_records(record: str, expected: list[str]) -> None:
    findings = dmarc_findings("example.com", [record])
    assert sorted(f.check_id for f in findings) == expected
    # the dmarc package reads the same records the same way
    assert dmarc_ids("example.com", lambda _: [record]) == set(expected)


# --- DNSSEC: Knot signs, keymgr gives the DS, delv validates -----------------------------


def delv_verdict(world: StandardsWorld, tmp_path: Path, zone: str) -> str:
    delv = require_program("delv")
    keys = []
    for rrset in world.anchor:
        for line in rrset.splitlines():
            owner, _, _, _, flags, protocol, algorithm, *key = line.split()
            if flags == "257":
                keys.append(
                    f'  {owner} static-key {flags} {protocol} {algorithm} "{"".join(key)}";'
                )
    anchors = tmp_path / "anchors.conf"
    anchors.write_text("trust-anchors {\n" + "\n".join(keys) + "\n};\n", encoding="utf-8")
    done = subprocess.run(
        [delv, f"@{KNOT}", "-p", str(world.port), "-a", str(anchors), "+root=vtest", zone, "SOA"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.network
@pytest.mark.parametrize(
    ("zone", "expected", "delv_says"),
    [
        ("signed.vtest", set(), "fully validated"),
        ("island.vtest", {"dns.dnssec.invalid"}, "unsigned answer"),
        ("wrongds.vtest", {"dns.dnssec.invalid"}, "broken trust chain"),
        ("plain.vtest", {"dns.dnssec.missing"}, "unsigned answer"),
    ],
)
def test_dnssec_verdicts_agree_with_delv(
    world: StandardsWorld, tmp_path: Path, zone: str, expected: set[str], delv_says: str
) -> None:
    # Given a zone that delv (BIND's validator) judges from the parent's trust anchor
    assert delv_says in delv_verdict(world, tmp_path, zone)
    # When vigie scans it
    result = scan(world, zone)
    # Then vigie calls valid only what delv fully validates, and says why otherwise
    assert family_ids(result, "dns.dnssec.") == expected
    assert not family_ids(result, "scan.")


def observe(world: StandardsWorld, zone: str) -> DnssecObservation:
    """The zone's DNSKEY, SOA and DS with signatures, straight from Knot."""
    name = dns.name.from_text(zone)

    def ask(rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        return dns.query.tcp(query, KNOT, port=world.port, timeout=2)

    def pick(
        response: dns.message.Message, rdtype: dns.rdatatype.RdataType, covers: int = 0
    ) -> dns.rrset.RRset | None:
        wanted = dns.rdatatype.RRSIG if covers else rdtype
        return response.get_rrset(
            response.answer, name, dns.rdataclass.IN, wanted, dns.rdatatype.RdataType(covers)
        )

    keys, soa, ds = (ask(t) for t in (dns.rdatatype.DNSKEY, dns.rdatatype.SOA, dns.rdatatype.DS))
    return DnssecObservation(
        name.to_text(),
        pick(keys, dns.rdatatype.DNSKEY),
        pick(keys, dns.rdatatype.DNSKEY, dns.rdatatype.DNSKEY),
        pick(soa, dns.rdatatype.SOA),
        pick(soa, dns.rdatatype.SOA, dns.rdatatype.SOA),
        pick(ds, dns.rdatatype.DS),
    )


@pytest.mark.network
def test_knot_signatures_verify_and_keymgr_ds_match_the_zone_key(world: StandardsWorld) -> None:
    observation = observe(world, "signed.vtest")
    assert observation.dnskey is not None and observation.ds is not None
    # key tags as dnspython computes them (RFC 4034 Appendix B)
    for key in observation.dnskey:
        assert key_tag(key) == dns.dnssec.key_id(key)
    # keymgr's DS (SHA-256 and SHA-384) each match one DNSKEY
    assert all(
        any(ds_matches("signed.vtest.", k, d) for k in observation.dnskey) for d in observation.ds
    )
    assert dnssec_findings(observation) == []


@pytest.mark.network
def test_expired_or_altered_signatures_do_not_validate(world: StandardsWorld) -> None:
    observation = observe(world, "signed.vtest")
    assert observation.dnskey_sigs is not None
    # Given the real signatures, a moment after they expire
    expiry = max(sig.expiration for sig in observation.dnskey_sigs)
    late = dnssec_findings(observation, now=expiry + 1)
    assert [f.check_id for f in late] == ["dns.dnssec.invalid"]
    assert "expired" in " ".join(late[0].evidence["problems"])
    # Given one byte of each DNSKEY signature flipped
    altered = dns.rrset.RRset(
        observation.dnskey_sigs.name, dns.rdataclass.IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY
    )
    for sig in observation.dnskey_sigs:
        broken = bytearray(sig.signature)
        broken[5] ^= 0x01
        altered.add(sig.replace(signature=bytes(broken)), observation.dnskey_sigs.ttl)
    tampered = DnssecObservation(
        observation.zone,
        observation.dnskey,
        altered,
        observation.soa,
        observation.soa_sigs,
        observation.ds,
    )
    findings = dnssec_findings(tampered)
    assert [f.check_id for f in findings] == ["dns.dnssec.invalid"]
    assert "does not verify" in " ".join(findings[0].evidence["problems"])


@pytest.mark.network
def test_a_ds_question_answered_by_the_zone_itself_is_no_island(world: StandardsWorld) -> None:
    # Given a signed zone whose parent the resolver does not serve: the negative DS answer
    # carries the zone's own SOA (RFC 4035 §3.1.4.1: DS is the parent's data)
    result = scan(world, "alone.example")
    # Then vigie does not call it an island: the link to the parent is unknown
    assert family_ids(result, "dns.dnssec.") == set()
    # but signatures that fail whatever the parent says still do
    observation = observe(world, "alone.example")
    assert observation.dnskey_sigs is not None
    expiry = max(sig.expiration for sig in observation.dnskey_sigs)
    unknown_link = DnssecObservation(
        observation.zone,
        observation.dnskey,
        observation.dnskey_sigs,
        observation.soa,
        observation.soa_sigs,
        None,
        ds_from_parent=False,
    )
    assert dnssec_findings(unknown_link) == []
    late = dnssec_findings(unknown_link, now=expiry + 1)
    assert [f.check_id for f in late] == ["dns.dnssec.invalid"]


# --- CAA -----------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("iodef.vtest", {"dns.caa.no_issue_restriction"}),  # RFC 8659 §4: any CA may issue
        ("caaok.vtest", set()),
        ("caacrit.vtest", set()),  # an unknown critical property forbids issuance (§4.1)
    ],
)
def test_caa_verdicts(world: StandardsWorld, zone: str, expected: set[str]) -> None:
    result = scan(world, zone)
    assert family_ids(result, "dns.caa.") == expected


@pytest.mark.parametrize(
    "text",
    [
        # RFC 8659 §4 examples
        '0 issue "ca1.example.net"',
        '0 issue "ca1.example.net; account=230123"',
        '0 issuewild ";"',
        '0 iodef "mailto:security@example.com"',
        '0 iodef "https://iodef.example.com/"',
        '128 tbs "Unknown"',
        '0 ISSUE "ca.example"',
    ],
)
def test_parse_caa_reads_dnspython_rdata_fields(text: str) -> None:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text)
    assert isinstance(rdata, dns.rdtypes.ANY.CAA.CAA)
    parsed = parse_caa(text)
    assert parsed is not None
    assert (parsed.flags, parsed.tag, parsed.value) == (
        rdata.flags,
        rdata.tag.decode(),
        rdata.value.decode(),
    )


# --- a test world that answers like the real tree above its zones --------------------------

DEEP = "127.0.24.3"


@pytest.mark.network
def test_with_parents_a_signed_zone_validates_and_the_caa_climb_reaches_the_top(
    tmp_path: Path,
) -> None:
    # Given Knot serving only deep.gouv.example (signed), with its ancestors played for it
    zones = {
        "deep.gouv.example": (
            "$ORIGIN deep.gouv.example.\n$TTL 300\n"
            "@ SOA ns1.deep.gouv.example. h.deep.gouv.example. 1 3600 600 86400 300\n"
            "@ NS ns1.deep.gouv.example.\nns1 A 127.0.24.3\n"
        )
    }
    port = free_port([DEEP])
    with start_zone_server(
        tmp_path, DEEP, port, zones, signed={"deep.gouv.example"}, with_parents=True
    ) as knot:
        settings = Settings.model_validate(
            {
                "dns": {
                    "resolvers": [knot.resolver],
                    "timeout_s": 0.5,
                    "lifetime_s": 1.5,
                    "nameserver_port": port,
                },
                "scope": {"allow": ["127.0.24.0/24"]},
            }
        )

        async def run() -> FamilyResult:
            ctx = ProbeContext.from_settings(settings)
            try:
                return await check_domain(ctx, "deep.gouv.example", False)
            finally:
                await ctx.aclose()

        result = asyncio.run(run())
        ds = dns.query.udp(dns.message.make_query("deep.gouv.example", "DS"), DEEP, port=port)
        assert ds.answer and ds.answer[0].rdtype == dns.rdatatype.DS  # keymgr's, at gouv.example.
        assert knot.ds_records("deep.gouv.example")
    # Then vigie finds the DS at the parent and climbs for CAA up to example. without a refusal
    assert {f.check_id for f in result.findings} == {"dns.caa.missing"}
    assert result.complete
    caa = next(f for f in result.findings if f.check_id == "dns.caa.missing")
    assert caa.evidence["checked"] == ["deep.gouv.example", "gouv.example", "example"]
