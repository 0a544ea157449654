"""The service family: pure judges of protocol answers, then real servers.

Unit tests feed each judge the bytes a real server sends (built from the
protocol specifications) and assert the exact check IDs that fire and do
not. Network tests sweep real servers on 127.0.3.x (redis-server, vsftpd,
OpenSSH, memcached, PostgreSQL, aiosmtpd, a port that never answers, and
hostile servers that drip or flood their banners) through the real engine,
nmap included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import bson
import pytest

from tests.scanner import service_servers as servers
from vigie.config import Settings
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget, OpenPort
from vigie.scanner.banners import (
    classify_ping_reply,
    classify_reply,
    product_version,
    ssh_software_version,
)
from vigie.scanner.connection import printable
from vigie.scanner.http_wire import parse_response
from vigie.scanner.ports import identify_port
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service import _bson, check_services
from vigie.scanner.service import _databases as db
from vigie.scanner.service import _mail as mail
from vigie.scanner.service import _remote as remote

TARGET = HostTarget("app.gouv.ml", "127.0.3.1", "Agence")
SERVICE_IDS = {
    "service.open_port",
    "service.database.exposed",
    "service.database.no_auth",
    "service.remote_admin.exposed",
    "service.ssh.exposed",
    "service.ssh.password_auth",
    "service.ftp.exposed",
    "service.ftp.anonymous",
    "service.cleartext_mail",
    "service.version_disclosed",
}


def ids(findings: list[Finding]) -> set[str]:
    return {f.check_id for f in findings}


def only(findings: list[Finding], check_id: str) -> Finding:
    (finding,) = [f for f in findings if f.check_id == check_id]
    return finding


# --- what a first answer proves -----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "hint", "expected"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", None, "ssh"),
        (b"220 (vsFTPd 3.0.3)\r\n", None, "ftp"),
        (b"220 mail.gouv.ml ESMTP Postfix\r\n", None, "smtp"),
        (b"220 mail.gouv.ml ready\r\n", "smtp", "smtp"),
        (b"220 ready\r\n", None, None),
        (b"+OK Dovecot ready.\r\n", None, "pop3"),
        (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", None, "imap"),
        (b"RFB 003.008\n", None, "vnc"),
        (b"\xff\xfd\x18\xff\xfd\x20", None, "telnet"),
        (b"Debian GNU/Linux 12\r\nlogin: ", "telnet", "telnet"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", None, "http"),
        (b"-NOAUTH Authentication required.\r\n", None, "redis"),
        (b"-ERR unknown command 'GET'\r\n", "redis", "redis"),
        (b"-ERR unknown command\r\n", None, None),
        (
            b"It looks like you are trying to access MongoDB over HTTP on the native driver port.",
            None,
            "mongodb",
        ),
        (b"This is not an HTTP port", None, "elasticsearch"),
        (b"E\x00\x00\x00\x10SFATAL\x00C0A000\x00\x00", None, "postgresql"),
        (b"\x15\x03\x01\x00\x02\x02\x46", None, None),
        (b"\x00\x01\x02garbage", None, None),
        (b"", "ssh", None),
    ],
)
def test_a_first_answer_names_its_protocol(
    answer: bytes, hint: str | None, expected: str | None
) -> None:
    assert classify_reply(answer, hint) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b"+PONG\r\n", "redis"),
        (b"-NOAUTH Authentication required.\r\n", "redis"),
        (b"-DENIED Redis is running in protected mode\r\n", "redis"),
        (b"ERROR\r\n", "memcached"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", None),
        (b"\x15\x03\x01\x00\x02\x02\x46", None),
        (b"-ERR", None),  # cut short: not a whole RESP line
        (b"", None),
    ],
)
def test_an_answer_to_ping_names_redis_or_memcached(answer: bytes, expected: str | None) -> None:
    assert classify_ping_reply(answer) == expected


def test_a_mysql_greeting_is_recognised_by_its_handshake() -> None:
    assert classify_reply(mysql_greeting("8.0.36")) == "mysql"
    assert classify_reply(mysql_error("Host '10.0.0.1' is not allowed to connect")) == "mysql"


@pytest.mark.parametrize(
    ("banner", "expected"),
    [
        ("220 (vsFTPd 3.0.3)", ("vsFTPd", "3.0.3")),
        ("220 ProFTPD 1.3.5e Server (Debian) [::ffff:10.0.0.5]", ("ProFTPD", "1.3.5e")),
        ("220 mx.gouv.ml ESMTP Exim 4.96 Mon, 03 Jun 2024 10:00:00 +0000", ("Exim", "4.96")),
        (
            "220 Microsoft ESMTP MAIL Service, Version: 10.0.17763.1 ready",
            ("Version", "10.0.17763.1"),
        ),
        ("220 mx.gouv.ml ESMTP Postfix (Debian/GNU)", None),
        ("220 host 192.0.2.10 ready", None),
        ("+OK Dovecot (Debian) ready.", None),
        ("* OK Courier-IMAP ready. Copyright 1998-2018 Double Precision", None),
        ("220 mx2.gouv.ml ESMTP", None),
    ],
)
def test_versions_in_text_banners(banner: str, expected: tuple[str, str] | None) -> None:
    found = product_version(banner)
    assert (None if found is None else (found.product, found.version)) == expected


@pytest.mark.parametrize(
    ("software", "expected"),
    [
        ("OpenSSH_9.2p1", ("OpenSSH", "9.2p1")),
        ("dropbear_2022.83", ("dropbear", "2022.83")),
        ("libssh-0.9.6", ("libssh", "0.9.6")),
        ("Go", None),
        ("mod_sftp", None),
    ],
)
def test_versions_in_ssh_software_names(software: str, expected: tuple[str, str] | None) -> None:
    found = ssh_software_version(software)
    assert (None if found is None else (found.product, found.version)) == expected


def test_evidence_text_is_escaped_and_truncated() -> None:
    assert printable(b"OK\x00\x1b[31m\r\n") == "OK\\x00\\x1b[31m\r\n"
    long = printable(b"A" * 5000)
    assert len(long) == 512 and long.endswith("…")


# --- databases ------------------------------------------------------------------------


def test_redis_answering_ping_without_auth_is_no_auth_with_its_version() -> None:
    info = b"$60\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n"
    findings = db.redis_findings(TARGET, 6379, b"+PONG\r\n", info)
    assert ids(findings) == {
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    }
    assert only(findings, "service.version_disclosed").evidence["version"] == "7.0.15"
    assert only(findings, "service.database.exposed").evidence["authentication"] == "none"
    assert all(f.port == 6379 and f.discriminator == "tcp/6379" for f in findings)


@pytest.mark.parametrize(
    ("reply", "authentication"),
    [
        (b"-NOAUTH Authentication required.\r\n", "required"),
        (b"-ERR operation not permitted\r\n", "required"),
        (b"-DENIED Redis is running in protected mode\r\n", "refused (protected mode)"),
    ],
)
def test_redis_asking_for_a_password_is_exposed_only(reply: bytes, authentication: str) -> None:
    findings = db.redis_findings(TARGET, 6379, reply, b"")
    assert ids(findings) == {"service.database.exposed"}
    assert findings[0].evidence["authentication"] == authentication


def test_something_else_on_the_redis_port_is_not_redis() -> None:
    assert db.redis_findings(TARGET, 6379, b"HTTP/1.1 400 Bad Request\r\n", b"") == []


def test_memcached_stats_answered_is_no_auth() -> None:
    reply = b"STAT pid 42\r\nSTAT version 1.6.18\r\nSTAT curr_items 3\r\nEND\r\n"
    findings = db.memcached_findings(TARGET, 11211, reply)
    assert ids(findings) == {
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    }
    assert (
        db.memcached_findings(TARGET, 11211, b"CLIENT_ERROR unauthenticated\r\n")[0].evidence[
            "authentication"
        ]
        == "required"
    )
    assert db.memcached_findings(TARGET, 11211, b"ERROR\r\n") == []


def test_memcached_speaking_only_the_binary_protocol_is_still_recognised() -> None:
    header = bytes([0x81, 0x0B, 0, 0, 0, 0]) + (0x0020).to_bytes(2, "big") + (0).to_bytes(4, "big")
    refused = db.memcached_binary_findings(TARGET, 11211, header + b"\x00" * 12)
    assert ids(refused) == {"service.database.exposed"}
    assert refused[0].evidence["authentication"] == "required"
    assert db.memcached_binary_findings(TARGET, 11211, b"ERROR\r\n") == []


def mongo_reply(opcode: int, document: dict[str, object]) -> bytes:
    """A server reply framed per the MongoDB wire protocol, the document by pymongo's bson."""
    body = bson.encode(document)
    if opcode == db.OP_REPLY:
        payload = struct.pack("<iqii", 8, 0, 0, 1) + body
    else:
        payload = struct.pack("<I", 0) + b"\x00" + body
    return struct.pack("<iiii", 16 + len(payload), 7, 1, opcode) + payload


