"""The peer's HTTP cases served by real web servers and judged by a real scan.

``test_http_peer_cases`` judges each case of MDN HTTP Observatory's suite
through vigie's pure judgment of a visit. Here every case is served as a real
site would serve it and scanned by the HTTP family itself (``check_http``
through ``ProbeContext.from_settings``, the path of ``vigie scan``): the
headers go through nginx (HTTP/2 on 443, HTTP/1.1 on 80) and the HTTP
clients, the page is the file nginx serves with the type nginx gives it, the
redirects are followed hop by hop, the policy files are fetched among the
exposed paths against the site's own 404, and port 80 redirects to HTTPS
unless the case is about what port 80 does. The verdict is read with the
same equivalence sets and evidence-line convention as the pure port, and
must be the pure port's verdict (so the peer agreement the pure port
measures is the agreement a real scan gets).

The world (127.0.43.0/24): one nginx, one address per distinct input, every
site named ``mozilla.org`` (the peer's test site, so the cases' own URLs keep
their meaning); an asyncio HTTPS server for an input nginx cannot send (an
empty header value: nginx drops the line); nothing listens on the resolver
address, so a redirect to another host is never followed.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.scanner import http_servers as hs
from tests.scanner.test_http_peer_cases import (
    CASES,
    TARGET,
    Agreement,
    Case,
    named_ids,
    vigie_fails,
)
from vigie import event_loop as vigie_loop
from vigie.config import Settings
from vigie.model import FamilyResult, HostTarget, OpenPort
from vigie.scanner.http import check_http
from vigie.scanner.probe_context import ProbeContext

pytestmark = pytest.mark.network

NET = "127.0.43"
RESOLVER = f"{NET}.253"  # nothing listens: names other than the site's do not resolve
DOMAIN = TARGET.domain
REDIRECT_STATUSES = {301: "301 Moved Permanently", 302: "302 Found"}
COMPARABLE = [c for c in CASES if c.equivalent is not None]
# Cookies set on port 80's redirect as well (add_header at server level on both doors).
DOOR_SUITES = {"cookies"}

HeaderLines = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Input:
    """What one peer case serves: the page's header lines and body, port 80's answer,
    the TLS ports, and a file besides the page."""

    lines: HeaderLines
    body: str
    plain: str  # port 80: "redirect" (to https), "page", "" (closed), or "<status> <location>"
    tls_ports: tuple[int, ...]
    resource: tuple[str, str]
    door_lines: bool = False  # port 80's redirect carries the page's header lines too

    @property
    def raw(self) -> bool:
        """nginx cannot send these lines as they are (it drops an empty value)."""
        return any(not value or '"' in value or "$" in value for _, value in self.lines)

    def ports(self) -> list[OpenPort]:
        """The open ports a port scan of this site finds."""
        found = [OpenPort(80, "http")] if self.plain else []
        return found + [OpenPort(port, "https", tls=True) for port in self.tls_ports]


def served_input(item: Case, *, door_lines: bool = False) -> Input:
    """How a real site serves the peer's input for ``item``."""
    if item.chain:
        # The case is what port 80 answers; HTTPS exists where it redirects to on this host.
        url, status, location = item.chain[0]
        assert url == f"http://{DOMAIN}/"
        tls_ports: tuple[int, ...] = ()
        if location.startswith(f"https://{DOMAIN}/"):
            tls_ports = (443,)
        elif location.startswith(f"https://{DOMAIN}:"):
            tls_ports = (int(location.split(":")[2].split("/")[0]),)
        plain = f"{status} {location}" if location else "page"
        return Input(item.headers, item.body, plain, tls_ports, item.resource)
    # "no http, has https": the peer's site has no port 80 at all.
    plain = "" if item.suite == "redirection" else "redirect"
    return Input(item.headers, item.body, plain, (443,), item.resource, door_lines)


def _inputs() -> dict[Input, str]:
    """Every distinct input, with its address."""
    inputs: list[Input] = []
    for item in COMPARABLE:
        inputs.append(served_input(item))
        if item.suite in DOOR_SUITES:
            inputs.append(served_input(item, door_lines=True))
    unique = list(dict.fromkeys(inputs))
    assert len(unique) < 250, "one address per input in the /24"
    return {served: f"{NET}.{number}" for number, served in enumerate(unique, start=1)}


ADDRESSES = _inputs()


def _add_headers(lines: HeaderLines) -> str:
    return "".join(
        f'    add_header {name} "{value}" always;\n'
        for name, value in lines
        if name.lower() != "content-type"
    )


def _content_type(lines: HeaderLines) -> str:
    return next((value for name, value in lines if name.lower() == "content-type"), "")


@dataclass
class PeerSite(hs.Site):
    """nginx server blocks serving one :class:`Input` on its own address."""

    served: Input | None = None

    def server_blocks(self, www: Path, cert: Path, key: Path) -> str:
        served = self.served
        assert served is not None
        root = www / self.address
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(served.body)
        path, document = served.resource
        if path:
            (root / path.lstrip("/")).write_text(document)
        headers = _add_headers(served.lines)
        content_type = _content_type(served.lines)
        page = (
            f"    server_name {self.name};\n    root {root};\n    server_tokens off;\n"
            "    location ~ \\.xml$ { default_type text/xml; }\n" + headers
        )
        if content_type:
            page += f'    location = /index.html {{ types {{ }} default_type "{content_type}"; }}\n'
        blocks = []
        plain = f"    listen {self.address}:80;\n"
        if served.plain == "page":
            blocks.append(f"server {{\n{plain}{page}}}\n")
        elif served.plain:
            answer = "301 https://$host$request_uri" if served.plain == "redirect" else served.plain
            lines = headers if served.door_lines or served.plain != "redirect" else ""
            blocks.append(
                f"server {{\n{plain}    server_name {self.name};\n    server_tokens off;\n"
                f"{lines}    return {answer};\n}}\n"
            )
        for port in served.tls_ports:
            blocks.append(
                f"server {{\n    listen {self.address}:{port} ssl http2;\n"
                f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n{page}}}\n"
            )
        return "".join(blocks)


