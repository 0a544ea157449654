"""Judgments on response headers: each a pure function from an observation to findings.

Check IDs: ``http.no_https_redirect``, ``http.hsts.missing``,
``http.hsts.short_max_age``, ``http.csp.missing``, ``http.csp.unsafe``,
``http.frame_options.missing``, ``http.content_type_options.missing``,
``http.referrer_policy.missing``, ``http.version_disclosed``,
``http.cookie.insecure``, ``http.cookie.no_httponly``, ``http.cors.permissive``,
``http.trace_enabled``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from vigie.model import Finding
from vigie.scanner.http._model import HttpObservation, Site, host_key, truncate

# 180 days: the HSTS preload list minimum is one year, browsers' guidance six months.
HSTS_MIN_MAX_AGE = 15_552_000
# The Origin sent with every page request, to see whether CORS reflects it.
PROBE_ORIGIN = "https://vigie-probe.invalid"

REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "origin",
        "origin-when-cross-origin",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)
VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version")
# "nginx/1.22.1", "Apache/2", "PHP/8.1.2", "Microsoft-IIS/10.0", "4.0.30319"
_VERSION = re.compile(r"/\s*v?\d|\d+\.\d+")
# Cookie names that carry a session or authentication; anti-CSRF tokens are
# meant to be read by scripts, so they are left out.
_SESSION_COOKIE = re.compile(
    r"sess|sid$|^sid|auth|token|jwt|login|remember|connect\.sid|ci_session|wordpress_logged_in",
    re.IGNORECASE,
)
_NOT_SESSION_COOKIE = re.compile(r"csrf|xsrf", re.IGNORECASE)


# --- HTTP to HTTPS ------------------------------------------------------------------


def _reaches_https(response: HttpObservation, domain: str) -> bool:
    """An HTTPS response, or a redirect to https:// on the same host (even if that failed)."""
    if response.scheme == "https":
        return True
    if not response.is_redirect:
        return False
    target = urlsplit(urljoin(response.url, response.location))
    return target.scheme == "https" and host_key(target.hostname or "") == host_key(domain)


def no_https_redirect_findings(site: Site, responses: Sequence[HttpObservation]) -> list[Finding]:
    """``http.no_https_redirect`` when a plain-HTTP visit never reaches HTTPS on the same host.

    ``responses`` are the same-host responses of the visit, in order; a hop to
    another host does not count, even to HTTPS (RFC 6797 and the HSTS preload
    rules ask for the first redirect to stay on the host).
    """
    if not responses or any(_reaches_https(r, site.target.domain) for r in responses):
        return []
    final = responses[-1]
    evidence = final.evidence(["location"])
    evidence["reason"] = (
        f"redirects to {truncate(final.location)}, not to https:// on the same host"
        if final.is_redirect
        else f"answers {final.status} over plain HTTP without redirecting to https://"
    )
    return [site.finding("http.no_https_redirect", evidence)]


# --- HSTS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HstsPolicy:
    max_age: int | None  # None: no valid max-age directive
    include_subdomains: bool = False
    preload: bool = False


def parse_hsts(value: str) -> HstsPolicy:
    """RFC 6797 §6.1: directives separated by ';', max-age required."""
    max_age: int | None = None
    flags: set[str] = set()
    for part in value.split(";"):
        name, _, argument = part.strip().partition("=")
        name = name.strip().lower()
        if name == "max-age":
            digits = argument.strip().strip('"')
            max_age = int(digits) if digits.isdigit() else None
        elif name:
            flags.add(name)
    return HstsPolicy(max_age, "includesubdomains" in flags, "preload" in flags)


def hsts_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """HSTS on an HTTPS response: missing, without a valid max-age, or shorter than 180 days."""
    if response.scheme != "https":
        return []
    evidence = response.evidence(["strict-transport-security"])
    value = response.header("strict-transport-security")
    if value is None:
        evidence["reason"] = "no Strict-Transport-Security header on the HTTPS response"
        return [site.finding("http.hsts.missing", evidence)]
    policy = parse_hsts(value)
    if policy.max_age is None:
        evidence["reason"] = "Strict-Transport-Security has no valid max-age: browsers ignore it"
        return [site.finding("http.hsts.missing", evidence)]
    if policy.max_age < HSTS_MIN_MAX_AGE:
        evidence["max_age"] = policy.max_age
        evidence["minimum"] = HSTS_MIN_MAX_AGE
        return [site.finding("http.hsts.short_max_age", evidence)]
    return []