def test_mongodb_listing_its_databases_without_credentials_is_no_auth() -> None:
    hello = db.parse_mongo_reply(
        mongo_reply(db.OP_REPLY, {"ismaster": True, "maxWireVersion": 17, "ok": 1.0})
    )
    listing = db.parse_mongo_reply(
        mongo_reply(db.OP_MSG, {"databases": [{"name": "admin"}, {"name": "citoyens"}], "ok": 1.0})
    )
    findings = db.mongodb_findings(TARGET, 27017, hello, listing)
    assert ids(findings) == {"service.database.exposed", "service.database.no_auth"}
    assert "citoyens" in only(findings, "service.database.no_auth").evidence["answer"]


def test_mongodb_refusing_listdatabases_is_exposed_only() -> None:
    hello = {"ismaster": True, "maxWireVersion": 17}
    refused = db.parse_mongo_reply(
        mongo_reply(
            db.OP_MSG,
            {
                "ok": 0.0,
                "errmsg": "command listDatabases requires authentication",
                "code": 13,
                "codeName": "Unauthorized",
            },
        )
    )
    findings = db.mongodb_findings(TARGET, 27017, hello, refused)
    assert ids(findings) == {"service.database.exposed"}
    assert findings[0].evidence["authentication"] == "required"
    assert db.mongodb_findings(TARGET, 27017, {"something": "else"}, None) == []


def test_a_malformed_mongodb_reply_is_a_probe_error() -> None:
    from vigie.errors import ProbeError

    good = mongo_reply(db.OP_MSG, {"ok": 1.0})
    with pytest.raises(ProbeError):
        db.parse_mongo_reply(good[:-3] + b"\xff\xff\xff")
    with pytest.raises(ProbeError):
        db.parse_mongo_reply(struct.pack("<iiii", 21, 0, 0, 9999) + b"\x00" * 5)


