"""HTTP checks against oracles vigie did not write: the standards' own examples, h11
for the HTTP/1.1 wire, tinyhtml5 (a WHATWG HTML parser) for what a page declares.

Real-server tests of the same checks are in test_http.py (nginx).
"""

from __future__ import annotations

import h11
import pytest
import tinyhtml5

from vigie.model import HostTarget
from vigie.scanner.http import (
    DETECTORS,
    HttpObservation,
    Site,
    csp_findings,
    csp_weak_directive_findings,
    frame_options_findings,
    page_facts,
    referrer_policy_findings,
    sri_findings,
)
from vigie.scanner.http_wire import build_request, parse_response, response_complete

SITE = Site(HostTarget("agence.vigie-http.test", "127.0.23.1"), 443)
PAGE_URL = "https://agence.vigie-http.test/accueil/"


def page(
    body: str = "",
    headers: dict[str, str] | None = None,
    url: str = PAGE_URL,
) -> HttpObservation:
    pairs = [("Content-Type", "text/html; charset=utf-8"), *(headers or {}).items()]
    return HttpObservation("GET", url, 200, tuple(pairs), body.encode())


def ids(findings: list[object]) -> set[str]:
    return {f.check_id for f in findings}  # type: ignore[attr-defined]


# --- the HTTP/1.1 wire of the service family: h11 on both ends ---------------------------


def test_content_length_with_a_non_ascii_digit_is_refused_not_raised() -> None:
    # Given a response whose Content-Length is "³" (ISO-8859-1 byte 0xB3; str.isdigit() is True)
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: \xb3\r\n\r\nab"
    # When the reader decides whether the response is complete and parses it
    # Then nothing raises: h11 (RFC 9110 §8.6: 1*DIGIT) refuses the framing
    assert response_complete(raw) is True
    assert parse_response(raw) is None


def test_requests_are_what_an_h11_server_reads() -> None:
    # Given the bytes vigie sends to fingerprint an HTTP service
    wire = build_request(
        "GET", "es.agence.ml:9200", "/_cat/indices", {"Accept": "application/json"}
    )
    # When an h11 server reads them
    server = h11.Connection(h11.SERVER)
    server.receive_data(wire)
    request = server.next_event()
    # Then it sees one complete GET with the Host, and our headers
    assert isinstance(request, h11.Request)
    assert (request.method, request.target) == (b"GET", b"/_cat/indices")
    headers = dict(request.headers)
    assert headers[b"host"] == b"es.agence.ml:9200"
    assert headers[b"accept"] == b"application/json"
    assert isinstance(server.next_event(), h11.EndOfMessage)


@pytest.mark.parametrize(
    "framing",
    [
        [("Content-Length", "21")],
        [("Transfer-Encoding", "chunked")],
    ],
)
def test_responses_framed_by_an_h11_server_are_read_whole(framing: list[tuple[str, str]]) -> None:
    # Given a JSON answer framed by h11's server side (length or chunks)
    server = h11.Connection(h11.SERVER)
    server.receive_data(build_request("GET", "couch.agence.ml", "/"))
    server.next_event()
    server.next_event()
    wire = server.send(h11.Response(status_code=200, headers=[*framing, ("Server", "CouchDB")]))
    assert wire is not None
    for part in (b'{"couchdb":', b'"Welcome"}'):
        wire += server.send(h11.Data(data=part)) or b""
    wire += server.send(h11.EndOfMessage()) or b""
    # Then vigie's reader stops at the end of the message and gets the same body
    assert response_complete(wire)
    assert not response_complete(wire[:-3])
    response = parse_response(wire)
    assert response is not None and response.json() == {"couchdb": "Welcome"}
    assert response.header("server") == "CouchDB"


def test_a_body_delimited_by_the_close_is_kept_as_it_came() -> None:
    raw = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\npartial body"
    response = parse_response(raw)
    assert response is not None and response.body == b"partial body"
    assert parse_response(b"SSH-2.0-OpenSSH_9.2\r\n") is None
    assert response_complete(b"SSH-2.0")  # not HTTP: stop reading at once


# --- what a page declares, compared with a WHATWG HTML parser ----------------------------

XHTML = "{http://www.w3.org/1999/xhtml}"

