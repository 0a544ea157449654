"""Databases reachable from the scanner, and those that answer without credentials.

Each database gets a real protocol exchange (its handshake, or one harmless
read-only command); the port number only chose which exchange to try. Pure
``*_findings`` functions judge what came back; thin ``probe_*`` coroutines
make the exchange. Nothing is written, and no password is ever tried: the
only logins are the default administrator with an EMPTY password
(PostgreSQL ``postgres``, MySQL/MariaDB ``root``), which only a server that
asks for no password at all lets in.

Check IDs: ``service.database.exposed``, ``service.database.no_auth``,
``service.version_disclosed``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace
from typing import Any

from vigie.errors import ProbeError
from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.connection import Stream, open_stream, printable
from vigie.scanner.http_wire import HttpResponse, http_exchange
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service import _bson
from vigie.scanner.service._common import (
    DATABASE_EXPOSED,
    DATABASE_NO_AUTH,
    VERSION_DISCLOSED,
    port_finding,
)

# The names shown in evidence.
REDIS = "Redis"
MEMCACHED = "memcached"
MONGODB = "MongoDB"
POSTGRESQL = "PostgreSQL"
MYSQL = "MySQL"
MARIADB = "MariaDB"
MSSQL = "Microsoft SQL Server"
ORACLE = "Oracle Database (TNS listener)"
CASSANDRA = "Cassandra"
ELASTICSEARCH = "Elasticsearch"
OPENSEARCH = "OpenSearch"
COUCHDB = "CouchDB"

REQUIRED = "required"
NONE = "none"


def exposed(
    target: HostTarget, port: int, product: str, authentication: str, answer: str, **extra: Any
) -> Finding:
    """``service.database.exposed``: the port answered in the database's own protocol.

    Each probe reads the server's first protocol message (MySQL Connection Phase
    ``Protocol::HandshakeV10``, the PostgreSQL Frontend/Backend protocol's
    start-up message flow, MongoDB ``hello`` over OP_MSG, RESP for Redis, Cassandra native
    protocol v4 §4.2.2 READY/AUTHENTICATE, the Elasticsearch and CouchDB REST
    roots, Oracle TNS ACCEPT/REFUSE). CIS Controls v8 Safeguard 4.4: servers
    answer only the networks that need them; a database never needs the Internet.
    """
    return port_finding(
        target,
        DATABASE_EXPOSED,
        port,
        {
            "product": product,
            "port": port,
            "authentication": authentication,
            "answer": printable(answer),
            **extra,
        },
    )


def no_auth(target: HostTarget, port: int, product: str, query: str, answer: str) -> Finding:
    """``service.database.no_auth``: a query that needs rights was answered without
    credentials (Redis ``INFO`` without ``-NOAUTH``, MongoDB ``listDatabases``,
    Cassandra READY where an authenticator sends AUTHENTICATE (native protocol v4
    §4.2.2-§4.2.3), Elasticsearch ``/_cat/indices`` or CouchDB ``/_all_dbs`` with
    200 instead of 401 (RFC 9110 §15.5.2), a MySQL/MariaDB OK_Packet to an empty
    password). CWE-306: missing authentication for a critical function.
    """
    return port_finding(
        target,
        DATABASE_NO_AUTH,
        port,
        {"product": product, "port": port, "query": query, "answer": printable(answer)},
    )


def version_disclosed(
    target: HostTarget, port: int, product: str, version: str, source: str
) -> Finding:
    """``service.version_disclosed``: the database's handshake names its exact release
    (the server version field of MySQL's HandshakeV10, Redis ``redis_version``,
    Elasticsearch ``version.number``...), which matches it to known CVEs (CWE-200)."""
    return port_finding(
        target,
        VERSION_DISCLOSED,
        port,
        {"product": product, "version": printable(version, 80), "port": port, "source": source},
    )


# --- Redis ----------------------------------------------------------------------

_REDIS_AUTH_ERRORS = (b"-NOAUTH", b"-WRONGPASS", b"-NOPERM", b"-ERR operation not permitted")


def parse_redis_info(info: bytes) -> dict[str, str]:
    """``INFO`` fields (``redis_version``...) from a RESP bulk reply, truncated or not.

    Redis protocol specification (RESP2), "Bulk strings"; the INFO command's
    output is ``field:value`` lines under ``# Section`` headers.
    """
    fields: dict[str, str] = {}
    for line in info.decode("utf-8", errors="replace").splitlines():
        key, colon, value = line.partition(":")
        if colon and not key.startswith(("$", "#")):
            fields[key.strip()] = value.strip()
    return fields


def redis_findings(target: HostTarget, port: int, ping_reply: bytes, info: bytes) -> list[Finding]:
    """Judge the answers to ``PING`` (and ``INFO server`` when PING was answered).

    RESP2 "Simple strings" / "Simple errors": ``+PONG`` is the command run
    without authentication; ``-NOAUTH`` / ``-WRONGPASS`` / ``-NOPERM`` (ACL,
    Redis 6) demand credentials; ``-DENIED`` is protected mode.
    """
    first = ping_reply.split(b"\r\n", 1)[0]
    answer = first.decode("utf-8", errors="replace")
    if first.startswith(b"+PONG"):
        findings = [
            exposed(target, port, REDIS, NONE, answer),
            no_auth(target, port, REDIS, "PING", answer),
        ]
        version = parse_redis_info(info).get("redis_version")
        if version:
            findings.append(version_disclosed(target, port, REDIS, version, "INFO redis_version"))
        return findings
    if first.startswith(_REDIS_AUTH_ERRORS):
        return [exposed(target, port, REDIS, REQUIRED, answer)]
    if first.startswith(b"-DENIED"):
        return [exposed(target, port, REDIS, "refused (protected mode)", answer)]
    if first.startswith(b"-"):
        return [exposed(target, port, REDIS, "unknown", answer)]
    return []


def _redis_bulk_complete(data: bytes) -> bool:
    header, newline, rest = data.partition(b"\r\n")
    if not newline:
        return False
    if not header.startswith(b"$"):
        return True  # an error or another type: one line is all there is
    try:
        return len(rest) >= int(header[1:]) + 2
    except ValueError:
        return True


async def probe_redis(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Inline ``PING``, then ``INFO server`` if it was answered (RESP2, "Inline commands")."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(b"PING\r\n")
        reply = await stream.line()
        info = b""
        if reply.startswith(b"+PONG"):
            await stream.send(b"INFO server\r\n")
            info = await stream.read_until(_redis_bulk_complete, accept_partial=True)
    return redis_findings(target, port.port, reply, info)


# --- memcached ------------------------------------------------------------------


def parse_memcached_stats(reply: bytes) -> dict[str, str]:
    """``STAT <name> <value>`` lines (memcached protocol.txt, "General-purpose statistics")."""
    stats: dict[str, str] = {}
    for line in reply.decode("utf-8", errors="replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2].strip()
    return stats


def memcached_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """Judge the answer to the ASCII ``stats`` command.

    memcached protocol.txt, "Statistics": ``STAT`` lines up to ``END``; with
    SASL on, the text protocol answers ``CLIENT_ERROR unauthenticated``.
    """
    stats = parse_memcached_stats(reply)
    if stats:
        summary = " ".join(f"{k}={stats[k]}" for k in ("version", "curr_items") if k in stats)
        findings = [
            exposed(target, port, MEMCACHED, NONE, summary),
            no_auth(target, port, MEMCACHED, "stats", summary),
        ]
        if stats.get("version"):
            findings.append(
                version_disclosed(target, port, MEMCACHED, stats["version"], "stats version")
            )
        return findings
    if reply.startswith(b"CLIENT_ERROR unauthenticated"):
        return [exposed(target, port, MEMCACHED, REQUIRED, reply.decode("latin-1"))]
    return []


def _memcached_complete(data: bytes) -> bool:
    return data.endswith(b"END\r\n") or (
        data.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")) and data.endswith(b"\n")
    )


# Binary protocol: a VERSION request (magic 0x80, opcode 0x0b), 24-byte header, no body.
MEMCACHED_BINARY_VERSION = bytes([0x80, 0x0B]) + b"\x00" * 22
MEMCACHED_AUTH_ERROR = 0x0020


def memcached_binary_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """A binary-protocol answer (SASL-only memcached refuses the text protocol).

    memcached binary protocol ("BinaryProtocolRevamped"): response magic
    0x81, opcode 0x0b Version, status 0x0020 "Authentication error".
    """
    if len(reply) < 24 or reply[0] != 0x81 or reply[1] != 0x0B:
        return []
    status = int.from_bytes(reply[6:8], "big")
    if status == MEMCACHED_AUTH_ERROR:
        return [exposed(target, port, MEMCACHED, REQUIRED, "binary protocol: authentication error")]
    version = reply[24:].decode("latin-1")
    return [exposed(target, port, MEMCACHED, "unknown", f"binary protocol: version {version}")]


def _memcached_binary_complete(data: bytes) -> bool:
    return len(data) >= 24 and len(data) >= 24 + int.from_bytes(data[8:12], "big")


async def probe_memcached(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """``stats`` in the text protocol, else a binary Version request (protocol.txt, binary spec)."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(b"stats\r\n")
        reply = await stream.read_until(_memcached_complete, accept_partial=True)
    findings = memcached_findings(target, port.port, reply)
    if findings:
        return findings
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(MEMCACHED_BINARY_VERSION)
        binary = await stream.read_until(_memcached_binary_complete, 1024, accept_partial=True)
    return memcached_binary_findings(target, port.port, binary)