def test_vigie_commands_read_back_by_pymongo_bson_and_broken_documents_refused() -> None:
    # Given the command documents vigie sends, encoded by vigie
    for command in ({"isMaster": 1}, {"listDatabases": 1, "nameOnly": True, "$db": "admin"}):
        # Then pymongo's reference decoder reads exactly that document
        assert bson.decode(_bson.encode(command)) == command
    # And documents from pymongo's encoder, cut or with a lying length, are refused
    encoded = bson.encode({"ok": 1.0, "databases": [{"name": "admin"}], "n": bson.Int64(2**40)})
    assert _bson.decode(encoded)["n"] == 2**40
    for broken in (encoded[:-1], encoded[:10], b"\xff\xff\xff\x7f" + encoded[4:]):
        with pytest.raises(ValueError):
            _bson.decode(broken)


def pg_message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack(">i", len(payload) + 4) + payload


def test_postgresql_letting_postgres_in_without_password_is_no_auth() -> None:
    findings = db.postgresql_findings(TARGET, 5432, pg_message(b"R", struct.pack(">i", 0)))
    assert ids(findings) == {"service.database.exposed", "service.database.no_auth"}


def test_postgresql_asking_for_scram_or_refusing_is_exposed_only() -> None:
    scram = db.postgresql_findings(
        TARGET, 5432, pg_message(b"R", struct.pack(">i", 10) + b"SCRAM-SHA-256\x00\x00")
    )
    assert ids(scram) == {"service.database.exposed"}
    assert "SCRAM" in scram[0].evidence["answer"]
    error = pg_message(
        b"E", b"SFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry for host\x00\x00"
    )
    refused = db.postgresql_findings(TARGET, 5432, error)
    assert ids(refused) == {"service.database.exposed"}
    assert "pg_hba.conf" in refused[0].evidence["answer"]
    assert db.postgresql_findings(TARGET, 5432, b"HTTP/1.1 200 OK\r\n") == []


def mysql_greeting(version: str) -> bytes:
    payload = (
        b"\x0a" + version.encode() + b"\x00" + struct.pack("<I", 7) + b"abcdefgh\x00" + b"\xff\xf7"
    )
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


def mysql_error(message: str) -> bytes:
    payload = b"\xff" + struct.pack("<H", 1130) + message.encode()
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


def test_mysql_and_mariadb_handshakes_disclose_their_version() -> None:
    mariadb = db.mysql_findings(TARGET, 3306, mysql_greeting("5.5.5-10.11.6-MariaDB-0+deb12u1"))
    assert ids(mariadb) == {"service.database.exposed", "service.version_disclosed"}
    version = only(mariadb, "service.version_disclosed").evidence
    assert (version["product"], version["version"]) == ("MariaDB", "10.11.6")
    mysql = only(
        db.mysql_findings(TARGET, 3306, mysql_greeting("8.0.36")), "service.version_disclosed"
    )
    assert (mysql.evidence["product"], mysql.evidence["version"]) == ("MySQL", "8.0.36")
    refused = db.mysql_findings(
        TARGET, 3306, mysql_error("Host '10.0.0.1' is not allowed to connect")
    )
    assert ids(refused) == {"service.database.exposed"}


@pytest.mark.parametrize(
    ("payload", "authentication"),
    [
        # OK_Packet: header 0x00, affected rows 0, last insert id 0, status 0x0002, warnings 0
        (bytes.fromhex("00000002000000"), "none"),
        # ERR_Packet 1045, SQL state 28000 (MySQL Internals, "ERR_Packet")
        (
            b"\xff\x15\x04#28000Access denied for user 'root'@'10.0.0.1' (using password: NO)",
            "required",
        ),
        # AuthSwitchRequest to mysql_native_password with a 20-byte scramble
        (b"\xfemysql_native_password\x00" + bytes(range(1, 21)) + b"\x00", "required"),
        # caching_sha2_password AuthMoreData "perform_full_authentication" (0x01 0x04)
        (b"\x01\x04", "required"),
        (b"\x07", "unknown"),
    ],
)
def test_the_answer_to_an_empty_password_login(payload: bytes, authentication: str) -> None:
    # Given the server's answer (sequence id 2) to vigie's HandshakeResponse41
    reply = len(payload).to_bytes(3, "little") + b"\x02" + payload
    findings = db.mysql_findings(TARGET, 3306, mysql_greeting("8.0.36"), reply)
    # Then only an OK packet is a login without credentials
    exposed = only(findings, "service.database.exposed")
    assert exposed.evidence["authentication"] == authentication
    assert ("service.database.no_auth" in ids(findings)) == (authentication == "none")


# The first packet MariaDB 10.11 (Debian 12) sent on 127.0.26.10, captured as is.
MARIADB_GREETING = (
    b'd\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x04\x00\x00\x00"n){Sj@>\x00\xfe\xf7'
    b"\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00Tk?64?#/_sFC\x00"
    b"mysql_native_password\x00"
)


