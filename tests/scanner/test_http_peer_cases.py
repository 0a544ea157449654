"""A peer's public header-analysis suite, its cases run through vigie's HTTP checks.

The peer is MDN HTTP Observatory (github.com/mdn/mdn-http-observatory, MPL-2.0;
files ``test/*.test.js`` and ``test/files/*.html``), the successor of Mozilla's
HTTP Observatory, whose policy-file cases (crossdomain.xml, clientaccesspolicy.xml)
are added from the first one. No one here wrote it. Each case below restates one of its
inputs (headers, page, cookies, redirects) and the verdict it expects (the
weakness is there, or not); the inputs are served to vigie's own judgment of a
visit (``visit_findings``, the path a real scan takes) and the verdict is read
from the vigie check IDs that say the same thing.

- ``equivalent``: the vigie IDs whose presence means "the peer's test fails";
  ``None`` when vigie has no equivalent check (the case counts against coverage).
- ``disagree``: vigie gives the other verdict on purpose; the reason names the
  clause of the standard vigie follows. Such a case must still disagree (so a
  change of behaviour is noticed) and counts against agreement.

The figures (agreement over comparable cases, coverage of the suite) are
computed by :func:`agreement` and asserted at the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from vigie.model import Finding, HostTarget
from vigie.scanner.http import (
    PROBE_ORIGIN,
    Baseline,
    Endpoint,
    HttpObservation,
    Site,
    Visit,
    exposure_findings,
    graded_sites,
    load_path_list,
    visit_findings,
)

SITE_URL = "https://mozilla.org/"  # the peer's test site
TARGET = HostTarget("mozilla.org", "127.0.23.1")
SHA = "sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBA="
SRI_HASH = "sha384-R4/ztc4ZlRqWjqIuvf6RX5yb/v90qNGx6fS48N0tRxiGkqveZETq72KgDVJCp2TC"
GOOD_HSTS = ("Strict-Transport-Security", "max-age=31536000")


def html(head: str = "", body: str = "") -> str:
    return f"<!doctype html><html lang='en'><head><meta charset='UTF-8' />{head}<title>Title</title></head><body>{body}</body></html>"


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    peer_fails: bool
    equivalent: frozenset[str] | None
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    chain: tuple[tuple[str, int, str], ...] = ()  # (url, status, location): a redirect visit
    disagree: str = ""
    resource: tuple[str, str] = ("", "")  # (path, body): a file the peer fetched besides the page

    @property
    def id(self) -> str:
        return f"{self.suite}:{self.name}"


def case(
    suite: str,
    name: str,
    peer_fails: bool,
    equivalent: set[str] | None,
    headers: list[tuple[str, str]] | None = None,
    body: str = "",
    chain: list[tuple[str, int, str]] | None = None,
    disagree: str = "",
    resource: tuple[str, str] = ("", ""),
) -> Case:
    return Case(
        suite,
        name,
        peer_fails,
        None if equivalent is None else frozenset(equivalent),
        tuple(headers or ()),
        body,
        tuple(chain or ()),
        disagree,
        resource,
    )


CSP = {"http.csp.missing", "http.csp.unsafe", "http.csp.weak_directives:object-src"}
CSP_SCRIPTS = {"http.csp.missing", "http.csp.unsafe"}
FRAMING = {"http.frame_options.missing"}
OBJECTS = {"http.csp.weak_directives:object-src"}
BASE_URI = {"http.csp.weak_directives:base-uri"}
FORM_ACTION = {"http.csp.weak_directives:form-action"}
SNIFF = {"http.content_type_options.missing"}
REFERRER = {"http.referrer_policy.unsafe", "http.referrer_policy.missing"}
HSTS = {"http.hsts.missing", "http.hsts.short_max_age"}
COOKIES = {"http.cookie.insecure", "http.cookie.no_httponly"}
SAMESITE = {"http.cookie.no_samesite"}
CORS = {"http.cors.permissive"}
SRI = {"http.sri.missing"}
REDIRECT = {"http.no_https_redirect"}


def csp(value: str, *, fails: bool, eq: set[str] = CSP, disagree: str = "", body: str = "") -> Case:
    return case(
        "csp",
        value or "<empty>",
        fails,
        eq,
        [("Content-Security-Policy", value)],
        body,
        disagree=disagree,
    )


META_CSP_NONE = html(
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none';\" />"
)
META_CSP_HTTPS = html("<meta http-equiv='Content-Security-Policy' content='default-src https:' />")
META_CSP_MULTIPLE = html(
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; object-src 'none'; media-src 'none';\" />"
    "<meta http-equiv='Content-SECURITY-Policy' content=\"connect-src 'self'; font-src 'self'; child-src 'self'\" />"
    "<meta http-equiv=' Content-Security-Policy ' content=\"img-src 'self'; style-src 'self' 'nonce-gAeQO8jI4VJCsrsXkcUVRCzQjiihKteQ\" />"
    "<meta http-equiv='Content-security-Policy' content=\"script-src 'self' 'unsafe-inline' 'nonce-gAeQO8jI4VJCsrsXkcUVRCzQjiihKteQ'\" />"
)
META_FRAME_ANCESTORS = html(
    "<meta http-equiv='Content-Security-Policy' content=\"frame-ancestors 'none'\" />"
)
META_XFO = html("<meta http-equiv='X-Frame-Options' content='DENY' />")
META_REFERRER = html("<meta name='referrer' content='no-referrer, same-origin' />")

CSP_CASES = [
    # "missing" and "header invalid"
    case("csp", "missing", True, CSP),
    csp("  ", fails=True),
    csp("", fails=True),
    csp(
        "default-src 'none'; default-src 'none'",
        fails=True,
        disagree="CSP3 §2.2.1: a repeated directive is ignored, the policy stays valid and strict",
    ),
    csp(
        "default-src 'none'; img-src 'self'; default-src 'none'",
        fails=True,
        disagree="CSP3 §2.2.1: a repeated directive is ignored, the policy stays valid and strict",
    ),
    csp(
        "default-src 'none'; script-src 'strict-dynamic'",
        fails=True,
        disagree="CSP3 §8.2: 'strict-dynamic' without nonce or hash lets no script run: strict, not invalid",
    ),
    csp("defa", fails=True),
    # "insecure scheme broad and unsafe", "insecure scheme"
    csp("default-src 'none'; script-src https://*", fails=True),
    csp("default-src 'none'; script-src 'unsafe-inline'", fails=True),
    csp("default-src http://mozilla.org", fails=True),
    csp("default-src 'none'; script-src http://mozilla.org", fails=True),
    csp("default-src 'none'; script-src ftp://mozilla.org", fails=True),
    # "insecure scheme in passive content only": pass
    csp("default-src 'none'; img-src http://mozilla.org", fails=False),
    csp("default-src 'self'; img-src ftp:", fails=False),
    csp("default-src 'self'; img-src http:", fails=False),
    csp("default-src 'none'; img-src https:; media-src http://mozilla.org", fails=False),
    csp(
        "default-src 'none'; img-src http: https:; script-src 'self'; style-src 'self'", fails=False
    ),
    csp(
        "default-src 'none'; img-src 'none'; media-src http:; script-src 'self'; style-src 'self'",
        fails=False,
    ),
    csp(
        "default-src 'none'; img-src 'none'; media-src http:; script-src 'self'; style-src 'unsafe-inline'",
        fails=False,
    ),
    # "unsafe inline"
    *(
        csp(value, fails=True)
        for value in (
            "script-src 'unsafe-inline'",
            "script-src data:",
            "script-src http:",
            "script-src ftp:",
            "default-src 'unsafe-inline'",
            "default-src 'UNSAFE-INLINE'",
            "upgrade-insecure-requests",
            "script-src 'none'",
            "script-src https:",
            "script-src https://mozilla.org https:",
            "default-src https://mozilla.org https:",
            "default-src 'none'; script-src *",
            "default-src *; script-src *; object-src 'none'",
            "default-src 'none'; script-src 'none'; object-src *",
            "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'",
            "default-src 'none'; script-src 'unsafe-inline' http:",
            "object-src https:; script-src 'none'",
        )
    ),
    # "unsafe eval"
    csp("default-src 'none'; script-src 'unsafe-eval'", fails=True),
    # "unsafe inline in style src only": pass
    *(
        csp(value, fails=False)
        for value in (
            "object-src 'none'; script-src 'none'; style-src 'unsafe-inline'",
            "default-src 'none'; script-src https://mozilla.org; style-src 'unsafe-inline'",
            "default-src 'unsafe-inline'; script-src https://mozilla.org",
            "default-src 'none';;; ;;;style-src 'self' 'unsafe-inline'",
            "default-src 'none'; style-src data:",
            "default-src 'none'; style-src *",
            "default-src 'none'; style-src https:",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBB=' 'unsafe-inline'",
        )
    ),
    # "no unsafe": pass
    *(
        csp(value, fails=False)
        for value in (
            "default-src https://mozilla.org",
            "default-src https://mozilla.org;;; ;;;script-src 'none'",
            "object-src 'none'; script-src https://mozilla.org; style-src https://mozilla.org; upgrade-insecure-requests;",
            "object-src 'none'; script-src 'strict-dynamic' 'nonce-abc' 'unsafe-inline'; style-src 'none'",
            f"object-src 'none'; style-src 'self';script-src '{SHA}'",
            f"object-src 'none'; style-src 'self'; script-src 'unsafe-inline' '{SHA}''sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBB='",
            "object-src 'none'; script-src 'unsafe-inline' 'nonce-abc123' 'unsafe-inline'; style-src 'none'",
            "default-src https://mozilla.org; style-src 'unsafe-inline' 'nonce-abc123' 'unsafe-inline'",
            "default-src https://mozilla.org; style-src 'unsafe-inline' 'sha256-hqBEA/HXB3aJU2FgOnYN8rkAgEVgyfi3Vs1j2/XMPBB=' 'unsafe-inline'",
        )
    ),
    # "no unsafe default src none": pass
    csp(
        "default-src http:",
        fails=False,
        body=META_CSP_HTTPS,
        disagree="CSP3 §6.7.2.8: 'http:' also matches https URLs, so header http: and meta https: "
        "together still allow scripts from any HTTPS server",
    ),
    *(
        csp(value, fails=False)
        for value in (
            "default-src",
            "default-src 'none'; script-src 'strict-dynamic' 'nonce-abc123' 'unsafe-inline'",
            "default-src 'none'; script-src https://mozilla.org;style-src https://mozilla.org; upgrade-insecure-requests;",
            "default-src 'none'; object-src https://mozilla.org",
        )
    ),
    case("csp", "meta default-src 'none'", False, CSP, body=META_CSP_NONE),
    case("csp", "four meta policies", False, CSP, body=META_CSP_MULTIPLE),
    csp("default-src 'none'", fails=False, body=META_CSP_NONE),
    csp("default-src 'none'", fails=False, body=META_CSP_HTTPS),
    csp("img-src 'none'", fails=False, body=META_CSP_NONE),
    # "strict dynamic": pass
    *(
        csp(value, fails=False)
        for value in (
            "default-src 'none'; script-src 'strict-dynamic' 'nonce-abc123'",
            "default-src 'none'; script-src 'strict-dynamic' 'sha256-abc123'",
            "default-src 'none'; script-src 'strict-dynamic' 'sha256-abc123' https://*",
            "default-src 'none'; script-src 'strict-dynamic' 'sha256-abc123' 'unsafe-inline'",
        )
    ),
    # "policy analysis": framing, objects, base-uri, form-action
    *(
        csp(value, fails=True, eq=FRAMING)
        for value in (
            "default-src 'none'",
            "frame-ancestors *",
            "frame-ancestors http:",
            "frame-ancestors https:",
        )
    ),
    csp("default-src *; frame-ancestors 'none'", fails=False, eq=FRAMING),
    *(
        csp(value, fails=True, eq=eq)
        for value in (
            "default-src 'none'; base-uri *; object-src *",
            "default-src 'none'; base-uri https:; object-src https:",
        )
        for eq in (OBJECTS, BASE_URI)
    ),
    csp("default-src *", fails=True, eq=OBJECTS),
    csp("default-src *", fails=True, eq=BASE_URI),
    *(
        csp(value, fails=False, eq=BASE_URI)
        for value in (
            "default-src *; base-uri 'none'",
            "default-src 'none'; base-uri 'self'",
            "default-src 'none'; base-uri https://mozilla.org",
        )
    ),
    *(
        csp(value, fails=False, eq=FORM_ACTION)
        for value in (
            "default-src *; form-action 'none'",
            "default-src *; form-action 'self'",
            "default-src 'none'; form-action 'self' https://mozilla.org",
            "form-action 'self' https://mozilla.org",
        )
    ),
    csp("default-src *", fails=True, eq=FORM_ACTION),
    csp(
        "default-src 'none'",
        fails=True,
        eq=FORM_ACTION,
        disagree="CSP3 §6.4.1: form-action matters where there is a form; this page has none "
        "and the rest of its policy is closed",
    ),
    csp("form-action https:", fails=True, eq=FORM_ACTION),
    # "insecureSchemePassive" has no vigie equivalent (passive mixed content is not judged)
    *(
        case("csp", f"passive {value}", True, None, [("Content-Security-Policy", value)])
        for value in (
            "default-src * http: https: data: 'unsafe-inline' 'unsafe-eval'",
            "default-src 'none'; img-src http:",
            "default-src 'none' https://mozilla.org; img-src http://mozilla.org",
            "default-src https:; media-src http://mozilla.org; script-src http:",
        )
    ),
    # "report only", multiple policies, frame-ancestors in meta
    case(
        "csp",
        "report only",
        True,
        CSP,
        [("Content-Security-Policy-Report-Only", "default-src 'none'; report-to /_/csp-reports")],
    ),
    csp(
        "default-src 'none'; script-src 'self', default-src 'none'; script-src 'self'", fails=False
    ),
    csp(
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline', "
        "default-src 'none'; style-src 'self', "
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'",
        fails=False,
    ),
    case("csp", "meta frame-ancestors only", True, CSP, body=META_FRAME_ANCESTORS),
    csp("frame-anchestors 'none'", fails=True, body=META_FRAME_ANCESTORS),
]

XFO_CASES = [
    case("xfo", "missing", True, FRAMING, body=html()),
    case("xfo", "whimsy", True, FRAMING, [("X-Frame-Options", "whimsy")]),
    case(
        "xfo",
        "SAMEORIGIN, SAMEORIGIN",
        True,
        FRAMING,
        [("X-Frame-Options", "SAMEORIGIN, SAMEORIGIN")],
        disagree="HTML, X-Frame-Options processing: the values form a set of one, sameorigin: it protects",
    ),
    case(
        "xfo",
        "ALLOW-FROM",
        False,
        FRAMING,
        [("X-Frame-Options", "ALLOW-FROM https://mozilla.org")],
        disagree="HTML, X-Frame-Options processing: ALLOW-FROM is not a recognised value, framing is allowed",
    ),
    case("xfo", "DENY", False, FRAMING, [("X-Frame-Options", "DENY")]),
    case("xfo", "SAMEORIGIN", False, FRAMING, [("X-Frame-Options", "SAMEORIGIN")]),
    case(
        "xfo",
        "via CSP",
        False,
        FRAMING,
        [
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy", "frame-ancestors https://mozilla.org"),
        ],
    ),
    case("xfo", "meta is ignored", True, FRAMING, body=META_XFO),
]

XCTO_CASES = [
    case("xcto", "missing", True, SNIFF),
    case("xcto", "whimsy", True, SNIFF, [("X-Content-Type-Options", "whimsy")]),
    case(
        "xcto",
        "nosniff, nosniff",
        True,
        SNIFF,
        [("X-Content-Type-Options", "nosniff, nosniff")],
        disagree="Fetch, determine nosniff: the first value of the list is nosniff: it applies",
    ),
    case("xcto", "nosniff", False, SNIFF, [("X-Content-Type-Options", "nosniff")]),
    case("xcto", "nosniff and space", False, SNIFF, [("X-Content-Type-Options", "nosniff ")]),
]

REFERRER_CASES = [
    *(
        case("referrer", value, False, REFERRER, [("Referrer-Policy", value)])
        for value in (
            "no-referrer",
            "same-origin",
            "strict-origin",
            "STRICT-ORIGIN",
            "strict-origin-when-cross-origin",
        )
    ),
    case("referrer", "meta", False, REFERRER, body=META_REFERRER),
    case(
        "referrer",
        "meta over header",
        False,
        REFERRER,
        [("Referrer-Policy", "unsafe-url")],
        META_REFERRER,
    ),
    case(
        "referrer",
        "missing",
        False,
        REFERRER,
        disagree="the published catalogue reports a missing Referrer-Policy (info): browsers' defaults differ",
    ),
    case("referrer", "whimsy", True, REFERRER, [("Referrer-Policy", "whimsy")]),
    *(
        case("referrer", value, True, REFERRER, [("Referrer-Policy", value)])
        for value in (
            "origin",
            "origin-when-cross-origin",
            "unsafe-url",
            "origin-when-cross-origin, no-referrer, unsafe-url",
            "no-referrer, unsafe-url",
        )
    ),
    case(
        "referrer",
        "no-referrer, whimsy",
        False,
        REFERRER,
        [("Referrer-Policy", "no-referrer, whimsy")],
    ),
    case(
        "referrer",
        "three whimsies",
        True,
        REFERRER,
        [("Referrer-Policy", "whimsy, whimsy1, whimsy2")],
    ),
]

HSTS_CASES = [
    case("hsts", "missing", True, HSTS),
    case(
        "hsts",
        "no max-age",
        True,
        HSTS,
        [("Strict-Transport-Security", "includeSubDomains; preload")],
    ),
    case(
        "hsts",
        "two policies in one field",
        True,
        HSTS,
        [
            (
                "Strict-Transport-Security",
                "max-age=15768000; includeSubDomains, max-age=15768000; includeSubDomains",
            )
        ],
    ),
    case(
        "hsts",
        "no https",
        True,
        HSTS | REDIRECT,
        chain=[("http://mozilla.org/", 200, "")],
        headers=[("Strict-Transport-Security", "max-age=15768000")],
    ),
    case("hsts", "invalid certificate", True, None),  # the TLS family judges certificates
    case("hsts", "max-age too low", True, HSTS, [("Strict-Transport-Security", "max-age=86400")]),
    case(
        "hsts",
        "implemented",
        False,
        HSTS,
        [("Strict-Transport-Security", "max-age=15768000; includeSubDomains; preload")],
    ),
    # the preload list is not consulted by vigie
    case("hsts", "preloaded bugzilla.mozilla.org", False, None),
    case("hsts", "preloaded facebook.com", False, None),
    case("hsts", "not preloaded dropboxusercontent.com", True, None),
]


def cookies(*lines: str) -> list[tuple[str, str]]:
    return [GOOD_HSTS, *(("Set-Cookie", line) for line in lines)]


# The peer's "samesite not awarded if not all cookies samesite" cookies, all four.
NOT_ALL_SAMESITE = (
    "SESSIONID_SAMESITE_STRICT=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=Strict",
    "SESSIONID_SAMESITE_NO_SAMESITE=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly",
    "SESSIONID_SAMESITE_LAX=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=Lax",
    "SESSIONID_SAMESITE_NONE=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=None",
)

COOKIE_CASES = [
    case("cookies", "none", False, COOKIES | SAMESITE, cookies()),
    case(
        "cookies",
        "secure with httponly sessions",
        False,
        COOKIES,
        cookies(
            "SESSIONID=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly",
            "foo=bar; Domain=mozilla.org; Secure; Path=/",
            "heroku-session-affinity=bar; Domain=mozilla.org; Path=/",
        ),
    ),
    case(
        "cookies",
        "secure with httponly sessions (SameSite)",
        True,
        SAMESITE,
        cookies("SESSIONID=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly"),
    ),
    case(
        "cookies",
        "all SameSite",
        False,
        COOKIES | SAMESITE,
        cookies(
            "SESSIONID_SAMESITE_STRICT=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=Strict",
            "SESSIONID_SAMESITE_LAX=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=Lax",
            "SESSIONID_SAMESITE_NONE=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite=None",
        ),
    ),
    case(
        "cookies",
        "not all SameSite",
        True,
        SAMESITE,
        cookies(*NOT_ALL_SAMESITE),
    ),
    case(
        "cookies",
        "not all SameSite (flags)",
        False,
        COOKIES,
        cookies(*NOT_ALL_SAMESITE),
    ),
    case(
        "cookies",
        "anti-CSRF without SameSite",
        True,
        SAMESITE,
        cookies("CSRFTOKEN=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly"),
    ),
    *(
        case(
            "cookies",
            f"SameSite={value}",
            True,
            SAMESITE,
            cookies(
                f"SESSIONID=bar; Domain=mozilla.org; Path=/; Secure; HttpOnly; SameSite={value}"
            ),
        )
        for value in ("", "True", "Invalid")
    ),
    case(
        "cookies", "no Secure, HSTS", True, COOKIES, cookies("foo=bar; Domain=mozilla.org; Path=/")
    ),
    case(
        "cookies",
        "session no Secure, HSTS",
        True,
        COOKIES,
        cookies("SESSIONID=bar; Domain=mozilla.org; Path=/; HttpOnly"),
    ),
    case(
        "cookies",
        "no Secure",
        True,
        COOKIES,
        [("Set-Cookie", "foo=bar; Domain=mozilla.org; Path=/")],
    ),
    case(
        "cookies",
        "session no HttpOnly",
        True,
        COOKIES,
        cookies("SESSIONID=bar; Domain=mozilla.org; Path=/; Secure"),
    ),
    case(
        "cookies",
        "session no Secure",
        True,
        COOKIES,
        [("Set-Cookie", "SESSIONID=bar; Domain=mozilla.org; Path=/; HttpOnly")],
    ),
    case(
        "cookies",
        "session bare",
        True,
        COOKIES,
        [("Set-Cookie", "SESSIONID=bar; Domain=mozilla.org; Path=/")],
    ),
]

CORS_CASES = [
    case("cors", "not implemented", False, CORS),
    case("cors", "public", False, CORS, [("Access-Control-Allow-Origin", "*")]),
    case(
        "cors", "restricted", False, CORS, [("Access-Control-Allow-Origin", "https://mozilla.org")]
    ),
    case(
        "cors",
        "universal",
        True,
        CORS,
        [
            ("Access-Control-Allow-Origin", PROBE_ORIGIN),
            ("Access-Control-Allow-Credentials", "true"),
        ],
    ),
]


def scripts(*sources: str, integrity: bool = False) -> str:
    attribute = f' integrity="{SRI_HASH}" crossorigin="anonymous"' if integrity else ""
    tags = "".join(
        f'<script src="{src}"{attribute if not src.startswith("/static") else ""}></script>'
        for src in sources
    )
    return html(tags)


SRI_CASES = [
    case("sri", "no scripts", False, SRI, body=html()),
    case("sri", "not html", False, SRI, [("Content-Type", "application/json")], '{"a": 1}'),
    case("sri", "same origin", False, SRI, body=scripts("/static/js/foo.js")),
    case(
        "sri",
        "same site, protocol-relative",
        True,
        SRI,
        body=scripts("//www.mozilla.org/static/js/foo.js"),
        disagree="HTML §2.4.1: on an HTTPS page //www.mozilla.org resolves to HTTPS, the same site (HTML §7.5)",
    ),
    case(
        "sri",
        "same site, https",
        False,
        SRI,
        body=scripts("https://www.mozilla.org/static/js/foo.js"),
    ),
    case(
        "sri",
        "external https with integrity",
        False,
        SRI,
        body=scripts("/static/js/foo.js", "https://fb.me/react-0.14.7.min.js", integrity=True),
    ),
    case(
        "sri",
        "localhost https with integrity",
        False,
        SRI,
        body=scripts("/static/js/foo.js", "https://localhost/react-0.14.7.min.js", integrity=True),
    ),
    case("sri", "same origin with integrity", False, SRI, body=scripts("/static/js/foo.js")),
    case(
        "sri",
        "external https without integrity",
        True,
        SRI,
        body=scripts("/static/js/foo.js", "https://fb.me/react-0.14.7.min.js"),
    ),
    case(
        "sri",
        "external http with integrity",
        True,
        SRI,
        body=scripts(
            "/static/js/foo.js",
            "http://fb.me/react-0.14.6.min.js",
            "https://fb.me/react-0.14.7.min.js",
            integrity=True,
        ),
        disagree="SRI §3: integrity is present on every external script; the http:// one is "
        "mixed content, which browsers block on an HTTPS page (Mixed Content §4.3)",
    ),
    case(
        "sri",
        "external protocol-relative with integrity",
        True,
        SRI,
        body=scripts("//fb.me/react-0.14.7.min.js", integrity=True),
        disagree="SRI §3: integrity is present; //fb.me resolves to HTTPS on an HTTPS page",
    ),
    case(
        "sri",
        "external http without integrity",
        True,
        SRI,
        body=scripts("/static/js/foo.js", "http://fb.me/react-0.14.6.min.js"),
    ),
    case(
        "sri",
        "external protocol-relative without integrity",
        True,
        SRI,
        body=scripts("/static/js/foo.js", "//fb.me/react-0.14.6.min.js"),
    ),
]

REDIRECT_CASES = [
    case("redirection", "no http, has https", False, REDIRECT),
    case("redirection", "missing", True, REDIRECT, chain=[("http://mozilla.org/", 200, "")]),
    case(
        "redirection",
        "not to https",
        True,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "http://www.mozilla.org/")],
    ),
    case(
        "redirection",
        "not to https, longer",
        True,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "http://www.mozilla.org/")],
    ),
    case(
        "redirection",
        "to https",
        False,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "https://mozilla.org/")],
    ),
    case(
        "redirection",
        "to https with a port",
        False,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "https://mozilla.org:8443/")],
    ),
    case(
        "redirection",
        "first to http",
        True,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "http://www.mozilla.org/")],
    ),
    case(
        "redirection",
        "first off host",
        True,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "https://www.mozilla.org/")],
    ),
    case(
        "redirection",
        "preloaded",
        False,
        REDIRECT,
        chain=[("http://mozilla.org/", 301, "https://mozilla.org/")],
    ),
]

# Mozilla's first HTTP Observatory (github.com/mozilla/http-observatory, MPL-2.0,
# httpobs/tests/unittests/test_misc.py) also read the Flash and Silverlight policy files.
POLICY_FILES = {"http.crossdomain.permissive"}
CROSSDOMAIN = "/crossdomain.xml"
CLIENTACCESS = "/clientaccesspolicy.xml"
SILVERLIGHT = (
    "<access-policy><cross-domain-access><policy><allow-from http-methods='*'>{}"
    "</allow-from></policy></cross-domain-access></access-policy>"
)
POLICY_FILE_CASES = [
    case(
        "policy-files",
        "xml not valid",
        True,
        POLICY_FILES,
        resource=(CROSSDOMAIN, "<![..]>"),
        disagree="Adobe cross-domain policy specification: a file that does not parse grants nothing",
    ),
    case(
        "policy-files",
        "crossdomain restricted",
        False,
        POLICY_FILES,
        resource=(
            CROSSDOMAIN,
            "<cross-domain-policy><allow-access-from domain='http-observatory.security.mozilla.org' "
            "secure='true'/><allow-access-from domain='github.com' secure='true'/></cross-domain-policy>",
        ),
    ),
    case(
        "policy-files",
        "crossdomain universal",
        True,
        POLICY_FILES,
        resource=(
            CROSSDOMAIN,
            "<cross-domain-policy><allow-access-from domain='*' secure='true'/></cross-domain-policy>",
        ),
    ),
    case(
        "policy-files",
        "clientaccess restricted",
        False,
        POLICY_FILES,
        resource=(
            CLIENTACCESS,
            SILVERLIGHT.format(
                "<domain uri='http-observatory.security.mozilla.org'/><domain uri='github.com'/>"
            ),
        ),
    ),
    case(
        "policy-files",
        "clientaccess universal",
        True,
        POLICY_FILES,
        resource=(CLIENTACCESS, SILVERLIGHT.format("<domain uri='*'/>")),
    ),
]

# The peer's Cross-Origin-{Embedder,Opener,Resource}-Policy tests: vigie has no such check.
NO_EQUIVALENT = [
    *(case("coep", f"case {n}", n % 2 == 0, None) for n in range(4)),
    *(case("coop", f"case {n}", n % 2 == 0, None) for n in range(4)),
    *(case("corp", f"case {n}", n % 2 == 0, None) for n in range(6)),
]

CASES = [
    *CSP_CASES,
    *XFO_CASES,
    *XCTO_CASES,
    *REFERRER_CASES,
    *HSTS_CASES,
    *COOKIE_CASES,
    *CORS_CASES,
    *SRI_CASES,
    *REDIRECT_CASES,
    *POLICY_FILE_CASES,
    *NO_EQUIVALENT,
]
NOT_FOUND = Baseline(
    (HttpObservation("GET", SITE_URL + "vigie-tok", 404, (), b"not found"),), "tok"
)


def vigie_fails(item: Case) -> bool:
    """Whether vigie reports, for this input, one of the IDs equivalent to the peer's test."""
    assert item.equivalent is not None
    if item.resource[0]:
        path, document = item.resource
        [probe] = [p for p in load_path_list(None) if p.path == path]
        served = HttpObservation("GET", SITE_URL.rstrip("/") + path, 200, (), document.encode())
        found = exposure_findings(Site(TARGET, 443), probe, served, NOT_FOUND)
        return bool({f.check_id for f in found} & item.equivalent)
    if item.chain:
        url, status, location = item.chain[0]
        headers = [*item.headers, *([("Location", location)] if location else [])]
        first = HttpObservation("GET", url, status, tuple(headers), item.body.encode())
        visit = Visit(Endpoint("http", 80), (first,), first)
    else:
        headers = list(item.headers)
        if not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "text/html"))  # the peer's emptyRequests()
        response = HttpObservation("GET", SITE_URL, 200, tuple(headers), item.body.encode())
        visit = Visit(Endpoint("https", 443), (response,), response)
    findings = visit_findings(TARGET, [visit], graded_sites([visit]))
    return bool(named_ids(findings) & item.equivalent)


