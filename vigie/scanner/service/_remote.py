"""Remote access: SSH, FTP and remote administration protocols.

SSH authentication methods are read from the server's answer to a ``none``
authentication request (asyncssh); FTP anonymous access is tried with the
public ``anonymous`` account only; no other credential is ever sent.

Check IDs: ``service.ssh.exposed``, ``service.ssh.password_auth``,
``service.ftp.exposed``, ``service.ftp.anonymous``,
``service.remote_admin.exposed``, ``service.version_disclosed``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vigie.errors import ProbeError, ProbeTimeout
from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.banners import (
    product_version,
    ssh_identification,
    ssh_software_version,
)
from vigie.scanner.connection import HostGaveUp, Stream, host_health, open_stream, printable
from vigie.scanner.http_wire import HttpResponse, http_exchange
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.service._common import (
    FTP_ANONYMOUS,
    FTP_EXPOSED,
    REMOTE_ADMIN_EXPOSED,
    SSH_EXPOSED,
    SSH_PASSWORD_AUTH,
    VERSION_DISCLOSED,
    port_finding,
)
from vigie.scanner.service._databases import http_host

if TYPE_CHECKING:
    import asyncssh

# asyncssh logs every connection at INFO: too chatty for a sweep.
logging.getLogger("asyncssh").setLevel(logging.WARNING)
# asyncssh is imported where an SSH server is met: its import costs a quarter of a
# second of CPU that a sweep without SSH ports need not pay.

SSH_PROBE_USER = "vigie-scan"
PASSWORD_METHODS = ("password", "keyboard-interactive")
FTP_ANONYMOUS_PASSWORD = "anonymous@vigie.invalid"


def remote_admin(target: HostTarget, port: int, protocol: str, **evidence: Any) -> Finding:
    """``service.remote_admin.exposed``: a remote-control protocol answered in its own
    terms: RDP X.224 Connection Confirm ([MS-RDPBCGR] §2.2.1.2), VNC ProtocolVersion
    (RFC 6143 §7.1.1), X11 connection setup (X Window System Protocol, "Connection
    Setup"), Telnet option negotiation (RFC 854), SMB NEGOTIATE response ([MS-SMB2]
    §2.2.4). CISA BOD 23-02: management interfaces are not exposed to the Internet.
    """
    return port_finding(
        target, REMOTE_ADMIN_EXPOSED, port, {"protocol": protocol, "port": port, **evidence}
    )


def banner_version(target: HostTarget, port: int, banner: str) -> list[Finding]:
    """``service.version_disclosed`` when a text banner names a product and its version:
    the SSH identification string's softwareversion (RFC 4253 §4.2), an SMTP, FTP,
    POP3 or IMAP greeting's text (RFC 5321 §4.2, RFC 959 §4.2, RFC 1939 §4,
    RFC 9051 §7.1.1); CWE-200."""
    found = product_version(banner)
    if found is None:
        return []
    return [
        port_finding(
            target,
            VERSION_DISCLOSED,
            port,
            {
                "product": found.product,
                "version": found.version,
                "port": port,
                "banner": printable(banner),
            },
        )
    ]


# --- SSH --------------------------------------------------------------------------


def ssh_banner_findings(target: HostTarget, port: int, banner: str) -> list[Finding]:
    """``SSH-2.0-OpenSSH_9.2p1 Debian-2``: SSH is exposed, and which version it runs.

    RFC 4253 §4.2: the identification string
    ``SSH-protoversion-softwareversion SP comments CR LF``.
    """
    ident = ssh_identification(banner)
    if ident is None:
        return []
    shown = printable(f"SSH-{ident.protocol}-{ident.software} {ident.comments}".strip())
    findings = [
        port_finding(
            target,
            SSH_EXPOSED,
            port,
            {"port": port, "banner": shown, "protocol": ident.protocol, "software": ident.software},
        )
    ]
    version = ssh_software_version(ident.software)
    if version is not None:
        findings.append(
            port_finding(
                target,
                VERSION_DISCLOSED,
                port,
                {
                    "product": version.product,
                    "version": version.version,
                    "port": port,
                    "banner": shown,
                },
            )
        )
    return findings


def ssh_auth_findings(target: HostTarget, port: int, methods: list[str]) -> list[Finding]:
    """``password`` / ``keyboard-interactive`` among the methods that can continue.

    RFC 4252 §5.1 and §5.2: a ``none`` request is answered with
    SSH_MSG_USERAUTH_FAILURE listing the methods; RFC 4252 §8 (password),
    RFC 4256 (keyboard-interactive).
    """
    offered = [m for m in methods if m in PASSWORD_METHODS]
    if not offered:
        return []
    return [
        port_finding(
            target,
            SSH_PASSWORD_AUTH,
            port,
            {"port": port, "password_methods": offered, "all_methods": list(methods)},
        )
    ]


async def probe_ssh_banner(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """The identification line (RFC 4253 §4.2), from the port stage or a fresh read."""
    banner = port.banner
    if ssh_identification(banner) is None:
        async with open_stream(ctx, target.ip, port.port) as stream:
            banner = (await stream.line()).decode("utf-8", errors="replace")
    return ssh_banner_findings(target, port.port, banner)


def _ssh_options(timeout: float) -> asyncssh.SSHClientConnectionOptions:
    """Every algorithm asyncssh knows, so that old servers still finish the key exchange."""
    import asyncssh
    from asyncssh.encryption import get_encryption_algs
    from asyncssh.kex import get_kex_algs
    from asyncssh.mac import get_mac_algs
    from asyncssh.public_key import get_public_key_algs

    def names(algorithms: list[bytes]) -> list[str]:
        return [alg.decode("ascii") for alg in algorithms if not alg.startswith(b"gss-")]

    return asyncssh.SSHClientConnectionOptions(
        config=None,
        connect_timeout=timeout,
        kex_algs=names(get_kex_algs()),
        server_host_key_algs=names(get_public_key_algs()),
        encryption_algs=names(get_encryption_algs()),
        mac_algs=names(get_mac_algs()),
    )


async def ssh_auth_methods(ctx: ProbeContext, ip: str, port: int) -> list[str]:
    """The methods the server lists after a ``none`` authentication attempt (RFC 4252 §5.2)."""
    import asyncssh

    timeout = ctx.settings.scan.probe_timeout_s * 2
    health = host_health(ctx, ip)
    if health.given_up:
        raise HostGaveUp(f"{ip}:{port}: not probed, the host failed too many probes in a row")
    async with ctx.connection(ip):
        try:
            async with asyncio.timeout(timeout):
                methods = await asyncssh.get_server_auth_methods(
                    ip,
                    port,
                    username=SSH_PROBE_USER,
                    config=None,
                    options=_ssh_options(timeout),
                )
        except TimeoutError:
            health.failed()
            raise ProbeTimeout(
                f"{ip}:{port}: SSH handshake did not finish within {timeout:g}s"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise ProbeError(
                f"{ip}:{port}: SSH handshake failed: {type(exc).__name__}: {exc}"
            ) from None
    health.answered()
    return list(methods)


async def probe_ssh_auth(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Key exchange, then one ``none`` userauth request (RFC 4252 §5.2): no credential sent."""
    methods = await ssh_auth_methods(ctx, target.ip, port.port)
    return ssh_auth_findings(target, port.port, methods)


