"""Databases Debian does not package, probed over real sockets with bytes vigie did not write.

MongoDB: the server side encodes its replies with pymongo's ``bson.encode``
(documents shaped as the MongoDB manual shows them: ObjectId, dates, Int64)
and reads vigie's requests with ``bson.decode`` and pymongo's own OP_MSG
parser. Cassandra: the frames come from cassandra-driver's protocol writers
and vigie's requests are compared with the driver's ``encode_message``.
Elasticsearch, OpenSearch and CouchDB: Python's http.server serves the JSON
documents their reference documentation shows.
"""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId
from cassandra import protocol as cql
from pymongo.message import _OpMsg

from tests.scanner.service_servers import recv_exactly, scripted
from vigie.config import Settings
from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service import _databases as db
from vigie.scanner.service import check_services

MONGO_OPEN = "127.0.26.80"
MONGO_AUTH = "127.0.26.81"
MONGO_OLD = "127.0.26.82"
CASSANDRA_OPEN = "127.0.26.85"
CASSANDRA_AUTH = "127.0.26.86"
HTTP_DATABASES = "127.0.26.90"

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013


def probe(address: str, port: int, service: str) -> list[Finding]:
    """The service probe for ``service`` run on ``address:port`` (the real probe code)."""
    ctx = ProbeContext.from_settings(
        Settings.model_validate(
            {"scope": {"allow": ["127.0.26.0/24"]}, "scan": {"probe_timeout_s": 2}}
        )
    )
    target = HostTarget("db.gouv.ml", address)
    ((_, run),) = [entry for entry in _probes(service)]
    return asyncio.run(run(ctx, target, OpenPort(port, service)))


def _probes(service: str) -> tuple[tuple[str, Any], ...]:
    from vigie.scanner.service import PROBES

    return PROBES[service]


def ids(findings: list[Finding]) -> set[str]:
    return {f.check_id for f in findings}


# --- MongoDB ------------------------------------------------------------------------------
#
# MongoDB Wire Protocol (manual, "Legacy Opcodes" and "OP_MSG"): a 16-byte header
# (messageLength, requestID, responseTo, opCode), then for OP_QUERY flags,
# fullCollectionName, numberToSkip, numberToReturn and the query document; for
# OP_REPLY responseFlags, cursorID, startingFrom, numberReturned and documents; for
# OP_MSG flagBits and sections (kind 0: one body document).

# The "hello" / isMaster answer of a standalone mongod (MongoDB manual, "hello" output).
HELLO = {
    "ismaster": True,
    "topologyVersion": {"processId": ObjectId("6571b8e3c5a7f2d2a3b0c1d2"), "counter": Int64(0)},
    "maxBsonObjectSize": 16777216,
    "maxMessageSizeBytes": 48000000,
    "maxWriteBatchSize": 100000,
    "localTime": datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 7,
    "minWireVersion": 0,
    "maxWireVersion": 21,
    "readOnly": False,
    "ok": 1.0,
}
LISTING = {
    "databases": [
        {"name": "admin", "sizeOnDisk": Int64(40960), "empty": False},
        {"name": "citoyens", "sizeOnDisk": Int64(73728), "empty": False},
        {"name": "local", "sizeOnDisk": Int64(73728), "empty": False},
    ],
    "totalSize": Int64(188416),
    "totalSizeMb": Int64(0),
    "ok": 1.0,
}
UNAUTHORIZED = {
    "ok": 0.0,
    "errmsg": "command listDatabases requires authentication",
    "code": 13,
    "codeName": "Unauthorized",
}


def op_reply(response_to: int, document: dict[str, Any]) -> bytes:
    body = struct.pack("<iqii", 8, 0, 0, 1) + bson.encode(document)  # AwaitCapable, 1 doc
    return struct.pack("<iiii", 16 + len(body), 100, response_to, OP_REPLY) + body


def op_msg(response_to: int, document: dict[str, Any]) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(document)
    return struct.pack("<iiii", 16 + len(body), 101, response_to, OP_MSG) + body


