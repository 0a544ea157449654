"""What one HTTP exchange showed, as plain frozen values the checks judge.

Everything in an observation came from a server: untrusted text. Checks read
it, never execute or render it, and put only truncated pieces in evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from vigie.model import Finding, HostTarget
from vigie.scanner.http._html import PageFacts, page_facts

# Longest piece of server-sent text copied into evidence.
EVIDENCE_TEXT_CHARS = 512
# Header values quoted in evidence are shorter: a line an analyst can read.
EVIDENCE_HEADER_CHARS = 256
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def host_key(name: str) -> str:
    """A host name compared case- and trailing-dot-insensitively, in its ASCII form."""
    name = name.lower().rstrip(".")
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def truncate(text: str, limit: int = EVIDENCE_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class Hop:
    """One response of a redirect chain (the request that led to it)."""

    method: str
    url: str
    status: int
    location: str = ""

    def as_evidence(self) -> dict[str, Any]:
        hop: dict[str, Any] = {
            "request": f"{self.method} {truncate(self.url)}",
            "status": self.status,
        }
        if self.location:
            hop["location"] = truncate(self.location)
        return hop


@dataclass(frozen=True)
class HttpObservation:
    """One HTTP response: status, header lines, a bounded body prefix, how we got there.

    ``body`` is decompressed and at most the configured size (``truncated``
    says more was sent); ``body_note`` explains a body that could not be read
    (an unsupported or corrupt encoding). ``chain`` lists the responses that
    redirected to this one, oldest first.
    """

    method: str
    url: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    body_note: str = ""
    stalled: bool = False  # the body stopped arriving before the total timeout
    chain: tuple[Hop, ...] = ()
    http_version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header_lines(self, names: Iterable[str]) -> list[str]:
        """``Name: value`` lines of the headers named, truncated, in the order received."""
        wanted = {name.lower() for name in names}
        return [
            f"{key}: {truncate(value, EVIDENCE_HEADER_CHARS)}"
            for key, value in self.headers
            if key.lower() in wanted
        ]

    @cached_property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced): for matching only."""
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def page(self) -> PageFacts:
        """What the body declares as an HTML page (meta policies, subresources, forms)."""
        return page_facts(self.body, self.header("content-type"))

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def location(self) -> str:
        """The redirect target as sent, for a redirect status; else ''."""
        if self.status not in REDIRECT_STATUSES:
            return ""
        return (self.header("location") or "").strip()

    @property
    def is_redirect(self) -> bool:
        return bool(self.location)

    def as_hop(self) -> Hop:
        return Hop(self.method, self.url, self.status, self.location)

    def evidence(self, header_names: Iterable[str] = ()) -> dict[str, Any]:
        """The request, the status, the header lines that matter, and the redirect chain."""
        found: dict[str, Any] = {
            "request": f"{self.method} {truncate(self.url)}",
            "status": self.status,
            "headers": self.header_lines(header_names),
        }
        if self.chain:
            found["redirect_chain"] = [hop.as_evidence() for hop in (*self.chain, self.as_hop())]
        return found


@dataclass(frozen=True)
class Site:
    """Where findings about one web endpoint belong: the host and the port."""

    target: HostTarget
    port: int

    def finding(
        self,
        check_id: str,
        evidence: Mapping[str, Any],
        discriminator: str = "",
    ) -> Finding:
        return Finding(
            check_id=check_id,
            domain=self.target.domain,
            ip=self.target.ip or None,
            port=self.port,
            discriminator=discriminator,
            evidence=dict(evidence),
        )


@dataclass(frozen=True)
class PathProbe:
    """One entry of the exposed-path list: request ``path``, prove ``check`` with ``detector``."""

    path: str
    check: str
    detector: str


@dataclass(frozen=True)
class Baseline:
    """How the endpoint answers paths that cannot exist (the soft-404 it serves)."""

    responses: tuple[HttpObservation, ...] = field(default_factory=tuple)
    token: str = ""  # the random part of the baseline paths, removed before comparing