# --- Content-Security-Policy --------------------------------------------------------

CspPolicy = dict[str, list[str]]


def parse_csp(values: Sequence[str]) -> list[CspPolicy]:
    """Every enforced policy in ``Content-Security-Policy`` values (comma-separated lists)."""
    policies: list[CspPolicy] = []
    for value in values:
        for text in value.split(","):
            policy: CspPolicy = {}
            for directive in text.split(";"):
                tokens = directive.split()
                if tokens and tokens[0].lower() not in policy:  # the first occurrence wins
                    policy[tokens[0].lower()] = tokens[1:]
            if policy:
                policies.append(policy)
    return policies


def _unsafe_sources(directive: str, sources: list[str]) -> set[str]:
    lowered = [s.lower() for s in sources]
    # CSP2+ browsers ignore 'unsafe-inline' next to a nonce or hash, and host
    # sources (so '*') next to 'strict-dynamic'.
    has_nonce_or_hash = any(
        s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in lowered
    )
    unsafe = set()
    if "'unsafe-inline'" in lowered and not has_nonce_or_hash:
        unsafe.add(f"{directive} 'unsafe-inline'")
    if "'unsafe-eval'" in lowered:
        unsafe.add(f"{directive} 'unsafe-eval'")
    if "*" in lowered and "'strict-dynamic'" not in lowered:
        unsafe.add(f"{directive} *")
    return unsafe


def csp_weaknesses(policy: CspPolicy) -> set[str]:
    """What one policy lets scripts do: unsafe sources in script-src and default-src."""
    if "script-src" not in policy and "default-src" not in policy:
        return {"no script-src or default-src: scripts are not restricted"}
    weaknesses = set()
    for directive in ("script-src", "default-src"):
        if directive in policy:
            weaknesses |= _unsafe_sources(directive, policy[directive])
    return weaknesses


def csp_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.csp.missing`` / ``http.csp.unsafe`` (every enforced policy must be weak)."""
    evidence = response.evidence(["content-security-policy"])
    policies = parse_csp(response.header_values("content-security-policy"))
    if not policies:
        evidence["reason"] = "no Content-Security-Policy header (Report-Only does not protect)"
        return [site.finding("http.csp.missing", evidence)]
    # Several policies are all enforced: the strictest one decides.
    per_policy = [csp_weaknesses(policy) for policy in policies]
    if all(per_policy):
        evidence["unsafe"] = sorted(set.union(*per_policy))
        return [site.finding("http.csp.unsafe", evidence)]
    return []


def frame_options_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.frame_options.missing``: neither a valid X-Frame-Options nor frame-ancestors."""
    policies = parse_csp(response.header_values("content-security-policy"))
    if any("frame-ancestors" in policy for policy in policies):
        return []
    value = (response.header("x-frame-options") or "").split(",")[0].strip().lower()
    if value in ("deny", "sameorigin"):
        return []
    evidence = response.evidence(["x-frame-options", "content-security-policy"])
    evidence["reason"] = (
        f"X-Frame-Options {value!r} is not DENY or SAMEORIGIN (browsers ignore it)"
        if value
        else "no X-Frame-Options and no CSP frame-ancestors"
    )
    return [site.finding("http.frame_options.missing", evidence)]


def content_type_options_findings(site: Site, response: HttpObservation) -> list[Finding]:
    value = (response.header("x-content-type-options") or "").split(",")[0].strip().lower()
    if value == "nosniff":
        return []
    evidence = response.evidence(["x-content-type-options", "content-type"])
    evidence["reason"] = "X-Content-Type-Options: nosniff is not set"
    return [site.finding("http.content_type_options.missing", evidence)]


def referrer_policy_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """Missing, or no token a browser understands (it then falls back to its default)."""
    tokens = {
        token.strip().lower()
        for value in response.header_values("referrer-policy")
        for token in value.split(",")
    }
    if tokens & REFERRER_POLICIES:
        return []
    evidence = response.evidence(["referrer-policy"])
    evidence["reason"] = "no valid Referrer-Policy header"
    return [site.finding("http.referrer_policy.missing", evidence)]


def document_header_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """The header checks that protect the documents a site serves."""
    return [
        *csp_findings(site, response),
        *frame_options_findings(site, response),
        *content_type_options_findings(site, response),
        *referrer_policy_findings(site, response),
    ]