# --- MongoDB --------------------------------------------------------------------

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
# OP_MSG (MongoDB 3.6+) is wire version 6.
OP_MSG_WIRE_VERSION = 6
MAX_MONGO_REPLY = 65_536


def mongo_query(request_id: int, command: dict[str, Any]) -> bytes:
    """A legacy OP_QUERY on ``admin.$cmd`` (every MongoDB answers isMaster this way).

    MongoDB Wire Protocol, "Legacy Opcodes" OP_QUERY (2004): header, flags,
    fullCollectionName, numberToSkip 0, numberToReturn -1, the query document.
    """
    body = (
        struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + _bson.encode(command)
    )
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_QUERY) + body


def mongo_msg(request_id: int, command: dict[str, Any]) -> bytes:
    """An OP_MSG with one body section (MongoDB 3.6 and later).

    MongoDB Wire Protocol, "OP_MSG" (2013): flagBits 0, a kind-0 section
    holding the command document, whose ``$db`` names the database.
    """
    body = struct.pack("<I", 0) + b"\x00" + _bson.encode({**command, "$db": "admin"})
    return struct.pack("<iiii", 16 + len(body), request_id, 0, OP_MSG) + body


def parse_mongo_reply(data: bytes) -> dict[str, Any]:
    """The first document of an OP_REPLY or OP_MSG reply (ProbeError if it is neither).

    MongoDB Wire Protocol: OP_REPLY (1) carries responseFlags, cursorID,
    startingFrom, numberReturned then documents (byte 36); OP_MSG (2013)
    carries flagBits then a kind-0 body section (byte 21).
    """
    if len(data) < 21:
        raise ProbeError(f"MongoDB reply too short ({len(data)} bytes)")
    length, _request, _response_to, opcode = struct.unpack_from("<iiii", data)
    if length != len(data):
        raise ProbeError(f"MongoDB reply of {len(data)} bytes announces {length}")
    try:
        if opcode == OP_REPLY and len(data) >= 40:
            start = 36
        elif opcode == OP_MSG and data[20] == 0:
            start = 21
        else:
            raise ProbeError(f"not a MongoDB reply (opcode {opcode})")
        (doc_length,) = struct.unpack_from("<i", data, start)
        return _bson.decode(data[start : start + doc_length])
    except (ValueError, struct.error) as exc:
        raise ProbeError(f"malformed MongoDB reply: {exc}") from None


