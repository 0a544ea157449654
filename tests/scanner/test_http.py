"""HTTP family: pure judgments (unit) and the wiring against real nginx and hostile servers.

The test world (127.0.5.0/24; scope allows 127.0.5.0/25 only):
- nginx, one server block per case, each site on its own address, ports 80
  and 443 (trustme certificate, HTTP/2), ``twin`` sharing ``good``'s address;
- Knot on 127.0.5.53 serving ``vigie-http.test``: ``other`` (127.0.5.38, in
  scope) and ``evil`` (127.0.5.200, out of scope);
- asyncio servers playing a redirect loop, an endless redirect chain, a
  redirect to an out-of-scope address, headers dripped one byte a second,
  endless headers, oversized headers, a gzip bomb, TRACE echo; listeners on
  out-of-scope addresses count the connections they receive (must be none).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest

import vigie.scanner.http as http_family
from tests.dns_server import free_port, start_zone_server
from tests.scanner import http_servers as hs
from vigie import event_loop as vigie_loop
from vigie.catalogue import checks_in
from vigie.config import Settings
from vigie.errors import ConfigError
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort
from vigie.scanner.http import (
    PROBE_ORIGIN,
    Baseline,
    BodyDecodeError,
    BoundedDecoder,
    Endpoint,
    HttpObservation,
    PathProbe,
    Site,
    Visit,
    check_http,
    cookie_findings,
    cors_findings,
    csp_findings,
    exposure_findings,
    frame_options_findings,
    graded_sites,
    hsts_findings,
    listing_findings,
    load_path_list,
    mirror_groups,
    no_https_redirect_findings,
    parse_hsts,
    parse_path_list,
    parse_security_txt,
    parse_set_cookie,
    security_txt_findings,
    trace_findings,
    version_findings,
    visit_findings,
    web_endpoints,
)
from vigie.scanner.http._client import FetchRequest, http_client
from vigie.scanner.http._content import DETECTORS
from vigie.scanner.http._headers import content_type_options_findings, referrer_policy_findings
from vigie.scanner.http._security_txt import registrable_domain
from vigie.scanner.probe_context import ProbeContext

TARGET = HostTarget("agence.vigie-http.test", "127.0.5.10")
SITE = Site(TARGET, 443)
HTTP_IDS = {spec.check_id for spec in checks_in(Family.HTTP)}


def obs(
    url: str = "https://agence.vigie-http.test/",
    status: int = 200,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | str = b"",
    method: str = "GET",
) -> HttpObservation:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    raw = body.encode() if isinstance(body, str) else body
    return HttpObservation(method=method, url=url, status=status, headers=tuple(pairs), body=raw)


def ids_of(findings: list[Finding]) -> set[str]:
    return {f.check_id for f in findings}


# --- unit: HSTS ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "max_age", "subdomains"),
    [
        ("max-age=31536000; includeSubDomains", 31536000, True),
        ('max-age="600"', 600, False),
        ("MAX-AGE=0", 0, False),
        ("includeSubDomains", None, False),  # no max-age: ignored as a whole (RFC 6797 §6.1.1)
        ("max-age=abc", None, False),
        # RFC 6797 §6.1: delta-seconds are ASCII digits; "³" is a digit to str.isdigit()
        ("max-age=³", None, False),
        ("max-age=\u0663\u0660", None, False),  # Arabic-Indic digits
        # §6.1: "All directives MUST appear only once": the header is invalid (§8.1: ignored)
        ("max-age=31536000; max-age=31536000", None, False),
        ("max-age=31536000; includeSubDomains; INCLUDESUBDOMAINS", None, False),
        ("max-age=15768000; includeSubDomains, max-age=15768000; includeSubDomains", None, False),
        # The RFC's own examples (§6.2)
        ("max-age=31536000", 31536000, False),
        ("max-age=15768000 ; includeSubDomains", 15768000, True),
        ('max-age="31536000"', 31536000, False),
        ("max-age=0", 0, False),
        (";;max-age=31536000;;", 31536000, False),  # empty directives are allowed
        ("max-age=" + "9" * 5000, 10**12, False),  # huge: clamped, never int() of 5000 digits
    ],
)
def test_parse_hsts(value: str, max_age: int | None, subdomains: bool) -> None:
    policy = parse_hsts(value)
    assert (policy.max_age, policy.include_subdomains) == (max_age, subdomains)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Strict-Transport-Security": "max-age=31536000"}, set()),
        ({"Strict-Transport-Security": "max-age=15552000"}, set()),
        ({"Strict-Transport-Security": "max-age=15551999"}, {"http.hsts.short_max_age"}),
        ({"Strict-Transport-Security": "max-age=0"}, {"http.hsts.short_max_age"}),
        ({"Strict-Transport-Security": "includeSubDomains"}, {"http.hsts.missing"}),
        ({}, {"http.hsts.missing"}),
    ],
)
def test_hsts_on_https_responses(headers: dict[str, str], expected: set[str]) -> None:
    assert ids_of(hsts_findings(SITE, obs(headers=headers))) == expected


def test_hsts_is_not_judged_on_plain_http() -> None:
    assert hsts_findings(SITE, obs("http://agence.vigie-http.test/")) == []


# --- unit: document headers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("csp", "expected"),
    [
        (None, {"http.csp.missing"}),
        ("default-src 'self'", set()),
        ("default-src 'self' 'unsafe-inline'", {"http.csp.unsafe"}),
        ("script-src 'self' 'unsafe-eval'; default-src 'self'", {"http.csp.unsafe"}),
        ("default-src *", {"http.csp.unsafe"}),
        ("script-src 'nonce-abc' 'unsafe-inline'; default-src 'self'", set()),
        ("script-src 'nonce-abc' 'strict-dynamic' * ; default-src 'none'", set()),
        ("frame-ancestors 'none'", {"http.csp.unsafe"}),  # scripts unrestricted
        # CSP3 §6.8.3: script-src governs scripts when present; default-src does not
        ("script-src 'self'; default-src 'self' 'unsafe-inline'", set()),
        ("script-src 'self' 'unsafe-inline'; default-src 'none'", {"http.csp.unsafe"}),
        # scheme-only sources let any server (or the attacker's own text) provide scripts
        ("default-src https:", {"http.csp.unsafe"}),
        ("default-src 'self'; script-src http:", {"http.csp.unsafe"}),
        ("default-src 'none'; script-src 'self' data:", {"http.csp.unsafe"}),
        ("default-src 'none'; script-src https://*", {"http.csp.unsafe"}),
        ("default-src 'none'; img-src https: data:; script-src 'self'", set()),
        # CSP3 §8.2: with 'strict-dynamic', host and scheme sources are ignored for scripts
        (
            "script-src 'strict-dynamic' 'nonce-r4nd' https: 'unsafe-inline'; object-src 'none'",
            set(),
        ),
        # CSP3 §2.2.1: the first occurrence of a directive wins; non-ASCII directives are skipped
        ("script-src 'self'; script-src *", set()),
        # Infra: ASCII whitespace only; \x1f inside a source does not split it
        ("\x1f", {"http.csp.unsafe"}),
        ("script-src 'self'\x1f'unsafe-inline'; default-src 'none'", set()),
        ("script-src 'self' 'unsafe-inline'\u00e9; default-src 'self'", set()),
    ],
)
def test_csp(csp: str | None, expected: set[str]) -> None:
    headers = {} if csp is None else {"Content-Security-Policy": csp}
    assert ids_of(csp_findings(SITE, obs(headers=headers))) == expected


def test_csp_report_only_does_not_count_and_a_strict_second_policy_wins() -> None:
    report_only = obs(headers={"Content-Security-Policy-Report-Only": "default-src 'self'"})
    assert ids_of(csp_findings(SITE, report_only)) == {"http.csp.missing"}
    two = obs(
        headers=[
            ("Content-Security-Policy", "default-src * 'unsafe-inline'"),
            ("Content-Security-Policy", "default-src 'self'"),
        ]
    )
    assert csp_findings(SITE, two) == []


@pytest.mark.parametrize(
    ("headers", "fires"),
    [
        # CSP3 §6.4.2: "*" or a bare scheme lets any site frame the page; HTML: X-Frame-Options
        # is then ignored, so DENY beside "frame-ancestors *" does not protect
        ({"Content-Security-Policy": "frame-ancestors *"}, True),
        ({"Content-Security-Policy": "frame-ancestors https:"}, True),
        ({"Content-Security-Policy": "frame-ancestors *", "X-Frame-Options": "DENY"}, True),
        ({"Content-Security-Policy": "frame-ancestors https://portail.gouv.ml"}, False),
        ({"Content-Security-Policy": "frame-ancestors"}, False),  # an empty list is 'none'
        # HTML's X-Frame-Options algorithm: a set of one value, or several with DENY among them
        ({"X-Frame-Options": "SAMEORIGIN, SAMEORIGIN"}, False),
        ({"X-Frame-Options": "DENY, ALLOW-FROM https://x.example"}, False),
        ({"X-Frame-Options": "ALLOWALL"}, True),
        ({"X-Frame-Options": "DENY"}, False),
        ({"X-Frame-Options": "sameorigin"}, False),
        ({"Content-Security-Policy": "default-src 'self'; frame-ancestors 'self'"}, False),
        ({"X-Frame-Options": "ALLOW-FROM https://x.example"}, True),
        ({}, True),
    ],
)
def test_frame_options(headers: dict[str, str], fires: bool) -> None:
    assert bool(frame_options_findings(SITE, obs(headers=headers))) is fires


def test_nosniff_and_referrer_policy() -> None:
    assert (
        content_type_options_findings(SITE, obs(headers={"X-Content-Type-Options": "nosniff"}))
        == []
    )
    assert content_type_options_findings(SITE, obs(headers={"X-Content-Type-Options": "sniff"}))
    assert referrer_policy_findings(SITE, obs(headers={"Referrer-Policy": "no-referrer"})) == []
    assert referrer_policy_findings(SITE, obs(headers={"Referrer-Policy": "nonsense"}))
    assert referrer_policy_findings(SITE, obs())


@pytest.mark.parametrize(
    ("name", "value", "fires"),
    [
        ("Server", "nginx/1.22.1", True),
        ("Server", "Apache/2", True),
        ("Server", "Apache/2.4.57 (Debian)", True),
        ("Server", "Microsoft-IIS/10.0", True),
        ("Server", "nginx", False),
        ("Server", "cloudflare", False),
        ("X-Powered-By", "PHP/8.1.2", True),
        ("X-Powered-By", "Express", False),
        ("X-AspNet-Version", "4.0.30319", True),
    ],
)
def test_version_disclosure(name: str, value: str, fires: bool) -> None:
    findings = version_findings(SITE, obs(headers={name: value}))
    assert bool(findings) is fires
    if fires:
        assert findings[0].discriminator == name.lower()
        assert findings[0].evidence["disclosed"] == value


def test_cookies_secure_over_https_and_httponly_on_session_cookies() -> None:
    response = obs(
        headers=[
            ("Set-Cookie", "PHPSESSID=abc123secret; path=/"),
            ("Set-Cookie", "theme=dark; Path=/"),
            ("Set-Cookie", "csrftoken=xyz; Secure"),
            ("Set-Cookie", "sessionid=ok; Secure; HttpOnly; SameSite=Lax"),
            ("Set-Cookie", "auth_token=; Max-Age=0"),  # being deleted: ignored
            ("Set-Cookie", "old_sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),  # idem
        ]
    )
    found = {(f.check_id, f.discriminator) for f in cookie_findings(SITE, response)}
    assert found == {
        ("http.cookie.insecure", "PHPSESSID"),
        ("http.cookie.no_httponly", "PHPSESSID"),
        ("http.cookie.no_samesite", "PHPSESSID"),
        ("http.cookie.insecure", "theme"),
        ("http.cookie.no_samesite", "csrftoken"),  # an anti-CSRF cookie needs SameSite most
    }
    evidence = json.dumps([dict(f.evidence) for f in cookie_findings(SITE, response)])
    assert "abc123secret" not in evidence  # cookie values are masked


def test_cookies_over_http_are_judged_and_insecure_when_the_host_has_https() -> None:
    # Given a session cookie set by a plain-HTTP response
    response = obs("http://agence.vigie-http.test/", headers={"Set-Cookie": "JSESSIONID=1"})
    # Then HttpOnly and SameSite are judged there too
    alone = ids_of(cookie_findings(Site(TARGET, 80), response))
    assert alone == {"http.cookie.no_httponly", "http.cookie.no_samesite"}
    # And when the host serves HTTPS the cookie travels in clear for nothing: insecure
    # (a browser refuses Secure from a plain-HTTP response, RFC 6265bis §5.7)
    with_https = cookie_findings(Site(TARGET, 80), response, has_https=True)
    assert ids_of(with_https) == alone | {"http.cookie.insecure"}
    tidy = obs("http://a.test/", headers={"Set-Cookie": "sid=1; HttpOnly; SameSite=Lax"})
    assert ids_of(cookie_findings(Site(TARGET, 80), tidy, has_https=True)) == {
        "http.cookie.insecure"
    }


def test_a_secure_cookie_on_a_plain_http_redirect_is_not_judged() -> None:
    # Given port 80's redirect to HTTPS setting the site's Secure session cookies too
    # (the peer's "all SameSite" cookies, on both doors: MDN HTTP Observatory passes them)
    lines = [
        ("Location", "https://agence.vigie-http.test/"),
        ("Set-Cookie", "SID_NONE=1; Path=/; Secure; HttpOnly; SameSite=None"),
        ("Set-Cookie", "SID_BARE=1; Path=/; Secure"),
    ]
    response = obs("http://agence.vigie-http.test/", 301, lines)
    # When judged, Then nothing: RFC 6265bis §5.7, the user agent ignores a cookie with
    # the Secure attribute from a non-secure request URI entirely (nothing is stored)
    assert cookie_findings(Site(TARGET, 80), response, has_https=True) == []
    # And the same lines over HTTPS are judged as ever (SameSite=None is valid with Secure)
    https = obs("https://agence.vigie-http.test/", 200, lines[1:])
    assert {(f.check_id, f.discriminator) for f in cookie_findings(SITE, https)} == {
        ("http.cookie.no_httponly", "SID_BARE"),
        ("http.cookie.no_samesite", "SID_BARE"),
    }


@pytest.mark.parametrize(
    ("attributes", "fires"),
    [
        ("Secure; HttpOnly; SameSite=Strict", False),
        ("Secure; HttpOnly; SameSite=lax", False),
        ("Secure; HttpOnly; SameSite=None", False),
        ("HttpOnly; SameSite=None", True),  # RFC 6265bis §5.7: None needs Secure
        ("Secure; HttpOnly", True),
        ("Secure; HttpOnly; SameSite=", True),  # unknown values: browsers' own default
        ("Secure; HttpOnly; SameSite=True", True),
        ("Secure; HttpOnly; SameSite=Strict; SameSite=Bogus", True),  # the last one counts
    ],
)
def test_samesite_on_session_cookies(attributes: str, fires: bool) -> None:
    response = obs(headers={"Set-Cookie": f"SESSIONID=bar; Path=/; {attributes}"})
    found = ids_of(cookie_findings(SITE, response))
    assert ("http.cookie.no_samesite" in found) is fires
    # A cookie that carries no session is not asked for SameSite
    theme = obs(headers={"Set-Cookie": f"theme=dark; {attributes}"})
    assert "http.cookie.no_samesite" not in ids_of(cookie_findings(SITE, theme))


@pytest.mark.parametrize(
    ("max_age", "deleted"),
    [
        ("0", True),
        ("-1", True),
        ("3600", False),
        ("³", False),  # RFC 6265 §5.2.2: not "-"? DIGIT+: the attribute is ignored
        ("1e3", False),
        ("9" * 5000, False),
    ],
)
def test_cookie_max_age_is_read_as_rfc_6265_says(max_age: str, deleted: bool) -> None:
    cookie = parse_set_cookie(f"sid=v; Max-Age={max_age}")
    assert cookie is not None and cookie.deleted is deleted
    # The same verdict as the standard library's own parser gives the attribute
    jar = SimpleCookie()
    jar.load(f"sid=v; Max-Age={max_age}")
    if "sid" in jar and max_age.isascii() and max_age.lstrip("-").isdigit() and len(max_age) < 20:
        assert (int(jar["sid"]["max-age"]) <= 0) is deleted


@pytest.mark.parametrize(
    ("allow_origin", "credentials", "fires"),
    [
        (PROBE_ORIGIN, "true", True),
        (PROBE_ORIGIN, None, False),
        ("*", None, False),
        # Fetch §3.2.5 CORS check: browsers refuse "*" with credentials
        ("*", "true", False),
        ("null", "true", True),
        (PROBE_ORIGIN, "TRUE", False),  # the check compares the exact bytes "true"
        (PROBE_ORIGIN.upper(), "true", False),  # and the exact origin
        ("https://agence.vigie-http.test", "true", False),
    ],
)
def test_cors(allow_origin: str, credentials: str | None, fires: bool) -> None:
    headers = {"Access-Control-Allow-Origin": allow_origin}
    if credentials:
        headers["Access-Control-Allow-Credentials"] = credentials
    assert bool(cors_findings(SITE, obs(headers=headers))) is fires


def test_trace_needs_200_and_the_echo() -> None:
    echo = "TRACE / HTTP/1.1\r\nX-Vigie-Trace: m-123\r\n"
    assert ids_of(trace_findings(SITE, obs(body=echo, method="TRACE"), "m-123")) == {
        "http.trace_enabled"
    }
    assert trace_findings(SITE, obs(status=405, body=echo, method="TRACE"), "m-123") == []
    assert trace_findings(SITE, obs(body="<html>hello</html>", method="TRACE"), "m-123") == []


# --- unit: redirects and what gets graded ----------------------------------------------


def test_http_redirecting_to_https_on_the_same_host_is_fine_even_if_https_then_failed() -> None:
    redirect = obs(
        "http://agence.vigie-http.test/", 301, {"Location": "https://agence.vigie-http.test/"}
    )
    assert no_https_redirect_findings(Site(TARGET, 80), [redirect]) == []


def test_http_redirecting_to_https_on_another_host_is_reported() -> None:
    redirect = obs(
        "http://agence.vigie-http.test/", 301, {"Location": "https://www.agence.vigie-http.test/"}
    )
    findings = no_https_redirect_findings(Site(TARGET, 80), [redirect])
    assert ids_of(findings) == {"http.no_https_redirect"}
    assert "not to https:// on the same host" in findings[0].evidence["reason"]


def test_a_site_that_sends_users_elsewhere_is_judged_only_on_hsts() -> None:
    redirect = obs("https://agence.vigie-http.test/", 302, {"Location": "https://sso.example/"})
    visit = Visit(Endpoint("https", 443), (redirect,), redirect, left_host=True)
    findings = visit_findings(TARGET, [visit], graded_sites([visit]))
    assert ids_of(findings) == {"http.hsts.missing"}


def test_headers_are_judged_on_the_final_same_host_response_with_the_chain() -> None:
    first = obs("https://agence.vigie-http.test/", 302, {"Location": "/login"})
    good = {**hs.GOOD_HEADERS}
    final = HttpObservation(
        "GET",
        "https://agence.vigie-http.test/login",
        200,
        tuple(good.items()),
        chain=(first.as_hop(),),
    )
    visit = Visit(Endpoint("https", 443), (first, final), final)
    assert visit_findings(TARGET, [visit], graded_sites([visit])) == []
    bare = HttpObservation("GET", final.url, 200, chain=(first.as_hop(),))
    bad = visit_findings(TARGET, [Visit(Endpoint("https", 443), (first, bare), bare)], {})
    assert bad == []  # nothing graded without a site
    sites = graded_sites([Visit(Endpoint("https", 443), (first, bare), bare)])
    findings = visit_findings(TARGET, [sites[Endpoint("https", 443)]], sites)
    hsts = next(f for f in findings if f.check_id == "http.hsts.missing")
    assert [hop["status"] for hop in hsts.evidence["redirect_chain"]] == [302, 200]


def test_an_https_front_page_that_downgrades_to_http_is_judged_where_https_ended() -> None:
    first = obs(
        "https://agence.vigie-http.test/", 301, {"Location": "http://agence.vigie-http.test/"}
    )
    final = obs("http://agence.vigie-http.test/", 200, hs.GOOD_HEADERS)
    visit = Visit(Endpoint("https", 443), (first, final), final)
    findings = visit_findings(TARGET, [visit], graded_sites([visit]))
    assert {(f.check_id, f.port) for f in findings} == {("http.hsts.missing", 443)}


def test_plain_http_documents_are_judged_only_when_the_host_has_no_https_site() -> None:
    plain = obs("http://agence.vigie-http.test/", 200)
    alone = Visit(Endpoint("http", 80), (plain,), plain)
    only_http = ids_of(visit_findings(TARGET, [alone], graded_sites([alone])))
    assert "http.csp.missing" in only_http and "http.no_https_redirect" in only_http
    tidy = obs("https://agence.vigie-http.test/", 200, hs.GOOD_HEADERS)
    https = Visit(Endpoint("https", 443), (tidy,), tidy)
    both = ids_of(visit_findings(TARGET, [alone, https], graded_sites([alone, https])))
    assert both == {"http.no_https_redirect"}


def test_plain_http_heard_on_443_is_requested_over_http() -> None:
    # Given nginx answering plain HTTP on 443 and 8443 ("listen 443;" without ssl)
    banner = "HTTP/1.1 200 OK\nServer: nginx"
    plain = [OpenPort(443, "http", banner=banner), OpenPort(8443, "http", banner=banner)]
    # Then its pages are requested as http://host:443/, not over TLS
    assert web_endpoints(plain) == [Endpoint("http", 443), Endpoint("http", 8443)]
    # While ports named only from their number stay HTTPS
    by_number = [OpenPort(443, "http"), OpenPort(8443, "http")]
    assert web_endpoints(by_number) == [Endpoint("https", 443), Endpoint("https", 8443)]


def test_sites_are_mirrors_only_when_their_front_pages_are_the_same_document() -> None:
    page = {"Content-Type": "text/html", "ETag": '"65f-1a"', "Server": "nginx"}

    def sites(http: HttpObservation, https: HttpObservation) -> dict[Endpoint, Visit]:
        return {
            Endpoint("http", 80): Visit(Endpoint("http", 80), (http,), http),
            Endpoint("https", 443): Visit(Endpoint("https", 443), (https,), https),
        }

    http = obs("http://a.test/", headers=page, body="<html>accueil</html>")
    same = sites(http, obs("https://a.test/", headers=page, body="<html>accueil</html>"))
    # Then HTTPS is probed in full and HTTP is its mirror
    assert [(g.probed.port, [m.port for m in g.mirrors]) for g in mirror_groups(same, "hits")] == [
        (443, [80])
    ]
    # "all" never groups; another ETag (another copy of the file), another body or
    # an error page are separate sites
    assert len(mirror_groups(same, "all")) == 2
    other_copy = {**page, "ETag": '"65f-1b"'}
    for https in (
        obs("https://a.test/", headers=other_copy, body="<html>accueil</html>"),
        obs("https://a.test/", headers=page, body="<html>welcome</html>"),
    ):
        assert len(mirror_groups(sites(http, https), "hits")) == 2
    missing = obs("http://a.test/", status=404, headers=page, body="not found")
    assert len(mirror_groups(sites(missing, replace(missing, url="https://a.test/")), "hits")) == 2


def test_web_endpoints_from_the_port_stage() -> None:
    ports = [
        OpenPort(80, "http"),
        OpenPort(443, ""),
        OpenPort(8443, "https-alt", tls=True),
        OpenPort(8080, ""),
        OpenPort(8000, "http-alt"),
        OpenPort(22, "ssh"),
        OpenPort(9000, "cslistener"),
        OpenPort(3000, "http", tls=True),
    ]
    assert web_endpoints(ports) == [
        Endpoint("http", 80),
        Endpoint("https", 443),
        Endpoint("https", 3000),
        Endpoint("http", 8000),
        Endpoint("http", 8080),
        Endpoint("https", 8443),
    ]


# --- unit: content detectors -----------------------------------------------------------

NOT_FOUND = Baseline((obs(status=404, body="<html>404 Not Found</html>"),), "tok")


@pytest.mark.parametrize(
    ("detector", "body", "headers", "status", "fires"),
    [
        ("git_head", "ref: refs/heads/main\n", {}, 200, True),
        ("git_head", "z" * 40 + "\n", {}, 200, False),
        ("git_head", "0123456789abcdef0123456789abcdef01234567\n", {}, 200, True),
        ("git_head", "ref: refs/heads/main\n", {}, 403, False),
        ("git_config", "[core]\n\trepositoryformatversion = 0\n", {}, 200, True),
        ("svn_entries", "12\n", {}, 200, True),
        ("svn_entries", "<html>12</html>", {"Content-Type": "text/html"}, 200, False),
        ("sqlite", b"SQLite format 3\x00rest", {}, 200, True),
        ("env_file", "DB_HOST=x\nDB_PASSWORD=y\n# c\n", {}, 200, True),
        (
            "env_file",
            "<html><body>A=1\nB=2</body></html>",
            {"Content-Type": "text/html"},
            200,
            False,
        ),
        ("env_file", "just one=line\nand prose here\nmore prose\n", {}, 200, False),
        ("env_file", "APP_ENV=prod\nAPP_KEY=k\n", {"Content-Type": "text/html"}, 200, True),
        (
            "server_status",
            "Active connections: 1 \nserver accepts handled requests\n 1 1 1\n",
            {},
            200,
            True,
        ),
        ("server_status", "<h1>Apache Server Status for web</h1>", {}, 200, True),
        ("server_status", "Active connections: we have many!", {}, 200, False),
        ("phpinfo", '<h1 class="p">PHP Version 8.2.7</h1><td class="e">System</td>', {}, 200, True),
        ("phpinfo", "We upgraded to PHP Version 8 last year", {}, 200, False),
        ("phpinfo", "phpinfo()\nPHP Version => 8.1.2\n", {}, 200, True),
        ("admin_panel", "<title>phpMyAdmin</title><input name='pma_username'>", {}, 200, True),
        (
            "admin_panel",
            "<title>Login - Adminer</title><select name='auth[driver]'>",
            {},
            200,
            True,
        ),
        (
            "admin_panel",
            "401",
            {"WWW-Authenticate": 'Basic realm="Tomcat Manager Application"'},
            401,
            True,
        ),
        ("admin_panel", "<p>Read about phpMyAdmin on our blog</p>", {}, 200, False),
        ("archive", b"PK\x03\x04rest", {}, 200, True),
        ("archive", b"\x1f\x8b\x08rest", {}, 200, True),
        ("archive", b"\0" * 257 + b"ustar\0", {}, 200, True),
        ("archive", "<html>not a zip</html>", {}, 200, False),
        ("sql_dump", "-- MySQL dump 10.13\nCREATE TABLE x (id int);", {}, 200, True),
        ("sql_dump", "INSERT INTO t VALUES (1, 'secret');", {}, 200, True),
        ("sql_dump", "<html>INSERT INTO</html>", {"Content-Type": "text/html"}, 200, False),
        ("backup_file", "<?php $db_password = 'x';", {}, 200, True),
        ("directory_listing", "<html><head><title>Index of /uploads/</title>", {}, 200, True),
        ("directory_listing", "<title>Directory listing for /</title>", {}, 200, True),
        ("directory_listing", "<pre>[To Parent Directory]</pre>", {}, 200, True),
        ("directory_listing", "<title>Directory Listing For [/docs/]</title>", {}, 200, True),
        ("directory_listing", "<title>Directory: /files/</title>", {}, 200, True),
        ("directory_listing", "<title>Our index of publications</title>", {}, 200, False),
    ],
)
def test_detectors(
    detector: str, body: str | bytes, headers: dict[str, str], status: int, fires: bool
) -> None:
    assert (
        DETECTORS[detector](obs(status=status, headers=headers, body=body)) is not None
    ) is fires


def test_exposure_evidence_masks_secrets() -> None:
    env = obs(
        "https://agence.vigie-http.test/.env", body="APP_KEY=base64:XYZ\nDB_PASSWORD=hunter2\n"
    )
    probe = PathProbe("/.env", "http.exposed.env_file", "env_file")
    [finding] = exposure_findings(SITE, probe, env, NOT_FOUND)
    assert finding.discriminator == "/.env"
    assert "hunter2" not in json.dumps(dict(finding.evidence))
    assert "DB_PASSWORD=<7 chars masked>" in finding.evidence["snippet"]
    dump = obs(body="INSERT INTO `users` VALUES (1,'ministre@example.ml');\n")
    [sql] = exposure_findings(
        SITE, PathProbe("/db.sql", "http.exposed.backup", "sql_dump"), dump, NOT_FOUND
    )
    assert "ministre" not in json.dumps(dict(sql.evidence))


def test_a_soft_404_that_echoes_the_path_is_recognised() -> None:
    page = "<html><body>Nothing at {path} - try the home page</body></html>"
    baseline = Baseline(
        (obs("https://a.test/vigie-tok", body=page.format(path="/vigie-tok")),), "tok"
    )
    lookalike = obs("https://a.test/.git/HEAD", body=page.format(path="/.git/HEAD"))
    probe = PathProbe("/.git/HEAD", "http.exposed.vcs", "git_head")
    assert http_family.looks_like_baseline(lookalike, baseline)
    assert exposure_findings(SITE, probe, lookalike, baseline) == []


def test_a_catch_all_serving_matching_content_everywhere_proves_nothing() -> None:
    env = "A=1\nB=2\n"
    baseline = Baseline((obs("https://a.test/vigie-x", body=env + "C=3\nD=4\nE=5\n"),), "x")
    probe = PathProbe("/.env", "http.exposed.env_file", "env_file")
    assert exposure_findings(SITE, probe, obs("https://a.test/.env", body=env), baseline) == []


def test_front_page_listing() -> None:
    listing = obs(body="<html><head><title>Index of /</title></head><h1>Index of /</h1>")
    assert [(f.check_id, f.discriminator) for f in listing_findings(SITE, listing)] == [
        ("http.directory_listing", "/")
    ]


# --- unit: security.txt ----------------------------------------------------------------

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_security_txt_valid_expired_and_incomplete() -> None:
    txt = "text/plain"
    good = obs(headers={"Content-Type": txt}, body=hs.VALID_SECURITY_TXT)
    assert security_txt_findings(SITE, good, datetime.now(UTC)) == []
    expired = obs(headers={"Content-Type": txt}, body=hs.EXPIRED_SECURITY_TXT)
    assert ids_of(security_txt_findings(SITE, expired, NOW)) == {"http.security_txt.expired"}
    # A file that is there but breaks RFC 9116 is invalid, not missing
    no_contact = obs(headers={"Content-Type": txt}, body="Expires: 2026-12-01T00:00:00Z\n")
    findings = security_txt_findings(SITE, no_contact, NOW)
    assert ids_of(findings) == {"http.security_txt.invalid"}
    assert "no Contact" in findings[0].evidence["reason"]
    bad_date = obs(body="Contact: mailto:a@b.ml\nExpires: next year\n")
    findings = security_txt_findings(SITE, bad_date, NOW)
    assert ids_of(findings) == {"http.security_txt.invalid"}
    assert "RFC 3339" in findings[0].evidence["reason"]
    html = obs(headers={"Content-Type": "text/html"}, body="<html>Contact: x Expires: y</html>")
    assert ids_of(security_txt_findings(SITE, html, NOW)) == {"http.security_txt.missing"}
    assert ids_of(security_txt_findings(SITE, obs(status=404), NOW)) == {
        "http.security_txt.missing"
    }
    prose = obs(body="Welcome to our site.\nNothing to see here.\n")
    assert ids_of(security_txt_findings(SITE, prose, NOW)) == {"http.security_txt.missing"}


# RFC 3339 §5.8's own examples are valid; forms that Python's fromisoformat accepts
# but RFC 3339 §5.6 does not (no offset, date only, basic format, week dates) are not.
@pytest.mark.parametrize(
    ("expires", "valid"),
    [
        ("1985-04-12T23:20:50.52Z", True),
        ("1996-12-19T16:39:57-08:00", True),
        ("1990-12-31T23:59:60Z", True),
        ("1990-12-31T15:59:60-08:00", True),
        ("1937-01-01T12:00:27.87+00:20", True),
        ("2021-12-31T18:37:07z", True),  # RFC 9116 §2.5.5's example
        ("2026-06-01 10:00:00Z", True),  # §5.6 NOTE: a space may separate date and time
        ("2026-06-01T10:00:00", False),
        ("2026-06-01", False),
        ("20260601T100000Z", False),
        ("2026-W22-1T10:00:00Z", False),
        ("2026-02-30T10:00:00Z", False),
        ("２０２６-06-01T10:00:00Z", False),  # fullwidth digits
        ("2026-06-01T10:00:00+0200", False),
    ],
)
def test_expires_is_rfc_3339(expires: str, valid: bool) -> None:
    assert (
        parse_security_txt(f"Contact: mailto:a@b.ml\nExpires: {expires}\n").expires is not None
    ) is valid


def test_security_txt_expiring_more_than_a_year_ahead_is_invalid() -> None:
    # RFC 9116 §2.5.5: "less than a year into the future" is recommended
    far = obs(body="Contact: mailto:a@b.ml\nExpires: 2099-12-31T23:59:59.000Z\n")
    findings = security_txt_findings(SITE, far, NOW)
    assert ids_of(findings) == {"http.security_txt.invalid"}
    assert "more than a year" in findings[0].evidence["reason"]
    near = obs(body="Contact: mailto:a@b.ml\nExpires: 2027-05-30T00:00:00Z\n")
    assert security_txt_findings(SITE, near, NOW) == []


def test_security_txt_over_plain_http_is_invalid_when_the_host_has_https() -> None:
    # RFC 9116 §3: "MUST be accessed via HTTPS"
    body = "Contact: mailto:a@b.ml\nExpires: 2026-12-01T00:00:00Z\n"
    plain = obs("http://agence.vigie-http.test/.well-known/security.txt", body=body)
    assert ids_of(security_txt_findings(SITE, plain, NOW, has_https=True)) == {
        "http.security_txt.invalid"
    }
    assert security_txt_findings(SITE, plain, NOW, has_https=False) == []


def test_a_redirect_that_was_not_followed_says_nothing_about_security_txt() -> None:
    redirect = obs(status=302, headers={"Location": "https://evil.example/security.txt"})
    out_of_scope = "not followed: evil.example -> 203.0.113.9 is out of scope"
    assert security_txt_findings(SITE, redirect, NOW, stopped=out_of_scope) == []
    looping = security_txt_findings(SITE, redirect, NOW, stopped="redirect loop back to /x")
    assert ids_of(looping) == {"http.security_txt.missing"}


def test_the_rfc_9116_example_file_is_valid() -> None:
    # RFC 9116 §2.5 field examples, in one file, with an expiry half a year ahead
    example = (
        "# Our security address\n"
        "Contact: mailto:security@example.com\n"
        "Contact: tel:+1-201-555-0123\n"
        "Contact: https://example.com/security-contact.html\n"
        "Encryption: https://example.com/pgp-key.txt\n"
        "Acknowledgments: https://example.com/hall-of-fame.html\n"
        "Preferred-Languages: en, es, fr\n"
        "Canonical: https://example.com/.well-known/security.txt\n"
        "Policy: https://example.com/disclosure.html\n"
        "Hiring: https://example.com/jobs.html\n"
        "Expires: 2026-11-30T18:37:07z\n"
    )
    parsed = parse_security_txt(example)
    assert len(parsed.contacts) == 3 and parsed.problems == ()
    assert security_txt_findings(SITE, obs(body=example), NOW) == []


def test_security_txt_inside_a_pgp_signature() -> None:
    signed = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        "Contact: https://cert.example.ml/report\nExpires: 2030-01-01T00:00:00+00:00\n"
        "-----BEGIN PGP SIGNATURE-----\nContact: not-this\n-----END PGP SIGNATURE-----\n"
    )
    parsed = parse_security_txt(signed)
    assert parsed.contacts == ("https://cert.example.ml/report",)
    assert parsed.expires == datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "registrable"),
    [
        ("sante.gouv.ml", "sante.gouv.ml"),
        ("www.sante.gouv.ml", "sante.gouv.ml"),
        ("example.com", "example.com"),
        # The PSL's default rule "*" for a top-level label it lacks: .test like .ml
        ("agence.vigie-http.test", "vigie-http.test"),
        ("test", None),
    ],
)
def test_registrable_domain_follows_the_psl_algorithm_for_every_name(
    name: str, registrable: str | None
) -> None:
    assert registrable_domain(name) == registrable


# --- unit: bounded decoding ------------------------------------------------------------


def test_identity_bodies_are_cut_at_the_limit() -> None:
    decoder = BoundedDecoder([], 10)
    decoder.feed(b"0123456789abcdef")
    assert decoder.body == b"0123456789" and decoder.full


def test_gzip_deflate_and_several_members() -> None:
    data = b"hello world " * 100
    for codings, raw in (
        (["gzip"], gzip.compress(data)),
        (["deflate"], zlib.compress(data)),
        (["deflate"], zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
        (["gzip"], gzip.compress(data[:600]) + gzip.compress(data[600:])),
    ):
        decoder = BoundedDecoder(codings, 1 << 20)
        for start in range(0, len(raw), 7):
            decoder.feed(raw[start : start + 7])
        assert decoder.body == data, codings


def test_unsupported_or_corrupt_encodings_are_refused() -> None:
    with pytest.raises(BodyDecodeError):
        BoundedDecoder(["br"], 100)
    with pytest.raises(BodyDecodeError):
        BoundedDecoder(["gzip", "gzip"], 100)
    with pytest.raises(BodyDecodeError):
        BoundedDecoder(["gzip"], 100).feed(b"not gzip at all")


def test_a_decompression_bomb_chunk_stays_within_the_limit() -> None:
    bomb = hs.gzip_member(64 << 20)  # 64 MiB of zeros in ~64 KB
    tracemalloc.start()
    try:
        decoder = BoundedDecoder(["gzip"], 1 << 20)
        decoder.feed(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.full and len(decoder.body) == 1 << 20
    assert peak < 8 << 20


# --- unit: the path list ---------------------------------------------------------------


def test_builtin_path_list_covers_every_exposure_check() -> None:
    probes = load_path_list(None)
    assert {p.check for p in probes} == {
        "http.directory_listing",
        "http.exposed.vcs",
        "http.exposed.env_file",
        "http.exposed.server_status",
        "http.exposed.phpinfo",
        "http.exposed.admin_panel",
        "http.exposed.backup",
        "http.crossdomain.permissive",
    }
    assert {p.detector for p in probes} <= set(DETECTORS)


def test_a_deployment_extends_the_path_list(tmp_path: Path) -> None:
    extra = tmp_path / "paths.toml"
    extra.write_text(
        '[[path]]\npath = "/old/.env"\ncheck = "http.exposed.env_file"\ndetector = "env_file"\n'
    )
    probes = load_path_list(extra)
    assert PathProbe("/old/.env", "http.exposed.env_file", "env_file") in probes
    assert len(probes) == len(load_path_list(None)) + 1


@pytest.mark.parametrize(
    "entry",
    [
        'path = "no-slash"\ncheck = "http.exposed.vcs"\ndetector = "git_head"',
        'path = "/x"\ncheck = "http.hsts.missing"\ndetector = "git_head"',
        'path = "/x"\ncheck = "http.exposed.vcs"\ndetector = "run_this"',
        'path = "/x"\ncheck = "http.exposed.vcs"',
    ],
)
def test_a_bad_path_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"extra\.toml: path #1"):
        parse_path_list(f"[[path]]\n{entry}\n", "extra.toml")


def test_public_names() -> None:
    assert sorted(http_family.__all__) == sorted(set(http_family.__all__))
    for name in http_family.__all__:
        assert hasattr(http_family, name), name


# --- the test world --------------------------------------------------------------------

ZONE = "vigie-http.test"
KNOT = "127.0.5.53"
OTHER = "127.0.5.38"  # in scope: where other.vigie-http.test points
EVIL = "127.0.5.200"  # out of scope: where evil.vigie-http.test points
EVIL_LITERAL = "127.0.5.201"  # out of scope: named as an address in a Location


def d(name: str) -> str:
    """A site's name: a registered name of its own under .test (a main web host, as
    the Public Suffix List's default rule makes ``<label>.test``)."""
    return f"{name}-{ZONE}"