# --- version disclosure -------------------------------------------------------------


def version_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.version_disclosed`` per header that carries a version number."""
    findings = []
    for name in VERSION_HEADERS:
        value = response.header(name)
        if value is None:
            continue
        if name.startswith("x-aspnet") or _VERSION.search(value):
            evidence = response.evidence([name])
            evidence["disclosed"] = truncate(value.strip(), 256)
            findings.append(site.finding("http.version_disclosed", evidence, discriminator=name))
    return findings


# --- cookies ------------------------------------------------------------------------


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attributes: frozenset[str]  # lower-case attribute names
    max_age: str = ""
    expires: str = ""

    @property
    def deleted(self) -> bool:
        """A cookie being cleared (empty, Max-Age <= 0, or expired): nothing to protect."""
        if not self.value:
            return True
        if self.max_age.lstrip("-").isdigit():
            return int(self.max_age) <= 0
        if self.expires:
            try:
                return parsedate_to_datetime(self.expires) < datetime.now(UTC)
            except (TypeError, ValueError, IndexError):
                return False
        return False

    def masked(self) -> str:
        """The cookie line with its value hidden: values are often live session ids."""
        attrs = "; ".join(sorted(self.attributes))
        line = f"{self.name}=<{len(self.value)} chars masked>" + (f"; {attrs}" if attrs else "")
        return truncate(line, 256)


def parse_set_cookie(line: str) -> SetCookie | None:
    pair, *attributes = line.split(";")
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        return None
    names = set()
    arguments: dict[str, str] = {}
    for attribute in attributes:
        key, _, argument = attribute.strip().partition("=")
        key = key.strip().lower()
        if key:
            names.add(key)
            arguments.setdefault(key, argument.strip())
    return SetCookie(
        name.strip(),
        value.strip().strip('"'),
        frozenset(names),
        arguments.get("max-age", ""),
        arguments.get("expires", ""),
    )


def is_session_cookie(name: str) -> bool:
    return bool(_SESSION_COOKIE.search(name)) and not _NOT_SESSION_COOKIE.search(name)


def cookie_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``Secure`` on cookies set over HTTPS; ``HttpOnly`` on session-like cookies."""
    findings = []
    for line in response.header_values("set-cookie"):
        cookie = parse_set_cookie(line)
        if cookie is None or cookie.deleted:
            continue
        evidence = response.evidence()
        evidence["cookie"] = cookie.masked()
        if response.scheme == "https" and "secure" not in cookie.attributes:
            findings.append(
                site.finding("http.cookie.insecure", evidence, discriminator=cookie.name)
            )
        if is_session_cookie(cookie.name) and "httponly" not in cookie.attributes:
            findings.append(
                site.finding("http.cookie.no_httponly", evidence, discriminator=cookie.name)
            )
    return findings


# --- CORS and TRACE -----------------------------------------------------------------


def cors_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.cors.permissive``: credentials granted to any origin (ours, ``null`` or ``*``).

    ``response`` answered a request carrying ``Origin: PROBE_ORIGIN``. A
    reflected origin without credentials exposes only public data: not reported.
    """
    allowed = (response.header("access-control-allow-origin") or "").strip()
    credentials = (response.header("access-control-allow-credentials") or "").strip().lower()
    if credentials != "true" or allowed.lower() not in (PROBE_ORIGIN, "null", "*"):
        return []
    evidence = response.evidence(
        ["access-control-allow-origin", "access-control-allow-credentials"]
    )
    evidence["origin_sent"] = PROBE_ORIGIN
    evidence["reason"] = (
        "the origin sent is reflected with credentials allowed"
        if allowed.lower() == PROBE_ORIGIN
        else f"Access-Control-Allow-Origin {allowed!r} with credentials allowed"
    )
    return [site.finding("http.cors.permissive", evidence)]


def trace_findings(site: Site, response: HttpObservation, marker: str) -> list[Finding]:
    """``http.trace_enabled``: TRACE answered 200 and echoed the request (marker included)."""
    if response.method != "TRACE" or response.status != 200 or marker not in response.text:
        return []
    evidence = response.evidence(["content-type"])
    evidence["echo"] = truncate(response.text.replace(marker, "<marker>"), 256)
    return [site.finding("http.trace_enabled", evidence)]