def is_mongo_hello(document: dict[str, Any]) -> bool:
    return "maxWireVersion" in document or "ismaster" in document


def mongodb_findings(
    target: HostTarget, port: int, hello: dict[str, Any], listing: dict[str, Any] | None
) -> list[Finding]:
    """Judge the isMaster handshake and the ``listDatabases`` answer.

    MongoDB manual, "listDatabases": ``ok: 1`` with a ``databases`` array is
    a read done without credentials; error 13 ``Unauthorized`` means access
    control is on.
    """
    if not is_mongo_hello(hello):
        return []
    wire = hello.get("maxWireVersion")
    databases = listing.get("databases") if listing is not None else None
    if listing is not None and listing.get("ok") in (1, 1.0, True) and isinstance(databases, list):
        names = [str(db.get("name", "?")) for db in databases[:20] if isinstance(db, dict)]
        answer = f"listDatabases ok: {', '.join(names)}"
        return [
            exposed(target, port, MONGODB, NONE, answer, max_wire_version=wire),
            no_auth(target, port, MONGODB, "listDatabases", answer),
        ]
    if listing is None:
        return [
            exposed(target, port, MONGODB, "unknown", "isMaster answered", max_wire_version=wire)
        ]
    error = f"{listing.get('codeName', '')} {listing.get('errmsg', '')}".strip()
    return [exposed(target, port, MONGODB, REQUIRED, error, max_wire_version=wire)]


async def _mongo_exchange(stream: Stream, message: bytes) -> bytes:
    await stream.send(message)
    head = await stream.read_exactly(4)
    (length,) = struct.unpack("<i", head)
    if not 21 <= length <= MAX_MONGO_REPLY:
        raise ProbeError(f"MongoDB reply announces {length} bytes")
    return head + await stream.read_exactly(length - 4)