def dns(name: str) -> str:
    """A name the test zone resolves (targets of redirects to other hosts)."""
    return f"{name}.{ZONE}"


NGINX_SITES = [
    hs.Site(
        d("good"),
        "127.0.5.10",
        # A login redirect within the host; a well-flagged session cookie.
        files={"login/index.html": hs.INDEX_HTML},
        extra=(
            '    add_header Set-Cookie "sessionid=s3cr3t; Path=/; Secure; HttpOnly; SameSite=Lax" always;\n'
            "    location = / { return 302 /login/; }\n"
        ),
    ),
    hs.Site(d("twin"), "127.0.5.10", headers={}, security_txt=None),
    hs.Site(
        d("bare"), "127.0.5.11", redirect=False, headers={}, security_txt=None, server_tokens=True
    ),
    hs.Site(
        d("shorthsts"),
        "127.0.5.12",
        headers={**hs.GOOD_HEADERS, "Strict-Transport-Security": "max-age=86400"},
    ),
    hs.Site(
        d("unsafecsp"),
        "127.0.5.13",
        headers={
            **hs.GOOD_HEADERS,
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        },
    ),
    hs.Site(
        d("cookies"),
        "127.0.5.14",
        extra=(
            '    add_header Set-Cookie "PHPSESSID=abc123secret; Path=/" always;\n'
            '    add_header Set-Cookie "lang=fr; Path=/" always;\n'
        ),
    ),
    hs.Site(
        d("cors"),
        "127.0.5.15",
        extra=(
            "    add_header Access-Control-Allow-Origin $http_origin always;\n"
            '    add_header Access-Control-Allow-Credentials "true" always;\n'
        ),
    ),
    hs.Site(
        d("autoindex"),
        "127.0.5.16",
        index=False,
        files={"report.pdf": "x"},
        extra="    autoindex on;\n",
    ),
    hs.Site(d("status"), "127.0.5.17", extra="    location = /nginx_status { stub_status; }\n"),
    hs.Site(
        d("files"),
        "127.0.5.18",
        files={**hs.EXPOSED_FILES, "old/.env": "SECRET_KEY=zzz\nDEBUG=1\n"},
        extra=(
            "    location = /manager/html {\n"
            "        add_header WWW-Authenticate 'Basic realm=\"Tomcat Manager Application\"' always;\n"
            '        return 401 "401 Unauthorized";\n    }\n'
        ),
    ),
    hs.Site(
        d("soft404"),
        "127.0.5.19",
        extra=(
            "    location / {\n        default_type text/html;\n"
            '        return 200 "<html><body><h1>Portail</h1><p>Page $uri</p></body></html>";\n    }\n'
        ),
    ),
    hs.Site(d("expired"), "127.0.5.20", security_txt=hs.EXPIRED_SECURITY_TXT),
    hs.Site(d("httponly"), "127.0.5.21", https=False, redirect=False),
    hs.Site("portal.sante.gouv.ml", "127.0.5.22", security_txt=None),
    hs.Site(
        d("consent"),
        "127.0.5.23",
        headers={},
        files={"consent/index.html": hs.INDEX_HTML},
        # Only the final page sets the headers: the consent redirect must not hide them.
        extra=(
            "    location = / { return 302 /consent/; }\n    location /consent/ {\n"
            + "".join(f'        add_header {k} "{v}" always;\n' for k, v in hs.GOOD_HEADERS.items())
            + "    }\n"
        ),
    ),
    # One document root on 80 and 443 (no redirect): the same front page twice.
    hs.Site(
        d("mirror"),
        "127.0.5.26",
        redirect=False,
        files={".git/HEAD": "ref: refs/heads/main\n"},
        log_requests=True,
    ),
    hs.Site(
        d("hop"),
        "127.0.5.24",
        extra=f"    location = / {{ return 302 http://{dns('other')}/; }}\n",
    ),
    hs.Site(
        d("leave"),
        "127.0.5.25",
        extra=f"    location = / {{ return 302 https://{dns('evil')}/; }}\n",
    ),
    # --- issue 17: the standards' corner cases, served by nginx (127.0.23.0/24) ---
    hs.Site(
        d("hstsdup"),
        "127.0.23.10",
        headers={
            **hs.GOOD_HEADERS,
            "Strict-Transport-Security": "max-age=31536000; max-age=31536000",
        },
    ),
    hs.Site(
        d("framestar"),
        "127.0.23.11",
        headers={
            **hs.GOOD_HEADERS,
            "Content-Security-Policy": "default-src 'self'; frame-ancestors *",
        },
    ),
    hs.Site(
        d("metacsp"),
        "127.0.23.12",
        headers={k: v for k, v in hs.GOOD_HEADERS.items() if k != "Content-Security-Policy"},
        files={"index.html": hs.META_CSP_HTML},
    ),
    hs.Site(
        d("referrer"),
        "127.0.23.13",
        headers={**hs.GOOD_HEADERS, "Referrer-Policy": "unsafe-url"},
    ),
    hs.Site(d("sri"), "127.0.23.14", files={"index.html": hs.SRI_HTML}),
    hs.Site(
        d("crossdomain"),
        "127.0.23.15",
        files={
            "crossdomain.xml": hs.CROSSDOMAIN_ANY,
            "clientaccesspolicy.xml": hs.CLIENTACCESS_ANY,
        },
        extra="    location ~ \\.xml$ { default_type text/xml; }\n",
    ),
    hs.Site(
        d("crossdomainok"),
        "127.0.23.16",
        files={"crossdomain.xml": hs.CROSSDOMAIN_LISTED},
    ),
    hs.Site(
        d("corsstar"),
        "127.0.23.17",
        extra=(
            '    add_header Access-Control-Allow-Origin "*" always;\n'
            '    add_header Access-Control-Allow-Credentials "true" always;\n'
        ),
    ),
    hs.Site(d("secfar"), "127.0.23.18", security_txt=hs.FAR_SECURITY_TXT),
    hs.Site(
        d("plaincookie"),
        "127.0.23.19",
        redirect=False,
        extra='    add_header Set-Cookie "sid=1; Path=/; HttpOnly; SameSite=Lax" always;\n',
    ),
    hs.Site(
        d("weakcsp"),
        "127.0.23.20",
        headers={**hs.GOOD_HEADERS, "Content-Security-Policy": hs.NONCE_CSP},
        files={"index.html": hs.FORM_HTML},
    ),
    hs.Site(
        d("maxage3"),
        "127.0.23.21",
        headers={**hs.GOOD_HEADERS, "Strict-Transport-Security": "max-age=\u00b3"},
    ),
]