def test_a_real_mariadb_greeting_names_its_version_and_auth_plugin() -> None:
    parsed = db.parse_mysql_greeting(MARIADB_GREETING)
    assert parsed is not None
    assert parsed.server_version == "5.5.5-10.11.19-MariaDB-0+deb12u1"
    assert parsed.auth_plugin == "mysql_native_password"
    assert db.mysql_product_version(parsed.server_version) == ("MariaDB", "10.11.19")


def test_the_login_vigie_sends_is_a_handshake_response41_with_no_password() -> None:
    packet = db.mysql_handshake_response(plugin="caching_sha2_password")
    # Then: 3-byte length, sequence id 1, capabilities with PROTOCOL_41 and PLUGIN_AUTH
    assert int.from_bytes(packet[:3], "little") == len(packet) - 4 and packet[3] == 1
    capabilities = int.from_bytes(packet[4:8], "little")
    assert capabilities & 0x200 and capabilities & 0x80000 and capabilities & 0x8000
    # user "root", an auth response of length 0, then the plugin the server named
    assert packet[4 + 32 :] == b"root\x00\x00caching_sha2_password\x00"


def test_mssql_prelogin_answer_proves_sql_server() -> None:
    payload = (
        struct.pack(">BHHBHHB", 0x00, 11, 6, 0x01, 17, 1, 0xFF)
        + bytes([15, 0, 0x07, 0xD0, 0, 0])
        + b"\x02"
    )
    reply = struct.pack(">BBHHBB", 0x04, 0x01, 8 + len(payload), 0, 1, 0) + payload
    findings = db.mssql_findings(TARGET, 1433, reply)
    assert ids(findings) == {"service.database.exposed"}
    assert findings[0].evidence["version"] == "15.0.2000"
    assert db.mssql_findings(TARGET, 1433, b"\x15\x03\x01\x00\x02\x02\x28") == []
    request = db.mssql_prelogin()
    assert request[0] == 0x12 and int.from_bytes(request[2:4], "big") == len(request)


def test_an_oracle_listener_refusal_proves_oracle() -> None:
    data = b"(DESCRIPTION=(TMP=)(VSNNUM=318767104)(ERR=12514)(ERROR_STACK=(ERROR=(CODE=12514)(EMFI=4))))"
    reply = struct.pack(">HHBBH", 8 + 4 + len(data), 0, 4, 0, 0) + b"\x01\x00\x00\x00" + data
    findings = db.oracle_findings(TARGET, 1521, reply)
    assert ids(findings) == {"service.database.exposed"}
    assert findings[0].evidence["tns_answer"] == "REFUSE"
    assert findings[0].evidence["version"] == "19.0.0.0.0"
    request = db.tns_connect("127.0.3.1", 1521)
    assert request[4] == 1 and int.from_bytes(request[:2], "big") == len(request)
    assert db.oracle_findings(TARGET, 1521, b"SSH-2.0-x\r\n") == []


def test_something_else_on_the_cassandra_port_is_not_a_cql_frame() -> None:
    # (CQL frames themselves: tests/scanner/test_service_reference.py, from cassandra-driver)
    assert db.parse_cql_frame(b"HTTP/1.1 400 Bad\r\n") is None


def http(status: int, body: object, **headers: str) -> bytes:
    text = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} X",
        f"Content-Length: {len(text)}",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + text


def test_elasticsearch_and_opensearch_answering_get_root_are_no_auth() -> None:
    es = {
        "name": "n1",
        "cluster_name": "prod",
        "version": {"number": "8.13.0"},
        "tagline": "You Know, for Search",
    }
    findings = db.search_engine_findings(TARGET, 9200, parse_response(http(200, es)))
    assert ids(findings) == {
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    }
    assert only(findings, "service.database.exposed").evidence["product"] == "Elasticsearch"
    opensearch = {
        "cluster_name": "os",
        "version": {"distribution": "opensearch", "number": "2.11.0"},
    }
    assert (
        only(
            db.search_engine_findings(TARGET, 9200, parse_response(http(200, opensearch))),
            "service.database.no_auth",
        ).evidence["product"]
        == "OpenSearch"
    )


def test_elasticsearch_asking_for_credentials_is_exposed_only() -> None:
    refused = http(
        401,
        {
            "error": {"type": "security_exception", "reason": "missing authentication credentials"},
            "status": 401,
        },
        WWW_Authenticate='Basic realm="security" charset="UTF-8"',
    )
    findings = db.search_engine_findings(TARGET, 9200, parse_response(refused))
    assert ids(findings) == {"service.database.exposed"}
    assert findings[0].evidence["authentication"] == "required"


def test_an_ordinary_web_page_is_not_a_database() -> None:
    page = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>Bienvenue</html>"
    assert db.search_engine_findings(TARGET, 80, parse_response(page)) == []
    assert db.couchdb_welcome(parse_response(page)) is None
    basic = http(401, {}, WWW_Authenticate='Basic realm="Restricted"')
    assert db.search_engine_findings(TARGET, 80, parse_response(basic)) == []


def test_couchdb_listing_databases_is_no_auth_and_otherwise_exposed() -> None:
    welcome = db.couchdb_welcome(
        parse_response(http(200, {"couchdb": "Welcome", "version": "3.3.3"}))
    )
    assert welcome is not None
    listing = db.couchdb_findings(
        TARGET, 5984, welcome, parse_response(http(200, ["_users", "dossiers"]))
    )
    assert ids(listing) == {
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    }
    locked = db.couchdb_findings(
        TARGET, 5984, welcome, parse_response(http(401, {"error": "unauthorized"}))
    )
    assert ids(locked) == {"service.database.exposed", "service.version_disclosed"}


