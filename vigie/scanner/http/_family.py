"""The HTTP family for one (domain, address): which requests to send, which responses to judge.

Check IDs: every ``http.*`` ID (through ``_headers``, ``_content`` and
``_security_txt``), plus ``scan.timeout`` / ``scan.error`` for an endpoint
that did not answer.

Order of work for a host: visit the front page of every web endpoint,
following redirects hop by hop (each hop scope-checked; a hop to another
host is resolved through the configured resolvers and followed only when
every address is in scope, and is never graded); judge the final same-host
response of each visit; then, on each endpoint a visit ended on, request a
random path (the soft-404 baseline), the exposed-path list and TRACE; then
security.txt (every scanned name is a registered one).

Endpoints whose front pages are the same document (same bytes, type,
validators and server: one server block listening on 80 and 443) are one
site behind two doors: with ``http.paths_on_mirrors = "hits"`` (the default)
the path list is requested on the first of them (HTTPS first) and the others
are asked only for the paths found there, each finding noting ``mirror_of``.
On this farm of the benchmark that is 40 % fewer requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from urllib.parse import urljoin, urlsplit

from vigie.errors import ConfigError, ProbeError, ProbeTimeout, ScopeViolation
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort, utcnow
from vigie.scanner.http._client import FetchRequest, HttpClient, http_client
from vigie.scanner.http._content import exposure_findings, listing_findings
from vigie.scanner.http._headers import (
    DOCUMENT_CHECKS,
    PROBE_ORIGIN,
    cookie_findings,
    cors_findings,
    hsts_findings,
    no_https_redirect_findings,
    trace_findings,
    version_findings,
)
from vigie.scanner.http._model import (
    Baseline,
    Hop,
    HttpObservation,
    PathProbe,
    Site,
    host_key,
    truncate,
)
from vigie.scanner.http._paths import PATH_CHECKS, expand, load_path_list
from vigie.scanner.http._security_txt import PATH as SECURITY_TXT_PATH
from vigie.scanner.http._security_txt import security_txt_findings
from vigie.scanner.probe_context import ProbeContext, run_checks, scan_problem

DEFAULT_PORTS = {"http": 80, "https": 443}
# Ports probed whatever the port stage named them; others only when named like HTTP.
WEB_PORTS = {80: "http", 443: "https"}
TLS_WEB_PORTS = frozenset({443, 8443, 9443, 4443})
UNNAMED_WEB_PORTS = frozenset({8000, 8008, 8080, 8081, 8443, 8888, 9443})
# Exposed paths need only the start of a file to be recognised.
PATH_BODY_LIMIT = 65_536
TRACE_HEADER = "X-Vigie-Trace"


@dataclass(frozen=True, order=True)
class Endpoint:
    """A web endpoint of the host under test: scheme and port."""

    scheme: str
    port: int

    @property
    def label(self) -> str:
        return f"http:{self.port}"

    def url(self, domain: str, path: str = "/") -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        host = domain if default else f"{domain}:{self.port}"
        return f"{self.scheme}://{host}{path}"


def web_endpoints(ports: Sequence[OpenPort]) -> list[Endpoint]:
    """The open ports a web application may answer on, with the scheme to use."""
    endpoints = set()
    for open_port in ports:
        service = open_port.service.lower()
        if open_port.port in WEB_PORTS:
            # What the port answered wins over its number: plain HTTP on 443 is HTTP.
            scheme = "http" if proven_plain_http(open_port) else WEB_PORTS[open_port.port]
            scheme = "https" if open_port.tls else scheme
        elif "http" in service or (not service and open_port.port in UNNAMED_WEB_PORTS):
            tls = open_port.tls or "https" in service or "ssl" in service
            tls_by_number = open_port.port in TLS_WEB_PORTS and not proven_plain_http(open_port)
            scheme = "https" if tls or tls_by_number else "http"
        else:
            continue
        endpoints.add(Endpoint(scheme, open_port.port))
    return sorted(endpoints, key=lambda e: e.port)


def proven_plain_http(open_port: OpenPort) -> bool:
    """The port stage heard an HTTP answer without TLS (not a name taken from the number)."""
    return (
        open_port.service.lower() == "http"
        and not open_port.tls
        and open_port.banner.startswith("HTTP/")
    )


def endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(parts.scheme, parts.port or DEFAULT_PORTS[parts.scheme])


def hostname(url: str) -> str:
    return host_key(urlsplit(url).hostname or "")


def next_location(current: str, location: str) -> tuple[str, str]:
    """The absolute URL a Location points to, or why it cannot be followed."""
    try:
        target = urljoin(current, location.strip())
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        return "", f"invalid Location {truncate(location, 128)!r}"
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return "", f"Location {truncate(location, 128)!r} is not an http(s) URL"
    if port == 0:
        return "", f"Location {truncate(location, 128)!r} names port 0"
    return target.split("#", 1)[0], ""


@dataclass(frozen=True)
class Visit:
    """A request for one path of an endpoint, and the redirects that followed.

    ``responses`` are the same-host responses before any hop to another host:
    only those are graded. ``last`` is the very last response, wherever it
    came from; ``elsewhere`` the hops on other hosts; ``stopped`` why
    following ended early (loop, hop limit, out of scope, no answer).
    """

    start: Endpoint
    responses: tuple[HttpObservation, ...]
    last: HttpObservation
    left_host: bool = False  # the last same-host response redirects to another host
    elsewhere: tuple[Hop, ...] = ()
    stopped: str = ""

    @property
    def final(self) -> HttpObservation:
        return self.responses[-1]

    def context(self) -> dict[str, object]:
        """What happened after the graded response, for evidence."""
        found: dict[str, object] = {}
        if self.elsewhere:
            found["then_elsewhere"] = [hop.as_evidence() for hop in self.elsewhere]
        if self.stopped:
            found["stopped"] = self.stopped
        return found


@dataclass
class HttpHostScanner:
    """One host's HTTP scan: the client, the target, and the endpoints that failed."""

    ctx: ProbeContext
    client: HttpClient
    target: HostTarget
    problems: dict[Endpoint, Finding] = field(default_factory=dict)

    @property
    def domain(self) -> str:
        return host_key(self.target.domain)

    async def fetch(
        self, endpoint: Endpoint, request: FetchRequest, *, graded: bool = True
    ) -> HttpObservation | None:
        """One request. A failure on the host is recorded once per endpoint, which is then
        left alone (a server that drips bytes costs one timeout, not one per path)."""
        if graded and endpoint in self.problems:
            return None
        try:
            response = await self.client.fetch(self.ctx, request)
        except (ProbeTimeout, ProbeError) as exc:
            if graded:
                check_id = "scan.timeout" if isinstance(exc, ProbeTimeout) else "scan.error"
                self._failed(endpoint, check_id, str(exc))
            return None
        if graded and response.stalled:
            # The headers count; the endpoint is too slow for the rest of the list.
            self._failed(
                endpoint, "scan.timeout", f"{request.method} {request.url}: {response.body_note}"
            )
        return response

    def _failed(self, endpoint: Endpoint, check_id: str, detail: str) -> None:
        if endpoint not in self.problems:
            self.problems[endpoint] = scan_problem(
                self.target, check_id, endpoint.label, detail, port=endpoint.port
            )

    async def addresses_for(self, host: str) -> tuple[list[str], str]:
        """Where a hop to another host would go, or why it must not be followed."""
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            resolution = await self.ctx.resolver.resolve_addresses(host)
            if not resolution.addresses:
                return [], f"not followed: {host} does not resolve ({resolution.outcome.value})"
            addresses = list(resolution.addresses)
        for address in addresses:
            try:
                self.ctx.require_in_scope(address)
            except ScopeViolation as exc:
                return [], f"not followed: {host} -> {exc}"
        return addresses, ""

    async def follow(self, start: Endpoint, path: str = "/") -> Visit | None:
        """GET ``path`` on ``start``, then its redirects, at most ``http.max_redirects`` hops.

        None when the first request got no answer.
        """
        url = start.url(self.target.domain, path)
        same_host: list[HttpObservation] = []
        elsewhere: list[Hop] = []
        chain: list[Hop] = []
        seen = {url}
        on_host = True
        last: HttpObservation | None = None
        for _ in range(self.ctx.settings.http.max_redirects + 1):
            on_host = on_host and hostname(url) == self.domain
            response, refusal = await self._hop(url, tuple(chain), on_host=on_host)
            if response is None:
                return self._visit(start, same_host, last, elsewhere, refusal)
            last = response
            if on_host:
                same_host.append(response)
            else:
                elsewhere.append(response.as_hop())
            if not response.is_redirect:
                return self._visit(start, same_host, last, elsewhere)
            next_url, problem = next_location(url, response.location)
            if not problem and next_url in seen:
                problem = f"redirect loop back to {truncate(next_url, 256)}"
            if problem:
                return self._visit(start, same_host, last, elsewhere, problem)
            seen.add(next_url)
            chain.append(response.as_hop())
            url = next_url
        limit = self.ctx.settings.http.max_redirects
        return self._visit(start, same_host, last, elsewhere, f"more than {limit} redirects")

    def _visit(
        self,
        start: Endpoint,
        same_host: list[HttpObservation],
        last: HttpObservation | None,
        elsewhere: list[Hop],
        stopped: str = "",
    ) -> Visit | None:
        if not same_host or last is None:
            return None
        final = same_host[-1]
        next_url, _ = next_location(final.url, final.location) if final.is_redirect else ("", "")
        left = bool(next_url) and hostname(next_url) != self.domain
        return Visit(start, tuple(same_host), last, left, tuple(elsewhere), stopped)

    async def _hop(
        self, url: str, chain: tuple[Hop, ...], *, on_host: bool
    ) -> tuple[HttpObservation | None, str]:
        """Request one hop; (None, why) when it is refused or gets no answer."""
        if on_host:
            address, graded = self.target.ip, True
        else:
            addresses, refusal = await self.addresses_for(hostname(url))
            if refusal:
                return None, refusal
            address, graded = addresses[0], False
        request = FetchRequest(url, address, headers={"Origin": PROBE_ORIGIN})
        response = await self.fetch(endpoint_of(url), request, graded=graded)
        if response is None:
            return None, f"no answer from {truncate(url, 256)}"
        return replace(response, chain=chain), ""

    async def baseline(self, endpoint: Endpoint) -> Baseline | None:
        """The endpoint's answers to paths that cannot exist (plain, dot-file, script)."""
        token = secrets.token_hex(12)
        paths = (f"/vigie-{token}", f"/.vigie-{token}", f"/vigie-{token}.php")
        responses = await asyncio.gather(*(self._get(endpoint, path) for path in paths))
        if any(response is None for response in responses):
            return None
        return Baseline(tuple(r for r in responses if r is not None), token)

    async def _get(
        self,
        endpoint: Endpoint,
        path: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> HttpObservation | None:
        url = endpoint.url(self.target.domain, path)
        request = FetchRequest(
            url, self.target.ip, method=method, headers=headers or {}, body_limit=PATH_BODY_LIMIT
        )
        return await self.fetch(endpoint, request)

    async def probe_site(self, endpoint: Endpoint, probes: Sequence[PathProbe]) -> list[Finding]:
        """Exposed paths (against the soft-404 baseline) and TRACE on one endpoint."""
        findings = await self.probe_paths(endpoint, probes)
        return findings + await self.trace(endpoint)

    async def probe_mirrored(
        self, group: MirrorGroup, probes: Sequence[PathProbe]
    ) -> list[Finding]:
        """The whole list on the group's first site; on its mirrors, only the paths found there."""
        findings = await self.probe_site(group.probed, probes)
        found = {f.discriminator for f in findings if f.check_id in PATH_CHECKS}
        again = [p for p in probes if expand(p, self.target.domain).path in found]
        for mirror in group.mirrors:
            mirrored = await self.probe_paths(mirror, again) if again else []
            findings += [_noted(f, group.probed) for f in mirrored] + await self.trace(mirror)
        return findings

    async def probe_paths(self, endpoint: Endpoint, probes: Sequence[PathProbe]) -> list[Finding]:
        baseline = await self.baseline(endpoint)
        if baseline is None:
            return []
        expanded = [expand(probe, self.target.domain) for probe in probes]
        checked = await asyncio.gather(*(self._probe_path(endpoint, p, baseline) for p in expanded))
        return [finding for part in checked for finding in part]

    async def trace(self, endpoint: Endpoint) -> list[Finding]:
        marker = f"vigie-{secrets.token_hex(8)}"
        trace = await self._get(endpoint, "/", method="TRACE", headers={TRACE_HEADER: marker})
        if trace is None:
            return []
        return guarded(Site(self.target, endpoint.port), trace_findings, trace, marker)

    async def _probe_path(
        self, endpoint: Endpoint, probe: PathProbe, baseline: Baseline
    ) -> list[Finding]:
        # Judged at once, so that a host's many bodies are not all held together.
        response = await self._get(endpoint, probe.path)
        if response is None:
            return []
        return guarded(
            Site(self.target, endpoint.port), exposure_findings, probe, response, baseline
        )

    async def security_txt(self, sites: Sequence[Endpoint]) -> list[Finding]:
        """security.txt on every registered name, over HTTPS when the host offers it."""
        if not sites:
            return []
        endpoint = min(sites, key=security_txt_preference)
        visit = await self.follow(endpoint, SECURITY_TXT_PATH)
        if visit is None:
            return []
        has_https = any(site.scheme == "https" for site in sites)
        judge = partial(security_txt_findings, has_https=has_https, stopped=visit.stopped)
        return guarded(Site(self.target, endpoint.port), judge, visit.last, utcnow())


def security_txt_preference(endpoint: Endpoint) -> tuple[bool, bool, int]:
    """HTTPS first (RFC 9116 §3), the default port first."""
    return (
        endpoint.scheme != "https",
        endpoint.port != DEFAULT_PORTS[endpoint.scheme],
        endpoint.port,
    )


def graded_sites(visits: Sequence[Visit]) -> dict[Endpoint, Visit]:
    """Each endpoint a visit ended on, with the visit that best shows it.

    A visit that ends where it started is preferred: ``http:80 -> https:443``
    and a direct visit of 443 end on the same site, judged once.
    """
    sites: dict[Endpoint, Visit] = {}
    for visit in sorted(visits, key=lambda v: endpoint_of(v.final.url) != v.start):
        sites.setdefault(endpoint_of(visit.final.url), visit)
    return dict(sorted(sites.items()))


@dataclass(frozen=True)
class MirrorGroup:
    """Sites of one host that serve the same front page: one is probed in full."""

    probed: Endpoint
    mirrors: tuple[Endpoint, ...] = ()


def document_identity(response: HttpObservation) -> tuple[object, ...] | None:
    """What makes two front pages the same document, or None when it cannot tell.

    The same bytes with the same validators (nginx's ETag is the file's time and
    size) mean one document root behind two endpoints, as when one server block
    listens on 80 and 443.
    """
    if not 200 <= response.status < 300 or not response.body or response.truncated:
        return None
    return (
        response.status,
        hashlib.sha256(response.body).digest(),
        *(response.header(name) for name in ("content-type", "etag", "last-modified", "server")),
    )


def mirror_groups(sites: dict[Endpoint, Visit], mode: str) -> list[MirrorGroup]:
    """Group the sites whose front pages are the same document (``http.paths_on_mirrors``)."""
    groups: dict[object, list[Endpoint]] = {}
    for endpoint, visit in sites.items():
        identity = document_identity(visit.final) if mode == "hits" else None
        groups.setdefault(identity or endpoint, []).append(endpoint)
    ordered = [sorted(members, key=security_txt_preference) for members in groups.values()]
    return [MirrorGroup(members[0], tuple(members[1:])) for members in ordered]


def _noted(finding: Finding, twin: Endpoint) -> Finding:
    return replace(finding, evidence={**finding.evidence, "mirror_of": twin.label})


def _with_context(findings: list[Finding], visit: Visit) -> list[Finding]:
    context = visit.context()
    if not context:
        return findings
    return [replace(f, evidence={**f.evidence, **context}) for f in findings]


def guarded(site: Site, check: Callable[..., list[Finding]], *args: object) -> list[Finding]:
    """``check(site, *args)``; a check that raises loses only itself (issue 18): its
    exception becomes a ``scan.error`` naming it, the family's other findings stay."""
    return run_checks(site.target, (check, site, *args), port=site.port)


def visit_findings(
    target: HostTarget, visits: Sequence[Visit], sites: dict[Endpoint, Visit]
) -> list[Finding]:
    """Every judgment on the front-page visits of a host (pure: no network)."""
    findings: list[Finding] = []
    has_https_site = any(endpoint.scheme == "https" for endpoint in sites)
    for visit in visits:
        for response in visit.responses:
            site = Site(target, endpoint_of(response.url).port)
            findings += guarded(site, version_findings, response)
            findings += guarded(site, partial(cookie_findings, has_https=has_https_site), response)
        start_site = Site(target, visit.start.port)
        if visit.start.scheme == "http":
            findings += _with_context(
                guarded(start_site, no_https_redirect_findings, visit.responses), visit
            )
        elif visit.final.scheme == "http":
            # An HTTPS front page that sends users back to HTTP: judge HSTS where HTTPS ended.
            last_https = [r for r in visit.responses if r.scheme == "https"][-1]
            findings += guarded(start_site, hsts_findings, last_https)
    for endpoint, visit in sites.items():
        site = Site(target, endpoint.port)
        final = visit.final
        judged = guarded(site, hsts_findings, final) if endpoint.scheme == "https" else []
        # A redirect is not a page: one that sends users to another host, loops or
        # goes on past the hop limit leaves no document to judge (HSTS still counts).
        if not final.is_redirect:
            checks: list[Callable[..., list[Finding]]] = [cors_findings, listing_findings]
            if endpoint.scheme == "https" or not has_https_site:
                checks = [*DOCUMENT_CHECKS, *checks]
            for check in checks:
                judged += guarded(site, check, final)
        findings += _with_context(judged, visit)
    return findings


def unique(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per fingerprint: the first seen."""
    first: dict[str, Finding] = {}
    for finding in findings:
        first.setdefault(finding.fingerprint, finding)
    return list(first.values())


async def check_http(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
    """Every ``http.*`` check on one (domain, address), on the web ports the port stage found."""
    result = FamilyResult(family=Family.HTTP)
    endpoints = web_endpoints(ports)
    if not endpoints:
        return result
    try:
        probes = load_path_list(ctx.settings.http.paths_file)
    except ConfigError as exc:
        result.add(scan_problem(target, "scan.error", "http:paths", str(exc)))
        result.complete = False
        return result
    scan = HttpHostScanner(ctx, http_client(ctx), target)
    async with scan.client.pinned(target.ip):
        started = await asyncio.gather(*(scan.follow(endpoint) for endpoint in endpoints))
        visits = [visit for visit in started if visit is not None]
        sites = graded_sites(visits)
        findings = visit_findings(target, visits, sites)
        groups = mirror_groups(sites, ctx.settings.http.paths_on_mirrors)
        later = await asyncio.gather(
            *(scan.probe_mirrored(group, probes) for group in groups),
            scan.security_txt(list(sites)),
        )
    for part in later:
        findings += part
    result.extend(unique(findings))
    # The front pages, for the software family (headers, generator tags).
    result.observed.extend(response for visit in visits for response in visit.responses)
    result.extend(list(scan.problems.values()))
    failed_checks = any(f.discriminator.startswith("http:check:") for f in result.findings)
    result.complete = not scan.problems and not failed_checks
    return result