PAGES = [
    # The peer's files (MDN HTTP Observatory test/files), as they are
    "<!doctype html><html lang='en'><head><meta charset='UTF-8' />"
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none';\" />"
    "<title>Title</title></head><body></body></html>",
    "<!doctype html><html><head>"
    "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; object-src 'none'\"/>"
    "<meta http-equiv='Content-SECURITY-Policy' content=\"connect-src 'self'\"/>"
    "<meta http-equiv=' Content-Security-Policy ' content=\"img-src 'self'\"/>"
    "<title>Title</title></head><body></body></html>",
    # A meta in the body is not a policy (HTML §4.2.5.3: not a child of head)
    "<html><head><title>x</title></head><body>"
    "<meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\"></body></html>",
    # Text in the head ends it: what follows is in the body
    "<html><head>Bonjour<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\">",
    # No <head> tag at all: the implied head holds the meta
    "<meta http-equiv=Content-Security-Policy content=\"default-src 'self'\"><p>texte",
    # A comment and a script that only mention a meta
    "<head><!-- <meta http-equiv='Content-Security-Policy' content='x'> -->"
    "<script>var s = \"<meta http-equiv='Content-Security-Policy' content='y'>\";</script>"
    "<title>t</title></head>",
    # Unquoted, upper-case attributes and entities
    '<HTML><HEAD><META HTTP-EQUIV=CONTENT-SECURITY-POLICY CONTENT="default-src &apos;self&apos;">'
    "<SCRIPT SRC=https://cdn.example.net/a.js INTEGRITY=sha256-abc=></SCRIPT>"
    "<LINK REL='preload stylesheet' HREF=//cdn.example.net/b.css></HEAD></HTML>",
]


def _oracle(html: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Meta CSP in head and the scripts/stylesheets, as tinyhtml5's tree has them."""
    root = tinyhtml5.parse(html)
    head = root.find(f"{XHTML}head")
    metas = [
        element.get("content", "")
        for element in (head if head is not None else [])
        if element.tag == f"{XHTML}meta"
        and element.get("http-equiv", "").lower() == "content-security-policy"
        and "content" in element.attrib
    ]
    loads = []
    for element in root.iter():
        if element.tag == f"{XHTML}script" and "src" in element.attrib:
            loads.append(("script", element.get("src", "").strip(), element.get("integrity", "")))
        rels = element.get("rel", "").lower().split()
        if element.tag == f"{XHTML}link" and "stylesheet" in rels and "href" in element.attrib:
            loads.append(
                ("stylesheet", element.get("href", "").strip(), element.get("integrity", ""))
            )
    return metas, loads


@pytest.mark.parametrize("html", PAGES)
def test_page_facts_agree_with_a_whatwg_parser(html: str) -> None:
    facts = page_facts(html.encode(), "text/html")
    metas, loads = _oracle(html)
    assert list(facts.meta_csp) == metas
    assert [(r.kind, r.url, r.integrity) for r in facts.subresources] == loads


def test_meta_csp_is_enforced_but_cannot_carry_frame_ancestors() -> None:
    # CSP3 §3.3: a meta policy is enforced; frame-ancestors, report-uri and sandbox are ignored
    meta = "<head><meta http-equiv='Content-Security-Policy' content=\"{}\"></head>"
    strict = page(meta.format("default-src 'self'; frame-ancestors 'none'"))
    assert csp_findings(SITE, strict) == []
    assert ids(frame_options_findings(SITE, strict)) == {"http.frame_options.missing"}
    loose = page(meta.format("script-src 'self' 'unsafe-inline'"))
    assert ids(csp_findings(SITE, loose)) == {"http.csp.unsafe"}
    # A strict header and a loose meta: both apply, the strict one wins (CSP3 §4.2.2)
    both = page(
        meta.format("default-src https:"),
        {"Content-Security-Policy": "default-src 'none'"},
    )
    assert csp_findings(SITE, both) == []


# --- CSP3's own examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "unsafe"),
    [
        # CSP3 §1.1 "Examples"
        ("script-src https://cdn.example.com/scripts/; object-src 'none'", False),
        # §2.3.1 "nonce-source" example
        ("script-src 'nonce-ch4hvvbHDpv7xCSvXCs3BrNggHdTzxUA'", False),
        # §8.2 "strict-dynamic" example
        ("script-src 'strict-dynamic' 'nonce-DhcnhD3khTMePgXwdayK9BsMqXjhguVV'", False),
        # §6.7.2.x: 'unsafe-inline' beside a hash is ignored
        ("script-src 'unsafe-inline' 'sha256-abc123'", False),
        ("script-src 'self' 'unsafe-eval'", True),
        ("default-src 'self'; script-src *", True),
        ("default-src 'self' data:", True),
    ],
)
def test_csp3_examples(policy: str, unsafe: bool) -> None:
    findings = csp_findings(SITE, page(headers={"Content-Security-Policy": policy}))
    assert (ids(findings) == {"http.csp.unsafe"}) is unsafe


