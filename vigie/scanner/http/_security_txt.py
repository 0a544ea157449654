"""``/.well-known/security.txt`` (RFC 9116): how the public reports a vulnerability.

Check IDs: ``http.security_txt.missing``, ``http.security_txt.expired``.

Only a domain's main web host is judged: the registrable domain itself or
its ``www.`` name (``sante.gouv.ml``, ``www.sante.gouv.ml``; not
``mail.sante.gouv.ml``). Names under a suffix the Public Suffix List does
not know (``.test``, a lab's private zone) count as main hosts: nothing says
where their registration boundary lies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from publicsuffixlist import PublicSuffixList

from vigie.model import Finding
from vigie.scanner.http._content import looks_like_html
from vigie.scanner.http._model import HttpObservation, Site, truncate

PATH = "/.well-known/security.txt"


@functools.lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def is_main_web_host(domain: str) -> bool:
    """``domain`` is a registrable domain, or ``www.`` + one."""
    name = domain.lower().rstrip(".")
    registrable = _suffixes().privatesuffix(name)
    if registrable is None:
        return _suffixes().publicsuffix(name) is None  # unknown suffix: assume it is
    return name in (registrable, f"www.{registrable}")


@dataclass(frozen=True)
class SecurityTxt:
    """The fields of a security.txt that matter here."""

    contacts: tuple[str, ...] = ()
    expires: datetime | None = None
    expires_text: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def valid(self) -> bool:
        return bool(self.contacts) and self.expires is not None


def parse_expires(text: str) -> datetime | None:
    """An RFC 3339 date-time (a date without an offset is read as UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().upper().replace(" ", "T"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _content_lines(text: str) -> list[str]:
    """The lines of the message, without an OpenPGP cleartext signature around them."""
    lines: list[str] = []
    in_armor_header = in_signature = False
    for raw in text.splitlines():
        line = raw.strip()
        if line == "-----BEGIN PGP SIGNED MESSAGE-----":
            in_armor_header = True
            continue
        if in_armor_header:
            in_armor_header = bool(line)  # "Hash: ..." lines until the first blank one
            continue
        if line == "-----BEGIN PGP SIGNATURE-----":
            in_signature = True
        if in_signature:
            in_signature = line != "-----END PGP SIGNATURE-----"
            continue
        lines.append(line[2:] if line.startswith("- ") else line)  # dash-escaped
    return lines


def parse_security_txt(text: str) -> SecurityTxt:
    contacts: list[str] = []
    expires: list[str] = []
    for line in _content_lines(text):
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        field_name = name.strip().lower()
        if field_name == "contact" and value.strip():
            contacts.append(value.strip())
        elif field_name == "expires":
            expires.append(value.strip())
    problems = []
    moment = parse_expires(expires[0]) if expires else None
    if not contacts:
        problems.append("no Contact field")
    if not expires:
        problems.append("no Expires field")
    elif moment is None:
        problems.append(f"Expires {truncate(expires[0], 64)!r} is not an RFC 3339 date")
    if len(expires) > 1:
        problems.append("Expires appears more than once")
    return SecurityTxt(tuple(contacts), moment, expires[0] if expires else "", tuple(problems))


def security_txt_findings(
    site: Site, response: HttpObservation | None, now: datetime
) -> list[Finding]:
    """Missing (no valid file with Contact and Expires) or expired.

    ``response`` is the final answer to ``GET /.well-known/security.txt``
    after redirects; None when the request could not be made over HTTPS nor HTTP.
    """
    if response is None:
        return []
    evidence = response.evidence(["content-type"])
    if response.status != 200 or looks_like_html(response):
        evidence["reason"] = (
            f"answered {response.status}"
            if response.status != 200
            else "an HTML page, not security.txt"
        )
        return [site.finding("http.security_txt.missing", evidence)]
    parsed = parse_security_txt(response.text)
    evidence["contacts"] = [truncate(c, 128) for c in parsed.contacts[:5]]
    evidence["expires"] = truncate(parsed.expires_text, 64)
    if not parsed.valid:
        evidence["reason"] = "; ".join(parsed.problems)
        return [site.finding("http.security_txt.missing", evidence)]
    assert parsed.expires is not None
    if parsed.expires <= now:
        evidence["reason"] = f"Expires {parsed.expires.isoformat()} has passed"
        return [site.finding("http.security_txt.expired", evidence)]
    return []