def read_request(connection: socket.socket) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
    """(requestID, opCode, framing fields, command document) of one client message."""
    length, request_id, _, opcode = struct.unpack("<iiii", recv_exactly(connection, 16))
    body = recv_exactly(connection, length - 16)
    if opcode == OP_MSG:
        message = _OpMsg.unpack(body)  # pymongo's own OP_MSG parser
        command = message.unpack_response(codec_options=bson.DEFAULT_CODEC_OPTIONS)[0]
        return request_id, opcode, {"flags": message.flags}, command
    assert opcode == OP_QUERY
    flags = struct.unpack_from("<i", body)[0]
    name_end = body.index(b"\x00", 4)
    collection = body[4:name_end].decode()
    skip, to_return = struct.unpack_from("<ii", body, name_end + 1)
    framing = {"flags": flags, "collection": collection, "skip": skip, "return": to_return}
    return request_id, opcode, framing, bson.decode(body[name_end + 9 :])


def mongo_server(
    hello: dict[str, Any],
    listing: dict[str, Any],
    seen: list[tuple[int, dict[str, Any], dict[str, Any]]],
) -> Callable[[socket.socket], None]:
    def handle(connection: socket.socket) -> None:
        request_id, opcode, framing, command = read_request(connection)
        seen.append((opcode, framing, command))
        connection.sendall(op_reply(request_id, hello))
        request_id, opcode, framing, command = read_request(connection)
        seen.append((opcode, framing, command))
        reply = op_msg if opcode == OP_MSG else op_reply
        connection.sendall(reply(request_id, listing))

    return handle


@pytest.mark.network
def test_mongodb_without_authentication_lists_its_databases() -> None:
    seen: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    # Given a server answering as MongoDB 7 does, every byte from pymongo's bson
    with scripted(MONGO_OPEN, 27017, mongo_server(HELLO, LISTING, seen)):
        # When vigie's MongoDB probe runs
        findings = probe(MONGO_OPEN, 27017, "mongodb")
    # Then its first request is the legacy OP_QUERY isMaster on admin.$cmd (numberToReturn -1)
    (opcode, framing, command), (second_opcode, second_framing, second) = seen
    assert opcode == OP_QUERY
    assert framing == {"flags": 0, "collection": "admin.$cmd", "skip": 0, "return": -1}
    assert command == {"isMaster": 1}
    # And, the server being wire version 21, listDatabases goes in an OP_MSG body with $db
    assert second_opcode == OP_MSG and second_framing == {"flags": 0}
    assert second == {"listDatabases": 1, "nameOnly": True, "$db": "admin"}
    # And the open listing is reported as exposed without authentication
    assert ids(findings) == {"service.database.exposed", "service.database.no_auth"}
    answer = str(
        next(f for f in findings if f.check_id == "service.database.no_auth").evidence["answer"]
    )
    assert answer == "listDatabases ok: admin, citoyens, local"


@pytest.mark.network
def test_mongodb_refusing_listdatabases_is_exposed_with_authentication_required() -> None:
    seen: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    with scripted(MONGO_AUTH, 27017, mongo_server(HELLO, UNAUTHORIZED, seen)):
        findings = probe(MONGO_AUTH, 27017, "mongodb")
    assert ids(findings) == {"service.database.exposed"}
    (finding,) = findings
    assert finding.evidence["authentication"] == "required"
    assert (
        finding.evidence["answer"] == "Unauthorized command listDatabases requires authentication"
    )
    assert finding.evidence["max_wire_version"] == 21


@pytest.mark.network
def test_an_old_mongodb_gets_listdatabases_as_op_query() -> None:
    seen: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    # Given a MongoDB 3.4 (wire version 5: no OP_MSG yet)
    old = {**HELLO, "maxWireVersion": 5}
    del old["topologyVersion"]
    with scripted(MONGO_OLD, 27017, mongo_server(old, LISTING, seen)):
        findings = probe(MONGO_OLD, 27017, "mongodb")
    # Then vigie stays with OP_QUERY on admin.$cmd for listDatabases too
    (_, _, _), (opcode, framing, command) = seen
    assert opcode == OP_QUERY and framing["collection"] == "admin.$cmd"
    assert command == {"listDatabases": 1, "nameOnly": True}
    assert ids(findings) == {"service.database.exposed", "service.database.no_auth"}