# --- FTP --------------------------------------------------------------------------

_REPLY_LINE = re.compile(rb"^(\d{3})([ -])", re.MULTILINE)


def reply_complete(data: bytes) -> bool:
    """A whole FTP/SMTP reply: one line "NNN text", or "NNN-" lines up to "NNN text".

    RFC 959 §4.2 and RFC 5321 §4.2.1: a multiline reply ends with the line
    that has the same code followed by a space.
    """
    first = _REPLY_LINE.match(data)
    if first is None:
        return b"\n" in data  # not a reply: one line is enough to judge
    if first.group(2) == b" ":
        return b"\n" in data
    code = first.group(1)
    return any(line.startswith(code + b" ") for line in data.split(b"\n")[1:-1]) and data.endswith(
        b"\n"
    )


def reply_code(data: bytes) -> int | None:
    """The three-digit reply code (RFC 959 §4.2, RFC 5321 §4.2), or None."""
    match = _REPLY_LINE.match(data)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class FtpSession:
    greeting: str
    user_reply: str = ""
    pass_reply: str = ""

    @property
    def anonymous_accepted(self) -> bool:
        """230 after USER (no password needed) or after PASS."""
        return self.user_reply.startswith("230") or (
            self.user_reply.startswith("331") and self.pass_reply.startswith("230")
        )


