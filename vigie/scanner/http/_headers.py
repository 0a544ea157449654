"""Judgments on response headers: each a pure function from an observation to findings.

Check IDs: ``http.no_https_redirect``, ``http.hsts.missing``,
``http.hsts.short_max_age``, ``http.csp.missing``, ``http.csp.unsafe``,
``http.frame_options.missing``, ``http.content_type_options.missing``,
``http.referrer_policy.missing``, ``http.version_disclosed``,
``http.cookie.insecure``, ``http.cookie.no_httponly``, ``http.cors.permissive``,
``http.trace_enabled``, ``http.cookie.no_samesite``, ``http.referrer_policy.unsafe``,
``http.sri.missing``, ``http.csp.weak_directives``.

Headers and bodies are untrusted text: every parser here accepts any string
(non-ASCII digits, control characters, huge values) and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from vigie.model import Finding
from vigie.scanner.http._model import HttpObservation, Site, host_key, truncate
from vigie.scanner.http._security_txt import registrable_domain

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
# (A digit run is tried once, from its start: "9" * 30000 is not quadratic.)
_VERSION = re.compile(r"/\s*v?\d|(?<![0-9])[0-9]+\.[0-9]")
# Cookie names that carry a session or authentication; anti-CSRF tokens are
# meant to be read by scripts, so they are left out.
_SESSION_COOKIE = re.compile(
    r"sess|sid$|^sid|auth|token|jwt|login|remember|connect\.sid|ci_session|wordpress_logged_in",
    re.IGNORECASE,
)
_NOT_SESSION_COOKIE = re.compile(r"csrf|xsrf", re.IGNORECASE)
# Cookies a hosting platform's router sets in front of the application: the
# agency cannot change their attributes and they carry a routing hint, no
# credential (Heroku's session affinity; the peer suites skip it too).
PLATFORM_COOKIES = frozenset({"heroku-session-affinity"})


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

# RFC 9110 §5.6.2 token characters; RFC 9110 §5.6.4 quoted-string.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_HSTS_DIRECTIVE = re.compile(
    rf"[ \t]*(?:(?P<name>{_TOKEN})[ \t]*(?:=[ \t]*(?P<value>{_TOKEN}|{_QUOTED}))?)?[ \t]*(?P<end>;|$)"
)
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Longest max-age kept as a number: a longer one is clamped (no browser keeps more).
_MAX_AGE_DIGITS = 12


@dataclass(frozen=True)
class HstsPolicy:
    max_age: int | None  # None: no valid max-age directive (the header is then ignored)
    include_subdomains: bool = False
    preload: bool = False
    problem: str = ""  # why a UA ignores the header, when it does


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_hsts(value: str) -> HstsPolicy:
    """RFC 6797 §6.1: ``[ directive ] *( ";" [ directive ] )``, directive = token ["=" value].

    §6.1: "All directives MUST appear only once in an STS header field" and
    max-age is REQUIRED; §8.1: a header that does not satisfy the grammar is
    ignored by the UA. max-age is delta-seconds, ASCII digits only (§6.1.1,
    RFC 9111 §1.2.2), in token or quoted-string form.
    """
    directives: dict[str, str | None] = {}
    position = 0
    while position <= len(value):
        match = _HSTS_DIRECTIVE.match(value, position)
        if match is None:
            return HstsPolicy(None, problem="does not follow the RFC 6797 §6.1 grammar")
        name = match.group("name")
        if name is not None:
            key = name.lower()
            if key in directives:
                return HstsPolicy(None, problem=f"directive {truncate(name, 40)!r} repeated")
            directives[key] = match.group("value")
        if match.group("end") == "":
            break
        position = match.end()
    if "max-age" not in directives:
        return HstsPolicy(None, problem="no max-age directive")
    digits = _unquote(directives["max-age"] or "")
    if not _ASCII_DIGITS.fullmatch(digits):
        return HstsPolicy(None, problem="max-age is not a number of seconds")
    max_age = int(digits) if len(digits) <= _MAX_AGE_DIGITS else 10**_MAX_AGE_DIGITS
    return HstsPolicy(max_age, "includesubdomains" in directives, "preload" in directives)


def hsts_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """HSTS on an HTTPS response: missing, ignored (invalid), or max-age under 180 days.

    RFC 6797 §8.1: only the first STS header field is processed; one that
    violates the §6.1 grammar is ignored, which is the same as none.
    """
    if response.scheme != "https":
        return []
    evidence = response.evidence(["strict-transport-security"])
    value = response.header("strict-transport-security")
    if value is None:
        evidence["reason"] = "no Strict-Transport-Security header on the HTTPS response"
        return [site.finding("http.hsts.missing", evidence)]
    policy = parse_hsts(value)
    if policy.max_age is None:
        evidence["reason"] = (
            f"Strict-Transport-Security is invalid ({policy.problem}): browsers ignore it"
        )
        return [site.finding("http.hsts.missing", evidence)]
    if policy.max_age < HSTS_MIN_MAX_AGE:
        evidence["max_age"] = policy.max_age
        evidence["minimum"] = HSTS_MIN_MAX_AGE
        return [site.finding("http.hsts.short_max_age", evidence)]
    return []


# --- Content-Security-Policy --------------------------------------------------------

CspPolicy = dict[str, list[str]]
_ASCII_WHITESPACE = "\t\n\f\r "
# Infra "split on ASCII whitespace": str.split() would also split on \x1c-\x1f and U+2028.
_ASCII_SPACES = re.compile(r"[\t\n\f\r ]+")
# CSP3 §3.3: not supported in a policy delivered by <meta>.
_NOT_IN_META = ("frame-ancestors", "report-uri", "sandbox")
_NONCE_OR_HASH = ("'nonce-", "'sha256-", "'sha384-", "'sha512-")
# Scheme-only sources that let any server (or the attacker's own text) provide content.
_BROAD_SCHEMES = frozenset({"http:", "https:", "ftp:", "ws:", "wss:"})
_SCHEME_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*:")
_ANY_HOST = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?\*(?::(?:\*|[0-9]+))?/?")
# What a policy lets scripts do (kinds, compared across policies).
INLINE, EVAL, ANY_ORIGIN, DATA, CLEARTEXT = "inline", "eval", "any-origin", "data", "cleartext"
ALL_SCRIPT_KINDS = frozenset({INLINE, EVAL, ANY_ORIGIN, DATA, CLEARTEXT})
# A host source naming an unencrypted scheme: scripts a network attacker can rewrite.
_CLEARTEXT_HOST = re.compile(r"(?:http|ftp|ws)://\S+")


def parse_policy(text: str, *, meta: bool = False) -> CspPolicy:
    """CSP3 §2.2.1 "parse a serialized CSP": split on ';', skip empty and non-ASCII
    directives, lower-case names, the first occurrence of a name wins."""
    policy: CspPolicy = {}
    for raw in text.split(";"):
        token = raw.strip(_ASCII_WHITESPACE)
        if not token or not token.isascii():
            continue
        name, *values = _ASCII_SPACES.split(token)
        name = name.lower()
        if name in policy or (meta and name in _NOT_IN_META):
            continue
        policy[name] = values
    return policy


def parse_csp(values: Sequence[str], *, meta: bool = False) -> list[CspPolicy]:
    """Every enforced policy in ``Content-Security-Policy`` values.

    CSP3 §2.2.2: each header value is a comma-separated list of policies
    (extracting header list values); a policy with no directive is dropped.
    """
    policies = []
    for value in values:
        for text in value.split(","):
            policy = parse_policy(text, meta=meta)
            if policy:
                policies.append(policy)
    return policies


def enforced_policies(response: HttpObservation) -> list[CspPolicy]:
    """The header policies, then those of ``<meta http-equiv>`` in the head (CSP3 §3.3)."""
    return [
        *parse_csp(response.header_values("content-security-policy")),
        *parse_csp(response.page.meta_csp, meta=True),
    ]


def _is_any_origin(source: str) -> bool:
    """``*``, ``https://*`` or a scheme-only source such as ``https:`` (CSP3 §2.3.1)."""
    return bool(_ANY_HOST.fullmatch(source)) or source in _BROAD_SCHEMES