def named_ids(findings: Iterable[Finding]) -> set[str]:
    """The check IDs found, and ``ID:directive`` for each weak directive a finding lists."""
    named = set()
    for finding in findings:
        named.add(finding.check_id)
        for line in finding.evidence.get("weak", []):
            named.add(f"{finding.check_id}:{line.split(':')[0]}")
    return named


@pytest.mark.parametrize("item", [c for c in CASES if c.equivalent is not None], ids=lambda c: c.id)
def test_peer_case(item: Case) -> None:
    # Given one of the peer's inputs, When vigie judges it, Then it gives the peer's verdict,
    # except where vigie follows a clause of the standard the peer does not (named in the case)
    verdict = vigie_fails(item)
    if item.disagree:
        assert verdict is not item.peer_fails, f"now agrees with the peer: {item.disagree}"
    else:
        assert verdict is item.peer_fails


@dataclass
class Agreement:
    cases: int
    comparable: int
    agreeing: int
    missed: list[str] = field(default_factory=list)  # the peer fails, vigie passes
    false_alarms: list[str] = field(default_factory=list)  # the peer passes, vigie fails

    @property
    def rate(self) -> float:
        return self.agreeing / self.comparable

    @property
    def coverage(self) -> float:
        return self.comparable / self.cases

    def tally(self, case_id: str, vigie_fails: bool, peer_fails: bool) -> None:
        """Count one comparable case."""
        if vigie_fails is peer_fails:
            self.agreeing += 1
        elif peer_fails:
            self.missed.append(case_id)
        else:
            self.false_alarms.append(case_id)


def agreement() -> Agreement:
    comparable = [c for c in CASES if c.equivalent is not None]
    result = Agreement(len(CASES), len(comparable), 0)
    for item in comparable:
        result.tally(item.id, vigie_fails(item), item.peer_fails)
    return result


def test_agreement_and_coverage_figures() -> None:
    figures = agreement()
    print(
        f"\npeer cases {figures.cases}, comparable {figures.comparable} "
        f"({figures.coverage:.1%}), agreeing {figures.agreeing} ({figures.rate:.1%}); "
        f"missed {figures.missed}; false alarms {figures.false_alarms}"
    )
    assert figures.coverage >= 0.85
    assert figures.rate >= 0.90
    # Every disagreement is one the cases name with the clause vigie follows
    assert {c.id for c in CASES if c.disagree} == {*figures.missed, *figures.false_alarms}
