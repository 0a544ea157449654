"""What the TLS probes observed on one endpoint: plain frozen values the checks read.

Suite and vulnerability results keep sslyze's own result types, so the pure
checks can be tested on results constructed by hand for cases no local
server can serve (SSL 2.0, export suites, Heartbleed...). Certificates are
``cryptography`` objects, leaf first, as the server sent them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from cryptography import x509
from nassl.ephemeral_key_info import DhEphemeralKeyInfo, OpenSslEvpPkeyEnum
from sslyze import (
    CipherSuitesScanResult,
    CompressionScanResult,
    HeartbleedScanResult,
    OpenSslCcsInjectionScanResult,
    RobotScanResult,
    SessionRenegotiationScanResult,
    TlsVersionEnum,
)


class Protocol(str, Enum):
    """SSL/TLS versions, named as operators see them in server configurations."""

    SSL_2_0 = "SSLv2"
    SSL_3_0 = "SSLv3"
    TLS_1_0 = "TLSv1.0"
    TLS_1_1 = "TLSv1.1"
    TLS_1_2 = "TLSv1.2"
    TLS_1_3 = "TLSv1.3"

    @classmethod
    def of(cls, version: TlsVersionEnum) -> Protocol:
        return cls[version.name]

    @property
    def sslyze(self) -> TlsVersionEnum:
        return TlsVersionEnum[self.name]


# OpenSSL's TLS clients refuse a server's DH group under 80 bits of security, 1024 bits,
# even at security level 0 (ssl_security_default_callback, SSL_SECOP_TMP_DH; 1.0.2: 768).
CLIENT_MIN_DH_BITS = 1024


@dataclass(frozen=True)
class RefusedDhKey(DhEphemeralKeyInfo):
    """The DH group of a suite the server chose and the TLS client refused as too small
    (OpenSSL: "dh key too small"): its parameters were not kept, its size is under
    ``CLIENT_MIN_DH_BITS``, which is what ``size`` holds (an upper bound)."""

    @classmethod
    def unread(cls) -> RefusedDhKey:
        return cls(
            type=OpenSslEvpPkeyEnum.DH,
            size=CLIENT_MIN_DH_BITS,
            public_bytes=bytearray(),
            prime=bytearray(),
            generator=bytearray(),
        )


class StartTls(str, Enum):
    """The plain-text protocol spoken before STARTTLS, when the port needs one."""

    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"


@dataclass(frozen=True)
class Endpoint:
    """One port to scan for TLS, directly or after STARTTLS."""

    port: int
    starttls: StartTls | None = None

    @property
    def label(self) -> str:
        return f"{self.port}/{self.starttls.value}" if self.starttls else str(self.port)


@dataclass(frozen=True)
class ProbeProblem:
    """A probe that could not give an answer (``scan.timeout`` or ``scan.error``)."""

    probe: str  # "tls.suites.TLSv1.2", "tls.heartbleed"...
    timed_out: bool
    detail: str


@dataclass(frozen=True)
class Vulnerabilities:
    """sslyze's verdicts; ``None`` where the probe was not run or not applicable."""

    heartbleed: HeartbleedScanResult | None = None
    ccs_injection: OpenSslCcsInjectionScanResult | None = None
    robot: RobotScanResult | None = None
    renegotiation: SessionRenegotiationScanResult | None = None
    compression: CompressionScanResult | None = None


@dataclass(frozen=True)
class EndpointObservation:
    """Everything probed on one endpoint.

    ``suites`` holds a result only for the protocols whose enumeration
    finished: a protocol missing from it was not established either way.
    ``speaks_tls`` is False when every handshake was refused (a plain-text
    service on a port where TLS was expected, or no STARTTLS offered).
    """

    endpoint: Endpoint
    speaks_tls: bool
    suites: Mapping[Protocol, CipherSuitesScanResult] = field(default_factory=dict)
    chains: tuple[tuple[x509.Certificate, ...], ...] = ()
    vulnerabilities: Vulnerabilities = field(default_factory=Vulnerabilities)
    problems: tuple[ProbeProblem, ...] = ()
    connections: int = 0  # TLS connections opened to get this (for measurement)

    @property
    def accepted_protocols(self) -> list[Protocol]:
        return [p for p in Protocol if p in self.suites and self.suites[p].accepted_cipher_suites]

    @property
    def answered_handshake(self) -> bool:
        return self.speaks_tls and bool(self.accepted_protocols)
