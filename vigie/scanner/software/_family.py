"""The software and vuln families: derived from what the host's other families saw.

They run after the service and HTTP families of the same host (the engine's
derived families) and read their results: the banners and greetings in the
service findings' evidence, the HTTP responses the HTTP family kept in
``FamilyResult.observed``. The software family adds at most one bounded GET
per edge-appliance login path and web endpoint, never anything else; the vuln
family sends nothing. Matching uses the read-only index the sweep loaded
(``ctx.shared["vulns.index"]``); the scanner never reads the database.

Check IDs: ``software.identified``, ``software.edge_device.exposed``,
``software.end_of_life``, ``software.cms.outdated``, ``vuln.known_exploited``,
``vuln.cve``, ``vuln.cve_unconfirmed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from vigie.errors import ProbeError, ProbeTimeout
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort, Severity, utcnow
from vigie.scanner.probe_context import ProbeContext, scan_problem
from vigie.scanner.software._edge import EDGE_PATHS, OWA_PATH, identify_edge, identify_owa
from vigie.scanner.software._identify import (
    Identification,
    identify_aspnet_version,
    identify_greeting,
    identify_mysql,
    identify_page,
    identify_powered_by,
    identify_redis,
    identify_server,
    identify_ssh,
)
from vigie.vulns import (
    MEMO_LIMIT,
    CveMatch,
    Installed,
    MatchIndex,
    Verdict,
    life_cycle,
    match,
)
from vigie.vulns.products import PLATFORMS, PRODUCTS

INDEX_KEY = "vulns.index"
IDENTIFIED = "software.identified"
EDGE_EXPOSED = "software.edge_device.exposed"
END_OF_LIFE = "software.end_of_life"
CMS_OUTDATED = "software.cms.outdated"
KNOWN_EXPLOITED = "vuln.known_exploited"
CVE = "vuln.cve"
CVE_UNCONFIRMED = "vuln.cve_unconfirmed"

EDGE_BODY_LIMIT = 32_768
MAX_EDGE_ENDPOINTS = 4
_CONFIDENCE = {"high": 3, "medium": 2, "low": 1}


def match_index(ctx: ProbeContext) -> MatchIndex | None:
    index = ctx.shared.get(INDEX_KEY)
    return index if isinstance(index, MatchIndex) else None


# --- observations -> identifications -------------------------------------------------


def from_service(findings: Iterable[Finding], ports: Iterable[OpenPort]) -> list[Identification]:
    """Identifications from the banners, greetings and versions the service family recorded."""
    protocol = {p.port: p.service for p in ports}
    found: list[Identification] = []
    for finding in findings:
        evidence: Mapping[str, Any] = finding.evidence
        port = finding.port
        service = protocol.get(port or 0, "")
        texts = [str(evidence[k]) for k in ("banner", "greeting") if evidence.get(k)]
        for text in texts:
            if text.startswith("SSH-"):
                found += [i.at(port) for i in identify_ssh(text)]
            elif service in ("ftp", "smtp", "pop3", "imap"):
                found += [i.at(port) for i in identify_greeting(service, text)]
        answer = str(evidence.get("answer", ""))
        if finding.check_id == "service.database.exposed" and "server " in answer:
            found += [i.at(port) for i in identify_mysql(answer.split("server ", 1)[1])]
        if finding.check_id == "service.version_disclosed":
            product = str(evidence.get("product", "")).lower()
            version = str(evidence.get("version", ""))
            if product == "redis":
                found += [i.at(port) for i in identify_redis(version)]
            elif product in ("mysql", "mariadb") and evidence.get("server_version"):
                found += [i.at(port) for i in identify_mysql(str(evidence["server_version"]))]
    return found


def from_http(observed: Iterable[object]) -> list[Identification]:
    """Identifications from the HTTP responses the HTTP family kept (headers and pages)."""
    found: list[Identification] = []
    for response in observed:
        url = getattr(response, "url", None)
        header_pairs = getattr(response, "headers", None)
        if not isinstance(url, str) or not isinstance(header_pairs, tuple):
            continue
        found += identify_response(url, header_pairs, getattr(response, "text", ""))
    return found


def identify_response(
    url: str, header_pairs: tuple[tuple[str, str], ...], body: str
) -> list[Identification]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    headers: dict[str, str] = {}
    for name, value in header_pairs:
        headers.setdefault(name.lower(), value)
    found: list[Identification] = []
    if "server" in headers:
        found += identify_server(headers["server"])
    for name, value in header_pairs:
        if name.lower() == "x-powered-by":
            found += identify_powered_by(value)
    if "x-aspnet-version" in headers:
        found += identify_aspnet_version(headers["x-aspnet-version"])
    path = parts.path or "/"
    found += identify_page(body, headers)
    found += identify_edge(path, body, headers)
    found += identify_owa(path, body, headers)
    return [i.at(port) for i in found]


def best(identifications: Iterable[Identification]) -> list[Identification]:
    """One identification per (product, port): the one that says most."""
    chosen: dict[tuple[str, int | None], Identification] = {}
    for ident in identifications:
        key = (ident.product, ident.port)
        current = chosen.get(key)
        if current is None or _rank(ident) > _rank(current):
            chosen[key] = ident
    return sorted(chosen.values(), key=lambda i: (i.port or 0, i.product))


def _rank(ident: Identification) -> tuple[int, int, int, int]:
    revision = ident.package is not None and bool(ident.package.revision)
    return (
        bool(ident.version),
        revision,
        _CONFIDENCE.get(ident.confidence, 0),
        ident.package is not None,
    )


def identify_host(
    results: Mapping[Family, FamilyResult], ports: list[OpenPort]
) -> list[Identification]:
    """Everything the host's service and HTTP results identify (pure)."""
    found: list[Identification] = []
    service = results.get(Family.SERVICE)
    if service is not None:
        found += from_service(service.findings, ports)
    web = results.get(Family.HTTP)
    if web is not None:
        found += from_http(web.observed)
    return best(found)


