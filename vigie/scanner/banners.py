"""What a port's number suggests and what its first answer proves: pure functions.

The port number is only a hint (it picks the first probe to try); the
protocol is named from what the server actually sent.

This is the scanner's, not one family's: the port stage (``vigie.scanner.ports``)
names every open port from its banner before any family runs, and the name it
writes in ``OpenPort.service`` is what the families (service, HTTP, TLS) read.
The service family also reads product versions out of banners here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum


class Opening(str, Enum):
    """Who speaks first on a protocol, which decides how the port stage greets it."""

    SERVER_FIRST = "server_first"  # a greeting comes unprompted (SSH, FTP, SMTP...)
    CLIENT_FIRST = "client_first"  # silent until it hears its own protocol (Redis, RDP...)
    HTTP = "http"  # answers an HTTP request
    TLS = "tls"  # a TLS handshake first (implicit TLS)


@dataclass(frozen=True)
class PortHint:
    service: str  # the canonical protocol name the service probes know
    opening: Opening
    tls: bool = False  # implicit TLS on this port


_SERVER_FIRST = Opening.SERVER_FIRST
_CLIENT_FIRST = Opening.CLIENT_FIRST

PORT_HINTS: dict[int, PortHint] = {
    21: PortHint("ftp", _SERVER_FIRST),
    22: PortHint("ssh", _SERVER_FIRST),
    23: PortHint("telnet", _SERVER_FIRST),
    25: PortHint("smtp", _SERVER_FIRST),
    110: PortHint("pop3", _SERVER_FIRST),
    143: PortHint("imap", _SERVER_FIRST),
    465: PortHint("smtp", Opening.TLS, tls=True),
    587: PortHint("smtp", _SERVER_FIRST),
    990: PortHint("ftp", Opening.TLS, tls=True),
    993: PortHint("imap", Opening.TLS, tls=True),
    995: PortHint("pop3", Opening.TLS, tls=True),
    2525: PortHint("smtp", _SERVER_FIRST),
    80: PortHint("http", Opening.HTTP),
    3000: PortHint("http", Opening.HTTP),
    5000: PortHint("http", Opening.HTTP),
    8000: PortHint("http", Opening.HTTP),
    8008: PortHint("http", Opening.HTTP),
    8080: PortHint("http", Opening.HTTP),
    8081: PortHint("http", Opening.HTTP),
    8888: PortHint("http", Opening.HTTP),
    443: PortHint("http", Opening.TLS, tls=True),
    636: PortHint("ldap", Opening.TLS, tls=True),
    8443: PortHint("http", Opening.TLS, tls=True),
    9443: PortHint("http", Opening.TLS, tls=True),
    # Databases (CHECKS.md: service.database.*)
    3306: PortHint("mysql", _SERVER_FIRST),
    5432: PortHint("postgresql", _CLIENT_FIRST),
    1433: PortHint("mssql", _CLIENT_FIRST),
    1521: PortHint("oracle", _CLIENT_FIRST),
    27017: PortHint("mongodb", _CLIENT_FIRST),
    27018: PortHint("mongodb", _CLIENT_FIRST),
    6379: PortHint("redis", _CLIENT_FIRST),
    9200: PortHint("http", Opening.HTTP),  # Elasticsearch / OpenSearch REST
    9300: PortHint("elasticsearch", _CLIENT_FIRST),  # Elasticsearch transport
    5984: PortHint("http", Opening.HTTP),  # CouchDB
    6984: PortHint("http", Opening.TLS, tls=True),  # CouchDB over TLS
    11211: PortHint("memcached", _CLIENT_FIRST),
    9042: PortHint("cassandra", _CLIENT_FIRST),
    # Remote administration (CHECKS.md: service.remote_admin.exposed)
    3389: PortHint("rdp", _CLIENT_FIRST),
    5900: PortHint("vnc", _SERVER_FIRST),
    5901: PortHint("vnc", _SERVER_FIRST),
    5902: PortHint("vnc", _SERVER_FIRST),
    5903: PortHint("vnc", _SERVER_FIRST),
    445: PortHint("smb", _CLIENT_FIRST),
    139: PortHint("netbios-ssn", _CLIENT_FIRST),
    5985: PortHint("http", Opening.HTTP),  # WinRM over HTTP
    5986: PortHint("http", Opening.TLS, tls=True),  # WinRM over HTTPS
    6000: PortHint("x11", _CLIENT_FIRST),
    6001: PortHint("x11", _CLIENT_FIRST),
    6002: PortHint("x11", _CLIENT_FIRST),
    6003: PortHint("x11", _CLIENT_FIRST),
}

WINRM_PORTS = frozenset({5985, 5986, 47001})

# Telnet option negotiation: IAC followed by WILL/WONT/DO/DONT/SB.
_IAC = 0xFF
_TELNET_VERBS = frozenset({0xFA, 0xFB, 0xFC, 0xFD, 0xFE})
_FTP_OR_SMTP_GREETING = re.compile(rb"^(?:220|421|120)[ -]")
_SMTP_WORDS = re.compile(r"\b(?:E?SMTP|Postfix|Exim|Sendmail|qmail)\b", re.IGNORECASE)
_FTP_WORDS = re.compile(r"ftp", re.IGNORECASE)


def hint_for(port: int) -> PortHint | None:
    return PORT_HINTS.get(port)


def is_mysql_greeting(data: bytes) -> bool:
    """A MySQL/MariaDB server's first packet: handshake v10, or an error packet.

    MySQL Internals, "Protocol::Packet" (3-byte length, sequence id 0) holding
    "Protocol::HandshakeV10" (0x0a, the server version as a NUL-terminated
    string) or an ERR_Packet (0xff).
    """
    if len(data) < 7 or data[3] != 0:
        return False
    length = int.from_bytes(data[:3], "little")
    if not 4 <= length <= 4096:
        return False
    if data[4] == 0x0A:
        return b"\x00" in data[5:80] and data[5:6].isdigit()
    return data[4] == 0xFF  # "Host ... is not allowed to connect" and the like


def is_postgres_error(data: bytes) -> bool:
    """PostgreSQL's ErrorResponse ('E', length, then 'S'everity field).

    PostgreSQL docs, "Message Formats": ErrorResponse is Byte1('E'), Int32
    length, then fields such as 'S' (severity); "Error and Notice Message Fields".
    """
    if len(data) < 7 or data[:1] != b"E":
        return False
    length = int.from_bytes(data[1:5], "big")
    return 6 <= length <= 8192 and data[5:6] == b"S"


def is_tls_record(data: bytes) -> bool:
    """A TLS record header (handshake or alert): the server expected TLS.

    RFC 8446 §5.1 TLSPlaintext: ContentType handshake(22) or alert(21), then
    legacy_record_version 0x03 0x0N.
    """
    return len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 0x03 and data[2] <= 0x04


def classify_reply(data: bytes, hint: str | None = None) -> str | None:
    """The protocol that a server's first bytes prove, or None when they prove none.

    ``data`` is an unprompted greeting or the answer to an HTTP request; the
    hint only settles answers that several protocols could give.
    """
    if not data:
        return None
    fixed_prefixes = (
        (b"SSH-", "ssh"),
        (b"RFB ", "vnc"),
        (b"+OK", "pop3"),
        (b"* OK", "imap"),
        (b"* PREAUTH", "imap"),
        (b"HTTP/", "http"),
        (b"+PONG", "redis"),
        (b"-NOAUTH", "redis"),
        (b"-DENIED", "redis"),
    )
    for prefix, name in fixed_prefixes:
        if data.startswith(prefix):
            return name
    if data[0] == _IAC and len(data) > 1 and data[1] in _TELNET_VERBS:
        return "telnet"
    if is_mysql_greeting(data):
        return "mysql"
    if _FTP_OR_SMTP_GREETING.match(data):
        return _ftp_or_smtp(data.decode("latin-1"), hint)
    return _classify_answer_to_http(data, hint)


# What a server answers to an inline ``PING``: Redis (and its forks) in RESP, a pong or
# an error ("-NOAUTH ...", "-DENIED ..."); memcached its bare unknown-command error.
_RESP_PING_REPLY = re.compile(rb"^(?:\+PONG|-[A-Z]+ [^\r\n]*)\r\n")
MEMCACHED_UNKNOWN_COMMAND = b"ERROR\r\n"


def classify_ping_reply(data: bytes) -> str | None:
    """The protocol an answer to ``PING\\r\\n`` proves, or None.

    Asked of silent ports no number hints at: Redis says nothing unprompted,
    never completes a TLS handshake and drops an HTTP request unanswered (it
    takes a ``Host:`` line for an attack), so without this it goes unnamed.
    """
    if _RESP_PING_REPLY.match(data):
        return "redis"
    if data == MEMCACHED_UNKNOWN_COMMAND:
        return "memcached"
    return None


def _classify_answer_to_http(data: bytes, hint: str | None) -> str | None:
    if b"trying to access MongoDB over HTTP" in data:
        return "mongodb"
    if b"This is not an HTTP port" in data:
        return "elasticsearch"
    if is_postgres_error(data):
        return "postgresql"
    if data.startswith(b"-ERR") and hint == "redis":
        return "redis"
    if hint == "telnet" and data[:200].isascii():
        return "telnet"  # a plain-text login prompt on the telnet port
    return None


def _ftp_or_smtp(greeting: str, hint: str | None) -> str | None:
    if _SMTP_WORDS.search(greeting):
        return "smtp"
    if _FTP_WORDS.search(greeting):
        return "ftp"
    return hint if hint in ("ftp", "smtp") else None


# --- versions in banners -------------------------------------------------------

# A product name, a separator, and a dotted version: "vsFTPd 3.0.3",
# "Exim 4.96", "ProFTPD 1.3.5e", "Version: 10.0.17763.1".
_PRODUCT_VERSION = re.compile(
    r"(?<![\w.])(?P<product>[A-Za-z][\w+-]*)(?::\s*|[ _/])[vV]?(?P<version>\d+(?:\.\d+)+[a-z]?\d*)"
    r"(?![\w.]*\.\d)",
    re.ASCII,  # "³" or "٣" is no version digit (RFC 5234 DIGIT is %x30-39)
)
_IPV4_LIKE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$", re.ASCII)


@dataclass(frozen=True)
class ProductVersion:
    product: str
    version: str


def product_version(banner: str) -> ProductVersion | None:
    """The first "product version" pair a text banner discloses, or None.

    Addresses in brackets and dates are not versions; a bare protocol version
    (``RFB 003.008``) is not a product version and must not be passed here.
    """
    for match in _PRODUCT_VERSION.finditer(banner):
        version = match["version"]
        if _IPV4_LIKE.match(version):
            continue
        return ProductVersion(match["product"], version)
    return None


@dataclass(frozen=True)
class SshIdentification:
    protocol: str  # "2.0"
    software: str  # "OpenSSH_9.2p1"
    comments: str  # "Debian-2+deb12u3"


_SSH_IDENT = re.compile(
    r"^SSH-(?P<proto>[\d.]+)-(?P<software>\S+)(?: (?P<comments>[^\r\n]*))?", re.ASCII
)
_SSH_SOFTWARE_VERSION = re.compile(
    r"^(?P<product>.*?)[_-]?v?(?P<version>\d+(?:\.\d+)+[\w.+-]*|(?<=[_-])v?\d+[a-z]\d*)$",
    re.ASCII,
)


def ssh_identification(banner: str) -> SshIdentification | None:
    """The SSH identification line (RFC 4253 §4.2) of a banner, or None."""
    for line in banner.splitlines():
        match = _SSH_IDENT.match(line.strip())
        if match:
            return SshIdentification(
                match["proto"], match["software"], (match["comments"] or "").strip()
            )
    return None


def ssh_software_version(software: str) -> ProductVersion | None:
    """``OpenSSH_9.2p1`` -> (OpenSSH, 9.2p1); ``dropbear_2022.83``; None for ``Go``."""
    match = _SSH_SOFTWARE_VERSION.match(software)
    if match is None:
        return None
    product = match["product"].rstrip("_-") or software
    return ProductVersion(product, match["version"].lstrip("v"))


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