@dataclass
class World:
    resolver: str
    hostile: hs.HostileServers
    tmp: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("http")
    zone = (
        f"$ORIGIN {ZONE}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
        f"ns1 A {KNOT}\nother A {OTHER}\nevil A {EVIL}\n"
    )
    hostile = hs.HostileServers()
    bomb = hs.gzip_member(64 << 20)  # 64 MiB of zeros per member, 64 members: 4 GiB
    try:
        hostile.serve("127.0.5.30", 80, hs.redirect_loop)
        hostile.serve("127.0.5.31", 80, hs.endless_chain)
        hostile.serve("127.0.5.32", 80, hs.redirect_to(f"http://{EVIL_LITERAL}/"))
        hostile.serve("127.0.5.33", 80, hs.slow_headers)
        hostile.serve("127.0.5.34", 80, hs.endless_headers)
        hostile.serve("127.0.5.35", 80, hs.big_headers(80_000))
        hostile.serve("127.0.5.36", 80, hs.gzip_bomb(bomb, 64))
        hostile.serve("127.0.5.37", 80, hs.trace_echo)
        hostile.serve("127.0.5.39", 80, hs.slow_body)
        hostile.serve(OTHER, 80, hs.count_only)
        hostile.serve(EVIL, 443, hs.count_only)
        hostile.serve(EVIL_LITERAL, 80, hs.count_only)
        port = free_port([KNOT])
        with (
            start_zone_server(tmp, KNOT, port, {ZONE: zone}) as knot,
            hs.run_nginx(NGINX_SITES, tmp / "nginx"),
        ):
            yield World(knot.resolver, hostile, tmp)
    finally:
        hostile.close()