def script_sources(policy: CspPolicy) -> tuple[str, list[str]] | None:
    """The directive that governs scripts and its sources (CSP3 §6.8.3 fallback list:
    script-src, then default-src); None when scripts are not restricted at all."""
    for directive in ("script-src", "default-src"):
        if directive in policy:
            return directive, [source.lower() for source in policy[directive]]
    return None


def script_weaknesses(policy: CspPolicy) -> dict[str, list[str]]:
    """What one policy lets scripts do, by kind, with the sources that allow it.

    Kinds: inline script, eval, any origin (``*``, a bare scheme), ``data:``
    URLs, scripts fetched over an unencrypted scheme (``http://host``). CSP3 §6.7.3.3 ("does a source list allow all inline behavior"):
    ``'unsafe-inline'`` counts only without a nonce, a hash or
    ``'strict-dynamic'``; §8.2: with ``'strict-dynamic'`` host and scheme
    sources are ignored for scripts. ``'unsafe-eval'`` always counts.
    """
    governing = script_sources(policy)
    if governing is None:
        return {kind: ["no script-src or default-src"] for kind in ALL_SCRIPT_KINDS}
    directive, sources = governing
    strict_dynamic = "'strict-dynamic'" in sources
    found: dict[str, list[str]] = {}
    nonce_or_hash = any(source.startswith(_NONCE_OR_HASH) for source in sources)
    if "'unsafe-inline'" in sources and not nonce_or_hash and not strict_dynamic:
        found[INLINE] = [f"{directive} 'unsafe-inline'"]
    if "'unsafe-eval'" in sources:
        found[EVAL] = [f"{directive} 'unsafe-eval'"]
    if not strict_dynamic:
        broad = [s for s in sources if _is_any_origin(s)]
        if broad:
            found[ANY_ORIGIN] = [f"{directive} {s}" for s in broad]
        if "data:" in sources:
            found[DATA] = [f"{directive} data:"]
        cleartext = [s for s in sources if _CLEARTEXT_HOST.fullmatch(s) and s not in broad]
        if cleartext:
            found[CLEARTEXT] = [f"{directive} {s}" for s in cleartext]
    return found