@pytest.mark.parametrize("document", [HELLO, LISTING, UNAUTHORIZED])
def test_vigie_reads_reference_bson_as_pymongo_does(document: dict[str, Any]) -> None:
    # Given documents encoded by pymongo's bson (ObjectId, datetime, Int64, nested arrays)
    reply = db.parse_mongo_reply(op_msg(1, document))
    # Then every field vigie judges reads back as bson.decode reads it
    reference = bson.decode(bson.encode(document))
    for key in ("ok", "maxWireVersion", "ismaster", "errmsg", "code", "codeName"):
        assert reply.get(key) == reference.get(key)
    if "databases" in document:
        assert [d["name"] for d in reply["databases"]] == [
            d["name"] for d in reference["databases"]
        ]


# --- Cassandra ------------------------------------------------------------------------------
#
# CQL binary protocol v4 (native_protocol_v4.spec, §2 frame header, §4.1.4 OPTIONS,
# §4.1.1 STARTUP, §4.2.4 SUPPORTED, §4.2.2 READY, §4.2.3 AUTHENTICATE).


def cql_response(stream_id: int, message: Any, write_body: Callable[[io.BytesIO], None]) -> bytes:
    """A v4 response frame written with cassandra-driver's protocol writers."""
    body = io.BytesIO()
    write_body(body)
    frame = io.BytesIO()
    cql.ProtocolHandler._write_header(
        frame, 0x84, 0, stream_id, message.opcode, len(body.getvalue())
    )
    return frame.getvalue() + body.getvalue()


def supported(stream_id: int) -> bytes:
    return cql_response(
        stream_id,
        cql.SupportedMessage,
        lambda f: cql.write_stringmultimap(
            f,
            {
                "PROTOCOL_VERSIONS": ["3/v3", "4/v4", "5/v5"],
                "COMPRESSION": ["snappy", "lz4"],
                "CQL_VERSION": ["3.4.7"],
            },
        ),
    )


def ready(stream_id: int) -> bytes:
    return cql_response(stream_id, cql.ReadyMessage, lambda f: None)


def authenticate(stream_id: int) -> bytes:
    return cql_response(
        stream_id,
        cql.AuthenticateMessage,
        lambda f: cql.write_string(f, "org.apache.cassandra.auth.PasswordAuthenticator"),
    )


def read_cql_frame(connection: socket.socket) -> bytes:
    header = recv_exactly(connection, 9)
    return header + recv_exactly(connection, int.from_bytes(header[5:9], "big"))


def cassandra_server(
    startup_answer: Callable[[int], bytes], seen: list[bytes]
) -> Callable[[socket.socket], None]:
    def handle(connection: socket.socket) -> None:
        options = read_cql_frame(connection)
        seen.append(options)
        connection.sendall(supported(int.from_bytes(options[2:4], "big")))
        startup = read_cql_frame(connection)
        seen.append(startup)
        connection.sendall(startup_answer(int.from_bytes(startup[2:4], "big")))

    return handle


def driver_request(message: Any, stream_id: int) -> bytes:
    return bytes(cql.ProtocolHandler.encode_message(message, stream_id, 4, None, False))


@pytest.mark.network
@pytest.mark.parametrize(
    ("address", "answer", "expected", "authentication"),
    [
        (CASSANDRA_OPEN, ready, {"service.database.exposed", "service.database.no_auth"}, "none"),
        (CASSANDRA_AUTH, authenticate, {"service.database.exposed"}, "required"),
    ],
)
def test_cassandra_probe_speaks_cql_v4_as_the_driver_does(
    address: str, answer: Callable[[int], bytes], expected: set[str], authentication: str
) -> None:
    seen: list[bytes] = []
    # Given a node whose frames come from cassandra-driver's writers
    with scripted(address, 9042, cassandra_server(answer, seen)):
        findings = probe(address, 9042, "cassandra")
    # Then vigie's OPTIONS and STARTUP are byte for byte the driver's (stream ids aside)
    options, startup = seen
    assert options == driver_request(cql.OptionsMessage(), int.from_bytes(options[2:4], "big"))
    assert startup == driver_request(
        cql.StartupMessage(cqlversion="3.0.0", options={}), int.from_bytes(startup[2:4], "big")
    )
    # And the answer is judged as the node's configuration says
    assert ids(findings) == expected
    exposed = next(f for f in findings if f.check_id == "service.database.exposed")
    assert exposed.evidence["authentication"] == authentication
    if authentication == "required":
        assert "PasswordAuthenticator" in str(exposed.evidence["answer"])