# --- findings ------------------------------------------------------------------------


def _finding(
    target: HostTarget,
    check_id: str,
    ident: Identification,
    evidence: dict[str, Any],
    severity: Severity | None = None,
) -> Finding:
    return Finding(
        check_id=check_id,
        domain=target.domain,
        ip=target.ip or None,
        port=ident.port,
        discriminator=ident.product,
        evidence=evidence,
        severity=severity,
    )


def describe(ident: Identification) -> dict[str, Any]:
    """The identification as evidence: CPE, version, distribution revision, where, confidence."""
    product = ident.info
    evidence: dict[str, Any] = {
        "product": product.label,
        "cpe": product.cpe_name(ident.version),
        "version": ident.version,
        "seen_in": ident.seen_in,
        "source": ident.source,
        "observed": ident.text,
        "confidence": ident.confidence,
    }
    if ident.port is not None:
        evidence["port"] = ident.port
    if ident.package is not None:
        evidence["distribution"] = {
            "distro": ident.package.distro,
            "revision": ident.package.revision,
            "release": ident.package.release,
        }
    elif ident.platform:
        evidence["platform"] = ident.platform
    return evidence


def per_product(
    identifications: Iterable[Identification],
) -> list[tuple[Identification, list[int]]]:
    """One entry per product version on the host (the lowest port's identification),
    with every port it was seen on: one old server is one finding, not one per port."""
    groups: dict[tuple[object, ...], tuple[Identification, list[int]]] = {}
    for ident in sorted(identifications, key=lambda i: (i.port or 0, i.product)):
        key = (ident.product, ident.version, ident.package)
        _, ports = groups.setdefault(key, (ident, []))
        if ident.port is not None and ident.port not in ports:
            ports.append(ident.port)
    return list(groups.values())


