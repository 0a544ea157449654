"""No banner, greeting or reply makes a service parser raise (Hypothesis properties).

Whatever a server sends (non-ASCII digits such as ``³`` or ``٣``, control
characters, truncated or lying length fields, deep nesting), each pure
parser and judge of the service family returns a value: the probe's answer
is a finding or nothing, never an exception that would drop the host's
whole family. The only exceptions allowed are the documented ones
(``ProbeError`` from ``parse_mongo_reply``, ``ValueError`` from the BSON
decoder), which the probes turn into ``scan.error``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vigie.errors import ProbeError
from vigie.model import Finding, HostTarget
from vigie.scanner import banners
from vigie.scanner.connection import printable
from vigie.scanner.http_wire import HttpResponse
from vigie.scanner.service import _bson
from vigie.scanner.service import _databases as db
from vigie.scanner.service import _mail as mail
from vigie.scanner.service import _remote as remote

TARGET = HostTarget("app.gouv.ml", "127.0.26.1")
SETTINGS = settings(max_examples=100, deadline=None)

# Pieces real answers are made of, and the characters that broke parsers before.
TEXT_FRAGMENTS = [
    "220 ", "220-", "250-", "250 ", "+OK", "-ERR", "* OK", "* PREAUTH", "[CAPABILITY ", "]",
    "STARTTLS", "STLS", "ſtarttls", "SSH-2.0-", "SSH-1.99-", "OpenSSH_", "dropbear_", "vsFTPd ",
    "Version: ", "1.2", ".", "3", "³", "٣", "𝟗", "²⁵⁵", "\x00", "\r\n", "\n", "\r", "\t",
    "\x1b[31m", "\x7f", "\u2028", "\u0085", "\x1c", " ", "RFB 003.008", "VSNNUM=", "redis_version:",
    "STAT version ", "END\r\n", "$", "-", "_", "v",
]  # fmt: skip
BYTE_PREFIXES = [
    b"", b"\x0a", b"\xff", b"\xfe", b"\x00", b"E\x00\x00\x00\x10S", b"R\x00\x00\x00\x08",
    b"\x84\x00\x00\x01\x06", b"\x84\x00\x00\x01\x03", b"\x04\x01\x00\x2f\x00\x00\x01\x00",
    b"\x00\x00\x00\x50\xfeSMB", b"\x00\x00\x00\x30\xffSMB", b"\x03\x00\x00\x13\x0e\xd0",
    b"RFB 003.008\n", b"HTTP/1.1 200 OK\r\n", b"\x81\x0b", b"$60\r\n", b"+PONG\r\n",
    b"\xff\xfd\x18", b"\xff\xfa\x18\x01", b"\xff\xff", b"\xff", b"\x82\x00\x00\x00",
    b"\x01\x00\x0b\x00", b"\x15\x03\x01", b"SSH-2.0-",
    b"\x00\x00\x00\x02\x00\x00\x00", b"\x4a\x00\x00\x00\x0a5.5.5-10.11.6-MariaDB\x00",
]  # fmt: skip

text_piece = st.one_of(st.sampled_from(TEXT_FRAGMENTS), st.text(max_size=6))
hostile_text = st.lists(text_piece, max_size=16).map("".join)
hostile_bytes = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda prefix, tail: prefix + tail, st.sampled_from(BYTE_PREFIXES), st.binary(max_size=300)
    ),
    st.builds(
        lambda prefix, text, codec: prefix + text.encode(codec, errors="replace"),
        st.sampled_from(BYTE_PREFIXES),
        hostile_text,
        st.sampled_from(["utf-8", "latin-1"]),
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=6,
)
# Documents with the keys the judges read, holding values of any type.
judged_keys = st.sampled_from(
    ["ok", "databases", "maxWireVersion", "ismaster", "codeName", "errmsg", "name", "version",
     "cluster_name", "number", "distribution", "couchdb", "error", "type"]
)  # fmt: skip
documents = st.dictionaries(st.one_of(judged_keys, st.text(max_size=4)), json_values, max_size=6)


def findings_only(result: list[Finding]) -> None:
    assert isinstance(result, list)
    assert all(isinstance(f, Finding) for f in result)


# --- first answers, banners, versions ------------------------------------------------------


@SETTINGS
@given(hostile_bytes, st.sampled_from([None, "ftp", "smtp", "telnet", "redis", "ssh"]))
def test_classifying_any_first_answer_never_raises(data: bytes, hint: str | None) -> None:
    assert isinstance(banners.classify_reply(data, hint), str | None)
    assert banners.classify_ping_reply(data) in (None, "redis", "memcached")
    for check in (banners.is_mysql_greeting, banners.is_postgres_error, banners.is_tls_record):
        assert isinstance(check(data), bool)


@SETTINGS
@given(hostile_text)
@example("220 (vsFTPd ³.0.3)")
@example("220 mx ESMTP Exim ٤.٩٦ ready")
@example("SSH-2.0-OpenSSH_𝟗.2p1 Debian")
def test_versions_are_ascii_digits_whatever_the_banner(banner: str) -> None:
    found = banners.product_version(banner)
    if found is not None:
        assert found.version.replace(".", "").isascii()
        assert found.version[0].isdigit() and found.version[0] in "0123456789"
    ident = banners.ssh_identification(banner)
    if ident is not None:
        software = banners.ssh_software_version(ident.software)
        assert software is None or software.version[:1] in "0123456789v"
    assert isinstance(printable(banner), str)
    assert len(printable(banner)) <= 512


# --- databases -------------------------------------------------------------------------------


@SETTINGS
@given(hostile_bytes, hostile_bytes)
def test_database_judges_never_raise(first: bytes, second: bytes) -> None:
    findings_only(db.redis_findings(TARGET, 6379, first, second))
    findings_only(db.memcached_findings(TARGET, 11211, first))
    findings_only(db.memcached_binary_findings(TARGET, 11211, first))
    findings_only(db.postgresql_findings(TARGET, 5432, first))
    findings_only(db.mysql_findings(TARGET, 3306, first, second))
    findings_only(db.mysql_findings(TARGET, 3306, first))
    findings_only(db.mssql_findings(TARGET, 1433, first))
    findings_only(db.oracle_findings(TARGET, 1521, first))
    findings_only(
        db.cassandra_findings(TARGET, 9042, db.parse_cql_frame(first), db.parse_cql_frame(second))
    )
    assert isinstance(db.parse_redis_info(first), dict)
    assert isinstance(db.parse_memcached_stats(first), dict)
    assert isinstance(db.parse_pg_error(first), dict)
    assert isinstance(db.mysql_login_answer(second), tuple)


@SETTINGS
@given(hostile_text)
def test_mysql_server_versions_never_raise(version: str) -> None:
    product, number = db.mysql_product_version(version)
    assert product in (db.MYSQL, db.MARIADB) and isinstance(number, str)


@SETTINGS
@given(hostile_bytes)
def test_mongodb_replies_raise_only_probe_errors(data: bytes) -> None:
    try:
        document = db.parse_mongo_reply(data)
    except ProbeError:
        return
    findings_only(db.mongodb_findings(TARGET, 27017, document, document))


@SETTINGS
@given(hostile_bytes)
def test_bson_decoding_raises_only_value_errors(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(_bson.decode(data), dict)


@settings(max_examples=50, deadline=None)
@given(documents, st.one_of(st.none(), documents))
@example({"ismaster": True}, {"ok": 1.0, "databases": 5})
@example({"maxWireVersion": 21}, {"ok": 1, "databases": {"name": "admin"}})
def test_mongodb_judge_takes_any_documents(hello: dict[str, Any], listing: Any) -> None:
    findings_only(db.mongodb_findings(TARGET, 27017, hello, listing))


http_headers = st.dictionaries(
    st.sampled_from(["www-authenticate", "x-elastic-product", "server", "content-type"]),
    hostile_text,
    max_size=3,
)
http_bodies = st.one_of(
    json_values.map(lambda value: _json_bytes(value)),
    hostile_bytes,
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
)


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


@SETTINGS
@given(st.sampled_from([200, 401, 403, 404, 500]), http_headers, http_bodies, http_bodies)
@example(200, {}, b"[" * 100_000 + b"]" * 100_000, b"")
@example(200, {}, b'{"couchdb": "Welcome", "version": "3"}', b"[" * 100_000)
def test_http_database_judges_never_raise(
    status: int, headers: dict[str, str], body: bytes, second: bytes
) -> None:
    response = HttpResponse(status, "X", headers, body)
    findings_only(db.search_engine_findings(TARGET, 9200, response))
    welcome = db.couchdb_welcome(response)
    if welcome is not None:
        findings_only(
            db.couchdb_findings(TARGET, 5984, welcome, HttpResponse(200, "OK", {}, second))
        )
    findings_only(remote.winrm_findings(TARGET, 5985, response))


# --- remote access and mail ------------------------------------------------------------------


@SETTINGS
@given(hostile_text, hostile_text, hostile_text, st.booleans())
def test_ssh_ftp_and_mail_judges_never_raise(
    greeting: str, second: str, third: str, tls: bool
) -> None:
    findings_only(remote.ssh_banner_findings(TARGET, 22, greeting))
    findings_only(remote.ftp_findings(TARGET, 21, remote.FtpSession(greeting, second, third), tls))
    for protocol, word, capabilities in (
        ("SMTP", "STARTTLS", mail.ehlo_extensions(second)),
        ("POP3", "STLS", mail.pop3_capabilities(second)),
        ("IMAP", "STARTTLS", mail.imap_capabilities(greeting, second)),
    ):
        session = mail.MailSession(protocol, greeting, capabilities, word)
        findings_only(mail.mail_findings(TARGET, 587, session, tls))


@SETTINGS
@given(hostile_text)
def test_a_capability_is_starttls_only_in_ascii(capability: str) -> None:
    session = mail.MailSession("SMTP", "220 x", (capability,))
    words = capability.split()
    assert session.offers_starttls == bool(
        words and words[0].isascii() and words[0].upper() == "STARTTLS"
    )


@SETTINGS
@given(hostile_bytes, hostile_text)
def test_remote_admin_judges_never_raise(data: bytes, version: str) -> None:
    for rfb in (version, "RFB 003.003", "RFB 003.008"):
        findings_only(remote.vnc_findings(TARGET, 5900, remote.parse_vnc_security(rfb, data)))
    findings_only(remote.rdp_findings(TARGET, 3389, data))
    findings_only(remote.smb_findings(TARGET, 445, data))
    findings_only(remote.netbios_findings(TARGET, 139, data))
    findings_only(remote.x11_findings(TARGET, 6000, data))
    findings_only(remote.telnet_findings(TARGET, 23, data))
    assert remote.reply_code(data) is None or 0 <= remote.reply_code(data) <= 999  # type: ignore[operator]


@pytest.mark.parametrize(
    "complete",
    [
        remote.reply_complete,
        mail._pop3_capa_complete,
        db._redis_bulk_complete,
        db._memcached_complete,
        db._memcached_binary_complete,
        db._pg_message_complete,
        db._mysql_packet_complete,
        db._tds_complete,
        db._cql_complete,
        remote._vnc_security_complete("RFB 003.003"),
        remote._vnc_security_complete("RFB 003.008"),
    ],
)
@settings(max_examples=60, deadline=None)
@given(data=hostile_bytes)
def test_reading_stops_on_a_bool_whatever_arrives(complete: Any, data: bytes) -> None:
    assert isinstance(complete(data), bool)