@pytest.mark.parametrize(
    "frame", [supported(1), ready(2), authenticate(2)], ids=["supported", "ready", "authenticate"]
)
def test_the_frames_fed_to_vigie_are_what_the_driver_reads(frame: bytes) -> None:
    # Given a response frame written with the driver's writers
    parsed = db.parse_cql_frame(frame)
    assert parsed is not None
    # Then the driver's own decoder reads the same opcode and body that vigie reads
    message = cql.ProtocolHandler.decode_message(
        4,
        {},
        int.from_bytes(frame[2:4], "big"),
        frame[1],
        frame[4],
        frame[9:],
        None,
        None,
    )
    assert (message.opcode, parsed.opcode, parsed.version) == (frame[4], frame[4], 4)
    assert parsed.body == frame[9:]
    if isinstance(message, cql.AuthenticateMessage):  # the authenticator vigie quotes
        assert parsed.body[2:].decode() == message.authenticator


# --- Elasticsearch, OpenSearch, CouchDB -------------------------------------------------------

# "Root API" of the Elasticsearch reference (GET /), as the documentation shows it.
ELASTICSEARCH_ROOT = {
    "name": "instance-0000000000",
    "cluster_name": "my_cluster",
    "cluster_uuid": "5QaxoN0pRZuOmWSxstBBwQ",
    "version": {
        "number": "8.15.0",
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
        "build_date": "2024-08-05T10:05:34.233336849Z",
        "build_snapshot": False,
        "lucene_version": "9.11.1",
        "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "You Know, for Search",
}
# Elasticsearch with security on, no credentials: 401 and a security_exception.
ELASTICSEARCH_401 = {
    "error": {
        "root_cause": [
            {
                "type": "security_exception",
                "reason": "missing authentication credentials for REST request [/]",
                "header": {
                    "WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]
                },
            }
        ],
        "type": "security_exception",
        "reason": "missing authentication credentials for REST request [/]",
        "header": {"WWW-Authenticate": ['Basic realm="security" charset="UTF-8"', "ApiKey"]},
    },
    "status": 401,
}
# OpenSearch's GET / (OpenSearch documentation, "Installing OpenSearch": verify the node).
OPENSEARCH_ROOT = {
    "name": "opensearch-node1",
    "cluster_name": "opensearch-cluster",
    "cluster_uuid": "W0B8gPotTAajhMPbC9D4ww",
    "version": {
        "distribution": "opensearch",
        "number": "2.11.0",
        "build_type": "tar",
        "build_hash": "4dcad6dd1fd45b6bd91f041a041829c8687278fa",
        "build_date": "2023-10-13T02:55:55.511945994Z",
        "build_snapshot": False,
        "lucene_version": "9.7.0",
        "minimum_wire_compatibility_version": "7.10.0",
        "minimum_index_compatibility_version": "7.0.0",
    },
    "tagline": "The OpenSearch Project: https://opensearch.org/",
}
# CouchDB API reference, "GET /" and "GET /_all_dbs" examples.
COUCHDB_ROOT = {
    "couchdb": "Welcome",
    "version": "3.3.3",
    "git_sha": "40afbcfc7",
    "uuid": "85fb71bf700c17267fef77535820e371",
    "features": [
        "access-ready",
        "partitioned",
        "pluggable-storage-engines",
        "reshard",
        "scheduler",
    ],
    "vendor": {"name": "The Apache Software Foundation"},
}
COUCHDB_ALL_DBS = ["_users", "contacts", "docs", "invoices", "locations"]
COUCHDB_NOT_ADMIN = {"error": "unauthorized", "reason": "You are not a server admin."}

# port -> path -> (status, headers, JSON body)
ROUTES: dict[int, dict[str, tuple[int, dict[str, str], object]]] = {
    9200: {"/": (200, {"X-elastic-product": "Elasticsearch"}, ELASTICSEARCH_ROOT)},
    9201: {
        "/": (
            401,
            {"WWW-Authenticate": 'Basic realm="security" charset="UTF-8"'},
            ELASTICSEARCH_401,
        )
    },
    9202: {"/": (200, {}, OPENSEARCH_ROOT)},
    5984: {
        "/": (200, {"Server": "CouchDB/3.3.3 (Erlang OTP/24)"}, COUCHDB_ROOT),
        "/_all_dbs": (200, {}, COUCHDB_ALL_DBS),
    },
    5985: {"/": (200, {}, COUCHDB_ROOT), "/_all_dbs": (401, {}, COUCHDB_NOT_ADMIN)},
}


class JsonDocuments(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status, headers, body = ROUTES[self.server.server_address[1]].get(
            self.path, (404, {}, {"error": "not_found"})
        )
        payload = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_databases() -> Iterator[None]:
    servers = [
        http.server.ThreadingHTTPServer((HTTP_DATABASES, port), JsonDocuments) for port in ROUTES
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.network
@pytest.mark.parametrize(
    ("port", "expected", "product", "authentication"),
    [
        (
            9200,
            {"service.database.exposed", "service.database.no_auth", "service.version_disclosed"},
            "Elasticsearch",
            "none",
        ),
        (9201, {"service.database.exposed"}, "Elasticsearch", "required"),
        (
            9202,
            {"service.database.exposed", "service.database.no_auth", "service.version_disclosed"},
            "OpenSearch",
            "none",
        ),
        (
            5984,
            {"service.database.exposed", "service.database.no_auth", "service.version_disclosed"},
            "CouchDB",
            "none",
        ),
        (5985, {"service.database.exposed", "service.version_disclosed"}, "CouchDB", "required"),
    ],
)
def test_http_databases_answering_as_their_documentation_shows(
    http_databases: None, port: int, expected: set[str], product: str, authentication: str
) -> None:
    # Given a server answering with the documented JSON
    findings = probe(HTTP_DATABASES, port, "http")
    # Then the product, its openness and its version are read from it
    assert ids(findings) == expected
    exposed = next(f for f in findings if f.check_id == "service.database.exposed")
    assert (exposed.evidence["product"], exposed.evidence["authentication"]) == (
        product,
        authentication,
    )
    disclosed = [
        f.evidence["version"] for f in findings if f.check_id == "service.version_disclosed"
    ]
    documented = {9200: "8.15.0", 9202: "2.11.0", 5984: "3.3.3", 5985: "3.3.3"}
    assert disclosed == ([documented[port]] if port in documented else [])


# --- an answer no parser expected ------------------------------------------------------------

BROKEN_HTTP = "127.0.26.91"


def answer_once(reply: bytes) -> Callable[[socket.socket], None]:
    def handle(connection: socket.socket) -> None:
        connection.recv(4096)
        connection.sendall(reply)

    return handle


@pytest.mark.network
def test_a_non_ascii_content_length_costs_one_port_never_the_family() -> None:
    # Given an HTTP port whose Content-Length is "³" (byte 0xb3 in ISO 8859-1, the charset
    # RFC 9110 §5.5 allows in field values): a digit to str.isdigit, not to int()
    broken = b'HTTP/1.1 200 OK\r\nContent-Length: \xb3\r\n\r\n{"cluster_name": "x"}'
    couchdb = json.dumps(COUCHDB_ROOT).encode()
    welcome = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(couchdb), couchdb)
    with (
        scripted(BROKEN_HTTP, 9200, answer_once(broken)),
        scripted(BROKEN_HTTP, 5984, answer_once(welcome)),
    ):
        ctx = ProbeContext.from_settings(
            Settings.model_validate(
                {"scope": {"allow": [f"{BROKEN_HTTP}/32"]}, "scan": {"probe_timeout_s": 1}}
            )
        )
        ports = [OpenPort(9200, "http"), OpenPort(5984, "http")]
        # When the service family probes both ports
        result = asyncio.run(check_services(ctx, HostTarget("db.gouv.ml", BROKEN_HTTP), ports))
    # Then nothing raised: the sound port is judged (CouchDB, version disclosed)...
    couch = {f.check_id for f in result.findings if f.port == 5984}
    assert "service.version_disclosed" in couch and "service.database.exposed" in couch
    # ...and the broken one is at worst a scan.error for that port, never a false database
    assert not {
        f.check_id
        for f in result.findings
        if f.port == 9200 and f.check_id.startswith("service.database")
    }