def software_findings(
    target: HostTarget, identifications: list[Identification], index: MatchIndex | None, today: date
) -> list[Finding]:
    """``software.identified`` and edge appliances per port where seen; end of life and
    old CMS once per product version on the host.

    - ``software.identified``: what the server says it runs (SSH softwareversion,
      RFC 4253 §4.2; ``Server``, RFC 9110 §10.2.4; HTML's ``generator`` metadata
      name, HTML §4.2.5.1; MySQL HandshakeV10; Redis ``INFO``);
    - ``software.edge_device.exposed``: a VPN, firewall or mail appliance's login or
      management page on the Internet (CISA BOD 23-02);
    - ``software.end_of_life``: a release past its vendor's end of support
      (endoflife.date cycles; CIS Controls v8 Safeguard 2.2: only supported software);
    - ``software.cms.outdated``: a CMS older than the newest release of its supported
      branches (CIS Controls v8 Safeguard 7.4: application patch management).
    """
    findings: list[Finding] = []
    for ident in identifications:
        evidence = describe(ident)
        findings.append(_finding(target, IDENTIFIED, ident, evidence))
        if ident.info.edge:
            findings.append(_finding(target, EDGE_EXPOSED, ident, evidence))
    for ident, ports in per_product(identifications):
        product = ident.info
        if index is None or not ident.version:
            continue
        if ident.package is not None:
            continue  # a distribution supports its own packages for its release's life
        cycle = life_cycle(index, product.eol, ident.version, today)
        if cycle is None:
            continue
        life = {
            **describe(ident),
            "ports": ports,
            "cycle": cycle.cycle.cycle,
            "eol": cycle.cycle.eol,
            "latest": cycle.cycle.latest,
            "data": index.data_dates().get("eol", ""),
        }
        if cycle.end_of_life:
            newest = _newest_supported(index, product.eol)
            findings.append(_finding(target, END_OF_LIFE, ident, {**life, "upgrade_to": newest}))
        if product.cms and cycle.outdated:
            findings.append(
                _finding(target, CMS_OUTDATED, ident, {**life, "fixed_version": cycle.cycle.latest})
            )
    return findings


def _newest_supported(index: MatchIndex, names: tuple[str, ...]) -> str:
    """The latest release of the newest supported cycle: the upgrade path."""
    from vigie.vulns import compare_upstream

    today = utcnow().date().isoformat()
    for name in names:
        supported = [
            c
            for c in index.eol.get(name, ())
            if c.eol == "false" or (c.eol not in ("true", "") and c.eol > today)
        ]
        if supported:
            newest = supported[0]
            for cycle in supported[1:]:
                if compare_upstream(cycle.cycle, newest.cycle) > 0:
                    newest = cycle
            return newest.latest or newest.cycle
    return ""


def cvss_severity(score: float | None) -> Severity:
    """CVSS v3/v4 qualitative rating (FIRST CVSS v3.1 specification §5): 9.0+ critical,
    7.0+ high, 4.0+ medium, below low."""
    if score is None:
        return Severity.LOW
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    return Severity.LOW


def _cve_evidence(found: CveMatch) -> dict[str, Any]:
    item: dict[str, Any] = {"id": found.cve_id, "cvss": found.cvss}
    if found.epss is not None:
        item["epss"] = round(found.epss[0], 5)
        item["epss_percentile"] = round(found.epss[1], 5)
    if found.fixed:
        item["fixed"] = found.fixed
        item["fixed_in"] = found.fixed_in
    if found.kev is not None:
        item["known_exploited"] = True
    if found.verdict is Verdict.UNCONFIRMED:
        item["reason"] = found.reason
    return item


def _upgrade_to(matches: list[CveMatch]) -> str:
    """The version that fixes them all: the highest fix among them."""
    from vigie.vulns import compare_package, compare_upstream

    fixes = [m.fixed for m in matches if m.fixed and not m.fixed.startswith(">")]
    if not fixes:
        return ""
    top = fixes[0]
    for fix in fixes[1:]:
        order = compare_package(fix, top) if ":" in fix or "-" in fix else None
        if order is None:
            order = compare_upstream(fix, top)
        if order > 0:
            top = fix
    return top


@dataclass(frozen=True)
class _Verdicts:
    """What a product at a version gets: evidence parts and severity, worked out once per
    sweep (hosts share a few dozen versions) and shared by every finding that cites it."""

    parts: dict[str, dict[str, Any]]  # check ID -> evidence beyond the identification
    severity: Severity | None = None