@pytest.fixture(params=["uvloop", "asyncio"])
def event_loop(request: pytest.FixtureRequest) -> str:
    """Hostile servers are met on both event loops a sweep may run on."""
    return str(request.param)


def settings_for(world: World, event_loop: str = "uvloop", **http: Any) -> Settings:
    return Settings.model_validate(
        {
            "scope": {"allow": ["127.0.5.0/25", "127.0.23.0/25"]},
            "dns": {"resolvers": [world.resolver], "timeout_s": 1, "lifetime_s": 2},
            "scan": {"max_rate_per_s": 5000, "event_loop": event_loop},
            "http": {"connect_timeout_s": 2, "read_timeout_s": 2, "total_timeout_s": 3, **http},
        }
    )


WEB = [OpenPort(80, "http"), OpenPort(443, "https", tls=True)]
HTTP_ONLY = [OpenPort(80, "http")]


def scan(settings: Settings, domain: str, ip: str, ports: list[OpenPort] = WEB) -> FamilyResult:
    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(settings)
        try:
            return await check_http(ctx, HostTarget(domain, ip), ports)
        finally:
            await ctx.aclose()

    return vigie_loop.run(run(), settings)


def ids(result: FamilyResult) -> set[str]:
    return {f.check_id for f in result.findings}


