"""The peer's HTTP cases served by real web servers and judged by a real scan.

``test_http_peer_cases`` judges each case of MDN HTTP Observatory's suite
through vigie's pure judgment of a visit. Here every case is served as a real
site would serve it and scanned by the HTTP family itself (``check_http``
through ``ProbeContext.from_settings``, the path of ``vigie scan``): the
headers cross the wire and vigie's HTTP client, the page is what the server
sends with the type it gives, redirects are followed hop by hop, the policy
files are fetched among the exposed paths against the site's own 404, and
port 80 redirects to HTTPS unless the case is about what port 80 does. The
verdict is read with the pure port's equivalence sets and evidence-line
convention, and must be the pure port's verdict: the peer agreement the pure
port measures is then the agreement a real scan gets.

Each case is served three ways (``Variant``):

- ``nginx``: one nginx, one address per distinct input (HTTP/2 on 443), every
  site named ``mozilla.org``, the peer's test site, so the cases' own URLs keep
  their meaning; an input nginx cannot send (an empty header value: nginx
  drops the line) goes to the asyncio server on its own address instead;
- ``exact``: an asyncio server speaking HTTP/1.1 (over TLS on 443 and 8443)
  that sends the case's header lines byte for byte, on a few addresses, each
  case a site of its own name (``case<n>.mozilla.org``, chosen by Host), the
  page on every path (a catch-all application: the soft-404 baseline is the page);
- ``split``: the same server sending a list-valued field (CSP, X-Frame-Options,
  X-Content-Type-Options, Referrer-Policy) one field line per element, which
  RFC 9110 §5.3 makes the same message as the comma-joined line;
- ``doors``: nginx, cookie cases, port 80's redirect setting the page's
  cookies too (``add_header`` on both server blocks).

Nothing listens on the resolver address: a redirect to another host is never
followed (it is not judged either way).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
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
ASYNC_ADDRESSES = [f"{NET}.{number}" for number in range(200, 250)]
DOMAIN = TARGET.domain
COMPARABLE = [c for c in CASES if c.equivalent is not None]
# RFC 9110 §5.3: fields defined as lists, the same message whether joined or on several lines.
LIST_FIELDS = {
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
}
STATUS_TEXT = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    404: "Not Found",
    405: "Method Not Allowed",
}

HeaderLines = tuple[tuple[str, str], ...]


class Variant(Enum):
    NGINX = "nginx"
    EXACT = "exact"
    SPLIT = "split"
    DOORS = "doors"


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

    def split(self) -> Input:
        """The same fields, a list-valued one as one field line per element."""
        lines = tuple(
            (name, part.strip(" \t"))
            for name, value in self.lines
            for part in (value.split(",") if name.lower() in LIST_FIELDS else [value])
        )
        return Input(lines, self.body, self.plain, self.tls_ports, self.resource)


def served_input(item: Case, variant: Variant = Variant.NGINX) -> Input:
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
        served = Input(item.headers, item.body, plain, tls_ports, item.resource)
    else:
        # "no http, has https": the peer's site has no port 80 at all.
        plain = "" if item.suite == "redirection" else "redirect"
        doors = variant is Variant.DOORS
        served = Input(item.headers, item.body, plain, (443,), item.resource, doors)
    return served.split() if variant is Variant.SPLIT else served


def runs_of(variant: Variant) -> list[Case]:
    """The cases a variant serves: all, or those it changes."""
    if variant is Variant.DOORS:
        return [c for c in COMPARABLE if c.suite == "cookies" and not c.chain]
    if variant is Variant.SPLIT:
        return [c for c in COMPARABLE if served_input(c, variant) != served_input(c)]
    return COMPARABLE


@dataclass(frozen=True)
class Host:
    """One site scanned: its name, its address, what it serves."""

    name: str
    address: str
    served: Input


def _hosts() -> dict[tuple[Variant, Input], Host]:
    """Every distinct (variant, input) with its site: nginx sites on an address each,
    the asyncio server's sites by name over a few addresses."""
    hosts: dict[tuple[Variant, Input], Host] = {}
    nginx = 0
    for variant in Variant:
        for item in runs_of(variant):
            served = served_input(item, variant)
            key = (Variant.NGINX if variant is Variant.DOORS else variant, served)
            if key in hosts:
                continue
            if key[0] is Variant.NGINX:
                nginx += 1
                hosts[key] = Host(DOMAIN, f"{NET}.{nginx}", served)
            else:
                number = len(hosts) - nginx
                address = ASYNC_ADDRESSES[number % len(ASYNC_ADDRESSES)]
                hosts[key] = Host(f"case{number}.{DOMAIN}", address, served)
    assert nginx < 200, "nginx sites stay below the asyncio server's addresses"
    return hosts