def _verdicts(index: MatchIndex, installed: Installed) -> _Verdicts:
    key = ("findings", installed)
    known = index.derived.get(key)
    if isinstance(known, _Verdicts):
        return known
    matches = match(index, installed)
    affected = [m for m in matches if m.verdict is Verdict.AFFECTED]
    unsettled = [m for m in matches if m.verdict is Verdict.UNCONFIRMED]
    dates = index.data_dates()
    parts: dict[str, dict[str, Any]] = {}
    severity = None
    if affected:
        scored = [m.cvss for m in affected if m.cvss is not None]
        severity = cvss_severity(max(scored) if scored else None)
        parts[CVE] = {
            "cves": [_cve_evidence(m) for m in affected],
            "count": len(affected),
            "max_cvss": max(scored) if scored else None,
            "max_epss": max((m.epss[0] for m in affected if m.epss), default=None),
            "fixed_version": _upgrade_to(affected),
            "data": dates,
        }
        exploited = [m for m in affected if m.kev is not None]
        if exploited:
            parts[KNOWN_EXPLOITED] = {
                "cves": [
                    {
                        **_cve_evidence(m),
                        "kev_added": m.kev.date_added if m.kev else "",
                        "kev_due": m.kev.due_date if m.kev else "",
                        "name": m.kev.name if m.kev else "",
                    }
                    for m in exploited
                ],
                "fixed_version": _upgrade_to(exploited),
                "data": dates,
            }
    if unsettled:
        parts[CVE_UNCONFIRMED] = {
            "cves": [_cve_evidence(m) for m in unsettled],
            "count": len(unsettled),
            "fixed_version": _upgrade_to(unsettled),
            "data": dates,
        }
    verdicts = _Verdicts(parts, severity)
    if len(index.derived) < MEMO_LIMIT:
        index.derived[key] = verdicts
    return verdicts


def vuln_findings(
    target: HostTarget, identifications: list[Identification], index: MatchIndex
) -> list[Finding]:
    """One ``vuln.cve`` per product and port listing its CVEs; KEV ones also as
    ``vuln.known_exploited``; undecided distribution revisions as ``vuln.cve_unconfirmed``.

    - ``vuln.cve``: the NVD CVE API 2.0 ``configurations`` (CPE 2.3 match criteria,
      NIST IR 7696 name matching, version ranges, AND/OR nodes) say the
      identified version is affected; severity from the CVSS v3.1 base score
      (CVSS v3.1 specification §5, qualitative rating);
    - ``vuln.known_exploited``: the CVE is in CISA's Known Exploited Vulnerabilities
      catalog (CISA BOD 22-01);
    - ``vuln.cve_unconfirmed``: the banner shows a distribution revision the
      distribution's own tracker (Debian security tracker, OSV) does not settle.
    """
    platforms = frozenset(PLATFORMS[i.platform] for i in identifications if i.platform in PLATFORMS)
    findings: list[Finding] = []
    for ident, ports in per_product(identifications):
        if not ident.version:
            continue
        product = PRODUCTS[ident.product]
        installed = Installed(
            product.cpes, ident.version, ident.package, product.packages, platforms
        )
        verdicts = _verdicts(index, installed)
        if not verdicts.parts:
            continue
        base = {**describe(ident), "ports": ports}
        for check_id in (CVE, KNOWN_EXPLOITED, CVE_UNCONFIRMED):
            part = verdicts.parts.get(check_id)
            if part is not None:
                severity = verdicts.severity if check_id == CVE else None
                findings.append(_finding(target, check_id, ident, {**base, **part}, severity))
    return findings


# --- the families --------------------------------------------------------------------


# A web server of these makes, or a CMS, answering its front page with a page: a website
# is there, not an appliance's portal (appliances run their own servers; IIS is left out:
# Exchange's OWA runs on it).
GENERAL_SERVERS = frozenset({"nginx", "apache", "lighttpd", "tomcat"})


def settled_ports(
    identifications: Iterable[Identification], observed: Iterable[object] = ()
) -> set[int]:
    """Web ports whose front page already said what serves them: no login path is asked."""
    pages: set[int] = set()
    for response in observed:
        url, status = getattr(response, "url", None), getattr(response, "status", 0)
        if isinstance(url, str) and isinstance(status, int) and 200 <= status < 300:
            parts = urlsplit(url)
            pages.add(parts.port or (443 if parts.scheme == "https" else 80))
    appliance = {i.port for i in identifications if i.info.edge or i.product == "exchange"}
    website = {
        i.port for i in identifications if i.product in GENERAL_SERVERS or i.info.cms
    } & pages
    return {port for port in appliance | website if port is not None}


