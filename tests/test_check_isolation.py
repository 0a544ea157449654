"""A failing check loses only itself: it becomes a ``scan.error`` naming it, and the
family's other findings are kept (the engine's run_checks, vigie/scanner/probe_context.py)."""

from __future__ import annotations

import asyncio

import pytest

from vigie.model import Family, FamilyResult, HostResult, HostTarget
from vigie.scanner import probe_context
from vigie.scanner.engine import finalised, run_family
from vigie.scanner.http import Endpoint, HttpObservation, Visit, graded_sites, visit_findings
from vigie.scanner.http import _family as http_family

TARGET = HostTarget("agence.gouv.example", "127.0.27.80")


def front_page(headers: list[tuple[str, str]]) -> Visit:
    page = HttpObservation(
        method="GET",
        url="https://agence.gouv.example/",
        status=200,
        headers=tuple(headers),
        body=b"<html><body>Accueil</body></html>",
    )
    return Visit(Endpoint("https", 443), (page,), page)


def test_a_check_that_raises_becomes_a_scan_error_and_the_others_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an HTTPS front page without HSTS (RFC 6797 §7.1: an HTTPS answer should carry it)
    visit = front_page([("Content-Type", "text/html"), ("Set-Cookie", "sid=1; Path=/")])

    def cookie_findings(*_: object, **__: object) -> list[object]:
        raise ValueError("invalid literal for int() with base 10: '³'")

    # And a cookie check that raises on what the server sent
    monkeypatch.setattr(http_family, "cookie_findings", cookie_findings)
    # When the host's visits are judged
    findings = visit_findings(TARGET, [visit], graded_sites([visit]))
    # Then the failing check is a scan.error naming it, with the trace
    errors = [f for f in findings if f.check_id == "scan.error"]
    assert [e.discriminator for e in errors] == ["check:cookie_findings"]
    assert "ValueError" in errors[0].evidence["detail"]
    # And the other checks' findings are all there
    assert "http.hsts.missing" in {f.check_id for f in findings}

    # And through the engine: the family is kept but marked incomplete (it resolves nothing)
    async def family() -> FamilyResult:
        result = FamilyResult(Family.HTTP)
        result.extend(findings)
        return result

    async def judged() -> FamilyResult:
        deadline = asyncio.get_running_loop().time() + 5
        return await run_family(Family.HTTP, TARGET, family(), deadline)

    host = HostResult(target=TARGET)
    host.families[Family.HTTP] = asyncio.run(judged())
    host = finalised(host)
    http = host.families[Family.HTTP]
    assert "http.hsts.missing" in {f.check_id for f in http.findings}
    assert http.complete is False
    assert [f.discriminator for f in host.families[Family.SCAN].findings] == [
        "check:cookie_findings"
    ]


def test_odd_header_values_lose_no_finding() -> None:
    # Given HSTS with a non-ASCII digit and control characters (RFC 6797 §6.1: max-age is
    # 1*DIGIT, ASCII digits only), and no Content-Security-Policy
    visit = front_page(
        [("Strict-Transport-Security", "max-age=³"), ("X-Frame-Options", "DENY\x00\x1b")]
    )
    # When judged, nothing raises out of the family
    findings = visit_findings(TARGET, [visit], graded_sites([visit]))
    ids = {f.check_id for f in findings}
    # Then the header checks that could judge still did (whether HSTS is parsed or errored)
    assert ids & {"http.hsts.missing", "http.hsts.short_max_age", "http.hsts.invalid", "scan.error"}
    assert {"http.csp.missing", "http.content_type_options.missing"} <= ids


def test_run_checks_keeps_every_finding_of_the_checks_that_worked() -> None:
    from vigie.model import Finding

    def good(target: HostTarget) -> list[Finding]:
        return [Finding(check_id="http.hsts.missing", domain=target.domain, ip=target.ip)]

    def broken(_: HostTarget) -> list[Finding]:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    found = probe_context.run_checks(TARGET, (good, TARGET), (broken, TARGET), (good, TARGET))
    assert [f.check_id for f in found] == ["http.hsts.missing", "scan.error", "http.hsts.missing"]
    assert found[1].discriminator == "check:broken"
