"""Property tests: every pure HTTP check, fed arbitrary text for each header and body it
reads, returns findings and never raises (issue 18: a server must not be able to hide
its own weaknesses by making a check crash).

Inputs lean on what broke before: non-ASCII digits (``max-age=³``), control
characters, invalid UTF-8 in bodies, huge values, markup with hostile attributes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigie.model import Finding, HostTarget
from vigie.scanner.http import (
    DETECTORS,
    Baseline,
    BoundedDecoder,
    Endpoint,
    HttpObservation,
    PathProbe,
    Site,
    Visit,
    exposure_findings,
    graded_sites,
    looks_like_baseline,
    mirror_groups,
    no_https_redirect_findings,
    page_facts,
    parse_csp,
    parse_hsts,
    parse_security_txt,
    parse_set_cookie,
    security_txt_findings,
    trace_findings,
    visit_findings,
)
from vigie.scanner.http._family import next_location
from vigie.scanner.http._headers import (
    DOCUMENT_CHECKS,
    cookie_findings,
    cors_findings,
    hsts_findings,
    version_findings,
)
from vigie.scanner.http._security_txt import parse_expires, registrable_domain
from vigie.scanner.http_wire import parse_response, response_complete

TARGET = HostTarget("agence.vigie-http.test", "127.0.23.1")
SITE = Site(TARGET, 443)
NOW = datetime(2026, 12, 3, tzinfo=UTC)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that broke parsers before, mixed into arbitrary text.
NASTY = [
    "³",
    "١",
    "５",
    "\u0663",
    "\x00",
    "\r",
    "\n",
    "\x0b",
    "\x1f",
    "\x7f",
    "\u2028",
    "\ufeff",
    ";",
    ",",
    "=",
    '"',
    "'",
    "\\",
    "*",
    ":",
    "-",
    "<",
    ">",
    "/",
]
nasty_text = st.text(
    alphabet=st.one_of(st.sampled_from(NASTY), st.characters(max_codepoint=0x2FFF)),
    max_size=200,
)
huge = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from(["9", "a;", "³", "<a "]),
    st.integers(4_400, 20_000),
)
header_value = st.one_of(nasty_text, huge)
# Header values as a server sends them: ISO-8859-1 text (what httpcore decodes to).
latin1_value = st.binary(max_size=300).map(lambda raw: raw.decode("latin-1"))
any_value = st.one_of(header_value, latin1_value)

HEADERS_READ = [
    "Strict-Transport-Security",
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Set-Cookie",
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Server",
    "X-Powered-By",
    "X-AspNet-Version",
    "Location",
    "Content-Type",
    "WWW-Authenticate",
]
headers = st.lists(st.tuples(st.sampled_from(HEADERS_READ), any_value), max_size=12)

# Markup around hostile attribute values, and raw bytes (invalid UTF-8 included).
TAGS = ["meta", "script", "link", "base", "form", "head", "body", "title", "html", "noscript"]
ATTRS = ["http-equiv", "content", "name", "src", "href", "integrity", "rel"]
element = st.builds(
    lambda tag, attrs, text: (
        f"<{tag} " + " ".join(f'{name}="{value}"' for name, value in attrs) + f">{text}"
    ),
    st.sampled_from(TAGS),
    st.lists(st.tuples(st.sampled_from(ATTRS), nasty_text), max_size=4),
    nasty_text,
)
markup = st.lists(element, max_size=12).map(
    lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
)
body = st.one_of(st.binary(max_size=2_000), markup, huge.map(str.encode))

url = st.sampled_from(
    [
        "https://agence.vigie-http.test/",
        "http://agence.vigie-http.test/",
        "https://agence.vigie-http.test:8443/a?b=c",
        "http://[::1]/",
    ]
)


def observation(
    url: str, status: int, pairs: list[tuple[str, str]], raw: bytes, method: str = "GET"
) -> HttpObservation:
    return HttpObservation(method, url, status, tuple(pairs), raw)


responses = st.builds(
    observation, url, st.sampled_from([200, 301, 302, 401, 404, 500]), headers, body
)


def are_findings(found: list[Finding]) -> bool:
    return all(isinstance(finding, Finding) for finding in found)


@PROPERTY
@given(responses)
def test_header_checks_never_raise(response: HttpObservation) -> None:
    # DOCUMENT_CHECKS: CSP, CSP directives, framing, nosniff, Referrer-Policy, SRI
    for check in (
        *DOCUMENT_CHECKS,
        hsts_findings,
        version_findings,
        cookie_findings,
        cors_findings,
    ):
        assert are_findings(check(SITE, response))
    assert are_findings(cookie_findings(SITE, response, has_https=True))


@PROPERTY
@given(any_value)
def test_header_parsers_never_raise(value: str) -> None:
    policy = parse_hsts(value)
    assert policy.max_age is None or 0 <= policy.max_age <= 10**12
    parse_csp([value])
    cookie = parse_set_cookie(value)
    if cookie is not None:
        assert isinstance(cookie.deleted, bool)
        assert cookie.samesite_enforced in ("", "strict", "lax", "none")
    parse_expires(value)
    registrable_domain(value)


@PROPERTY
@given(st.sampled_from(["max-age=", 'max-age="', "Max-Age="]), nasty_text)
def test_digits_that_are_not_ascii_never_raise(prefix: str, digits: str) -> None:
    assert parse_hsts(prefix + digits).max_age is None or digits.strip('"').isascii()
    cookie = parse_set_cookie(f"sid=1; {prefix}{digits}")
    assert cookie is not None and isinstance(cookie.deleted, bool)


@PROPERTY
@given(body, st.sampled_from(["text/html", "text/plain", "", "application/xhtml+xml"]))
def test_page_facts_never_raise(raw: bytes, content_type: str) -> None:
    facts = page_facts(raw, content_type)
    assert len(facts.subresources) <= 500


@PROPERTY
@given(responses, st.booleans(), nasty_text)
def test_security_txt_never_raises(
    response: HttpObservation, has_https: bool, stopped: str
) -> None:
    assert are_findings(
        security_txt_findings(SITE, response, NOW, has_https=has_https, stopped=stopped)
    )
    parse_security_txt(response.text)


@PROPERTY
@given(responses, responses)
def test_content_detectors_and_soft_404_never_raise(
    response: HttpObservation, sample: HttpObservation
) -> None:
    baseline = Baseline((sample,), "tok")
    looks_like_baseline(response, baseline)
    for name in DETECTORS:
        probe = PathProbe("/x", "http.exposed.backup", name)
        assert are_findings(exposure_findings(SITE, probe, response, baseline))
    assert are_findings(trace_findings(SITE, response, "marker"))


@PROPERTY
@given(st.lists(responses, min_size=1, max_size=3))
def test_whole_visits_are_judged_without_raising(chain: list[HttpObservation]) -> None:
    start = Endpoint("https" if chain[0].url.startswith("https") else "http", 443)
    visit = Visit(start, tuple(chain), chain[-1])
    assert are_findings(visit_findings(TARGET, [visit], graded_sites([visit])))
    assert are_findings(no_https_redirect_findings(Site(TARGET, 80), chain))


@PROPERTY
@given(st.binary(max_size=3_000), st.sampled_from([[], ["gzip"], ["deflate"]]))
def test_bounded_decoder_raises_only_its_own_error(raw: bytes, codings: list[str]) -> None:
    decoder = BoundedDecoder(codings, 1024)
    try:
        decoder.feed(raw)
    except Exception as exc:  # only BodyDecodeError may come out
        assert type(exc).__name__ == "BodyDecodeError"
    assert len(decoder.body) <= 1024


wire_head = st.lists(
    st.tuples(
        st.sampled_from(["Content-Length", "Transfer-Encoding", "Server", "X"]),
        st.binary(max_size=30),
    ),
    max_size=6,
)


@PROPERTY
@given(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 401 ", b"HTTP/1.1 \xb3\xb3\xb3 X", b"SSH-2.0"]),
    wire_head,
    st.binary(max_size=200),
)
def test_the_service_http_reader_never_raises(
    status: bytes, fields: list[tuple[str, bytes]], rest: bytes
) -> None:
    raw = (
        status
        + b"\r\n"
        + b"".join(name.encode() + b": " + value + b"\r\n" for name, value in fields)
        + b"\r\n"
        + rest
    )
    for cut in (len(raw), len(raw) // 2):
        assert isinstance(response_complete(raw[:cut]), bool)
        parse_response(raw[:cut])


def test_a_check_that_raises_loses_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a document check with a bug that raises on some input
    import vigie.scanner.http._family as family

    def broken_check(site: Site, response: HttpObservation) -> list[Finding]:
        raise ValueError("invalid literal for int() with base 10: '³'")

    monkeypatch.setattr(family, "DOCUMENT_CHECKS", (broken_check, *family.DOCUMENT_CHECKS))
    page = observation("https://agence.vigie-http.test/", 200, [], b"<p>x</p>")
    visit = Visit(Endpoint("https", 443), (page,), page)
    # When the host's visit is judged
    found = visit_findings(TARGET, [visit], graded_sites([visit]))
    # Then the bug is a scan.error naming the check, and the other checks' findings remain
    errors = [f for f in found if f.check_id == "scan.error"]
    assert [f.discriminator for f in errors] == ["check:broken_check"]
    assert "ValueError" in errors[0].evidence["detail"]
    assert {"http.hsts.missing", "http.csp.missing"} <= {f.check_id for f in found}


ADVERSARIAL = [" \n", "\n", "9", "<a ", "a=", "-- ", "PHP Version ", "<title>", "\t", "a;", ";,"]


@pytest.mark.parametrize("piece", ADVERSARIAL)
def test_no_check_is_slower_than_linear_on_hostile_text(piece: str) -> None:
    # Given 64 KiB of one repeated piece, as a body and as every header value read
    text = piece * (65_536 // len(piece))
    pairs = [(name, text) for name in HEADERS_READ]
    page = observation("https://agence.vigie-http.test/", 200, pairs, text.encode())
    path = observation("https://agence.vigie-http.test/x", 200, [], text.encode())
    started = time.monotonic()
    # When every check reads it (a quadratic regex took a minute on blank lines)
    visit = Visit(Endpoint("https", 443), (page,), page)
    visit_findings(TARGET, [visit], graded_sites([visit]))
    for detector in DETECTORS.values():
        detector(path)
    security_txt_findings(SITE, path, NOW)
    # Then it takes well under a second of CPU (a few seconds on a loaded machine)
    assert time.monotonic() - started < 5


@PROPERTY
@given(url, any_value, st.lists(responses, min_size=1, max_size=2))
def test_redirect_targets_and_mirrors_never_raise(
    current: str, location: str, pages: list[HttpObservation]
) -> None:
    target, problem = next_location(current, location)
    assert bool(target) != bool(problem)
    sites = {
        Endpoint("https", 443 + n): Visit(Endpoint("https", 443 + n), (p,), p)
        for n, p in enumerate(pages)
    }
    assert len(mirror_groups(sites, "hits")) >= 1