# Once one directive is reported, the absent base-uri and form-action are listed with it
REST = {"base-uri", "form-action"}


@pytest.mark.parametrize(
    ("policy", "body", "weak"),
    [
        ("default-src 'self'", "<p>x</p>", set()),  # object-src falls back to 'self'
        ("script-src 'self'", "<p>x</p>", {"object-src", *REST}),
        ("script-src 'self'; object-src 'none'", "<p>x</p>", set()),
        ("default-src 'none'; object-src *", "<p>x</p>", {"object-src", *REST}),
        ("default-src 'none'; object-src https:", "<p>x</p>", {"object-src", *REST}),
        # base-uri matters for nonce/hash/strict-dynamic script policies only
        ("default-src 'self'; script-src 'nonce-abc'", "<p>x</p>", REST),
        ("default-src 'self'; script-src 'nonce-abc'; base-uri 'none'", "<p>x</p>", set()),
        ("default-src 'self'; script-src 'nonce-abc'; base-uri *", "<p>x</p>", REST),
        # form-action has no fallback and matters on a page with a form
        ("default-src 'self'", "<form action=/login></form>", REST),
        ("default-src 'self'; form-action 'self'", "<form action=/login></form>", set()),
        ("default-src 'self'; form-action https:", "<form></form>", REST),
        # object-src open whatever scripts may do (http.csp.unsafe speaks for scripts)
        ("default-src *", "<form></form>", {"object-src", *REST}),
        ("default-src 'none'; base-uri *; object-src *", "<p>x</p>", {"object-src", *REST}),
        ("default-src 'none'; base-uri https:", "<p>x</p>", REST),
        ("default-src 'none'; base-uri https://portail.gouv.ml", "<p>x</p>", set()),
    ],
)
def test_csp_weak_directives(policy: str, body: str, weak: set[str]) -> None:
    findings = csp_weak_directive_findings(SITE, page(body, {"Content-Security-Policy": policy}))
    named = {line.split(":")[0] for f in findings for line in f.evidence["weak"]}
    assert named == weak
    assert ids(findings) == ({"http.csp.weak_directives"} if weak else set())


# --- Referrer Policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "meta", "url", "expected"),
    [
        ("strict-origin-when-cross-origin", None, PAGE_URL, set()),
        ("no-referrer", None, PAGE_URL, set()),
        ("unsafe-url", None, PAGE_URL, {"http.referrer_policy.unsafe"}),
        ("origin-when-cross-origin", None, PAGE_URL, {"http.referrer_policy.unsafe"}),
        ("origin", None, PAGE_URL, {"http.referrer_policy.unsafe"}),
        # §8.1: the last recognised token wins; unknown tokens are skipped
        ("unsafe-url, strict-origin", None, PAGE_URL, set()),
        ("no-referrer, unsafe-url", None, PAGE_URL, {"http.referrer_policy.unsafe"}),
        ("no-referrer, whimsy", None, PAGE_URL, set()),
        ("whimsy", None, PAGE_URL, {"http.referrer_policy.missing"}),
        # §3.2: no-referrer-when-downgrade leaks the full URL everywhere from an HTTP page
        ("no-referrer-when-downgrade", None, PAGE_URL, set()),
        (
            "no-referrer-when-downgrade",
            None,
            "http://agence.vigie-http.test/",
            {"http.referrer_policy.unsafe"},
        ),
        # HTML §4.2.5.1: <meta name=referrer> replaces the header's policy; legacy values
        ("unsafe-url", "no-referrer", PAGE_URL, set()),
        ("no-referrer", "always", PAGE_URL, {"http.referrer_policy.unsafe"}),
        (None, "never", PAGE_URL, set()),
        (None, "origin-when-crossorigin", PAGE_URL, {"http.referrer_policy.unsafe"}),
        (None, None, PAGE_URL, {"http.referrer_policy.missing"}),
    ],
)
def test_referrer_policy(
    header: str | None, meta: str | None, url: str, expected: set[str]
) -> None:
    body = f"<head><meta name='referrer' content='{meta}'></head>" if meta else "<p>x</p>"
    headers = {"Referrer-Policy": header} if header else {}
    assert ids(referrer_policy_findings(SITE, page(body, headers, url))) == expected


# --- Subresource Integrity ----------------------------------------------------------------

# SRI §3 example: the integrity of example-framework.js
SRI_EXAMPLE = "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"