def test_chunked_http_bodies_are_joined() -> None:
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    response = parse_response(raw)
    assert response is not None and response.json() == {"a": 1}
    assert parse_response(b"SSH-2.0-x") is None


# --- remote access ---------------------------------------------------------------------------


def test_an_ssh_banner_is_exposure_and_its_version_a_disclosure() -> None:
    findings = remote.ssh_banner_findings(TARGET, 22, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    assert ids(findings) == {"service.ssh.exposed", "service.version_disclosed"}
    assert (
        only(findings, "service.ssh.exposed").evidence["banner"]
        == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    )
    assert ids(remote.ssh_banner_findings(TARGET, 22, "SSH-2.0-Go\r\n")) == {"service.ssh.exposed"}
    assert remote.ssh_banner_findings(TARGET, 22, "HTTP/1.1 400\r\n") == []


@pytest.mark.parametrize(
    ("methods", "fires"),
    [
        (["publickey", "password"], True),
        (["publickey", "keyboard-interactive"], True),
        (["publickey"], False),
        (["publickey", "gssapi-with-mic"], False),
    ],
)
def test_ssh_password_auth_fires_on_password_or_keyboard_interactive(
    methods: list[str], fires: bool
) -> None:
    findings = remote.ssh_auth_findings(TARGET, 22, methods)
    assert ids(findings) == ({"service.ssh.password_auth"} if fires else set())


def test_ftp_anonymous_login_accepted_refused_and_over_tls() -> None:
    greeting = "220 (vsFTPd 3.0.3)\r\n"
    accepted = remote.FtpSession(
        greeting, "331 Please specify the password.\r\n", "230 Login successful.\r\n"
    )
    assert ids(remote.ftp_findings(TARGET, 21, accepted, tls=False)) == {
        "service.ftp.exposed",
        "service.ftp.anonymous",
        "service.version_disclosed",
    }
    refused = remote.FtpSession("220 FTP ready\r\n", "530 This FTP server is anonymous only.\r\n")
    assert ids(remote.ftp_findings(TARGET, 21, refused, tls=False)) == {"service.ftp.exposed"}
    no_password_needed = remote.FtpSession("220 FTP ready\r\n", "230 Anonymous access granted\r\n")
    assert "service.ftp.anonymous" in ids(
        remote.ftp_findings(TARGET, 21, no_password_needed, tls=False)
    )
    implicit_tls = remote.ftp_findings(TARGET, 990, refused, tls=True)
    assert implicit_tls == []


def test_multiline_replies_end_on_the_closing_line() -> None:
    assert not remote.reply_complete(b"220-Welcome\r\n220-to the server\r\n")
    assert remote.reply_complete(b"220-Welcome\r\n220-to the server\r\n220 ready\r\n")
    assert remote.reply_complete(b"230 Login successful.\r\n")
    assert not remote.reply_complete(b"230 Login succ")


def test_telnet_option_negotiation_is_read_per_rfc_854() -> None:
    # Given RFC 854 command sequences: IAC DO TERMINAL-TYPE (RFC 1091), IAC WILL ECHO
    # (RFC 857), a subnegotiation IAC SB ... IAC SE, and IAC IAC, a data byte 255
    greeting = b"\xff\xfd\x18\xff\xfb\x01\xff\xfa\x18\x01\xff\xf0login: \xff\xff"
    parsed = remote.parse_telnet(greeting)
    # Then the commands are named and the printed text keeps only the data
    assert parsed.negotiation == ("DO TERMINAL-TYPE", "WILL ECHO")
    assert parsed.text == b"login: \xff"
    (finding,) = remote.telnet_findings(TARGET, 23, greeting)
    assert finding.evidence["negotiation"] == ["DO TERMINAL-TYPE", "WILL ECHO"]
    assert remote.telnet_findings(TARGET, 23, b"") == []


def test_vnc_offers_are_read_and_no_authentication_is_flagged() -> None:
    handshake = remote.parse_vnc_security("RFB 003.008", b"\x02\x01\x02")
    (finding,) = remote.vnc_findings(TARGET, 5900, handshake)
    assert finding.check_id == "service.remote_admin.exposed"
    assert finding.evidence["no_authentication"] is True
    old = remote.parse_vnc_security("RFB 003.003", b"\x00\x00\x00\x02")
    assert remote.vnc_findings(TARGET, 5900, old)[0].evidence["security_types"] == [
        "VNC authentication"
    ]


def test_rdp_connection_confirm_proves_rdp() -> None:
    confirm = bytes.fromhex("030000130ed000001234000209080002000000")
    (finding,) = remote.rdp_findings(TARGET, 3389, confirm)
    assert finding.evidence["protocol"] == "RDP"
    assert finding.evidence["selected_security"] == "CredSSP (NLA)"
    assert remote.rdp_findings(TARGET, 3389, b"HTTP/1.1 400 Bad Request\r\n") == []
    request = remote.rdp_connection_request()
    assert request[:2] == b"\x03\x00" and int.from_bytes(request[2:4], "big") == len(request)


def test_smb_negotiate_answers_prove_smb_and_tell_smb1() -> None:
    smb2 = (
        b"\x00\x00\x00\x50"
        + b"\xfeSMB"
        + b"\x00" * 60
        + struct.pack("<HHH", 65, 1, 0x02FF)
        + b"\x00" * 10
    )
    (finding,) = remote.smb_findings(TARGET, 445, smb2)
    assert (
        finding.evidence["protocol"],
        finding.evidence["smb1"],
        finding.evidence["dialect"],
    ) == ("SMB", False, "0x02ff")
    smb1 = b"\x00\x00\x00\x30" + b"\xffSMB" + b"\x72" + b"\x00" * 43
    assert remote.smb_findings(TARGET, 445, smb1)[0].evidence["smb1"] is True
    assert remote.smb_findings(TARGET, 445, b"SSH-2.0-x\r\n") == []
    assert (
        remote.netbios_findings(TARGET, 139, b"\x82\x00\x00\x00")[0].evidence["session_answer"]
        == "positive"
    )
    assert remote.netbios_findings(TARGET, 139, b"HTTP") == []
    assert len(remote.netbios_name("*SMBSERVER")) == 34


def test_x11_setup_answers_prove_x11() -> None:
    granted = b"\x01\x00\x0b\x00\x00\x00\x10\x00" + b"\x00" * 64
    assert (
        remote.x11_findings(TARGET, 6000, granted)[0].evidence["access"]
        == "granted without authentication"
    )
    refused = b"\x00\x16\x0b\x00\x00\x00\x06\x00" + b"No protocol specified\n\x00\x00"
    assert (
        remote.x11_findings(TARGET, 6000, refused)[0].evidence["reason"]
        == "No protocol specified\n"
    )
    assert remote.x11_findings(TARGET, 6000, b"\x01\x00\x05\x00\x00\x00\x00\x00") == []


def test_winrm_is_recognised_by_its_windows_authentication_not_by_any_401() -> None:
    winrm = parse_response(
        b"HTTP/1.1 401 \r\nServer: Microsoft-HTTPAPI/2.0\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
    )
    assert remote.winrm_findings(TARGET, 5985, winrm)[0].evidence["protocol"] == "WinRM"
    plain = parse_response(
        b'HTTP/1.1 401 Unauthorized\r\nServer: nginx\r\nWWW-Authenticate: Basic realm="x"\r\n\r\n'
    )
    assert remote.winrm_findings(TARGET, 5985, plain) == []
    assert (
        remote.winrm_findings(TARGET, 5985, parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n")) == []
    )


# --- mail --------------------------------------------------------------------------------


def test_smtp_without_starttls_is_cleartext_and_with_it_is_not() -> None:
    greeting = "220 mx.gouv.ml ESMTP Postfix\r\n"
    without = mail.ehlo_extensions(
        "250-mx.gouv.ml\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
    )
    assert ids(
        mail.mail_findings(TARGET, 587, mail.MailSession("SMTP", greeting, without), tls=False)
    ) == {"service.cleartext_mail"}
    with_tls = mail.ehlo_extensions("250-mx.gouv.ml\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
    assert (
        mail.mail_findings(TARGET, 587, mail.MailSession("SMTP", greeting, with_tls), tls=False)
        == []
    )
    assert (
        mail.mail_findings(TARGET, 465, mail.MailSession("SMTP", greeting, without), tls=True) == []
    )


def test_pop3_capa_without_stls_is_cleartext() -> None:
    capa = mail.pop3_capabilities("+OK\r\nUSER\r\nUIDL\r\nSASL PLAIN\r\n.\r\n")
    findings = mail.mail_findings(
        TARGET, 110, mail.MailSession("POP3", "+OK ready", capa, "STLS"), tls=False
    )
    assert ids(findings) == {"service.cleartext_mail"}
    assert findings[0].evidence["protocol"] == "POP3"
    with_stls = mail.pop3_capabilities("+OK\r\nUSER\r\nSTLS\r\n.\r\n")
    assert (
        mail.mail_findings(
            TARGET, 110, mail.MailSession("POP3", "+OK", with_stls, "STLS"), tls=False
        )
        == []
    )
    assert mail.pop3_capabilities("-ERR unknown command\r\n") == ()


def test_imap_capabilities_come_from_the_greeting_or_the_capability_reply() -> None:
    in_greeting = mail.imap_capabilities(
        "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.", ""
    )
    assert (
        mail.mail_findings(TARGET, 143, mail.MailSession("IMAP", "* OK", in_greeting), tls=False)
        == []
    )
    plain = mail.imap_capabilities(
        "* OK ready", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nv1 OK done\r\n"
    )
    assert plain == ("IMAP4rev1", "AUTH=PLAIN")
    assert ids(
        mail.mail_findings(TARGET, 143, mail.MailSession("IMAP", "* OK", plain), tls=False)
    ) == {"service.cleartext_mail"}


# --- real servers, through the real engine --------------------------------------------------

HOSTS = {
    servers.REDIS_OPEN: "redis-open",
    servers.REDIS_PASSWORD: "redis-password",
    servers.FTP_ANONYMOUS: "ftp-anonymous",
    servers.FTP_CLOSED: "ftp-closed",
    servers.SSH_PASSWORD: "ssh-password",
    servers.SSH_PUBKEY_ONLY: "ssh-pubkey",
    servers.MEMCACHED: "memcached",
    servers.SILENT: "silent",
    servers.POSTGRES_TRUST: "pg-trust",
    servers.POSTGRES_SCRAM: "pg-scram",
    servers.SMTP_CLEARTEXT: "smtp-cleartext",
    servers.SMTP_STARTTLS: "smtp-starttls",
}


@pytest.fixture(scope="module")
def swept(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, HostResult], float]]:
    """Every service server started, then swept once by the real engine (nmap, probes)."""
    folder = tmp_path_factory.mktemp("services")
    with contextlib.ExitStack() as stack:
        stack.enter_context(servers.redis(folder, servers.REDIS_OPEN))
        stack.enter_context(
            servers.redis(folder, servers.REDIS_PASSWORD, password="vigie-test-pass")
        )
        stack.enter_context(servers.vsftpd(folder, servers.FTP_ANONYMOUS, anonymous=True))
        stack.enter_context(servers.vsftpd(folder, servers.FTP_CLOSED, anonymous=False))
        stack.enter_context(servers.sshd(folder, servers.SSH_PASSWORD, password_auth=True))
        stack.enter_context(servers.sshd(folder, servers.SSH_PUBKEY_ONLY, password_auth=False))
        stack.enter_context(servers.memcached(folder, servers.MEMCACHED))
        stack.enter_context(servers.silent_ports(servers.SILENT, servers.SILENT_PORTS))
        stack.enter_context(servers.postgres(servers.POSTGRES_TRUST, "trust"))
        stack.enter_context(servers.postgres(servers.POSTGRES_SCRAM, "scram-sha-256"))
        stack.enter_context(servers.smtp_server(servers.SMTP_CLEARTEXT, 25, folder, starttls=False))
        stack.enter_context(servers.smtp_server(servers.SMTP_STARTTLS, 587, folder, starttls=True))
        # vsftpd answers a refused login after a 1 s pause, as real servers do
        yield servers.sweep(
            HOSTS,
            "127.0.3.0/24",
            {"probe_timeout_s": 2, "host_deadline_s": 20, "max_rate_per_s": 20_000},
        )


def service_ids(result: HostResult) -> set[str]:
    return {f.check_id for f in result.findings if f.check_id.startswith("service.")}


EXPECTED = {
    servers.REDIS_OPEN: {
        "service.open_port",
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    },
    servers.REDIS_PASSWORD: {"service.open_port", "service.database.exposed"},
    servers.FTP_ANONYMOUS: {
        "service.open_port",
        "service.ftp.exposed",
        "service.ftp.anonymous",
        "service.version_disclosed",
    },
    servers.FTP_CLOSED: {"service.open_port", "service.ftp.exposed", "service.version_disclosed"},
    servers.SSH_PASSWORD: {
        "service.open_port",
        "service.ssh.exposed",
        "service.ssh.password_auth",
        "service.version_disclosed",
    },
    servers.SSH_PUBKEY_ONLY: {
        "service.open_port",
        "service.ssh.exposed",
        "service.version_disclosed",
    },
    servers.MEMCACHED: {
        "service.open_port",
        "service.database.exposed",
        "service.database.no_auth",
        "service.version_disclosed",
    },
    servers.SILENT: {"service.open_port"},
    servers.POSTGRES_TRUST: {
        "service.open_port",
        "service.database.exposed",
        "service.database.no_auth",
    },
    servers.POSTGRES_SCRAM: {"service.open_port", "service.database.exposed"},
    servers.SMTP_CLEARTEXT: {
        "service.open_port",
        "service.cleartext_mail",
        "service.version_disclosed",
    },
    servers.SMTP_STARTTLS: {"service.open_port", "service.version_disclosed"},
}


@pytest.mark.network
@pytest.mark.parametrize("address", list(EXPECTED), ids=[HOSTS[a] for a in EXPECTED])
def test_each_real_server_gets_exactly_its_findings(
    swept: tuple[dict[str, HostResult], float], address: str
) -> None:
    results, _ = swept
    result = results[address]
    fired = service_ids(result)
    # The IDs that must fire do, and every other service.* ID does not
    assert fired == EXPECTED[address]
    assert not (SERVICE_IDS - EXPECTED[address]) & fired
    if address != servers.SILENT:
        assert result.families[Family.SERVICE].complete is True
        assert {f.check_id for f in result.findings if f.check_id.startswith("scan.")} == set()


@pytest.mark.network
def test_the_evidence_says_what_the_servers_answered(
    swept: tuple[dict[str, HostResult], float],
) -> None:
    results, _ = swept

    def evidence(address: str, check_id: str) -> dict[str, object]:
        return dict(only(results[address].findings, check_id).evidence)

    assert evidence(servers.REDIS_OPEN, "service.database.no_auth")["answer"] == "+PONG"
    assert evidence(servers.REDIS_PASSWORD, "service.database.exposed")["answer"].startswith(
        "-NOAUTH"
    )  # type: ignore[union-attr]
    assert evidence(servers.FTP_ANONYMOUS, "service.ftp.anonymous")["reply"].startswith("230")  # type: ignore[union-attr]
    assert evidence(servers.FTP_ANONYMOUS, "service.version_disclosed")["version"] == "3.0.3"
    assert evidence(servers.SSH_PASSWORD, "service.ssh.password_auth")["password_methods"] == [
        "password",
        "keyboard-interactive",
    ]
    assert evidence(servers.SSH_PUBKEY_ONLY, "service.ssh.exposed")["software"].startswith(
        "OpenSSH_"
    )  # type: ignore[union-attr]
    assert evidence(servers.MEMCACHED, "service.version_disclosed")["version"] == "1.6.18"
    assert "AuthenticationOk" in str(
        evidence(servers.POSTGRES_TRUST, "service.database.no_auth")["answer"]
    )
    assert evidence(servers.SMTP_CLEARTEXT, "service.cleartext_mail")["role"] == "mail transfer"
    ports = {
        f.port: f.evidence["banner"]
        for f in results[servers.SSH_PASSWORD].findings
        if f.check_id == "service.open_port"
    }
    assert str(ports[22]).startswith("SSH-2.0-OpenSSH_")


@pytest.mark.network
def test_the_port_that_never_answers_is_a_timeout_never_a_database(
    swept: tuple[dict[str, HostResult], float],
) -> None:
    results, elapsed = swept
    silent = results[servers.SILENT]
    # Every silent port is in the inventory, no protocol is claimed, and the family is incomplete
    assert sorted(p.port for p in silent.open_ports) == sorted(servers.SILENT_PORTS)
    assert silent.families[Family.SERVICE].complete is False
    problems = {f.check_id for f in silent.families[Family.SCAN].findings}
    assert problems == {"scan.timeout"}
    # And the whole sweep of twelve servers stayed well inside the host deadline
    assert elapsed < 20


# --- hostile servers ---------------------------------------------------------------------------

HOSTILE = "127.0.3.90"


def hostile_greeting(mode: str) -> Callable[[socket.socket], None]:
    """An FTP-looking greeting dripped a byte every 0.2 s, or an endless flood of lines."""

    def handle(connection: socket.socket) -> None:
        if mode == "drip":
            for byte in b"220 (vsFTPd 3.0.3) and then it goes on and on and on" * 100:
                connection.sendall(bytes([byte]))
                time.sleep(0.2)
        else:
            line = b"220-" + b"A" * 1000 + b"\r\n"
            while True:
                connection.sendall(line)

    return handle


@contextlib.contextmanager
def hostile(port: int, mode: str) -> Iterator[None]:
    # (the handler ends when vigie hangs up: its next send fails)
    with servers.scripted(HOSTILE, port, hostile_greeting(mode)):
        yield


def hostile_context() -> ProbeContext:
    return ProbeContext.from_settings(
        Settings.model_validate(
            {"scope": {"allow": [f"{HOSTILE}/32"]}, "scan": {"probe_timeout_s": 1}}
        )
    )


@pytest.mark.network
@pytest.mark.parametrize("mode", ["drip", "flood"])
def test_a_dripping_or_flooding_server_costs_bounded_time_and_memory(mode: str) -> None:
    # Given an FTP-looking server that drips its banner, or floods an endless one
    with hostile(21, mode):
        ctx = hostile_context()

        async def sweep() -> tuple[OpenPort, FamilyResult]:
            port = await identify_port(ctx, HOSTILE, 21, "ftp")
            return port, await check_services(ctx, HostTarget("hostile.ml", HOSTILE), [port])

        # When its port is identified and probed
        started = time.monotonic()
        port, result = asyncio.run(sweep())
        elapsed = time.monotonic() - started
    # Then both ended within their timeouts, keeping only a bounded excerpt
    assert elapsed < 8
    assert len(port.banner) <= 512
    for finding in result.findings:
        assert len(json.dumps(dict(finding.evidence))) < 4096
    # And nothing claims an anonymous login that did not happen
    assert "service.ftp.anonymous" not in ids(result.findings)


@pytest.mark.network
def test_the_service_family_shares_its_probes_between_domains_on_one_address(
    tmp_path: Path,
) -> None:
    # Given two domains on one open Redis
    address = "127.0.3.91"
    with servers.redis(tmp_path, address):
        before = _redis_connections(address)
        ctx = ProbeContext.from_settings(
            Settings.model_validate(
                {"scope": {"allow": [f"{address}/32"]}, "scan": {"probe_timeout_s": 1}}
            )
        )
        port = [OpenPort(6379, "redis")]

        async def both() -> list[FamilyResult]:
            return list(
                await asyncio.gather(
                    check_services(ctx, HostTarget("a.gouv.ml", address), port),
                    check_services(ctx, HostTarget("b.gouv.ml", address), port),
                )
            )

        first, second = asyncio.run(both())
        after = _redis_connections(address)
    # Then each domain gets its own findings, from one probe of the address
    assert {f.domain for f in first.findings} == {"a.gouv.ml"}
    assert {f.domain for f in second.findings} == {"b.gouv.ml"}
    assert ids(first.findings) == ids(second.findings) == EXPECTED[servers.REDIS_OPEN]
    assert after - before - 1 == 1  # (the second count's own connection aside)


def _redis_connections(address: str) -> int:
    """total_connections_received (this connection included), asked over a raw socket."""
    with socket.create_connection((address, 6379), timeout=2) as sock:
        sock.sendall(b"INFO stats\r\n")
        data = b""
        while b"total_connections_received" not in data or not data.endswith(b"\r\n"):
            data += sock.recv(65536)
    line = next(x for x in data.decode().splitlines() if x.startswith("total_connections_received"))
    return int(line.split(":")[1])