def pairs(result: FamilyResult) -> set[tuple[str, int | None, str]]:
    return {(f.check_id, f.port, f.discriminator) for f in result.findings}


def only(result: FamilyResult, check_id: str) -> Finding:
    matches = [f for f in result.findings if f.check_id == check_id]
    assert len(matches) == 1, result.findings
    return matches[0]


# --- against real nginx ----------------------------------------------------------------


@pytest.mark.network
def test_a_well_configured_site_yields_no_finding(world: World) -> None:
    # Given HTTPS with HSTS 1 year, CSP, XFO, nosniff, Referrer-Policy, http->https,
    # a login redirect within the host, a flagged session cookie and a valid security.txt
    result = scan(settings_for(world), d("good"), "127.0.5.10")
    # Then no http.* finding, and the scan is complete
    assert result.family is Family.HTTP
    assert result.findings == []
    assert result.complete


@pytest.mark.network
def test_two_domains_on_one_address_scanned_together_keep_their_own_host_and_sni(
    world: World,
) -> None:
    # Given good and twin on the same address, scanned concurrently with one client
    async def run() -> tuple[FamilyResult, FamilyResult]:
        ctx = ProbeContext.from_settings(settings_for(world))
        try:
            good, twin = await asyncio.gather(
                check_http(ctx, HostTarget(d("good"), "127.0.5.10"), WEB),
                check_http(ctx, HostTarget(d("twin"), "127.0.5.10"), WEB),
            )
            return good, twin
        finally:
            await ctx.aclose()

    good, twin = asyncio.run(run())
    # Then each is judged on its own server block (a wrong SNI would get 421)
    assert ids(good) == set()
    assert ids(twin) == {
        "http.hsts.missing",
        "http.csp.missing",
        "http.frame_options.missing",
        "http.content_type_options.missing",
        "http.referrer_policy.missing",
        "http.security_txt.missing",
    }
    assert only(twin, "http.csp.missing").evidence["status"] == 200


