"""``/.well-known/security.txt`` (RFC 9116): how the public reports a vulnerability.

Check IDs: ``http.security_txt.missing``, ``http.security_txt.expired``,
``http.security_txt.invalid``.

The main web hosts come from the registry: every name a sweep scans is a
registered name (``DomainJob``: one registered domain; a candidate found by
discovery is scanned only once approved into the registry), so each one is
asked for its file, the same way for real and lab names. No Public Suffix
List guess decides it (a lab's ``.test`` or ``.example`` once took a branch
real names never took).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from publicsuffixlist import PublicSuffixList

from vigie.model import Finding
from vigie.scanner.http._content import looks_like_html
from vigie.scanner.http._model import HttpObservation, Site, truncate

PATH = "/.well-known/security.txt"


@functools.lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    # accept_unknown: the PSL algorithm's default rule "*" for top-level labels it lacks.
    return PublicSuffixList(accept_unknown=True)


def registrable_domain(name: str) -> str | None:
    """HTML's "registrable domain" of ``name`` (URL §3.2: the Public Suffix List
    algorithm, its default rule ``*`` for unknown top-level labels); for "same site"."""
    return _suffixes().privatesuffix(name.lower().rstrip("."))


@dataclass(frozen=True)
class SecurityTxt:
    """The fields of a security.txt that matter here."""

    contacts: tuple[str, ...] = ()
    expires: datetime | None = None
    expires_text: str = ""
    problems: tuple[str, ...] = field(default_factory=tuple)
    fields: int = 0  # lines naming a field RFC 9116 defines

    @property
    def present(self) -> bool:
        """The body is a security.txt at all (it names at least one RFC 9116 field)."""
        return self.fields > 0

    @property
    def valid(self) -> bool:
        return bool(self.contacts) and self.expires is not None


# RFC 3339 §5.6 date-time: full-date "T" full-time, the offset required (Z or ±hh:mm);
# §5.6 NOTE: "t" and a space may stand for "T". ASCII digits only.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# RFC 9116 §2.5.5: "less than a year into the future" is RECOMMENDED.
MAX_EXPIRY = timedelta(days=366)
# Fields defined by RFC 9116 §2.5 (and the CSAF extension registered since).
KNOWN_FIELDS = frozenset(
    {
        "acknowledgments",
        "canonical",
        "contact",
        "encryption",
        "expires",
        "hiring",
        "policy",
        "preferred-languages",
        "csaf",
    }
)


def parse_expires(text: str) -> datetime | None:
    """An RFC 3339 §5.6 date-time (RFC 9116 §2.5.5), or None for anything else."""
    value = text.strip()
    if not _RFC3339.fullmatch(value):
        return None
    value = value[:10] + "T" + value[11:]
    if value[17:19] == "60":  # RFC 3339 §5.7: a leap second; Python has none: read :59
        value = value[:17] + "59" + value[19:]
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        return None  # a date that does not exist (2026-02-30) or out of range


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
    """RFC 9116 §2.5 fields (name ":" value), inside an OpenPGP cleartext signature or not.

    §2.5.3: Contact MUST be present; §2.5.5: Expires MUST be present once,
    as an RFC 3339 date-time.
    """
    contacts: list[str] = []
    expires: list[str] = []
    fields = 0
    for line in _content_lines(text):
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        field_name = name.strip().lower()
        fields += field_name in KNOWN_FIELDS
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
    return SecurityTxt(
        tuple(contacts), moment, expires[0] if expires else "", tuple(problems), fields
    )


def _unfollowed(stopped: str) -> bool:
    """The redirect was not followed (out of scope, unresolvable, no answer): not judged."""
    return not stopped.startswith(("redirect loop", "more than"))


def security_txt_findings(
    site: Site,
    response: HttpObservation | None,
    now: datetime,
    *,
    has_https: bool = False,
    stopped: str = "",
) -> list[Finding]:
    """Missing, invalid (RFC 9116) or expired.

    ``response`` is the final answer to ``GET /.well-known/security.txt``
    after redirects (``stopped`` says why following ended early); None when
    the request got no answer. A redirect vigie may not follow (out of scope)
    proves nothing about the file: not judged. ``has_https``: the host serves
    HTTPS, so a file served over plain HTTP is invalid (RFC 9116 §3: "MUST be
    accessed via HTTPS").
    """
    if response is None:
        return []
    evidence = response.evidence(["content-type"])
    if response.is_redirect:
        if _unfollowed(stopped):
            return []
        evidence["reason"] = f"the redirects do not end: {truncate(stopped, 200)}"
        return [site.finding("http.security_txt.missing", evidence)]
    parsed = parse_security_txt(response.text)
    if response.status != 200 or looks_like_html(response) or not parsed.present:
        evidence["reason"] = (
            f"answered {response.status}"
            if response.status != 200
            else "an HTML page, not security.txt"
            if looks_like_html(response)
            else "no RFC 9116 field in the file"
        )
        return [site.finding("http.security_txt.missing", evidence)]
    evidence["contacts"] = [truncate(c, 128) for c in parsed.contacts[:5]]
    evidence["expires"] = truncate(parsed.expires_text, 64)
    problems = list(parsed.problems)
    if response.scheme == "http" and has_https:
        problems.append("served over plain HTTP although the host serves HTTPS (RFC 9116 §3)")
    findings = []
    if parsed.expires is not None and parsed.expires <= now:
        expired = {**evidence, "reason": f"Expires {parsed.expires.isoformat()} has passed"}
        findings.append(site.finding("http.security_txt.expired", expired))
    elif parsed.expires is not None and parsed.expires - now > MAX_EXPIRY:
        problems.append(
            f"Expires {parsed.expires.isoformat()} is more than a year ahead (RFC 9116 §2.5.5)"
        )
    if problems:
        evidence["reason"] = "; ".join(problems)
        findings.append(site.finding("http.security_txt.invalid", evidence))
    return findings