def csp_weaknesses(policy: CspPolicy) -> set[str]:
    """The sources of one policy that leave scripts open (for evidence)."""
    return {source for sources in script_weaknesses(policy).values() for source in sources}


def _shared_weaknesses(policies: Sequence[CspPolicy]) -> list[str]:
    """What every enforced policy allows: a script runs only if all of them allow it."""
    per_policy = [script_weaknesses(policy) for policy in policies]
    kinds = set.intersection(*(set(weak) for weak in per_policy))
    return sorted({source for weak in per_policy for kind in kinds for source in weak[kind]})


def csp_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.csp.missing`` / ``http.csp.unsafe`` for scripts (CSP3 §6.8.3, §6.7.3.3, §8.2).

    Policies come from the header and from ``<meta http-equiv>`` (CSP3 §3.3);
    Report-Only does not protect. All enforced policies apply at once (CSP3
    §4.2.2), so a weakness counts only when every policy has it.
    """
    policies = enforced_policies(response)
    evidence = response.evidence(["content-security-policy"])
    if not policies:
        evidence["reason"] = (
            "no Content-Security-Policy header or meta element (Report-Only does not protect)"
        )
        return [site.finding("http.csp.missing", evidence)]
    unsafe = _shared_weaknesses(policies)
    if unsafe:
        evidence["unsafe"] = unsafe
        if response.page.meta_csp:
            evidence["meta_policies"] = [truncate(p, 256) for p in response.page.meta_csp[:5]]
        return [site.finding("http.csp.unsafe", evidence)]
    return []


def _open_sources(sources: list[str] | None) -> bool:
    """A fetch directive that lets content come from anywhere (or is absent)."""
    if sources is None:
        return True
    lowered = [source.lower() for source in sources]
    return any(_is_any_origin(s) or s == "data:" for s in lowered)


def weak_directives(policy: CspPolicy, *, has_form: bool) -> dict[str, str]:
    """object-src, base-uri and form-action left open where they matter, with why.

    - object-src falls back to default-src (CSP3 §6.8.3); plugins and embedded
      documents run script outside script-src: open (absent, ``*`` or a bare
      scheme) is always reported;
    - base-uri has no fallback (CSP3 §6.3.1): an explicit ``*`` or bare scheme is
      reported; an absent one when scripts are allowed by nonce, hash or
      'strict-dynamic', which would still run scripts an injected ``<base>``
      rehomes (an allow-list checks the rehomed URL and refuses it);
    - form-action has no fallback (CSP3 §6.4.1): an explicit ``*`` or bare scheme
      is reported; an absent one on a page that has a form.

    Once one of these is reported, an absent base-uri or form-action is listed
    too, whatever the page: the finding asks for the policy to be rewritten, and
    an injected ``<base>`` or ``<form>`` (CSP3 §6.3.1, §6.4.1) needs no script, so
    the rewrite should close them in the same change.
    """
    weak: dict[str, str] = {}
    objects = policy.get("object-src", policy.get("default-src"))
    if _open_sources(objects):
        weak["object-src"] = (
            "no object-src or default-src" if objects is None else "object-src allows any origin"
        )
    governing = script_sources(policy)
    relies_on_tokens = governing is not None and any(
        s.startswith(_NONCE_OR_HASH) or s == "'strict-dynamic'" for s in governing[1]
    )
    if "base-uri" in policy and _open_sources(policy["base-uri"]):
        weak["base-uri"] = "base-uri allows any origin"
    elif "base-uri" not in policy and relies_on_tokens:
        weak["base-uri"] = "no base-uri with a nonce/hash-based script-src"
    if "form-action" in policy and _open_sources(policy["form-action"]):
        weak["form-action"] = "form-action allows any origin"
    elif "form-action" not in policy and has_form:
        weak["form-action"] = "no form-action on a page with a form"
    if weak and "base-uri" not in policy:
        weak.setdefault("base-uri", "no base-uri: an injected <base> rehomes relative URLs")
    if weak and "form-action" not in policy:
        weak.setdefault("form-action", "no form-action: an injected form may post anywhere")
    return weak


def csp_weak_directive_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.csp.weak_directives``: a directive open in every enforced policy.

    CSP3 §6.1.9 (object-src, with the §6.8.3 fallback to default-src), §6.3.1
    (base-uri) and §6.4.1 (form-action); §8.1: several policies are all enforced,
    so a directive is open only if it is open in each (see :func:`weak_directives`).
    """
    policies = enforced_policies(response)
    if not policies:
        return []
    per_policy = [weak_directives(p, has_form=response.page.has_form) for p in policies]
    shared = set.intersection(*(set(weak) for weak in per_policy))
    if not shared:
        return []
    evidence = response.evidence(["content-security-policy"])
    evidence["weak"] = sorted(f"{name}: {per_policy[0][name]}" for name in shared)
    return [site.finding("http.csp.weak_directives", evidence)]