@pytest.mark.network
def test_https_speaks_http2_with_the_domain_as_sni(world: World) -> None:
    async def run() -> HttpObservation:
        ctx = ProbeContext.from_settings(settings_for(world))
        try:
            request = FetchRequest(f"https://{d('twin')}/", "127.0.5.10")
            return await http_client(ctx).fetch(ctx, request)
        finally:
            await ctx.aclose()

    response = asyncio.run(run())
    assert response.http_version == "HTTP/2"
    assert response.status == 200  # nginx answers 421 when SNI and Host differ


@pytest.mark.network
def test_missing_headers_plain_http_and_version_disclosure(world: World) -> None:
    result = scan(settings_for(world), d("bare"), "127.0.5.11")
    assert pairs(result) == {
        ("http.no_https_redirect", 80, ""),
        ("http.version_disclosed", 80, "server"),
        ("http.version_disclosed", 443, "server"),
        ("http.hsts.missing", 443, ""),
        ("http.csp.missing", 443, ""),
        ("http.frame_options.missing", 443, ""),
        ("http.content_type_options.missing", 443, ""),
        ("http.referrer_policy.missing", 443, ""),
        ("http.security_txt.missing", 443, ""),
    }
    assert only(result, "http.no_https_redirect").evidence["request"] == f"GET http://{d('bare')}/"
    assert result.complete


