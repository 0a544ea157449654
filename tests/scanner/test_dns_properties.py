"""Property tests: no record text, however hostile, makes a pure DNS check raise.

Records come from servers vigie does not control: arbitrary text, non-ASCII
digits (``³``, ``٣``), control characters, huge numbers. Every parser and
judge of the DNS family must return findings or nothing, never an exception,
and the SPF evaluation must stay within its query cap whatever the tree.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json

import dns.rdata
import dns.rdataclass
import dns.rdatatype
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigie.scanner.dns import (
    caa_findings,
    dmarc_findings,
    evaluate_spf,
    organisational_domain,
    parse_caa,
    parse_dmarc,
    parse_spf,
    spf_findings,
)
from vigie.scanner.dns._dnssec import verify_signature
from vigie.scanner.dns._spf import MAX_QUERIES, Sender, expand_macros
from vigie.scanner.dns._zone import CaaSearch
from vigie.scanner.resolve import Answer, Lookup

HOSTILE = st.sampled_from(
    ["³", "٣", "\x00", "\x1f", "\u200b", "%", "%{", "}", "/", "//", ":", "=", ";", " ", "."]
)
HUGE = st.integers(min_value=0, max_value=10**30).map(str)
TERMS = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(
            [
                "ip4:",
                "ip6:",
                "a/",
                "mx:",
                "include:",
                "exists:",
                "redirect=",
                "exp=",
                "ptr:",
                "a:x.example/",
            ]
        ),
        st.one_of(HUGE, st.text(max_size=20), HOSTILE),
    ),
    HOSTILE,
)
SPF_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(TERMS, max_size=15).map(lambda terms: "v=spf1 " + " ".join(terms)),
)
DMARC_TEXT = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(["p", "sp", "pct", "rua", "adkim", "fo", "ri", "v"]),
            st.one_of(HUGE, HOSTILE, st.text(max_size=15)),
        ),
        max_size=8,
    ).map(lambda tags: "v=DMARC1; " + "; ".join(tags)),
)


def serialisable(findings: list[object]) -> None:
    for finding in findings:
        json.dumps(finding.evidence, ensure_ascii=False)  # type: ignore[attr-defined]


@given(SPF_TEXT)
def test_parse_spf_never_raises(text: str) -> None:
    policy = parse_spf(text)
    assert policy.text == text


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["example.ml", "a.example.ml", "b.example.ml", "x.example"]),
        st.lists(SPF_TEXT, max_size=3),
        max_size=4,
    )
)
def test_spf_evaluation_never_raises_and_stays_within_its_query_cap(
    zone: dict[str, list[str]],
) -> None:
    # Given any TXT records under a few names (A records everywhere else)
    queries = 0

    async def lookup(name: str, rdtype: str) -> Lookup:
        nonlocal queries
        queries += 1
        if rdtype == "TXT":
            records = zone.get(name.rstrip("."), [])
            return Lookup(
                name, rdtype, Answer.OK if records else Answer.NODATA, records=tuple(records)
            )
        if rdtype == "MX":
            return Lookup(name, rdtype, Answer.OK, records=("10 a.example.ml.",))
        return Lookup(name, rdtype, Answer.OK, records=("192.0.2.1",))

    # When vigie evaluates it for a stranger and for a known client
    for who in (
        Sender(),
        Sender(ipaddress.ip_address("192.0.2.1"), "a@example.ml", "h.example.ml"),
    ):
        queries = 0
        evaluation = asyncio.run(evaluate_spf("example.ml", lookup, who))
        # Then it ends with a result, within the cap, and its findings serialise
        assert evaluation.result in {
            "pass",
            "fail",
            "softfail",
            "neutral",
            "none",
            "permerror",
            "temperror",
            "unknown",
        }
        assert queries <= MAX_QUERIES
        serialisable(spf_findings(evaluation))


@given(st.text(max_size=200), st.text(max_size=60))
def test_macro_expansion_never_raises_anything_but_unknown(text: str, domain: str) -> None:
    try:
        expanded = expand_macros(
            text,
            domain,
            Sender(ipaddress.ip_address("2001:db8::1"), "l@d.example", "h"),
        )
    except Exception as exc:
        assert type(exc).__name__ == "_Unknown"
    else:
        assert isinstance(expanded, str)


@given(st.lists(DMARC_TEXT, max_size=3), st.lists(DMARC_TEXT, max_size=3))
def test_dmarc_never_raises(own: list[str], parent: list[str]) -> None:
    for text in own:
        parse_dmarc(text)
    findings = dmarc_findings("www.example.ml", own, ("example.ml", parent))
    serialisable(list(findings))
    assert all(f.check_id.startswith("dns.dmarc.") for f in findings)


@given(st.text(max_size=300))
def test_organisational_domain_never_raises(name: str) -> None:
    result = organisational_domain(name)
    assert result is None or isinstance(result, str)


CAA_TEXT = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda f, t, v: f"{f} {t} {v}",
        st.one_of(HUGE, HOSTILE),
        st.text(max_size=20),
        st.text(max_size=40),
    ),
)


@given(st.lists(CAA_TEXT, max_size=5))
def test_caa_never_raises(records: list[str]) -> None:
    for text in records:
        prop = parse_caa(text)
        if prop is not None:  # then dnspython read it too, with the same fields
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text)
            assert prop.flags == rdata.flags  # type: ignore[attr-defined]
    findings = caa_findings(
        "example.ml.", CaaSearch("example.ml.", tuple(records), ("example.ml.",))
    )
    serialisable(list(findings))


@given(
    st.sampled_from([5, 7, 8, 10, 13, 14, 15, 16, 3, 253]),
    st.binary(max_size=300),
    st.binary(max_size=300),
)
def test_signature_check_never_raises_on_garbage(
    algorithm: int, key: bytes, signature: bytes
) -> None:

    text = f"257 3 {algorithm} {base64.b64encode(key or b'x').decode()}"
    dnskey = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, text)
    assert verify_signature(dnskey, signature, b"data") in (True, False)  # type: ignore[arg-type]