# --- framing, sniffing, referrer ----------------------------------------------------


def _protective_ancestors(sources: list[str]) -> bool:
    """frame-ancestors that restricts framers: not empty-of-meaning ``*`` or a bare scheme."""
    lowered = [source.lower() for source in sources]
    return not any(_is_any_origin(s) or _SCHEME_SOURCE.fullmatch(s) for s in lowered)


def _xfo_set(response: HttpObservation) -> set[str]:
    """HTML §7.1.x X-Frame-Options: get, decode and split; lower-cased, as a set."""
    return {
        part.strip(" \t").lower()
        for value in response.header_values("x-frame-options")
        for part in value.split(",")
    }


def frame_options_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.frame_options.missing``: framing by any site is not refused.

    CSP3 §6.4.2 frame-ancestors: ``*`` or a scheme-only source allows any
    framer; it cannot be set by ``<meta>`` (§3.3). HTML ("check a navigation
    response's adherence to X-Frame-Options"): X-Frame-Options is ignored when
    any policy has frame-ancestors; several different values block only if one
    of them is DENY, SAMEORIGIN or ALLOWALL; a single DENY or SAMEORIGIN blocks.
    """
    policies = parse_csp(response.header_values("content-security-policy"))
    ancestors = [p["frame-ancestors"] for p in policies if "frame-ancestors" in p]
    evidence = response.evidence(["x-frame-options", "content-security-policy"])
    if ancestors:
        if any(_protective_ancestors(sources) for sources in ancestors):
            return []
        evidence["reason"] = "CSP frame-ancestors allows any site (then X-Frame-Options is ignored)"
        return [site.finding("http.frame_options.missing", evidence)]
    values = _xfo_set(response) - {""}
    if len(values) > 1 and values & {"deny", "sameorigin", "allowall"}:
        return []
    if len(values) == 1 and values & {"deny", "sameorigin"}:
        return []
    shown = ", ".join(sorted(values))
    evidence["reason"] = (
        f"X-Frame-Options {truncate(shown, 80)!r} is not DENY or SAMEORIGIN (browsers ignore it)"
        if values
        else "no X-Frame-Options and no CSP frame-ancestors"
    )
    return [site.finding("http.frame_options.missing", evidence)]


def content_type_options_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """Fetch §3.5.x "determine nosniff": the first value of the list is ``nosniff``."""
    value = (response.header("x-content-type-options") or "").split(",")[0].strip(" \t").lower()
    if value == "nosniff":
        return []
    evidence = response.evidence(["x-content-type-options", "content-type"])
    evidence["reason"] = "X-Content-Type-Options: nosniff is not set"
    return [site.finding("http.content_type_options.missing", evidence)]


# HTML §4.2.5.1: legacy values of <meta name=referrer>.
_LEGACY_REFERRER = {
    "never": "no-referrer",
    "default": "strict-origin-when-cross-origin",
    "always": "unsafe-url",
    "origin-when-crossorigin": "origin-when-cross-origin",
}


def _last_policy(values: Sequence[str], *, legacy: bool = False) -> str:
    """Referrer Policy §8.1: the last recognised token of the list wins ('' if none)."""
    policy = ""
    for value in values:
        for raw in value.split(","):
            token = raw.strip(" \t").lower()
            token = _LEGACY_REFERRER.get(token, token) if legacy else token
            if token in REFERRER_POLICIES:
                policy = token
    return policy


def effective_referrer_policy(response: HttpObservation) -> tuple[str, str]:
    """(policy, where it came from): ``<meta name=referrer>`` overrides the header.

    The header sets the document's policy at creation (Referrer Policy §4.1);
    a meta element processed later replaces it (HTML §4.2.5.1).
    """
    meta = _last_policy(response.page.meta_referrer, legacy=True)
    if meta:
        return meta, "meta"
    header = _last_policy(response.header_values("referrer-policy"))
    return header, "header" if header else ""


def referrer_policy_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.referrer_policy.missing`` / ``.unsafe`` (Referrer Policy §3, §8.1; HTML §4.2.5.1).

    Missing: no token a browser understands, in the header or in
    ``<meta name=referrer>`` (the browser falls back to its default).
    Unsafe: ``unsafe-url`` (§3.5, full URL everywhere), ``origin`` and
    ``origin-when-cross-origin`` (§3.3, §3.6: the origin even to plain-HTTP
    sites), ``no-referrer-when-downgrade`` on an HTTP page (§3.2: nothing to
    downgrade from, so the full URL goes everywhere).
    """
    policy, source = effective_referrer_policy(response)
    evidence = response.evidence(["referrer-policy"])
    if response.page.meta_referrer:
        evidence["meta_referrer"] = [truncate(v, 128) for v in response.page.meta_referrer[:5]]
    if not policy:
        evidence["reason"] = "no valid Referrer-Policy header or meta element"
        return [site.finding("http.referrer_policy.missing", evidence)]
    reason = _REFERRER_LEAKS.get(policy, "")
    if policy == "no-referrer-when-downgrade" and response.scheme == "http":
        reason = "on a plain-HTTP page, the full URL is sent to every site"
    if not reason:
        return []
    evidence["policy"] = policy
    evidence["source"] = source
    evidence["reason"] = reason
    return [site.finding("http.referrer_policy.unsafe", evidence)]


_REFERRER_LEAKS = {
    "unsafe-url": "the full URL (path and query) is sent to every site, even over plain HTTP",
    "origin-when-cross-origin": "the origin is sent to every other site, even over plain HTTP",
    "origin": "the origin is sent to every site, even over plain HTTP",
}


# --- Subresource Integrity ----------------------------------------------------------

_INTEGRITY = re.compile(r"(?:sha256|sha384|sha512)-[A-Za-z0-9+/_-]+={0,2}(?:\?\S*)?")


def _has_valid_integrity(value: str) -> bool:
    """SRI §3.3.3: at least one hash-expression with an algorithm the UA supports."""
    return any(_INTEGRITY.fullmatch(token) for token in _ASCII_SPACES.split(value))


def _same_site(url: str, page_url: str) -> bool:
    """HTML §7.5 "same site": same scheme and same registrable domain (or same host)."""
    ours, theirs = _origin(page_url), _origin(url)
    if ours is None or theirs is None or ours[0] != theirs[0]:
        return False
    if ours[1] == theirs[1]:
        return True
    site = registrable_domain(theirs[1])
    return site is not None and site == registrable_domain(ours[1])


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return parts.scheme, host_key(parts.hostname or ""), port


def sri_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.sri.missing``: a script or stylesheet from another site without integrity.

    SRI §3.8 (``<script integrity>``) and §3.9 (``<link rel=stylesheet
    integrity>``) protect against a compromised third party; URLs are resolved
    against the document base URL (HTML §2.4.1, ``<base href>``). A resource
    of the same site (HTML §7.5: same scheme, same registrable domain, such as
    ``static.agence.gouv.ml`` for ``www.agence.gouv.ml`` over HTTPS) is the
    agency's own; any other needs integrity. ``data:`` URLs load nothing.
    """
    page = response.page
    try:
        base = urljoin(response.url, page.base_href) if page.base_href else response.url
    except ValueError:
        base = response.url
    missing = []
    for resource in page.subresources:
        try:
            target = urljoin(base, resource.url)
        except ValueError:
            continue
        origin = _origin(target)
        if origin is None or origin[0] not in ("http", "https") or _same_site(target, response.url):
            continue
        if not _has_valid_integrity(resource.integrity):
            missing.append(f"{resource.kind} {truncate(target, 200)}")
    if not missing:
        return []
    evidence = response.evidence(["content-type"])
    evidence["without_integrity"] = missing[:20]
    evidence["count"] = len(missing)
    return [site.finding("http.sri.missing", evidence)]


def document_header_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """The checks that protect the documents a site serves."""
    return [finding for check in DOCUMENT_CHECKS for finding in check(site, response)]


# --- version disclosure -------------------------------------------------------------


def version_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.version_disclosed`` per header that carries a version number.

    RFC 9110 §10.2.4: an origin server SHOULD NOT generate a ``Server`` field with
    needlessly fine-grained detail; ``X-Powered-By`` and ``X-AspNet-Version`` say
    the same of the application stack (CWE-200).
    """
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


_COOKIE_DELTA = re.compile(r"-?[0-9]+")
_SAMESITE_VALUES = frozenset({"strict", "lax", "none"})


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    attributes: frozenset[str]  # lower-case attribute names
    max_age: str = ""
    expires: str = ""
    samesite: str | None = None  # the last SameSite value as sent, None when absent

    @property
    def deleted(self) -> bool:
        """A cookie being cleared (empty, Max-Age <= 0, or expired): nothing to protect.

        RFC 6265 §5.2.2: a Max-Age that is not ``-``? followed by ASCII digits
        is ignored (then Expires decides, §5.3 step 3); §5.2.1 Expires.
        """
        if not self.value:
            return True
        if _COOKIE_DELTA.fullmatch(self.max_age):
            return self.max_age.startswith("-") or self.max_age.strip("0") == ""
        if self.expires:
            try:
                moment = parsedate_to_datetime(self.expires)
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                return moment < datetime.now(UTC)
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
        return False

    @property
    def samesite_enforced(self) -> str:
        """RFC 6265bis §5.6.7: strict, lax or none; '' for a missing or unknown value."""
        value = (self.samesite or "").strip().lower()
        return value if value in _SAMESITE_VALUES else ""

    def masked(self) -> str:
        """The cookie line with its value hidden: values are often live session ids."""
        attrs = "; ".join(sorted(self.attributes))
        line = f"{self.name}=<{len(self.value)} chars masked>" + (f"; {attrs}" if attrs else "")
        return truncate(line, 256)


def parse_set_cookie(line: str) -> SetCookie | None:
    """RFC 6265 §5.2: name=value, then ';'-separated attributes (the last of a name wins)."""
    pair, *attributes = line.split(";")
    name, sep, value = pair.partition("=")
    if not sep or not name.strip():
        return None
    names = set()
    arguments: dict[str, str] = {}
    for attribute in attributes:
        key, has_value, argument = attribute.strip().partition("=")
        key = key.strip().lower()
        if key:
            names.add(key)
            arguments[key] = argument.strip() if has_value else ""
    return SetCookie(
        name.strip(),
        value.strip().strip('"'),
        frozenset(names),
        arguments.get("max-age", ""),
        arguments.get("expires", ""),
        arguments.get("samesite") if "samesite" in names else None,
    )


def is_session_cookie(name: str) -> bool:
    return bool(_SESSION_COOKIE.search(name)) and not _NOT_SESSION_COOKIE.search(name)


def is_anti_csrf_cookie(name: str) -> bool:
    return bool(_NOT_SESSION_COOKIE.search(name))


def _samesite_problem(cookie: SetCookie, https: bool) -> str:
    """Why a cookie that matters is sent on cross-site requests, or ''.

    RFC 6265bis §5.6.7 (SameSite), §5.7 step 15 (SameSite=None without
    Secure is refused by browsers that enforce it, ignored by the others).
    """
    enforced = cookie.samesite_enforced
    if cookie.samesite is None:
        return "no SameSite attribute (browsers differ: Lax by default in some, None in others)"
    if not enforced:
        return f"SameSite={truncate(cookie.samesite, 40)!r} is not Strict, Lax or None"
    if enforced == "none" and ("secure" not in cookie.attributes or not https):
        return "SameSite=None without Secure over HTTPS"
    return ""


def cookie_findings(
    site: Site, response: HttpObservation, *, has_https: bool = False
) -> list[Finding]:
    """Secure, HttpOnly and SameSite on the cookies a response sets (RFC 6265bis §4.1.2).

    - ``http.cookie.insecure``: set over HTTPS without ``Secure`` (§4.1.2.5), or
      set over plain HTTP by a host that serves HTTPS (the cookie travels in
      clear; a browser refuses ``Secure`` from a plain-HTTP response, §5.7);
    - ``http.cookie.no_httponly``: a session-like cookie without ``HttpOnly``
      (§4.1.2.6);
    - ``http.cookie.no_samesite``: a session-like or anti-CSRF cookie without a
      valid ``SameSite``, or ``SameSite=None`` without ``Secure`` (§4.1.2.7).

    Cookies the platform's router sets (``PLATFORM_COOKIES``) are not judged:
    nothing the agency configures changes them. Nor is a ``Secure`` cookie on a
    plain-HTTP response (a redirect to HTTPS that sets the site's cookies too):
    RFC 6265bis §5.7 (storage model), the user agent ignores a cookie whose
    secure-only-flag is set when the request URI's scheme is not secure, so
    nothing is stored; the same cookie is judged where HTTPS sets it.
    """
    findings = []
    https = response.scheme == "https"
    for line in response.header_values("set-cookie"):
        cookie = parse_set_cookie(line)
        if cookie is None or cookie.deleted or cookie.name.lower() in PLATFORM_COOKIES:
            continue
        if not https and "secure" in cookie.attributes:
            continue
        evidence = response.evidence()
        evidence["cookie"] = cookie.masked()
        if https and "secure" not in cookie.attributes:
            findings.append(
                site.finding("http.cookie.insecure", evidence, discriminator=cookie.name)
            )
        elif not https and has_https and "secure" not in cookie.attributes:
            plain = {**evidence, "reason": "set over plain HTTP although the host serves HTTPS"}
            findings.append(site.finding("http.cookie.insecure", plain, discriminator=cookie.name))
        session = is_session_cookie(cookie.name)
        if session and "httponly" not in cookie.attributes:
            findings.append(
                site.finding("http.cookie.no_httponly", evidence, discriminator=cookie.name)
            )
        problem = _samesite_problem(cookie, https)
        if (session or is_anti_csrf_cookie(cookie.name)) and problem:
            samesite = {**evidence, "reason": problem}
            findings.append(
                site.finding("http.cookie.no_samesite", samesite, discriminator=cookie.name)
            )
    return findings


# --- CORS and TRACE -----------------------------------------------------------------


def cors_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.cors.permissive``: credentials granted to any origin (ours, or ``null``).

    ``response`` answered a request carrying ``Origin: PROBE_ORIGIN``. Fetch
    §3.2.5 (CORS check): with credentials, ``Access-Control-Allow-Origin: *``
    fails the check (browsers refuse the pair), so it is not reported; a
    reflected origin, or ``null`` (sent by sandboxed documents), with
    ``Access-Control-Allow-Credentials: true`` hands the user's authenticated
    responses to any site. A reflected origin without credentials exposes only
    public data: not reported.
    """
    allowed = (response.header("access-control-allow-origin") or "").strip(" \t")
    credentials = (response.header("access-control-allow-credentials") or "").strip(" \t")
    # Fetch §3.2.5 step 7: the credentials value must be exactly "true" (case-sensitive).
    # Step 3-4: the origin must be the serialised request origin, byte for byte.
    if credentials != "true" or allowed not in (PROBE_ORIGIN, "null"):
        return []
    evidence = response.evidence(
        ["access-control-allow-origin", "access-control-allow-credentials"]
    )
    evidence["origin_sent"] = PROBE_ORIGIN
    evidence["reason"] = (
        "the origin sent is reflected with credentials allowed"
        if allowed == PROBE_ORIGIN
        else "Access-Control-Allow-Origin null with credentials allowed"
    )
    return [site.finding("http.cors.permissive", evidence)]


def trace_findings(site: Site, response: HttpObservation, marker: str) -> list[Finding]:
    """``http.trace_enabled``: TRACE answered 200 and echoed the request (marker included).

    RFC 9110 §9.3.8: TRACE reflects the request, credentials included, back to
    the client (cross-site tracing); OWASP WSTG-CONF-06 asks for it to be off.
    """
    if response.method != "TRACE" or response.status != 200 or marker not in response.text:
        return []
    evidence = response.evidence(["content-type"])
    evidence["echo"] = truncate(response.text.replace(marker, "<marker>"), 256)
    return [site.finding("http.trace_enabled", evidence)]


PageCheck = Callable[[Site, HttpObservation], list[Finding]]
# The checks that judge a served document (a page, not a redirect).
DOCUMENT_CHECKS: tuple[PageCheck, ...] = (
    csp_findings,
    csp_weak_directive_findings,
    frame_options_findings,
    content_type_options_findings,
    referrer_policy_findings,
    sri_findings,
)
