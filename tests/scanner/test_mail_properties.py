"""Property tests: no record, policy file or reply text makes the mail family raise.

MX and TLSA records, MTA-STS and TLS-RPT TXT records, the MTA-STS policy file
and SMTP replies all come from servers vigie does not control. Digits are
RFC 5234's DIGIT (ASCII only): ``"³".isdigit()`` is true in Python and
``int("³")`` raises, so each parser is fed such text on purpose.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigie.scanner.mail._records import (
    Tlsa,
    is_null_mx,
    mail_hosts,
    mx_pattern_matches,
    parse_mx,
    parse_sts_policy,
    select_sts_record,
    select_tlsrpt_record,
    spf_stance,
)
from vigie.scanner.mail._smtp import SmtpFailure, _reply
from vigie.scanner.tls._mail import parse_mx as exchange_of

HOSTILE = st.sampled_from(["³", "٣", "²50", "\x00", "\u200b", "*", ".", "..", "-", ":", "=", ";"])
NUMBERISH = st.one_of(
    HOSTILE, st.integers(min_value=-5, max_value=10**25).map(str), st.text(max_size=8)
)
MX_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(lambda p, h: f"{p} {h}", NUMBERISH, st.one_of(HOSTILE, st.text(max_size=30))),
)
POLICY_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.builds(
            lambda k, v: f"{k}: {v}",
            st.sampled_from(["version", "mode", "max_age", "mx", "x"]),
            st.one_of(NUMBERISH, st.sampled_from(["STSv1", "enforce", "testing", "*.x.ml"])),
        ),
        max_size=8,
    ).map("\r\n".join),
)
TAGS = st.lists(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["v", "id", "rua", ""]),
        st.one_of(NUMBERISH, st.sampled_from(["STSv1", "TLSRPTv1", "mailto:a@b", "https://x"])),
    ),
    max_size=5,
).map("; ".join)


@given(st.lists(MX_TEXT, max_size=5))
def test_mx_parsing_never_raises(records: list[str]) -> None:
    parsed = parse_mx(records)
    assert all(0 <= mx.preference <= 99_999 for mx in parsed)
    is_null_mx(parsed)
    mail_hosts(parsed)
    for record in records:
        exchange_of(record)


@given(POLICY_TEXT)
def test_sts_policy_parsing_never_raises(text: str) -> None:
    policy = parse_sts_policy(text)
    assert policy.max_age is None or 0 <= policy.max_age <= 31_557_600


@given(st.lists(st.one_of(TAGS, st.text(max_size=80)), max_size=4))
def test_txt_record_selection_never_raises(records: list[str]) -> None:
    select_sts_record(records)
    select_tlsrpt_record(records)
    select_tlsrpt_record(["v=TLSRPTv1; " + r for r in records])
    spf_stance(records)


@given(st.one_of(st.text(max_size=60), st.lists(NUMBERISH, max_size=5).map(" ".join)))
def test_tlsa_parsing_never_raises(text: str) -> None:
    record = Tlsa.parse(text)
    assert record is None or (record.usage <= 999 and record.text)


@given(st.one_of(HOSTILE, st.text(max_size=30)), st.one_of(HOSTILE, st.text(max_size=30)))
def test_mx_pattern_matching_never_raises(pattern: str, host: str) -> None:
    mx_pattern_matches(pattern, host)


@pytest.mark.parametrize(
    ("policy", "max_age"),
    [
        ("version: STSv1\nmode: enforce\nmx: mx.x.ml\nmax_age: 86400\n", 86400),  # RFC 8461 §3.2
        ("version: STSv1\nmode: enforce\nmx: mx.x.ml\nmax_age: ³\n", None),
        ("version: STSv1\nmode: enforce\nmx: mx.x.ml\nmax_age: ٨٦٤٠٠\n", None),
        ("version: STSv1\nmode: enforce\nmx: mx.x.ml\nmax_age: " + "9" * 5000 + "\n", None),
    ],
)
def test_sts_max_age_is_ascii_digits(policy: str, max_age: int | None) -> None:
    # Given RFC 8461 §3.2's "max_age" = 1*10DIGIT, When the policy is read,
    # Then only ASCII digits give a value, and the others are a policy error, not a crash
    parsed = parse_sts_policy(policy)
    assert parsed.max_age == max_age
    assert bool(parsed.errors) is (max_age is None)


@pytest.mark.parametrize("reply", [b"\xc2\xb250 ok\r\n", b"\xd9\xa2\xd9\xa5\xd9\xa0 ok\r\n"])
def test_smtp_reply_code_is_three_ascii_digits(reply: bytes) -> None:
    # Given a server answering "²50" or Arabic-Indic digits (RFC 5321 §4.2: Reply-code = %x32-35 ...)
    async def read() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(reply)
        reader.feed_eof()
        await _reply(reader)

    # When vigie reads it, Then it is "not an SMTP reply", never a ValueError
    with pytest.raises(SmtpFailure, match="not an SMTP reply"):
        asyncio.run(read())
