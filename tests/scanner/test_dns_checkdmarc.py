"""vigie's SPF and DMARC verdicts against checkdmarc's, on the real Knot zones of the standards tests.

checkdmarc (domainaware/checkdmarc, Apache-2.0) is a third oracle vigie did
not write, beside pyspf and the ``dmarc`` package (tests/scanner/
test_dns_standards.py). It reads the same world (tests/scanner/
dns_standards_world.py), here served by Knot on 127.0.42.1.

Only checkdmarc's SPF and DMARC functions run (``get_spf_record``,
``get_dmarc_record``: they raise a typed exception for each problem), with
``nameservers`` naming the test Knot server alone: no BIMI, MTA-STS or SMTP
function, no HTTP. Every socket checkdmarc opens is recorded and must go to
that server (the autouse guard of tests/conftest.py refuses non-loopback
ones besides). checkdmarc 5.17.1 needs no Public Suffix List download: its
DMARC discovery walks the DNS tree (RFC 9989) and its ``publicsuffixlist``
import reads the list bundled with that package.

What checkdmarc says maps onto vigie's IDs as vigie's catalogue defines them:
- SPF: no record at the domain -> dns.spf.missing; a syntax error, several
  records, too many (void) lookups, a loop, or no record at a redirect
  target -> dns.spf.invalid; the record's ``all`` (checkdmarc's
  ``parsed["all"]``: the record's own, a redirect target's, "neutral"
  without one) pass or neutral -> dns.spf.permissive ("+all or ?all");
- DMARC: no record -> dns.dmarc.missing; several records, a record that does
  not start with ``v=DMARC1``, a syntax error or an invalid tag value ->
  dns.dmarc.invalid; the policy that applies (``p`` at the domain itself,
  ``sp`` at the record checkdmarc found above it) none -> dns.dmarc.policy_none.
  checkdmarc ignores ``pct`` (removed by RFC 9989): it never says partial.

Where the two differ, :data:`DELIBERATE` names the case, what each says and
the clause vigie follows; such a case must keep disagreeing exactly so, and
counts against agreement.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import checkdmarc.utils
import pytest
from checkdmarc.dmarc import (
    DMARCRecordNotFound,
    DMARCSyntaxError,
    MultipleDMARCRecords,
    UnrelatedTXTRecordFoundAtDMARC,
    get_dmarc_record,
)
from checkdmarc.spf import (
    MultipleSPFRTXTRecords,
    SPFIncludeLoop,
    SPFRecordNotFound,
    SPFRedirectLoop,
    SPFSyntaxError,
    SPFTooManyDNSLookups,
    SPFTooManyVoidDNSLookups,
    get_spf_record,
)
from dns.nameserver import Do53Nameserver

from tests.dns_server import world_settings
from tests.scanner.dns_standards_world import (
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
from vigie.model import FamilyResult
from vigie.scanner.dns import check_domain, remember_registered_domains
from vigie.scanner.probe_context import ProbeContext

ADDRESS = "127.0.42.1"  # this module's Knot (the standards tests use 127.0.24.1)
TIMEOUT_S = 1.0

# checkdmarc's exceptions and the vigie ID each means (the RFC 7208 permerrors)
SPF_INVALID = (
    MultipleSPFRTXTRecords,  # §4.5: several records
    SPFSyntaxError,  # §4.6: a syntax error
    SPFTooManyDNSLookups,  # §4.6.4: more than 10 DNS-querying terms (or MX names)
    SPFTooManyVoidDNSLookups,  # §4.6.4: more than 2 void lookups
    SPFIncludeLoop,  # §4.6.4: a loop ends at the lookup limit
    SPFRedirectLoop,
)
DMARC_INVALID = (
    MultipleDMARCRecords,  # RFC 7489 §6.6.3 step 5: several records, none applies
    # no record starts with exactly "v=DMARC1" (§6.4); checkdmarc raises it for any other
    # TXT record at _dmarc, even beside a valid one (here only malformed ones are there)
    UnrelatedTXTRecordFoundAtDMARC,
    DMARCSyntaxError,  # a record receivers cannot read (also InvalidDMARCTag, ...TagValue)
)


@dataclass(frozen=True)
class Deliberate:
    """A case where vigie and checkdmarc differ on purpose, and why vigie is right."""

    checkdmarc: frozenset[str]
    vigie: frozenset[str]
    clause: str


def deliberate(checkdmarc_ids: set[str], vigie_ids: set[str], clause: str) -> Deliberate:
    return Deliberate(frozenset(checkdmarc_ids), frozenset(vigie_ids), clause)


PERMISSIVE = {"dns.spf.permissive"}
INVALID_SPF = {"dns.spf.invalid"}
DELIBERATE: dict[tuple[str, str], Deliberate] = {
    ("spf-includes-open.vtest", "spf"): deliberate(
        set(),
        PERMISSIVE,
        "RFC 7208 §5.2: an include whose target gives pass matches, and spf-open.vtest is "
        "+all: every sender passes. checkdmarc reports the record's own -all; the included "
        "record's 'pass' stays in its tree, never combined",
    ),
    ("spf-exists-all.vtest", "spf"): deliberate(
        set(),
        PERMISSIVE,
        "RFC 7208 §5.7: exists matches when the name has an A record; h1.vtest has one "
        "whoever sends, so every sender passes. checkdmarc evaluates no mechanism and "
        "reports the record's -all",
    ),
    ("spf-eleven-flat.vtest", "spf"): deliberate(
        set(),
        INVALID_SPF,
        "RFC 7208 §4.6.4: more than 10 DNS-querying terms is a permerror. checkdmarc counts "
        "11 (its dns_lookups) but compares the count with 10 only after include, redirect, "
        "exists and mx terms, never after a or ptr, so 11 'a' terms pass",
    ),
    ("spf-include-none.vtest", "spf"): deliberate(
        set(),
        INVALID_SPF,
        "RFC 7208 §5.2: an include whose target has no SPF record (check_host() gives "
        "none) is a permerror. checkdmarc turns it into a warning and keeps the record valid",
    ),
    ("spf-unknown-mod.vtest", "spf"): deliberate(
        INVALID_SPF,
        set(),
        "RFC 7208 §6 and §4.6.1 (unknown-modifier = name '=' macro-string): unrecognized "
        "modifiers MUST be ignored, so 'foo=bar -all' is -all. checkdmarc's grammar knows "
        "only its own terms and calls foo=bar a syntax error",
    ),
    **{
        (name, "dmarc"): deliberate(
            set(),
            ids,
            "RFC 7489 §6.3 pct and §6.6.4: the policy applies to pct% of failing mail (pct=0 "
            "with quarantine: to none). checkdmarc 5.17.1 follows RFC 9989, which removed "
            "pct: it warns and drops the tag",
        )
        for name, ids in (
            ("dm-pct50.vtest", {"dns.dmarc.partial"}),
            ("dm-pct0-reject.vtest", {"dns.dmarc.partial"}),
            ("dm-pct0-quarantine.vtest", {"dns.dmarc.policy_none"}),
        )
    },
    ("agence.gouv.ml", "dmarc"): deliberate(
        set(),
        {"dns.dmarc.missing"},
        "RFC 7489 §6.6.3 step 2 with §3.2: the fallback is the organisational domain from "
        "the Public Suffix List, and gouv.ml is a public suffix: agence.gouv.ml is its own "
        "organisational domain, no record applies. checkdmarc walks the DNS tree (RFC 9989) "
        "and applies the first record above, the public suffix's _dmarc.gouv.ml",
    ),
}


# --- checkdmarc's verdicts ------------------------------------------------------------


def checkdmarc_spf_ids(name: str, nameservers: list[Do53Nameserver]) -> set[str]:
    """What checkdmarc's SPF check says about ``name``, as vigie's IDs."""
    try:
        found = get_spf_record(name, nameservers=nameservers, timeout=TIMEOUT_S)
    except SPFRecordNotFound as exc:
        if isinstance(exc.error, SPF_INVALID):  # checkdmarc wraps "several records" in it
            return INVALID_SPF
        assert isinstance(exc.error, str), exc.error  # a DNS failure is no verdict
        # at the domain: none; at a redirect target: a permerror (RFC 7208 §6.1)
        return {"dns.spf.missing"} if exc.domain == name else INVALID_SPF
    except SPF_INVALID:
        return INVALID_SPF
    return PERMISSIVE if found["parsed"]["all"] in ("pass", "neutral") else set()


def checkdmarc_dmarc_ids(name: str, nameservers: list[Do53Nameserver]) -> set[str]:
    """What checkdmarc's DMARC check says about ``name``, as vigie's IDs."""
    try:
        found = get_dmarc_record(name, nameservers=nameservers, timeout=TIMEOUT_S)
    except DMARCRecordNotFound:
        return {"dns.dmarc.missing"}
    except DMARC_INVALID:
        return {"dns.dmarc.invalid"}
    tags = found["parsed"]["tags"]
    applied = tags["p"] if found["location"] == name else tags["sp"]
    return {"dns.dmarc.policy_none"} if applied["value"] == "none" else set()


@contextmanager
def destinations() -> Iterator[list[Any]]:
    """Every address a socket sends to or connects to meanwhile (over the conftest guard)."""
    seen: list[Any] = []
    sendto, connect = socket.socket.sendto, socket.socket.connect

    def record_sendto(sock: socket.socket, data: Any, *args: Any) -> Any:
        seen.append(args[-1])
        return sendto(sock, data, *args)

    def record_connect(sock: socket.socket, address: Any) -> Any:
        seen.append(address)
        return connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "sendto", record_sendto)
        patch.setattr(socket.socket, "connect", record_connect)
        yield seen


# --- vigie's verdicts -----------------------------------------------------------------


def vigie_results(world: StandardsWorld, names: list[str]) -> dict[str, FamilyResult]:
    """vigie's DNS family on every name, as a sweep runs it (the scope: this module's /24)."""
    scope = f"{ADDRESS.rpartition('.')[0]}.0/24"
    settings = world_settings(ADDRESS, world.port, scope, max_addresses=2)

    async def scan(name: str) -> FamilyResult:
        ctx = ProbeContext.from_settings(settings)
        try:
            remember_registered_domains(ctx, REGISTERED | {name})
            return await check_domain(ctx, name, True)
        finally:
            await ctx.aclose()

    async def run() -> list[FamilyResult]:
        return list(await asyncio.gather(*(scan(name) for name in names)))

    return dict(zip(names, asyncio.run(run()), strict=True))


# --- the comparison -------------------------------------------------------------------


@dataclass(frozen=True)
class Verdicts:
    """Per (name, "spf" | "dmarc"): what checkdmarc and vigie say, and where checkdmarc sent."""

    checkdmarc: dict[tuple[str, str], set[str]]
    vigie: dict[tuple[str, str], set[str]]
    problems: dict[str, list[str]]  # scan.* findings of vigie, per name
    sent_to: list[Any] = field(default_factory=list)
    references: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # pyspf, dmarc
    nameservers: list[Do53Nameserver] = field(default_factory=list)  # the test Knot server


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdicts]:
    with standards_world(tmp_path_factory.mktemp("dns-checkdmarc"), ADDRESS) as world:
        checkdmarc.utils.DNS_CACHE.clear()  # answers of another world must not leak in
        nameservers = [Do53Nameserver(ADDRESS, world.port)]
        theirs: dict[tuple[str, str], set[str]] = {}
        oracles: dict[str, Callable[[str, list[Do53Nameserver]], set[str]]] = {
            "spf": checkdmarc_spf_ids,
            "dmarc": checkdmarc_dmarc_ids,
        }
        with destinations() as sent_to:
            for name in MAIL_NAMES:
                for kind, oracle in oracles.items():
                    theirs[(name, kind)] = oracle(name, nameservers)
        checkdmarc.utils.DNS_CACHE.clear()
        resolver = oracle_resolver(ADDRESS, world.port)
        references = {
            (name, "spf"): spf_ids_from_result(pyspf_result(name, resolver)) for name in MAIL_NAMES
        }
        references.update(
            {(name, "dmarc"): dmarc_ids(name, txt_reader(resolver)) for name in MAIL_NAMES}
        )
        results = vigie_results(world, MAIL_NAMES)
        ours = {
            (name, kind): {
                f.check_id for f in result.findings if f.check_id.startswith(f"dns.{kind}.")
            }
            for name, result in results.items()
            for kind in oracles
        }
        problems = {
            name: [f.check_id for f in result.findings if f.check_id.startswith("scan.")]
            for name, result in results.items()
        }
        yield Verdicts(theirs, ours, problems, sent_to, references, nameservers)


@pytest.mark.network
def test_checkdmarc_sends_only_to_the_test_knot_server(verdicts: Verdicts) -> None:
    # Given checkdmarc's SPF and DMARC checks over every mail name of the world
    # Then every packet it sent went to the one Knot server it was given
    assert verdicts.sent_to
    assert {address[0] for address in verdicts.sent_to} == {ADDRESS}


@pytest.mark.network
@pytest.mark.parametrize("name", MAIL_NAMES)
def test_vigie_agrees_with_checkdmarc_or_says_why_not(verdicts: Verdicts, name: str) -> None:
    # Given a mail name, judged by checkdmarc and scanned by vigie (completely)
    assert not verdicts.problems[name]
    for kind in ("spf", "dmarc"):
        theirs, ours = verdicts.checkdmarc[(name, kind)], verdicts.vigie[(name, kind)]
        known = DELIBERATE.get((name, kind))
        if known is None:
            # Then vigie's verdict is checkdmarc's
            assert ours == theirs, (kind, theirs, ours)
        else:
            # Or they differ exactly as recorded, vigie following the clause named
            assert (theirs, ours) == (known.checkdmarc, known.vigie), known.clause


@pytest.mark.network
def test_checkdmarc_output_behind_each_disagreement(verdicts: Verdicts) -> None:
    # Given checkdmarc's own output for the names it judges otherwise than vigie
    def spf(name: str) -> Any:
        return get_spf_record(name, nameservers=verdicts.nameservers, timeout=TIMEOUT_S)

    def dmarc(name: str) -> Any:
        return get_dmarc_record(name, nameservers=verdicts.nameservers, timeout=TIMEOUT_S)

    with destinations() as sent_to:
        # Then it says what DELIBERATE says it says: the included record's pass stays in its tree
        mechanisms = spf("spf-includes-open.vtest")["parsed"]["mechanisms"]
        assert [(m["mechanism"], m["parsed"]["all"]) for m in mechanisms] == [("include", "pass")]
        # exists:h1.vtest is kept, never evaluated
        assert spf("spf-exists-all.vtest")["parsed"]["all"] == "fail"
        # 11 lookups counted, no error raised
        assert spf("spf-eleven-flat.vtest")["dns_lookups"] == 11
        # an include without record is a warning
        warnings = spf("spf-include-none.vtest")["warnings"]
        assert any("spf-norecord.vtest" in w for w in warnings), warnings
        # an unknown modifier is a syntax error
        with pytest.raises(SPFSyntaxError, match="foo=bar"):
            spf("spf-unknown-mod.vtest")
        # pct is dropped with a warning
        pct = dmarc("dm-pct50.vtest")["parsed"]
        assert "pct" not in pct["tags"]
        assert any("pct" in w and "RFC 9989" in w for w in pct["warnings"])
        # the public suffix's record applies to a name below it
        assert dmarc("agence.gouv.ml")["location"] == "gouv.ml"
    assert {address[0] for address in sent_to} <= {ADDRESS}


@pytest.mark.network
def test_agreement_figures(verdicts: Verdicts) -> None:
    # Given every verdict of both (SPF and DMARC per mail name)
    compared = sorted(verdicts.checkdmarc)
    agreeing = [key for key in compared if verdicts.checkdmarc[key] == verdicts.vigie[key]]
    differing = sorted(set(compared) - set(agreeing))
    print(
        f"\ncheckdmarc: mail names {len(MAIL_NAMES)}, verdicts comparable {len(compared)} "
        f"(SPF and DMARC), agreeing {len(agreeing)} ({len(agreeing) / len(compared):.1%}); "
        f"deliberate disagreements {len(differing)}: "
        + ", ".join(f"{name} {kind}" for name, kind in differing)
    )
    # and, on the same world, the two references of test_dns_standards.py
    with_references = [key for key in compared if verdicts.references[key] == verdicts.vigie[key]]
    print(
        f"pyspf and the dmarc package: verdicts comparable {len(verdicts.references)}, "
        f"agreeing {len(with_references)}"
    )
    # Then every verdict was comparable and every disagreement is a recorded one
    assert len(compared) == 2 * len(MAIL_NAMES)
    assert differing == sorted(DELIBERATE)
    assert len(agreeing) / len(compared) >= 0.85
    assert len(with_references) == len(verdicts.references) == len(compared)