async def probe_mongodb(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """isMaster by OP_QUERY, then ``listDatabases`` (OP_MSG from wire version 6)."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        hello = parse_mongo_reply(await _mongo_exchange(stream, mongo_query(1, {"isMaster": 1})))
        if not is_mongo_hello(hello):
            return []
        command = {"listDatabases": 1, "nameOnly": True}
        wire = hello.get("maxWireVersion")
        if isinstance(wire, int) and wire >= OP_MSG_WIRE_VERSION:
            message = mongo_msg(2, command)
        else:
            message = mongo_query(2, command)
        listing = parse_mongo_reply(await _mongo_exchange(stream, message))
    return mongodb_findings(target, port.port, hello, listing)


# --- PostgreSQL -----------------------------------------------------------------

PG_PROTOCOL_3 = 196608
PG_AUTH_METHODS = {
    0: "none (AuthenticationOk)",
    2: "Kerberos V5",
    3: "cleartext password",
    5: "MD5 password",
    7: "GSSAPI",
    9: "SSPI",
    10: "SASL (SCRAM)",
}
PG_PROBE_USER = "postgres"


def pg_startup(user: str = PG_PROBE_USER) -> bytes:
    """A StartupMessage, protocol 3.0 (PostgreSQL docs, "Message Formats": StartupMessage)."""
    params = b"".join(
        key.encode() + b"\x00" + value.encode() + b"\x00"
        for key, value in (("user", user), ("database", user), ("application_name", "vigie"))
    )
    body = struct.pack(">i", PG_PROTOCOL_3) + params + b"\x00"
    return struct.pack(">i", len(body) + 4) + body


def parse_pg_error(payload: bytes) -> dict[str, str]:
    """ErrorResponse fields (PostgreSQL docs, "Error and Notice Message Fields")."""
    fields: dict[str, str] = {}
    for part in payload.split(b"\x00"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", errors="replace")
    return fields


def postgresql_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """Judge the answer to a StartupMessage for user ``postgres`` with no password.

    PostgreSQL docs, "Frontend/Backend Protocol", "Start-up": the server
    answers AuthenticationOk (``R``, code 0: no password asked), another
    Authentication request (cleartext, MD5, SASL...), or ErrorResponse (``E``).
    """
    if len(reply) < 9 or reply[:1] not in (b"R", b"E"):
        return []
    length = int.from_bytes(reply[1:5], "big")
    if not 8 <= length <= 8192:
        return []
    if reply[:1] == b"R":
        code = int.from_bytes(reply[5:9], "big")
        method = PG_AUTH_METHODS.get(code, f"method {code}")
        if code == 0:
            answer = f"AuthenticationOk for user {PG_PROBE_USER} without a password"
            return [
                exposed(target, port, POSTGRESQL, NONE, answer),
                no_auth(target, port, POSTGRESQL, f"startup as {PG_PROBE_USER}", answer),
            ]
        return [exposed(target, port, POSTGRESQL, REQUIRED, f"server asks for {method}")]
    error = parse_pg_error(reply[5 : 1 + length])
    if "S" not in error and "V" not in error:
        return []
    message = f"{error.get('C', '')} {error.get('M', '')}".strip()
    return [exposed(target, port, POSTGRESQL, "refused", message)]


def _pg_message_complete(data: bytes) -> bool:
    return len(data) >= 5 and len(data) >= 1 + int.from_bytes(data[1:5], "big")


async def probe_postgresql(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """StartupMessage as ``postgres``, the first answer, and Terminate if let in ("Start-up")."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(pg_startup())
        reply = await stream.read_until(_pg_message_complete, 8192)
        if reply[:1] == b"R" and reply[5:9] == b"\x00\x00\x00\x00":
            await stream.send(b"X\x00\x00\x00\x04")  # Terminate: leave politely
    return postgresql_findings(target, port.port, reply)


# --- MySQL / MariaDB ------------------------------------------------------------
#
# MySQL client/server protocol (MySQL Internals manual, "Connection Phase"): the
# server speaks first with an Initial Handshake packet (protocol version 10) or
# an ERR packet; the client answers with a HandshakeResponse41; the server ends
# the phase with an OK packet (logged in), an ERR packet, or an
# AuthSwitchRequest (0xFE) asking for another authentication method.

MYSQL_PROBE_USER = "root"
# Capability flags of the HandshakeResponse41 (MySQL Internals, "Capability Flags").
CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_PLUGIN_AUTH = 0x00080000
MYSQL_CLIENT_FLAGS = (
    CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
)
MYSQL_UTF8MB4 = 45
MYSQL_OK = 0x00
MYSQL_ERR = 0xFF
MYSQL_AUTH_SWITCH = 0xFE
MYSQL_AUTH_MORE_DATA = 0x01


@dataclass(frozen=True)
class MysqlGreeting:
    server_version: str = ""
    error: str = ""
    error_code: int = 0
    auth_plugin: str = ""


def parse_mysql_greeting(data: bytes) -> MysqlGreeting | None:
    """The server's first packet: Initial Handshake v10 (its version) or an ERR packet.

    MySQL Internals, "Connection Phase Packets": Protocol::HandshakeV10 is
    ``0x0a``, the NUL-terminated server version, a 4-byte connection id, the
    first 8 bytes of the scramble, a filler, the capability flags... and, with
    CLIENT_PLUGIN_AUTH, the authentication plugin name last.
    """
    if len(data) < 7 or data[3] != 0:
        return None
    length = int.from_bytes(data[:3], "little")
    payload = data[4 : 4 + length]
    if payload[:1] == b"\x0a":
        version, nul, rest = payload[1:].partition(b"\x00")
        if not nul or not version[:1].isdigit() or not version[:1].isascii():
            return None
        return MysqlGreeting(
            server_version=version.decode("latin-1"), auth_plugin=_mysql_auth_plugin(rest)
        )
    error = parse_mysql_error(payload)
    if error is not None:
        return MysqlGreeting(error=error[1], error_code=error[0])
    return None


def _mysql_auth_plugin(rest: bytes) -> str:
    """The auth plugin name that ends a HandshakeV10 (after the server version), or ""."""
    if len(rest) < 31:
        return ""
    capabilities = (
        int.from_bytes(rest[13:15], "little") | int.from_bytes(rest[18:20], "little") << 16
    )
    if not capabilities & CLIENT_PLUGIN_AUTH:
        return ""
    part2 = max(13, rest[20] - 8)
    name = rest[31 + part2 :].split(b"\x00", 1)[0][:64].decode("latin-1")
    return name if name.isascii() and name.isprintable() else ""


def parse_mysql_error(payload: bytes) -> tuple[int, str] | None:
    """(code, message) of an ERR_Packet payload (``0xff``, code, ``#`` SQL state, text)."""
    if payload[:1] != b"\xff" or len(payload) < 3:
        return None
    code = int.from_bytes(payload[1:3], "little")
    message = payload[3:]
    if message.startswith(b"#"):
        message = message[6:]  # "#" and the five-character SQL state
    return code, message.decode("utf-8", errors="replace")


def mysql_handshake_response(user: str = MYSQL_PROBE_USER, plugin: str = "") -> bytes:
    """A HandshakeResponse41 for ``user`` with an EMPTY authentication response.

    MySQL Internals, "Protocol::HandshakeResponse41": capability flags, max
    packet size, character set, 23 zero bytes, the NUL-terminated user name,
    the length-prefixed auth response (here of length 0: no password) and the
    plugin name. Sequence id 1: it answers the server's packet 0.
    """
    payload = (
        struct.pack("<IIB", MYSQL_CLIENT_FLAGS, 1 << 24, MYSQL_UTF8MB4)
        + b"\x00" * 23
        + user.encode("ascii")
        + b"\x00"
        + b"\x00"  # auth-response length 0
        + (plugin or "mysql_native_password").encode("ascii")
        + b"\x00"
    )
    return len(payload).to_bytes(3, "little") + b"\x01" + payload


def mysql_packet(sequence: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([sequence & 0xFF]) + payload


MYSQL_QUIT = mysql_packet(0, b"\x01")  # COM_QUIT


_MARIADB_VERSION = re.compile(r"(?:5\.5\.5-)?(\d+\.\d+\.\d+)", re.ASCII)


def mysql_product_version(server_version: str) -> tuple[str, str]:
    """``5.5.5-10.11.6-MariaDB-0+deb12u1`` -> (MariaDB, 10.11.6); ``8.0.36`` -> (MySQL, 8.0.36)."""
    product = MARIADB if "mariadb" in server_version.lower() else MYSQL
    match = _MARIADB_VERSION.match(server_version)
    return product, (match.group(1) if match else server_version)


def mysql_login_answer(reply: bytes) -> tuple[str, str]:
    """(authentication, answer) from the server's reply to an empty-password login."""
    if len(reply) < 5:
        return "unknown", "no answer to the login"
    payload = reply[4 : 4 + int.from_bytes(reply[:3], "little")]
    kind = payload[:1]
    if kind == bytes([MYSQL_OK]):
        return NONE, f"OK packet: user {MYSQL_PROBE_USER} logged in without a password"
    error = parse_mysql_error(payload)
    if error is not None:
        return REQUIRED, f"ERR {error[0]}: {error[1]}"
    if kind == bytes([MYSQL_AUTH_SWITCH]):
        plugin = payload[1:].split(b"\x00", 1)[0].decode("latin-1")
        return REQUIRED, f"server asks for another authentication method ({plugin})"
    if kind == bytes([MYSQL_AUTH_MORE_DATA]):  # caching_sha2_password: 0x04 = full auth
        return REQUIRED, "server asks for more authentication data (AuthMoreData)"
    return "unknown", "unexpected answer to the login"


def mysql_findings(
    target: HostTarget, port: int, greeting: bytes, login_reply: bytes = b""
) -> list[Finding]:
    """Judge the Initial Handshake and the answer to a login as ``root`` without a password."""
    parsed = parse_mysql_greeting(greeting)
    if parsed is None:
        return []
    if parsed.error:
        return [exposed(target, port, MYSQL, "refused", f"ERR {parsed.error_code}: {parsed.error}")]
    product, version = mysql_product_version(parsed.server_version)
    disclosed = version_disclosed(target, port, product, version, "handshake server version")
    # The whole string too: it carries the distribution's package revision (10.11.19-MariaDB-0+deb12u1).
    raw = printable(parsed.server_version, 120)
    disclosed = replace(disclosed, evidence={**disclosed.evidence, "server_version": raw})
    if not login_reply:
        answer = f"handshake v10, server {parsed.server_version}"
        return [exposed(target, port, product, "not tested", answer), disclosed]
    authentication, answer = mysql_login_answer(login_reply)
    findings = [exposed(target, port, product, authentication, answer)]
    if authentication == NONE:
        findings.append(no_auth(target, port, product, f"login as {MYSQL_PROBE_USER}", answer))
    return [*findings, disclosed]


def _mysql_packet_complete(data: bytes) -> bool:
    return len(data) >= 4 and len(data) >= 4 + int.from_bytes(data[:3], "little")


async def probe_mysql(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Read the Initial Handshake, then log in as ``root`` with no password, then COM_QUIT."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = await stream.read_until(_mysql_packet_complete, 4096)
        parsed = parse_mysql_greeting(greeting)
        reply = b""
        if parsed is not None and parsed.server_version:
            await stream.send(mysql_handshake_response(plugin=parsed.auth_plugin))
            reply = await stream.read_until(_mysql_packet_complete, 4096, accept_partial=True)
            if reply[4:5] == bytes([MYSQL_OK]):
                await stream.send(MYSQL_QUIT)
    return mysql_findings(target, port.port, greeting, reply)


# --- Microsoft SQL Server ---------------------------------------------------------

TDS_PRELOGIN = 0x12
TDS_RESPONSE = 0x04


def mssql_prelogin() -> bytes:
    """A TDS PRELOGIN packet: version, encryption off, no instance, thread id, MARS off.

    MS-TDS §2.2.6.5 PRELOGIN: packet type 0x12, option tokens VERSION (0x00),
    ENCRYPTION (0x01), INSTOPT (0x02), THREADID (0x03), MARS (0x04), 0xFF.
    """
    options = [
        (0x00, b"\x00" * 6),
        (0x01, b"\x00"),
        (0x02, b"\x00"),
        (0x03, b"\x00" * 4),
        (0x04, b"\x00"),
    ]
    table_size = 5 * len(options) + 1
    table, data = b"", b""
    for token, value in options:
        table += struct.pack(">BHH", token, table_size + len(data), len(value))
        data += value
    payload = table + b"\xff" + data
    return struct.pack(">BBHHBB", TDS_PRELOGIN, 0x01, 8 + len(payload), 0, 0, 0) + payload


def parse_mssql_prelogin(reply: bytes) -> str | None:
    """The server version (``15.0.2000``) of a PRELOGIN response, or None if it is none.

    MS-TDS §2.2.6.5: the response (packet type 0x04) carries the same option
    table; VERSION is UL_VERSION (major, minor, build) and US_SUBBUILD.
    """
    if len(reply) < 8 or reply[0] != TDS_RESPONSE:
        return None
    payload = reply[8:]
    offset = 0
    while offset < len(payload) and payload[offset] != 0xFF:
        if offset + 5 > len(payload):
            return None
        token, start, size = struct.unpack_from(">BHH", payload, offset)
        if token == 0x00 and size >= 6 and start + 6 <= len(payload):
            major, minor, build = struct.unpack_from(">BBH", payload, start)
            return f"{major}.{minor}.{build}"
        offset += 5
    return None


def mssql_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """A PRELOGIN response (MS-TDS §2.2.6.5) proves SQL Server; login always needs credentials."""
    version = parse_mssql_prelogin(reply)
    if version is None:
        return []
    return [exposed(target, port, MSSQL, REQUIRED, "PRELOGIN answered", version=version)]


def _tds_complete(data: bytes) -> bool:
    return len(data) >= 8 and len(data) >= int.from_bytes(data[2:4], "big")


async def probe_mssql(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Send PRELOGIN, read the response (MS-TDS §2.2.6.5); no Login7 is ever sent."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(mssql_prelogin())
        reply = await stream.read_until(_tds_complete, 4096)
    return mssql_findings(target, port.port, reply)


# --- Oracle TNS listener ----------------------------------------------------------

TNS_CONNECT = 1
TNS_TYPES = {2: "ACCEPT", 4: "REFUSE", 5: "REDIRECT", 11: "RESEND", 12: "MARKER"}
_TNS_HEADER = 58  # where the connect data starts


def tns_connect(ip: str, port: int) -> bytes:
    """A TNS CONNECT packet (type 1) with a connect descriptor naming no service.

    Oracle Net has no public wire specification; the descriptor syntax is
    Oracle Database Net Services Reference, "Connect Descriptors".
    """
    data = (
        "(DESCRIPTION=(CONNECT_DATA=(SERVICE_NAME=)(CID=(PROGRAM=vigie)(HOST=vigie)(USER=vigie)))"
        f"(ADDRESS=(PROTOCOL=TCP)(HOST={ip})(PORT={port})))"
    ).encode()
    fields = struct.pack(
        ">HHHHHHHHHHIBB",
        0x013A,  # version 314
        0x012C,  # lowest compatible version 300
        0,  # service options
        0x0800,  # session data unit
        0x7FFF,  # transport data unit
        0x7F08,  # protocol characteristics
        0,  # line turnaround
        1,  # "value of 1 in hardware" (byte order)
        len(data),
        _TNS_HEADER,
        0,  # max receivable connect data
        0x41,
        0x41,  # connect flags
    )
    header_rest = fields.ljust(_TNS_HEADER - 8, b"\x00")
    return struct.pack(">HHBBH", _TNS_HEADER + len(data), 0, TNS_CONNECT, 0, 0) + header_rest + data


_VSNNUM = re.compile(rb"VSNNUM=(\d{1,10})\b")


def oracle_version(vsnnum: int) -> str:
    """VSNNUM 318767104 (0x13000000) -> 19.0.0.0.0."""
    return ".".join(
        str(part)
        for part in (
            vsnnum >> 24,
            (vsnnum >> 20) & 0xF,
            (vsnnum >> 12) & 0xFF,
            (vsnnum >> 8) & 0xF,
            vsnnum & 0xFF,
        )
    )


def oracle_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """A TNS ACCEPT / REFUSE / REDIRECT / RESEND proves a listener; VSNNUM gives its version."""
    if len(reply) < 8 or reply[4] not in TNS_TYPES:
        return []
    length = int.from_bytes(reply[:2], "big")
    if length and length < 8:
        return []
    extra: dict[str, Any] = {"tns_answer": TNS_TYPES[reply[4]]}
    match = _VSNNUM.search(reply)
    if match:
        extra["version"] = oracle_version(int(match.group(1)))
    return [exposed(target, port, ORACLE, REQUIRED, reply[8:].decode("latin-1"), **extra)]


async def probe_oracle(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """One TNS CONNECT, one answer (listener refusals quote VSNNUM and ERR)."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(tns_connect(target.ip, port.port))
        reply = await stream.read_until(
            lambda got: len(got) >= 8 and len(got) >= int.from_bytes(got[:2], "big"),
            4096,
            accept_partial=True,
        )
    return oracle_findings(target, port.port, reply)


# --- Cassandra (CQL native protocol) ---------------------------------------------------

CQL_OPTIONS = 0x05
CQL_STARTUP = 0x01
CQL_ERROR = 0x00
CQL_READY = 0x02
CQL_AUTHENTICATE = 0x03
CQL_SUPPORTED = 0x06
CQL_HEADER = 9  # protocol v3 and later


def cql_frame(version: int, stream_id: int, opcode: int, body: bytes = b"") -> bytes:
    """A request frame (CQL native protocol v4, §2 "Frame header": version, flags, stream, opcode)."""
    return struct.pack(">BBhBi", version, 0, stream_id, opcode, len(body)) + body


def cql_startup_body() -> bytes:
    """The STARTUP body: a [string map] with CQL_VERSION (native_protocol_v4.spec §4.1.1)."""

    def string(text: str) -> bytes:
        return struct.pack(">H", len(text)) + text.encode()

    return struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0")


@dataclass(frozen=True)
class CqlFrame:
    version: int
    opcode: int
    body: bytes


def parse_cql_frame(data: bytes) -> CqlFrame | None:
    """A v3+ response frame header (the response bit set), or None.

    native_protocol_v4.spec §2.1: the version byte's high bit marks a
    response; §2.5 opcode; §2.6 the body length (a 4-byte [int]).
    """
    if len(data) < CQL_HEADER or not data[0] & 0x80:
        return None
    version = data[0] & 0x7F
    if not 3 <= version <= 6:
        return None
    opcode = data[4]
    length = int.from_bytes(data[5:9], "big")
    return CqlFrame(version, opcode, data[CQL_HEADER : CQL_HEADER + length])


def cassandra_findings(
    target: HostTarget, port: int, options: CqlFrame | None, startup: CqlFrame | None
) -> list[Finding]:
    """Judge OPTIONS and STARTUP (native_protocol_v4.spec §4.1.1, §4.1.4).

    §4.2.4 SUPPORTED answers OPTIONS; to STARTUP, §4.2.2 READY means no
    authenticator (queries run without credentials), §4.2.3 AUTHENTICATE
    names the IAuthenticator class that demands them.
    """
    if options is None or options.opcode not in (CQL_SUPPORTED, CQL_ERROR):
        return []
    protocol = f"CQL native protocol v{options.version}"
    if startup is not None and startup.opcode == CQL_READY:
        answer = f"{protocol}: STARTUP answered READY without authentication"
        return [
            exposed(target, port, CASSANDRA, NONE, answer),
            no_auth(target, port, CASSANDRA, "STARTUP", answer),
        ]
    if startup is not None and startup.opcode == CQL_AUTHENTICATE:
        authenticator = startup.body[2:].decode("utf-8", errors="replace")
        return [exposed(target, port, CASSANDRA, REQUIRED, f"{protocol}: {authenticator}")]
    return [exposed(target, port, CASSANDRA, "unknown", protocol)]


def _cql_complete(data: bytes) -> bool:
    return len(data) >= CQL_HEADER and len(data) >= CQL_HEADER + int.from_bytes(data[5:9], "big")


async def probe_cassandra(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """OPTIONS, then STARTUP with CQL_VERSION 3.0.0 (native_protocol_v4.spec §4.1.4, §4.1.1)."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        await stream.send(cql_frame(4, 1, CQL_OPTIONS))
        options = parse_cql_frame(await stream.read_until(_cql_complete, 8192))
        startup = None
        if options is not None and options.opcode == CQL_SUPPORTED:
            await stream.send(cql_frame(options.version, 2, CQL_STARTUP, cql_startup_body()))
            startup = parse_cql_frame(await stream.read_until(_cql_complete, 8192))
    return cassandra_findings(target, port.port, options, startup)


# --- Search engines and document stores over HTTP ------------------------------------


def json_body(response: HttpResponse) -> Any:
    """The body as JSON, or None: also when it nests too deeply for the parser."""
    try:
        return response.json()
    except RecursionError:  # "[[[[...": json.loads recurses once per level
        return None


def search_engine_findings(
    target: HostTarget, port: int, response: HttpResponse | None
) -> list[Finding]:
    """Elasticsearch / OpenSearch from the answer to ``GET /``.

    Elasticsearch reference, "Root API" (GET /): ``cluster_name`` and
    ``version.number``, answered only without security or with the
    ``monitor`` privilege; with security on, 401 and a ``security_exception``.
    """
    if response is None:
        return []
    body = json_body(response)
    if response.status == 200 and isinstance(body, dict) and "cluster_name" in body:
        version = body.get("version")
        if not isinstance(version, dict) or not version.get("number"):
            return []
        product = OPENSEARCH if version.get("distribution") == "opensearch" else ELASTICSEARCH
        number = str(version["number"])
        answer = f"GET / 200: cluster_name={body.get('cluster_name')} version={number}"
        return [
            exposed(target, port, product, NONE, answer),
            no_auth(target, port, product, "GET /", answer),
            version_disclosed(target, port, product, number, "GET / version.number"),
        ]
    if response.status in (401, 403) and _search_engine_security(response):
        product = (
            OPENSEARCH
            if "opensearch" in response.header("www-authenticate").lower()
            else ELASTICSEARCH
        )
        answer = f"GET / {response.status} {response.header('www-authenticate')}"
        return [exposed(target, port, product, REQUIRED, answer)]
    return []


def _search_engine_security(response: HttpResponse) -> bool:
    if response.header("x-elastic-product"):
        return True
    realm = response.header("www-authenticate").lower()
    if "security" in realm and ("basic" in realm or "bearer" in realm):
        return True
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("type") == "security_exception"


def couchdb_welcome(response: HttpResponse | None) -> dict[str, Any] | None:
    """The ``GET /`` welcome document (CouchDB API reference, "/": ``"couchdb": "Welcome"``)."""
    if response is None or response.status != 200:
        return None
    body = json_body(response)
    if isinstance(body, dict) and body.get("couchdb") == "Welcome":
        return body
    return None


def couchdb_findings(
    target: HostTarget, port: int, welcome: dict[str, Any], all_dbs: HttpResponse | None
) -> list[Finding]:
    """Judge ``GET /_all_dbs`` (CouchDB API reference, "/_all_dbs": a JSON array of names).

    CouchDB 3 limits it to admins by default (``admin_only_all_dbs``): a list
    answered without credentials is an open server.
    """
    version = str(welcome.get("version", ""))
    listing = json_body(all_dbs) if all_dbs is not None and all_dbs.status == 200 else None
    findings: list[Finding] = []
    if isinstance(listing, list):
        names = ", ".join(str(name) for name in listing[:20])
        answer = f"GET /_all_dbs 200: {names}"
        findings += [
            exposed(target, port, COUCHDB, NONE, answer),
            no_auth(target, port, COUCHDB, "GET /_all_dbs", answer),
        ]
    else:
        status = all_dbs.status if all_dbs is not None else "no answer"
        findings.append(
            exposed(target, port, COUCHDB, REQUIRED, f"GET / Welcome; GET /_all_dbs {status}")
        )
    if version:
        findings.append(version_disclosed(target, port, COUCHDB, version, "GET / version"))
    return findings


def http_host(target: HostTarget) -> str:
    host = target.domain or target.ip
    return f"[{host}]" if ":" in host else host


async def http_get(
    ctx: ProbeContext, target: HostTarget, port: OpenPort, path: str
) -> HttpResponse | None:
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        _, response = await http_exchange(stream, "GET", http_host(target), path)
    return response


async def probe_http_databases(
    ctx: ProbeContext, target: HostTarget, port: OpenPort
) -> list[Finding]:
    """An HTTP port: is it Elasticsearch, OpenSearch or CouchDB, and open to all?

    ``GET /`` (Elasticsearch "Root API", CouchDB "/"), then CouchDB's
    ``GET /_all_dbs``; RFC 9110 §9.3.1 GET only, nothing written.
    """
    root = await http_get(ctx, target, port, "/")
    welcome = couchdb_welcome(root)
    if welcome is not None:
        all_dbs = await http_get(ctx, target, port, "/_all_dbs")
        return couchdb_findings(target, port.port, welcome, all_dbs)
    return search_engine_findings(target, port.port, root)


async def probe_search_transport(
    ctx: ProbeContext, target: HostTarget, port: OpenPort
) -> list[Finding]:
    """Elasticsearch's transport port answers an HTTP request with a fixed refusal.

    Its TCP transport (9300) replies "This is not an HTTP port" to anything
    that starts like HTTP/1.1 (RFC 9112 §3 request line).
    """
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        raw, _ = await http_exchange(stream, "GET", http_host(target), "/")
    if b"This is not an HTTP port" not in raw:
        return []
    return [
        exposed(
            target,
            port.port,
            ELASTICSEARCH,
            "unknown",
            "transport port: " + raw[:200].decode("latin-1"),
        )
    ]
