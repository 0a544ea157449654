"""Property tests: the TLS functions that read text never raise, whatever the text.

Host names come from the registry, from DNS (MX targets) and from certificates
a server chose; any of them may hold non-ASCII letters, control characters,
lone surrogates, empty labels or a thousand dots. Each function must answer
(False, None, an empty tuple), never raise: an exception would drop the
host's whole TLS family. Oracles for the answers themselves: the ``idna``
package (IDNA 2008) and the RFC 6125 rules restated as properties.
"""

from __future__ import annotations

import functools

import idna
import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls_parser.exceptions import NotEnoughData, UnknownTlsVersionByte, UnknownTypeByte
from tls_parser.handshake_protocol import TlsHandshakeMessage, TlsHandshakeTypeByte
from tls_parser.parser import TlsRecordParser

from tests.scanner.tls_fixtures import Issued, make_ca, make_leaf, rsa_key
from vigie.scanner.tls import covers_hostname, is_public_suffix, name_matches, to_ace
from vigie.scanner.tls._mail import MailExchangers, parse_mx
from vigie.scanner.tls._names import wildcard_matches
from vigie.scanner.tls._records import reassembling

# Every code point, surrogates and controls included.
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
ANY_TEXT = st.text(ANY_CHAR, max_size=80)
# Names made of the pieces that break parsers: dots, stars, dashes, digits, non-ASCII letters.
PIECES = st.sampled_from(
    ["*", ".", "-", "xn--", "a", "Z", "0", "ß", "ü", "é", "ﬁ", "\u200d", "\x00", "\n", " ", "_"]
)
NAMEISH = st.lists(PIECES, max_size=20).map("".join)
TEXT = st.one_of(ANY_TEXT, NAMEISH)
LDH_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
LDH_NAME = st.lists(LDH_LABEL, min_size=2, max_size=4).map(".".join)
COMMON = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _issuer() -> Issued:
    return make_ca("property root", rsa_key())


@functools.cache
def _cert(*names: str) -> x509.Certificate:
    return make_leaf(list(names), _issuer().key, _issuer()).cert  # type: ignore[arg-type]


@COMMON
@given(TEXT)
def test_to_ace_never_raises_and_returns_ascii(name: str) -> None:
    ace = to_ace(name)
    assert ace is None or (ace.isascii() and ace == ace.lower())


@COMMON
@given(TEXT, TEXT)
def test_name_matching_never_raises(pattern: str, hostname: str) -> None:
    assert isinstance(name_matches(pattern, hostname), bool)
    assert isinstance(wildcard_matches(pattern, hostname), bool)
    assert isinstance(is_public_suffix(hostname), bool)


@COMMON
@given(TEXT)
def test_certificate_cover_never_raises(hostname: str) -> None:
    cert = _cert("www.vigie.test", "*.vigie.test")
    assert isinstance(covers_hostname(cert, hostname), bool)


@COMMON
@given(TEXT, TEXT)
def test_mx_parsing_never_raises(record: str, ip: str) -> None:
    name = parse_mx(record)
    assert name is None or (name and not name.endswith("."))
    exchangers = MailExchangers("vigie.test", ((record, (ip,)),))
    assert isinstance(exchangers.names_at(ip), tuple)


@COMMON
@given(st.text(st.characters(categories=["Ll", "Lu", "Lo", "Nd"]), min_size=1, max_size=20))
def test_non_ascii_labels_follow_idna_2008(label: str) -> None:
    # Oracle: the idna package's own IDNA 2008 + UTS #46 (non-transitional) encoding
    name = f"{label}.vigie.test"
    try:
        expected: str | None = idna.encode(name, uts46=True).decode("ascii").lower()
    except idna.IDNAError:
        expected = None
    assert to_ace(name) == (expected if not name.isascii() else name.lower())


@COMMON
@given(LDH_NAME)
def test_an_ascii_name_covers_itself_in_any_case(name: str) -> None:
    # RFC 6125 §6.4.1: exact match, case-insensitive; the root dot does not count
    assert name_matches(name, name.upper() + ".")
    assert name_matches(name.upper(), name)


@COMMON
@given(LDH_LABEL, LDH_NAME)
def test_a_wildcard_covers_exactly_one_label(label: str, base: str) -> None:
    # RFC 6125 §6.4.3: "*" is the whole left-most label and stands for one label
    pattern = f"*.{base}"
    assert name_matches(pattern, f"{label}.{label}.{base}") is False
    assert name_matches(pattern, base) is False
    # and covers "label.base" exactly when base is no public suffix (CA/B BR §3.2.2.6)
    assert name_matches(pattern, f"{label}.{base}") is (not is_public_suffix(base))


# What tls_parser's own record parser may raise on bytes that are not a record: sslyze's
# probes catch these; the reassembling parser must raise nothing else.
PARSER_ERRORS = (NotEnoughData, UnknownTypeByte, UnknownTlsVersionByte, ValueError)
RECORD = st.builds(
    lambda kind, version, body: bytes([kind]) + version + len(body).to_bytes(2, "big") + body,
    st.sampled_from([20, 21, 22, 23, 99]),
    st.sampled_from([b"\x03\x01", b"\x03\x03", b"\x09\x09"]),
    st.binary(max_size=40),
)


@given(st.one_of(st.binary(max_size=200), st.lists(RECORD, max_size=5).map(b"".join)))
def test_reassembling_record_parser_raises_only_what_the_original_raises(raw: bytes) -> None:
    parse = reassembling(TlsRecordParser.parse_bytes)
    try:
        record, used = parse(raw)
    except PARSER_ERRORS:
        return
    assert 0 < used <= len(raw) and record.header is not None


def test_a_message_split_over_two_records_is_read_whole() -> None:
    # Given a Certificate message (RFC 5246 §7.4.2) split over two handshake records
    # (RFC 5246 §6.2.1), built with tls_parser's own serialiser
    message = TlsHandshakeMessage(TlsHandshakeTypeByte.CERTIFICATE, b"\xff" * 300).to_bytes()
    first, second = message[:100], message[100:]

    def record(fragment: bytes) -> bytes:
        return b"\x16\x03\x03" + len(fragment).to_bytes(2, "big") + fragment

    raw = record(first) + record(second)
    # When the reassembling parser reads them, Then it returns the one message, whole
    parsed, used = reassembling(TlsRecordParser.parse_bytes)(raw)
    assert used == len(raw)
    assert [m.handshake_type for m in parsed.subprotocol_messages] == [
        TlsHandshakeTypeByte.CERTIFICATE
    ]
    # And tls_parser's own parser, record by record, cannot (the failure sslyze's probes met)
    original = TlsRecordParser.parse_bytes.__wrapped__  # type: ignore[attr-defined]
    with pytest.raises(PARSER_ERRORS):
        original(record(second))