@pytest.mark.parametrize(
    ("markup", "fires"),
    [
        (
            f'<script src="https://example.com/example-framework.js" integrity="{SRI_EXAMPLE}" crossorigin="anonymous"></script>',
            False,
        ),
        ('<script src="https://example.com/example-framework.js"></script>', True),
        ('<script src="http://example.com/a.js"></script>', True),
        ('<script src="//cdn.example.net/a.js"></script>', True),
        ('<link rel="stylesheet" href="https://cdn.example.net/a.css">', True),
        ('<link rel="icon" href="https://cdn.example.net/favicon.ico">', False),
        ('<script src="/js/app.js"></script>', False),
        ('<script src="app.js"></script>', False),
        ('<script src="https://agence.vigie-http.test/js/app.js"></script>', False),
        ('<script src="https://AGENCE.vigie-http.test:443/js/app.js"></script>', False),
        # HTML §7.5 "same site": same scheme and registrable domain, whatever the port
        ('<script src="https://agence.vigie-http.test:8443/a.js"></script>', False),
        ('<script src="https://static.vigie-http.test/a.js"></script>', False),
        ('<script src="https://www.agence.vigie-http.test/a.js"></script>', False),
        # another scheme or another registered name is another site
        ('<script src="http://agence.vigie-http.test/a.js"></script>', True),
        ('<script src="https://vigie-http-cdn.test/a.js"></script>', True),
        ('<script src="data:application/javascript,alert(1)"></script>', False),
        # SRI §3.3.3: only sha256/384/512 count; md5 alone is no integrity at all
        ('<script src="https://cdn.example.net/a.js" integrity="md5-abc"></script>', True),
        (
            '<script src="https://cdn.example.net/a.js" integrity="sha256-abc= md5-x"></script>',
            False,
        ),
        # the document base URL moves relative URLs elsewhere (HTML §2.4.1)
        ('<base href="https://cdn.example.net/"><script src="a.js"></script>', True),
        ('<script src="http://[::1"></script>', False),  # unparseable: loads nothing
    ],
)
def test_sri(markup: str, fires: bool) -> None:
    findings = sri_findings(SITE, page(f"<html><head>{markup}</head><body></body></html>"))
    assert (ids(findings) == {"http.sri.missing"}) is fires


# --- cross-domain policies: the vendors' own examples -------------------------------------


@pytest.mark.parametrize(
    ("detector", "document", "fires"),
    [
        # Adobe cross-domain policy file specification, "allow all" and listed domains
        (
            "crossdomain_xml",
            '<?xml version="1.0"?><cross-domain-policy><allow-access-from domain="*" /></cross-domain-policy>',
            True,
        ),
        (
            "crossdomain_xml",
            '<cross-domain-policy><allow-access-from domain="*.example.com" />'
            '<allow-access-from domain="www.example.com" /></cross-domain-policy>',
            False,
        ),
        (
            "crossdomain_xml",
            '<cross-domain-policy><site-control permitted-cross-domain-policies="none"/></cross-domain-policy>',
            False,
        ),
        (
            "crossdomain_xml",
            '<cross-domain-policy><allow-http-request-headers-from domain="*" headers="SOAPAction"/></cross-domain-policy>',
            True,
        ),
        # Silverlight "allow all" and a restricted policy
        (
            "clientaccesspolicy_xml",
            '<access-policy><cross-domain-access><policy><allow-from http-request-headers="*">'
            '<domain uri="*"/></allow-from><grant-to><resource path="/" include-subpaths="true"/>'
            "</grant-to></policy></cross-domain-access></access-policy>",
            True,
        ),
        (
            "clientaccesspolicy_xml",
            "<access-policy><cross-domain-access><policy><allow-from>"
            '<domain uri="https://app.example.com"/></allow-from></policy></cross-domain-access></access-policy>',
            False,
        ),
        # not a policy: an HTML soft-404, an entity bomb, broken XML
        ("crossdomain_xml", '<html><body>allow-access-from domain="*"</body></html>', False),
        (
            "crossdomain_xml",
            '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            '<cross-domain-policy><allow-access-from domain="*"/></cross-domain-policy>',
            False,
        ),
        ("clientaccesspolicy_xml", "<access-policy><domain uri='*'", False),
    ],
)
def test_cross_domain_policies(detector: str, document: str, fires: bool) -> None:
    response = HttpObservation("GET", "https://a.test/x.xml", 200, (), document.encode())
    assert (DETECTORS[detector](response) is not None) is fires


def test_nothing_received_is_not_a_complete_answer() -> None:
    # h11 reads b"" as the end of the stream: before any byte, the reader must keep waiting
    # (a silent server is a scan.timeout, not an empty answer)
    assert response_complete(b"") is False
    assert parse_response(b"") is None