HOSTS = _hosts()


def host_of(item: Case, variant: Variant) -> Host:
    served = served_input(item, variant)
    return HOSTS[(Variant.NGINX if variant is Variant.DOORS else variant, served)]


# --- nginx -------------------------------------------------------------------------------


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
            # Debian's nginx.conf compresses pages; the policy files too (gzip_types)
            "    gzip on;\n    gzip_min_length 1;\n    gzip_types text/xml;\n"
            "    location ~ \\.xml$ { default_type text/xml; }\n" + headers
        )
        if content_type:
            page += f'    location = /index.html {{ types {{ }} default_type "{content_type}"; }}\n'
        blocks = []
        plain = f"    listen {self.address}:80;\n"
        if served.plain == "page":
            blocks.append(f"server {{\n{plain}{page}}}\n")
        elif served.plain:
            redirect = served.plain == "redirect"
            answer = "301 https://$host$request_uri" if redirect else served.plain
            lines = headers if served.door_lines or not redirect else ""
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
            host.name,
            host.address,
            https=443 in host.served.tls_ports,
            headers={},
            security_txt=None,
            index=False,
            served=host.served,
        )
        for (variant, _), host in HOSTS.items()
        if variant is Variant.NGINX and not host.served.raw
    ]


# --- the asyncio server: exact bytes, HTTP/1.1, sites chosen by Host ----------------------


def _response(status: int, lines: HeaderLines, body: bytes = b"") -> bytes:
    head = [f"HTTP/1.1 {status} {STATUS_TEXT[status]}"]
    head += [f"{name}: {value}" for name, value in lines]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _on_host(location: str, name: str) -> str:
    """A Location to the peer's own site, moved to the site's name."""
    for scheme in ("http", "https"):
        prefix = f"{scheme}://{DOMAIN}"
        if location.startswith((prefix + "/", prefix + ":")):
            return f"{scheme}://{name}{location[len(prefix) :]}"
    return location


def answer(host: Host, port: int, method: str, target: str) -> bytes:
    """What the site answers on ``port`` for one request, as a small web server would."""
    served = host.served
    if port == 80 and served.plain == "redirect":
        lines = served.lines if served.door_lines else ()
        return _response(301, (("Location", f"https://{host.name}{target}"), *lines))
    if port == 80 and served.plain != "page":
        status, location = served.plain.split(" ", 1)
        return _response(int(status), (*served.lines, ("Location", _on_host(location, host.name))))
    if method != "GET":
        return _response(405, (("Allow", "GET"),))
    if served.resource[0] and target == served.resource[0]:
        return _response(200, (("Content-Type", "text/xml"),), served.resource[1].encode())
    # A catch-all application: the page on every path (nginx's sites answer 404 instead)
    lines = served.lines
    if not _content_type(lines):
        lines = (*lines, ("Content-Type", "text/html"))
    return _response(200, lines, served.body.encode())