def ftp_findings(target: HostTarget, port: int, session: FtpSession, tls: bool) -> list[Finding]:
    """FTP in clear text is exposed; ``230`` to the anonymous login is anonymous access.

    RFC 959 §4.1.1 USER/PASS and §5.4 (USER: 230 logged in, 331 need
    password; PASS: 230); RFC 1635 for the ``anonymous`` convention.
    """
    if reply_code(session.greeting.encode("latin-1", errors="replace")) is None:
        return []
    greeting = printable(session.greeting)
    findings: list[Finding] = []
    if not tls:
        findings.append(port_finding(target, FTP_EXPOSED, port, {"port": port, "banner": greeting}))
    if session.anonymous_accepted:
        findings.append(
            port_finding(
                target,
                FTP_ANONYMOUS,
                port,
                {
                    "port": port,
                    "user": "anonymous",
                    "reply": printable(session.pass_reply or session.user_reply, 200),
                },
            )
        )
    return findings + banner_version(target, port, session.greeting)


async def _command(stream: Stream, line: str) -> str:
    await stream.send(line.encode("latin-1") + b"\r\n")
    return (await stream.read_until(reply_complete, 8192)).decode("latin-1")


async def probe_ftp(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Greeting, then USER anonymous / PASS (a fixed address), then QUIT: nothing else.

    RFC 959 §5.4 command-reply sequences; RFC 1635 anonymous FTP.
    """
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = (await stream.read_until(reply_complete, 8192)).decode("latin-1")
        session = FtpSession(greeting)
        if greeting.startswith("220"):
            user_reply = await _command(stream, "USER anonymous")
            pass_reply = ""
            if user_reply.startswith("331"):
                pass_reply = await _command(stream, f"PASS {FTP_ANONYMOUS_PASSWORD}")
            session = FtpSession(greeting, user_reply, pass_reply)
            await stream.send(b"QUIT\r\n")
    return ftp_findings(target, port.port, session, port.tls)


# --- Telnet -------------------------------------------------------------------------

# RFC 854 command codes after IAC (255), and the option names of the IANA
# "Telnet Options" registry that servers commonly negotiate first.
TELNET_IAC = 0xFF
TELNET_VERBS = {0xFB: "WILL", 0xFC: "WONT", 0xFD: "DO", 0xFE: "DONT"}
TELNET_SB, TELNET_SE = 0xFA, 0xF0
TELNET_OPTIONS = {
    0: "BINARY",  # RFC 856
    1: "ECHO",  # RFC 857
    3: "SUPPRESS-GO-AHEAD",  # RFC 858
    5: "STATUS",  # RFC 859
    6: "TIMING-MARK",  # RFC 860
    24: "TERMINAL-TYPE",  # RFC 1091
    31: "NAWS",  # RFC 1073
    32: "TERMINAL-SPEED",  # RFC 1079
    33: "TOGGLE-FLOW-CONTROL",  # RFC 1372
    34: "LINEMODE",  # RFC 1184
    35: "X-DISPLAY-LOCATION",  # RFC 1096
    36: "OLD-ENVIRON",  # RFC 1408
    37: "AUTHENTICATION",  # RFC 2941
    38: "ENCRYPT",  # RFC 2946
    39: "NEW-ENVIRON",  # RFC 1572
}


@dataclass(frozen=True)
class TelnetGreeting:
    negotiation: tuple[str, ...]  # "DO TERMINAL-TYPE", "WILL ENCRYPT"...
    text: bytes  # what the server printed, the commands taken out


def parse_telnet(data: bytes) -> TelnetGreeting:
    """Split a Telnet server's first bytes into option commands and printed text.

    RFC 854, "The TELNET Command Structure": IAC (255) then a command;
    WILL/WONT/DO/DONT (251-254) take one option byte (RFC 855), SB (250)
    opens a subnegotiation closed by IAC SE (240), IAC IAC is a data 255.
    """
    commands: list[str] = []
    text = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte != TELNET_IAC:
            text.append(byte)
            index += 1
            continue
        command = data[index + 1] if index + 1 < len(data) else None
        if command == TELNET_IAC:
            text.append(TELNET_IAC)
            index += 2
        elif command in TELNET_VERBS and index + 2 < len(data):
            option = data[index + 2]
            commands.append(f"{TELNET_VERBS[command]} {TELNET_OPTIONS.get(option, str(option))}")
            index += 3
        elif command == TELNET_SB:
            end = data.find(bytes([TELNET_IAC, TELNET_SE]), index + 2)
            index = len(data) if end < 0 else end + 2
        else:
            index += 2  # NOP, GA, AYT...: one byte after IAC (or a cut-off command)
    return TelnetGreeting(tuple(commands), bytes(text))


def telnet_findings(target: HostTarget, port: int, greeting: bytes) -> list[Finding]:
    """Telnet is exposed: its option negotiation (RFC 855) and its printed banner as evidence."""
    if not greeting:
        return []
    parsed = parse_telnet(greeting)
    evidence: dict[str, Any] = {"banner": printable(parsed.text.decode("latin-1").strip(), 200)}
    if parsed.negotiation:
        evidence["negotiation"] = list(parsed.negotiation[:20])
    return [remote_admin(target, port, "Telnet", **evidence)]


async def probe_telnet(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """Read what a Telnet server sends unprompted; nothing is ever typed.

    RFC 854 ("TELNET Protocol Specification"): a server opens with IAC
    WILL/WONT/DO/DONT option requests (RFC 855) and usually a login prompt.
    """
    async with open_stream(ctx, target.ip, port.port) as stream:
        raw = await stream.banner(ctx.settings.scan.probe_timeout_s)
    if not raw:
        raise ProbeTimeout(f"{target.ip}:{port.port}: telnet port stayed silent")
    return telnet_findings(target, port.port, raw)


# --- VNC ----------------------------------------------------------------------------

VNC_SECURITY_TYPES = {1: "None", 2: "VNC authentication", 16: "Tight", 18: "TLS", 19: "VeNCrypt"}


@dataclass(frozen=True)
class VncHandshake:
    version: str  # "RFB 003.008"
    security_types: tuple[int, ...] = ()
    refusal: str = ""


def parse_vnc_security(version: str, data: bytes) -> VncHandshake:
    """The security types a VNC server offers (RFB 3.7+ list, or 3.3 single type).

    RFC 6143 §7.1.2 Security Handshake: a count then that many type bytes
    (count 0: a reason string follows); RFB 3.3 (RFC 6143 Appendix A) sends
    one U32 type chosen by the server. Type 1 is None (§7.2.1).
    """
    if version < "RFB 003.007":
        if len(data) >= 4:
            chosen = int.from_bytes(data[:4], "big")
            return VncHandshake(version, (chosen,) if chosen else ())
        return VncHandshake(version)
    if not data:
        return VncHandshake(version)
    count = data[0]
    if count == 0:
        return VncHandshake(version, refusal=data[5:].decode("utf-8", errors="replace"))
    return VncHandshake(version, tuple(data[1 : 1 + count]))


def vnc_findings(target: HostTarget, port: int, handshake: VncHandshake) -> list[Finding]:
    """An RFB ProtocolVersion (RFC 6143 §7.1.1) proves VNC; type None (§7.2.1) means no password."""
    if not handshake.version.startswith("RFB "):
        return []
    names = [VNC_SECURITY_TYPES.get(t, f"type {t}") for t in handshake.security_types]
    return [
        remote_admin(
            target,
            port,
            "VNC",
            banner=handshake.version,
            security_types=names,
            no_authentication=1 in handshake.security_types,
            **({"refusal": printable(handshake.refusal, 200)} if handshake.refusal else {}),
        )
    ]


def _vnc_security_complete(version: str) -> Callable[[bytes], bool]:
    if version < "RFB 003.007":
        return lambda got: len(got) >= 4  # RFB 3.3: the server picks one type (u32)
    return lambda got: bool(got) and (got[0] == 0 or len(got) >= 1 + got[0])


async def probe_vnc(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """ProtocolVersion both ways, then read the security types (RFC 6143 §7.1.1, §7.1.2)."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        greeting = await stream.read_exactly(12)
        version = greeting.decode("latin-1").strip()
        if not version.startswith("RFB "):
            return []
        reply = "RFB 003.008" if version >= "RFB 003.008" else version
        await stream.send(reply.encode("latin-1") + b"\n")
        data = await stream.read_until(_vnc_security_complete(version), 512, accept_partial=True)
    return vnc_findings(target, port.port, parse_vnc_security(version, data))


# --- RDP ----------------------------------------------------------------------------

RDP_PROTOCOLS = {0: "standard RDP security", 1: "TLS", 2: "CredSSP (NLA)", 8: "RDSTLS"}


def rdp_connection_request() -> bytes:
    """TPKT + X.224 Connection Request + RDP_NEG_REQ asking for TLS or CredSSP.

    MS-RDPBCGR §2.2.1.1 Client X.224 Connection Request PDU: TPKT header
    (RFC 1006 §6), X.224 CR TPDU (ITU-T X.224 §13.3), and §2.2.1.1.1
    RDP_NEG_REQ with requestedProtocols PROTOCOL_SSL | PROTOCOL_HYBRID.
    """
    negotiation = struct.pack("<BBHI", 0x01, 0, 8, 0x03)
    x224 = bytes([6 + len(negotiation), 0xE0, 0, 0, 0, 0, 0]) + negotiation
    return struct.pack(">BBH", 3, 0, 4 + len(x224)) + x224


def rdp_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """An X.224 Connection Confirm proves RDP; the negotiation says which security.

    MS-RDPBCGR §2.2.1.2 Server X.224 Connection Confirm PDU (CC TPDU code
    0xD0) with §2.2.1.2.1 RDP_NEG_RSP (type 0x02, selectedProtocol) or
    §2.2.1.2.2 RDP_NEG_FAILURE (type 0x03, failureCode).
    """
    if len(reply) < 7 or reply[0] != 3 or reply[5] != 0xD0:
        return []
    evidence: dict[str, Any] = {}
    if len(reply) >= 19 and reply[11] == 0x02:
        selected = int.from_bytes(reply[15:19], "little")
        evidence["selected_security"] = RDP_PROTOCOLS.get(selected, f"protocol {selected}")
    elif len(reply) >= 19 and reply[11] == 0x03:
        evidence["negotiation_failure"] = int.from_bytes(reply[15:19], "little")
    return [remote_admin(target, port, "RDP", **evidence)]


async def probe_rdp(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """One Connection Request, one Connection Confirm (MS-RDPBCGR §2.2.1.1, §2.2.1.2)."""
    async with open_stream(ctx, target.ip, port.port) as stream:
        await stream.send(rdp_connection_request())
        reply = await stream.read_until(
            lambda got: len(got) >= 4 and len(got) >= int.from_bytes(got[2:4], "big"), 1024
        )
    return rdp_findings(target, port.port, reply)


# --- SMB and NetBIOS --------------------------------------------------------------------

SMB_DIALECTS = (b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???")


def smb_negotiate() -> bytes:
    """An SMB1 NEGOTIATE offering SMB2 too: SMB1-only and SMB2/3 servers both answer it.

    MS-CIFS §2.2.4.52.1 SMB_COM_NEGOTIATE request with the dialects
    "NT LM 0.12", "SMB 2.002" and "SMB 2.???"; MS-SMB2 §3.3.5.3.1: a server
    that speaks SMB2 answers with an SMB2 NEGOTIATE Response.
    """
    header = (
        b"\xffSMB"
        + bytes([0x72])
        + b"\x00" * 4
        + bytes([0x18])
        + struct.pack("<H", 0xC853)
        + b"\x00" * 12
        + struct.pack("<HHHH", 0, 0xFEFF, 0, 0)
    )
    dialects = b"".join(b"\x02" + name + b"\x00" for name in SMB_DIALECTS)
    message = header + b"\x00" + struct.pack("<H", len(dialects)) + dialects
    return struct.pack(">I", len(message)) + message


def smb_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """An SMB2 or SMB1 NEGOTIATE response proves SMB; the dialect says which.

    MS-SMB2 §2.2.4 SMB2 NEGOTIATE Response after the 64-byte SMB2 header
    (§2.2.1, ``0xFE "SMB"``): StructureSize, SecurityMode, DialectRevision
    (0x02FF: the "SMB 2.???" wildcard, §3.3.5.3.1). ``0xFF "SMB"`` is SMB1.
    """
    if len(reply) < 8 or reply[0] != 0:
        return []
    signature = reply[4:8]
    if signature == b"\xfeSMB":
        evidence: dict[str, Any] = {"smb1": False}
        if len(reply) >= 4 + 64 + 6:
            dialect = int.from_bytes(reply[4 + 64 + 4 : 4 + 64 + 6], "little")
            evidence["dialect"] = f"0x{dialect:04x}"
        return [remote_admin(target, port, "SMB", **evidence)]
    if signature == b"\xffSMB":
        return [remote_admin(target, port, "SMB", smb1=True, dialect="NT LM 0.12")]
    return []


async def probe_smb(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """One NEGOTIATE over direct TCP (MS-SMB2 §2.1: 4-byte transport header), one response."""
    async with open_stream(ctx, target.ip, port.port) as stream:
        await stream.send(smb_negotiate())
        reply = await stream.read_until(
            lambda got: len(got) >= 4 and len(got) >= 4 + int.from_bytes(got[1:4], "big"), 4096
        )
    return smb_findings(target, port.port, reply)


def netbios_name(name: str, suffix: int = 0x20) -> bytes:
    """RFC 1002 first-level encoding of a NetBIOS name."""
    raw = name.upper().ljust(15)[:15].encode("ascii") + bytes([suffix])
    encoded = bytes(c for byte in raw for c in (0x41 + (byte >> 4), 0x41 + (byte & 0x0F)))
    return b"\x20" + encoded + b"\x00"


def netbios_session_request() -> bytes:
    """A SESSION REQUEST to ``*SMBSERVER`` (RFC 1002 §4.3.2)."""
    payload = netbios_name("*SMBSERVER") + netbios_name("VIGIE", 0x00)
    return struct.pack(">BBH", 0x81, 0, len(payload)) + payload


NETBIOS_ANSWERS = {0x82: "positive", 0x83: "negative", 0x84: "retarget"}


def netbios_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """POSITIVE / NEGATIVE SESSION RESPONSE or RETARGET (RFC 1002 §4.3.3-§4.3.5) proves NetBIOS."""
    if len(reply) < 4 or reply[0] not in NETBIOS_ANSWERS:
        return []
    return [
        remote_admin(target, port, "SMB over NetBIOS", session_answer=NETBIOS_ANSWERS[reply[0]])
    ]


async def probe_netbios(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """One SESSION REQUEST, the first 4 bytes of the answer (RFC 1002 §4.3)."""
    async with open_stream(ctx, target.ip, port.port) as stream:
        await stream.send(netbios_session_request())
        reply = await stream.read_until(lambda got: len(got) >= 4, 64, accept_partial=True)
    return netbios_findings(target, port.port, reply)


# --- X11 ----------------------------------------------------------------------------

X11_ANSWERS = {0: "refused", 1: "granted without authentication", 2: "authentication required"}


def x11_setup_request() -> bytes:
    """Little-endian connection setup, protocol 11.0, no authorisation.

    X Window System Protocol, "Connection Setup": byte order 'l', major 11,
    minor 0, empty authorization-protocol name and data.
    """
    return b"l\x00" + struct.pack("<HHHH", 11, 0, 0, 0) + b"\x00\x00"


def x11_findings(target: HostTarget, port: int, reply: bytes) -> list[Finding]:
    """Failed (0), Success (1) or Authenticate (2) with major version 11 proves X11.

    X Window System Protocol, "Connection Setup" reply; Success without any
    authorization data means the display is open to anyone.
    """
    if len(reply) < 8 or reply[0] not in X11_ANSWERS:
        return []
    major = int.from_bytes(reply[2:4], "little")
    if major != 11:
        return []
    evidence: dict[str, Any] = {"access": X11_ANSWERS[reply[0]]}
    if reply[0] == 0 and reply[1]:
        evidence["reason"] = printable(reply[8 : 8 + reply[1]], 200)
    return [remote_admin(target, port, "X11", **evidence)]


async def probe_x11(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """One connection setup request, the reply's first bytes (X11 "Connection Setup")."""
    async with open_stream(ctx, target.ip, port.port) as stream:
        await stream.send(x11_setup_request())
        reply = await stream.read_until(lambda got: len(got) >= 8, 1024, accept_partial=True)
    return x11_findings(target, port.port, reply)


# --- WinRM --------------------------------------------------------------------------


def winrm_findings(target: HostTarget, port: int, response: HttpResponse | None) -> list[Finding]:
    """WS-Management answers ``POST /wsman``: with 401 and Negotiate/Kerberos, or SOAP.

    MS-WSMV §2.1 (SOAP over HTTP, ``/wsman``), authentication by
    RFC 4559 Negotiate or CredSSP (MS-CSSP).
    """
    if response is None or response.status == 404:
        return []
    schemes = response.header("www-authenticate")
    server = response.header("server")
    soap = "soap+xml" in response.header("content-type").lower()
    windows_auth = any(s in schemes.lower() for s in ("negotiate", "kerberos", "credssp"))
    if not (soap or windows_auth or "microsoft-httpapi" in server.lower()):
        return []
    return [
        remote_admin(
            target,
            port,
            "WinRM",
            status=response.status,
            authentication=printable(schemes, 200),
            server=printable(server, 200),
        )
    ]


async def probe_winrm(ctx: ProbeContext, target: HostTarget, port: OpenPort) -> list[Finding]:
    """An empty ``POST /wsman`` (MS-WSMV §2.1), the status and authentication schemes."""
    async with open_stream(ctx, target.ip, port.port, tls=port.tls) as stream:
        _, response = await http_exchange(
            stream,
            "POST",
            http_host(target),
            "/wsman",
            {"Content-Type": "application/soap+xml;charset=UTF-8", "Content-Length": "0"},
        )
    return winrm_findings(target, port.port, response)