async def probe_edge_paths(
    ctx: ProbeContext,
    target: HostTarget,
    ports: list[OpenPort],
    visited: set[str],
    settled: set[int] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[Identification], list[Finding]]:
    """One GET per edge login path (and OWA) on each web endpoint whose front page did not
    already say what it is: bounded, read-only."""
    from vigie.scanner.http import FetchRequest, http_client, web_endpoints

    endpoints = [e for e in web_endpoints(ports) if e.port not in settled][:MAX_EDGE_ENDPOINTS]
    if not endpoints:
        return [], []
    client = http_client(ctx)
    problems: list[Finding] = []

    async def one(url: str) -> list[Identification]:
        request = FetchRequest(url, target.ip, body_limit=EDGE_BODY_LIMIT)
        try:
            response = await client.fetch(ctx, request)
        except (ProbeTimeout, ProbeError) as exc:
            check_id = "scan.timeout" if isinstance(exc, ProbeTimeout) else "scan.error"
            port = urlsplit(url).port
            problems.append(scan_problem(target, check_id, "software:edge", str(exc), port))
            return []
        if not 200 <= response.status < 300:
            return []  # a login page is a page: a redirect or an error proves nothing
        return identify_response(url, response.headers, response.text)

    urls = [
        endpoint.url(target.domain, path)
        for endpoint in endpoints
        for path in [p for _, p in EDGE_PATHS] + [OWA_PATH]
    ]
    urls = [u for u in urls if u not in visited]
    async with client.pinned(target.ip):
        parts = await asyncio.gather(*(one(url) for url in urls))
    found = [i for part in parts for i in part]
    # Only what is proved on the path's own page: an edge product or OWA.
    found = [i for i in found if i.info.edge or i.product == "exchange"]
    unique_problems = {p.fingerprint: p for p in problems}
    return found, list(unique_problems.values())


async def check_software(
    ctx: ProbeContext,
    target: HostTarget,
    ports: list[OpenPort],
    results: Mapping[Family, FamilyResult],
) -> FamilyResult:
    """Every ``software.*`` check on one (domain, address), after its other families."""
    result = FamilyResult(family=Family.SOFTWARE)
    identifications = identify_host(results, ports)
    web = results.get(Family.HTTP)
    observed = web.observed if web is not None else []
    visited = {str(getattr(r, "url", "")) for r in observed}
    settled = settled_ports(identifications, observed)
    # A port the HTTP family gave up on (timeout, error) costs no more requests.
    settled |= {f.port for f in (web.findings if web else []) if f.family is Family.SCAN and f.port}
    edge, problems = await probe_edge_paths(ctx, target, ports, visited, settled)
    identifications = best([*identifications, *edge])
    result.observed.extend(identifications)
    result.extend(software_findings(target, identifications, match_index(ctx), utcnow().date()))
    result.extend(problems)
    inputs = [results[f] for f in (Family.SERVICE, Family.HTTP) if f in results]
    result.complete = not problems and all(r.complete for r in inputs)
    return result


async def check_vulns(
    ctx: ProbeContext,
    target: HostTarget,
    ports: list[OpenPort],
    results: Mapping[Family, FamilyResult],
) -> FamilyResult:
    """Every ``vuln.*`` check: the host's identified software against the imported data."""
    result = FamilyResult(family=Family.VULN)
    index = match_index(ctx)
    software = results.get(Family.SOFTWARE)
    if software is not None:
        identifications = [i for i in software.observed if isinstance(i, Identification)]
        result.complete = software.complete
    else:
        identifications = identify_host(results, ports)
        inputs = [results[f] for f in (Family.SERVICE, Family.HTTP) if f in results]
        result.complete = all(r.complete for r in inputs)
    if index is None or index.empty:
        # No data: nothing can be said, and nothing earlier may be resolved on it.
        result.complete = False
        return result
    result.extend(vuln_findings(target, identifications, index))
    return result
