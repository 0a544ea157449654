"""Plain typed values shared by the scanner and the store: the ground floor.

Nothing here does I/O. ``scanner/`` produces these values, ``db/`` persists
them, ``grading``/``reports``/``notify`` read them back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import idna

# Languages vigie speaks to users; French is the default.
LANGUAGES: tuple[str, ...] = ("fr", "en")


def utcnow() -> datetime:
    """The one clock vigie uses: timezone-aware UTC."""
    return datetime.now(UTC)


class Severity(str, Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class FindingStatus(str, Enum):
    NEW = "new"
    OPEN = "open"
    RESOLVED = "resolved"
    REOPENED = "reopened"


class Family(str, Enum):
    """A check family: one scanner module each. ``scan`` holds scan problems."""

    SERVICE = "service"
    TLS = "tls"
    HTTP = "http"
    DNS = "dns"
    MAIL = "mail"
    IPV6 = "ipv6"
    SOFTWARE = "software"
    VULN = "vuln"
    SCAN = "scan"


SCANNABLE_FAMILIES: tuple[Family, ...] = (
    Family.SERVICE,
    Family.TLS,
    Family.HTTP,
    Family.DNS,
    Family.MAIL,
    Family.IPV6,
    Family.SOFTWARE,
    Family.VULN,
)


def canonical_domain(name: str) -> str:
    """The one spelling of a domain name vigie stores and compares: IDNA 2008 ASCII
    (UTS 46 mapping, so ``Ministère.Gouv.ML.`` -> ``xn--ministre-60a.gouv.ml``), lower
    case, no trailing dot. A name IDNA refuses is only lowered and stripped, so a
    lookup of a malformed name finds nothing instead of raising (validation of new
    names is the importer's job)."""
    text = name.strip().rstrip(".")
    try:
        return idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        return text.lower()


def family_of(check_id: str) -> Family:
    """``tls.cert.expired`` -> ``Family.TLS``."""
    return Family(check_id.split(".", 1)[0])


@dataclass(frozen=True)
class Finding:
    """One observation produced by a check.

    ``discriminator`` separates findings of the same check on the same
    (domain, ip, port): a cipher suite, a cookie name, a URL path. It is part
    of the fingerprint, so it must be stable from one scan to the next.
    ``severity`` overrides the catalogue default when a check knows better.
    """

    check_id: str
    domain: str
    ip: str | None = None
    port: int | None = None
    discriminator: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None

    @property
    def family(self) -> Family:
        return family_of(self.check_id)

    @property
    def fingerprint(self) -> str:
        return finding_fingerprint(
            self.check_id, self.domain, self.ip, self.port, self.discriminator
        )


def finding_fingerprint(
    check_id: str, domain: str, ip: str | None, port: int | None, discriminator: str
) -> str:
    """Stable identity of a finding across scans (SHA-256, hex)."""
    key = "\x1f".join(
        [
            check_id,
            canonical_domain(domain),
            ip or "",
            "" if port is None else str(port),
            discriminator,
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()


def evidence_digest(evidence: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a piece of evidence, for the audit trail."""
    canonical = json.dumps(evidence, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class HostTarget:
    """One (domain, address) pair a sweep probes. Resolution happened before."""

    domain: str
    ip: str
    agency: str = ""


@dataclass(frozen=True)
class OpenPort:
    """An open TCP port as the port stage saw it."""

    port: int
    service: str = ""  # nmap's service name guess ("http", "ssh", "redis"...)
    banner: str = ""  # a raw banner if one was read (untrusted text)
    tls: bool = False  # the port answered a TLS handshake or nmap says "ssl/..."


@dataclass
class FamilyResult:
    """What one check family produced for one host.

    ``complete`` is False when any probe of the family timed out or failed:
    then the store must not resolve earlier findings of that family on that
    host, because absence of evidence was not established.
    """

    family: Family
    findings: list[Finding] = field(default_factory=list)
    complete: bool = True
    # Raw observations (HTTP responses, identified software) kept for the host's
    # derived families (software, vuln); never stored, gone with the host result.
    observed: list[object] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)


@dataclass
class HostResult:
    """Everything a host scan produced, handed by the engine to its caller."""

    target: HostTarget
    families: dict[Family, FamilyResult] = field(default_factory=dict)
    open_ports: list[OpenPort] = field(default_factory=list)
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.families.values() for f in r.findings]