@pytest.mark.network
@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("shorthsts", "127.0.5.12", {("http.hsts.short_max_age", 443, "")}),
        ("unsafecsp", "127.0.5.13", {("http.csp.unsafe", 443, "")}),
        (
            "cookies",
            "127.0.5.14",
            {
                ("http.cookie.insecure", 443, "PHPSESSID"),
                ("http.cookie.no_httponly", 443, "PHPSESSID"),
                ("http.cookie.no_samesite", 443, "PHPSESSID"),
                ("http.cookie.insecure", 443, "lang"),
            },
        ),
        ("cors", "127.0.5.15", {("http.cors.permissive", 443, "")}),
        ("autoindex", "127.0.5.16", {("http.directory_listing", 443, "/")}),
        ("status", "127.0.5.17", {("http.exposed.server_status", 443, "/nginx_status")}),
        ("soft404", "127.0.5.19", set()),
        ("expired", "127.0.5.20", {("http.security_txt.expired", 443, "")}),
        ("consent", "127.0.5.23", set()),
    ],
)
def test_one_weakness_per_site(
    world: World, name: str, address: str, expected: set[tuple[str, int, str]]
) -> None:
    result = scan(settings_for(world), d(name), address)
    assert pairs(result) == expected
    assert result.complete


@pytest.mark.network
@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        # RFC 6797 §6.1: a repeated directive makes the header invalid (ignored)
        ("hstsdup", "127.0.23.10", {("http.hsts.missing", 443, "")}),
        # §6.1.1 delta-seconds: "³" (sent as ISO-8859-1 byte 0xB3) is not a digit
        ("maxage3", "127.0.23.21", {("http.hsts.missing", 443, "")}),
        # CSP3 §6.4.2: frame-ancestors * protects nothing, and X-Frame-Options is then ignored
        ("framestar", "127.0.23.11", {("http.frame_options.missing", 443, "")}),
        # CSP3 §3.3: a policy in <meta http-equiv> is enforced
        ("metacsp", "127.0.23.12", {("http.csp.unsafe", 443, "")}),
        ("referrer", "127.0.23.13", {("http.referrer_policy.unsafe", 443, "")}),
        ("sri", "127.0.23.14", {("http.sri.missing", 443, "")}),
        (
            "crossdomain",
            "127.0.23.15",
            {
                ("http.crossdomain.permissive", 443, "/crossdomain.xml"),
                ("http.crossdomain.permissive", 443, "/clientaccesspolicy.xml"),
            },
        ),
        ("crossdomainok", "127.0.23.16", set()),
        # Fetch §3.2.5: browsers refuse "*" with credentials: nothing leaks
        ("corsstar", "127.0.23.17", set()),
        ("secfar", "127.0.23.18", {("http.security_txt.invalid", 443, "")}),
        (
            "plaincookie",
            "127.0.23.19",
            {
                ("http.no_https_redirect", 80, ""),
                ("http.cookie.insecure", 80, "sid"),
                ("http.cookie.insecure", 443, "sid"),
            },
        ),
        ("weakcsp", "127.0.23.20", {("http.csp.weak_directives", 443, "")}),
    ],
)
def test_standards_corner_cases_on_real_nginx(
    world: World, name: str, address: str, expected: set[tuple[str, int, str]]
) -> None:
    # Given nginx serving one corner case of the standards
    result = scan(settings_for(world), d(name), address)
    # Then exactly the finding the standard calls for, and a complete scan
    assert pairs(result) == expected, result.findings
    assert result.complete


@pytest.mark.network
def test_exposed_files_are_found_by_content_with_secrets_masked(world: World) -> None:
    extra = world.tmp / "paths.toml"
    extra.write_text(
        '[[path]]\npath = "/old/.env"\ncheck = "http.exposed.env_file"\ndetector = "env_file"\n'
    )
    result = scan(settings_for(world, paths_file=str(extra)), d("files"), "127.0.5.18")
    assert pairs(result) == {
        ("http.exposed.vcs", 443, "/.git/HEAD"),
        ("http.exposed.vcs", 443, "/.git/config"),
        ("http.exposed.vcs", 443, "/.svn/entries"),
        ("http.exposed.env_file", 443, "/.env"),
        ("http.exposed.env_file", 443, "/old/.env"),
        ("http.exposed.phpinfo", 443, "/phpinfo.php"),
        ("http.exposed.admin_panel", 443, "/phpmyadmin/"),
        ("http.exposed.admin_panel", 443, "/manager/html"),
        ("http.exposed.backup", 443, "/backup.sql"),
        ("http.exposed.backup", 443, "/backup.zip"),
    }
    evidence = json.dumps([dict(f.evidence) for f in result.findings])
    for secret in ("hunter2-secret", "q0Zx1Y2", "gitS3cret", "ministre@", "zzz"):
        assert secret not in evidence
    env = next(f for f in result.findings if f.discriminator == "/.env")
    assert env.evidence["request"] == f"GET https://{d('files')}/.env"
    assert env.evidence["status"] == 200
    assert result.complete