def nginx_sites() -> list[PeerSite]:
    return [
        PeerSite(
            DOMAIN,
            address,
            https=443 in served.tls_ports,
            headers={},
            security_txt=None,
            index=False,
            served=served,
        )
        for served, address in ADDRESSES.items()
        if not served.raw
    ]


# --- the asyncio server, for what nginx cannot send ----------------------------------


def _response(status: str, lines: HeaderLines, body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in lines)]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def raw_site(served: Input) -> hs.Handler:
    """The page with its header lines byte for byte on ``/``, a 404 anywhere else."""
    lines = served.lines
    if not _content_type(lines):
        lines = (*lines, ("Content-Type", "text/html"))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target, _ = await hs.read_request(reader)
            if not method:
                return
            if method == "GET" and target == "/":
                writer.write(_response("200 OK", lines, served.body.encode()))
            elif method == "GET" and target == served.resource[0]:
                document = served.resource[1].encode()
                writer.write(_response("200 OK", (("Content-Type", "text/xml"),), document))
            else:
                writer.write(_response("404 Not Found", (("Content-Type", "text/html"),), b"nf"))
            await writer.drain()

    return handler


async def to_https(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        method, target, _ = await hs.read_request(reader)
        if not method:
            return
        location = (("Location", f"https://{DOMAIN}{target}"),)
        writer.write(_response("301 Moved Permanently", location, b""))
        await writer.drain()


def serve_raw(servers: hs.HostileServers, tmp: Path) -> None:
    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(DOMAIN).configure_cert(tls)
    for served, address in ADDRESSES.items():
        if not served.raw:
            continue
        assert served.plain == "redirect" and served.tls_ports == (443,), served
        servers.serve(address, 80, to_https)
        servers.serve(address, 443, raw_site(served), tls)


# --- the scans ------------------------------------------------------------------------


def settings() -> Settings:
    return Settings.model_validate(
        {
            "scope": {"allow": [f"{NET}.0/24"]},
            "dns": {"resolvers": [RESOLVER], "timeout_s": 0.3, "lifetime_s": 0.5},
            "scan": {"max_rate_per_s": 10000},
            "http": {"connect_timeout_s": 5, "read_timeout_s": 5, "total_timeout_s": 10},
        }
    )


def scan_all() -> dict[str, FamilyResult]:
    """``check_http`` on every site, as a sweep runs hosts side by side."""
    config = settings()

    async def run() -> dict[str, FamilyResult]:
        ctx = ProbeContext.from_settings(config)
        limit = asyncio.Semaphore(24)

        async def one(served: Input, address: str) -> tuple[str, FamilyResult]:
            async with limit:
                return address, await check_http(ctx, HostTarget(DOMAIN, address), served.ports())

        try:
            done = await asyncio.gather(*(one(s, a) for s, a in ADDRESSES.items()))
        finally:
            await ctx.aclose()
        return dict(done)

    return vigie_loop.run(run(), config)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FamilyResult]]:
    tmp = tmp_path_factory.mktemp("peerwire")
    servers = hs.HostileServers()
    try:
        serve_raw(servers, tmp)
        with hs.run_nginx(list(nginx_sites()), tmp / "nginx"):
            yield scan_all()
    finally:
        servers.close()


def real_fails(item: Case, results: dict[str, FamilyResult], *, door_lines: bool = False) -> bool:
    """Whether the real scan of ``item``'s site reports an ID equivalent to the peer's test."""
    assert item.equivalent is not None
    result = results[ADDRESSES[served_input(item, door_lines=door_lines)]]
    problems = [f for f in result.findings if f.check_id.startswith("scan.")]
    assert not problems, problems
    return bool(named_ids(result.findings) & item.equivalent)


RUNS = [(c, False) for c in COMPARABLE] + [(c, True) for c in COMPARABLE if c.suite in DOOR_SUITES]


@pytest.mark.parametrize(
    ("item", "door_lines"),
    RUNS,
    ids=[f"{c.id}{' [cookies on the redirect]' if door else ''}" for c, door in RUNS],
)
def test_real_scan_gives_the_pure_verdict(
    item: Case, door_lines: bool, results: dict[str, FamilyResult]
) -> None:
    # Given the peer's input served by a real site, When vigie scans it,
    # Then it gives the verdict the pure judgment gives
    assert real_fails(item, results, door_lines=door_lines) is vigie_fails(item)


def test_real_path_figures(results: dict[str, FamilyResult]) -> None:
    # Given every comparable case scanned for real, When counted against the peer's verdicts
    figures = Agreement(len(CASES), len(COMPARABLE), 0)
    same = 0
    for item in COMPARABLE:
        real = real_fails(item, results)
        same += real is vigie_fails(item)
        figures.tally(item.id, real, item.peer_fails)
    print(
        f"\nreal path: sites {len(ADDRESSES)}, comparable {figures.comparable}, "
        f"same as the pure path {same}, agreeing with the peer {figures.agreeing} "
        f"({figures.rate:.1%}); missed {figures.missed}; false alarms {figures.false_alarms}"
    )
    # Then the real path is the pure path, whose disagreements are the named ones
    assert same == figures.comparable
    assert {c.id for c in CASES if c.disagree} == {*figures.missed, *figures.false_alarms}