def asyncio_site(port: int, lookup: Callable[[str], Host | None]) -> hs.Handler:
    """Serve the site that ``lookup`` finds for each request's Host on ``port``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            method, target, lines = await hs.read_request(reader)
            if not method:
                return
            names = [
                v.strip() for k, _, v in (ln.partition(":") for ln in lines) if k.lower() == "host"
            ]
            host = lookup(names[0].rsplit(":", 1)[0].lower() if names else "")
            if host is None:
                writer.write(_response(404, ()))
            else:
                writer.write(answer(host, port, method, target))
            await writer.drain()

    return handler


def serve_asyncio(servers: hs.HostileServers) -> None:
    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(DOMAIN, f"*.{DOMAIN}").configure_cert(tls)
    by_name = {
        host.name: host for (variant, _), host in HOSTS.items() if variant is not Variant.NGINX
    }
    ports = {port for (_, served) in HOSTS for port in (80, *served.tls_ports)}
    for address in ASYNC_ADDRESSES:
        for port in sorted(ports):
            handler = asyncio_site(port, by_name.get)
            servers.serve(address, port, handler, tls if port != 80 else None)
    # The inputs nginx cannot send, each on its nginx-pass address, named as there.
    for (variant, _), host in HOSTS.items():
        if variant is Variant.NGINX and host.served.raw:
            assert host.served.plain == "redirect" and host.served.tls_ports == (443,)
            servers.serve(host.address, 80, asyncio_site(80, lambda _, h=host: h))
            servers.serve(host.address, 443, asyncio_site(443, lambda _, h=host: h), tls)


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


Results = dict[Host, FamilyResult]


def scan_all() -> Results:
    """``check_http`` on every site, as a sweep runs hosts side by side."""
    config = settings()

    async def run() -> Results:
        ctx = ProbeContext.from_settings(config)
        limit = asyncio.Semaphore(24)

        async def one(host: Host) -> tuple[Host, FamilyResult]:
            async with limit:
                target = HostTarget(host.name, host.address)
                return host, await check_http(ctx, target, host.served.ports())

        try:
            done = await asyncio.gather(*(one(host) for host in HOSTS.values()))
        finally:
            await ctx.aclose()
        return dict(done)

    return vigie_loop.run(run(), config)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Results]:
    tmp = tmp_path_factory.mktemp("peerwire")
    servers = hs.HostileServers()
    try:
        serve_asyncio(servers)
        with hs.run_nginx(list(nginx_sites()), tmp / "nginx"):
            yield scan_all()
    finally:
        servers.close()


def real_fails(item: Case, results: Results, variant: Variant = Variant.NGINX) -> bool:
    """Whether the real scan of ``item``'s site reports an ID equivalent to the peer's test."""
    assert item.equivalent is not None
    result = results[host_of(item, variant)]
    problems = [f for f in result.findings if f.check_id.startswith("scan.")]
    assert not problems, problems
    return bool(named_ids(result.findings) & item.equivalent)


RUNS = [(item, variant) for variant in Variant for item in runs_of(variant)]


@pytest.mark.parametrize(
    ("item", "variant"), RUNS, ids=[f"{variant.value}:{item.id}" for item, variant in RUNS]
)
def test_real_scan_gives_the_pure_verdict(item: Case, variant: Variant, results: Results) -> None:
    # Given the peer's input served by a real site, When vigie scans it,
    # Then it gives the verdict the pure judgment gives
    assert real_fails(item, results, variant) is vigie_fails(item)


def test_the_wire_is_what_the_variants_say(results: Results) -> None:
    # Given the front pages each scan observed
    def seen(variant: Variant) -> list[tuple[str, str]]:
        return [
            (page.http_version, page.header("content-encoding") or "")
            for item in runs_of(variant)
            for page in results[host_of(item, variant)].observed
            if page.scheme == "https" and page.status == 200 and page.body
        ]

    # Then nginx's pages came over HTTP/2, compressed; the asyncio server's over HTTP/1.1
    assert seen(Variant.NGINX) and ("HTTP/2", "gzip") in seen(Variant.NGINX)
    assert set(seen(Variant.EXACT)) == {("HTTP/1.1", "")}


def test_real_path_figures(results: Results) -> None:
    # Given every comparable case served by nginx and scanned, When counted against the peer
    figures = Agreement(len(CASES), len(COMPARABLE), 0)
    same = 0
    for item in COMPARABLE:
        real = real_fails(item, results)
        same += real is vigie_fails(item)
        figures.tally(item.id, real, item.peer_fails)
    print(
        f"\nreal path: sites scanned {len(HOSTS)}, runs {len(RUNS)}, comparable "
        f"{figures.comparable}, same as the pure path {same}, agreeing with the peer "
        f"{figures.agreeing} ({figures.rate:.1%}); missed {figures.missed}; "
        f"false alarms {figures.false_alarms}"
    )
    # Then the real path is the pure path, whose disagreements are the named ones
    assert same == figures.comparable
    assert {c.id for c in CASES if c.disagree} == {*figures.missed, *figures.false_alarms}