def requests_by_port(log: Path) -> dict[int, list[str]]:
    seen: dict[int, list[str]] = {80: [], 443: []}
    for line in log.read_text().splitlines():
        port, request = line.split(" ", 1)
        seen[int(port)].append(request)
    return seen


EXPOSURES = {"http.exposed.vcs", "http.exposed.env_file", "http.exposed.backup"}


@pytest.mark.network
def test_a_mirrored_http_site_is_asked_only_for_what_its_https_twin_exposed(
    world: World,
) -> None:
    # Given one document root served on 80 and 443, with /.git/HEAD exposed
    site = next(s for s in NGINX_SITES if s.name == d("mirror"))
    log = site.log_file(world.tmp / "nginx")
    log.write_text("")
    result = scan(settings_for(world), d("mirror"), "127.0.5.26")
    # Then the exposure is reported on both sites, the HTTP one marked as the mirror
    exposed = {p for p in pairs(result) if p[0] in EXPOSURES}
    assert exposed == {
        ("http.exposed.vcs", 443, "/.git/HEAD"),
        ("http.exposed.vcs", 80, "/.git/HEAD"),
    }
    on_http = next(f for f in result.findings if f.port == 80 and f.check_id in EXPOSURES)
    assert on_http.evidence["mirror_of"] == "http:443"
    assert result.complete
    # And the whole list was requested over HTTPS only: HTTP got its front page, the
    # soft-404 baseline, the one path found and TRACE
    seen = requests_by_port(log)
    assert len(seen[443]) > len(load_path_list(None))
    assert [r.split(" ")[1] for r in seen[80] if "vigie-" not in r] == ["/", "/.git/HEAD", "/"]
    assert len(seen[80]) == 6

    # Given paths_on_mirrors = "all": both sites get the whole list, same findings
    log.write_text("")
    every = scan(settings_for(world, paths_on_mirrors="all"), d("mirror"), "127.0.5.26")
    assert {p for p in pairs(every) if p[0] in EXPOSURES} == exposed
    assert len(requests_by_port(log)[80]) > len(load_path_list(None))


@pytest.mark.network
def test_http_only_site_is_reported_for_the_missing_redirect_only(world: World) -> None:
    result = scan(settings_for(world), d("httponly"), "127.0.5.21", HTTP_ONLY)
    assert pairs(result) == {("http.no_https_redirect", 80, "")}


@pytest.mark.network
def test_security_txt_is_asked_of_every_registered_name(world: World) -> None:
    # Given a registered name that is a subdomain and serves no security.txt
    result = scan(settings_for(world), "portal.sante.gouv.ml", "127.0.5.22")
    # Then it is judged like any other: the registry, not a suffix list, says it is a main host
    assert pairs(result) == {("http.security_txt.missing", 443, "")}


@pytest.mark.network
def test_a_redirect_to_another_host_in_scope_is_followed_but_never_graded(world: World) -> None:
    before = world.hostile.connections[(OTHER, 80)]
    result = scan(settings_for(world), d("hop"), "127.0.5.24")
    # other.vigie-http.test sends no security header at all: none of that is hop's
    assert pairs(result) == set()
    assert world.hostile.connections[(OTHER, 80)] > before


@pytest.mark.network
def test_a_redirect_to_a_name_out_of_scope_sends_nothing_there(world: World) -> None:
    result = scan(settings_for(world), d("leave"), "127.0.5.25")
    assert pairs(result) == set()
    assert world.hostile.connections[(EVIL, 443)] == 0


# --- against hostile servers -----------------------------------------------------------

REDIRECTING = {("http.no_https_redirect", 80, ""), ("http.security_txt.missing", 80, "")}


@pytest.mark.network
@pytest.mark.parametrize(("name", "address"), [("loop", "127.0.5.30"), ("chain", "127.0.5.31")])
def test_redirect_loops_and_endless_chains_stop(
    world: World, event_loop: str, name: str, address: str
) -> None:
    started = time.monotonic()
    result = scan(settings_for(world, event_loop), d(name), address, HTTP_ONLY)
    assert pairs(result) == REDIRECTING
    finding = only(result, "http.no_https_redirect")
    assert finding.evidence["stopped"].startswith(("redirect loop", "more than 5 redirects"))
    assert len(finding.evidence["redirect_chain"]) <= 6
    assert result.complete
    assert time.monotonic() - started < 5


@pytest.mark.network
def test_a_redirect_to_an_address_out_of_scope_is_recorded_not_followed(
    world: World, event_loop: str
) -> None:
    result = scan(settings_for(world, event_loop), d("oos"), "127.0.5.32", HTTP_ONLY)
    # security.txt redirects out of scope too: not followed, so not judged (never "missing")
    assert pairs(result) == {("http.no_https_redirect", 80, "")}
    assert "out of scope" in only(result, "http.no_https_redirect").evidence["stopped"]
    assert world.hostile.connections[(EVIL_LITERAL, 80)] == 0


@pytest.mark.network
def test_headers_dripped_one_byte_a_second_end_at_the_total_timeout(
    world: World, event_loop: str
) -> None:
    started = time.monotonic()
    result = scan(settings_for(world, event_loop), d("slow"), "127.0.5.33", HTTP_ONLY)
    elapsed = time.monotonic() - started
    assert pairs(result) == {("scan.timeout", 80, "http:80")}
    assert not result.complete
    assert elapsed < 3 + 2


@pytest.mark.network
def test_a_body_dripped_slowly_keeps_its_headers_and_marks_the_scan_incomplete(
    world: World,
    event_loop: str,
) -> None:
    started = time.monotonic()
    result = scan(settings_for(world, event_loop), d("slowbody"), "127.0.5.39", HTTP_ONLY)
    elapsed = time.monotonic() - started
    # Then the tidy headers were judged (only the missing redirect), once, within the deadline
    assert pairs(result) == {("http.no_https_redirect", 80, ""), ("scan.timeout", 80, "http:80")}
    assert not result.complete
    assert elapsed < 3 + 2


@pytest.mark.network
@pytest.mark.parametrize(("name", "address"), [("endless", "127.0.5.34"), ("big", "127.0.5.35")])
def test_oversized_headers_are_refused(
    world: World, event_loop: str, name: str, address: str
) -> None:
    started = time.monotonic()
    tracemalloc.start()
    try:
        result = scan(
            settings_for(world, event_loop, max_header_bytes=65_536), d(name), address, HTTP_ONLY
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pairs(result) == {("scan.error", 80, "http:80")}
    assert not result.complete
    assert peak < 50 << 20
    assert time.monotonic() - started < 5


@pytest.mark.network
def test_a_gzip_bomb_is_read_within_the_body_limit(world: World, event_loop: str) -> None:
    started = time.monotonic()
    tracemalloc.start()
    try:
        result = scan(settings_for(world, event_loop), d("bomb"), "127.0.5.36", HTTP_ONLY)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    # Then the zeros are judged like any page (no headers, no security.txt), memory stays small
    assert pairs(result) == {
        ("http.no_https_redirect", 80, ""),
        ("http.csp.missing", 80, ""),
        ("http.frame_options.missing", 80, ""),
        ("http.content_type_options.missing", 80, ""),
        ("http.referrer_policy.missing", 80, ""),
        ("http.security_txt.missing", 80, ""),
    }
    assert result.complete
    assert peak < 50 << 20, peak
    assert elapsed < 10


@pytest.mark.network
def test_trace_echo_is_reported(world: World, event_loop: str) -> None:
    result = scan(settings_for(world, event_loop), d("trace"), "127.0.5.37", HTTP_ONLY)
    assert pairs(result) == {
        ("http.no_https_redirect", 80, ""),
        ("http.trace_enabled", 80, ""),
    }
    assert "<marker>" in only(result, "http.trace_enabled").evidence["echo"]


def test_every_http_id_is_exercised_by_these_tests() -> None:
    source = Path(__file__).read_text()
    assert {check_id for check_id in HTTP_IDS if f'"{check_id}"' not in source} == set()
