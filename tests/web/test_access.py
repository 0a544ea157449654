"""Who may see what: the authorisation matrix generated from the route table, CSRF, sign-in
and re-check throttles, agency links (expiry, revocation), security headers, escaping of
what scanned servers sent."""

from __future__ import annotations

import html
import re
import time
from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import select

from tests.report_data import HOSTILE_STRINGS, PORTAIL, STATS, finding_id
from tests.web.conftest import ANALYST_PASSWORD, World, csrf_of
from vigie.db.session import session_scope
from vigie.db.tables import AuditEvent, Domain, Explanation, Recheck, ScanRun
from vigie.web.app import ROUTES, RouteSpec

PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def params_of(spec: RouteSpec) -> list[str]:
    return PARAM.findall(spec.path)


def other_agency_objects(world: World) -> dict[str, int]:
    """One object of the Office of Statistics per kind of path parameter."""
    settings = world.settings
    with session_scope(settings) as session:
        domain = session.exec(select(Domain).where(Domain.name == STATS)).one()
        finding = finding_id(settings, "http.csp.missing", STATS)
        recheck = Recheck(domain=STATS, agency_id=world.stats_id, requested_by="alice")
        explanation = Explanation(
            finding_id=finding,
            reason="migration in June",
            until=date.today() + timedelta(days=30),
            proposed_by=f"agency:{world.stats_id}",
        )
        session.add(recheck)
        session.add(explanation)
        session.flush()
        run = session.exec(select(ScanRun)).first()
        assert run is not None
        return {
            "agency_id": world.stats_id,
            "domain_id": domain.id or 0,
            "finding_id": finding,
            "recheck_id": recheck.id or 0,
            "explanation_id": explanation.id or 0,
            "run_id": run.id or 0,
        }


def page_showing(client: Any, url: str, marker: str, timeout: float = 20.0) -> str:
    """The page at ``url`` once it shows ``marker`` (re-check pages follow a background job)."""
    deadline = time.monotonic() + timeout
    while marker not in (text := client.get(url).text):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    return text


def fill(spec: RouteSpec, objects: dict[str, int]) -> str:
    return PARAM.sub(lambda m: str(objects[m.group(1)]), spec.path)


def test_every_route_parameter_is_covered_by_the_matrix() -> None:
    # Given the route table; Then every path parameter is one the matrix knows how to fill
    # (a new kind of object must be added to other_agency_objects, or the test fails)
    known = {"agency_id", "domain_id", "finding_id", "recheck_id", "explanation_id", "run_id"}
    for spec in ROUTES:
        if spec.access == "public":
            continue
        assert set(params_of(spec)) <= known, spec.path


def test_an_agency_session_gets_404_for_every_object_of_another_agency(world: World) -> None:
    # Given a contact of the Data agency signed in by link, and objects of Statistics
    objects = other_agency_objects(world)
    client = world.agency(world.data_id)
    csrf = csrf_of(client.get(f"/agencies/{world.data_id}").text)
    checked = 0
    for spec in ROUTES:
        if spec.access == "public" or (not params_of(spec) and spec.access == "any"):
            continue
        for method in spec.methods:
            # When it asks for them, by every route of the table
            url = fill(spec, objects)
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(
                    url, data={"csrf": csrf, "reason": "x", "until": "2099-01-01"}
                )
            # Then the answer is 404, as for something that does not exist
            assert response.status_code == 404, (method, url, response.status_code)
            assert STATS not in response.text
            checked += 1
    assert checked >= 15
    # And nothing changed on the other agency's side
    with session_scope(world.settings) as session:
        assert (
            session.exec(select(Recheck).where(Recheck.agency_id == world.stats_id))
            .all()[0]
            .requested_by
            == "alice"
        )
        assert len(session.exec(select(Explanation)).all()) == 1


def test_agency_lists_show_only_its_own_rows_whatever_the_query(world: World) -> None:
    # Given a contact of the Data agency
    client = world.agency(world.data_id)
    for url in (
        f"/findings?agency={world.stats_id}",
        f"/findings?agency={world.stats_id}&format=csv",
        f"/findings?agency={world.stats_id}&format=json",
        f"/findings?agency={world.stats_id}&format=sarif&status=all",
        f"/outbox?agency={world.stats_id}",
        "/mandates",
        "/mandates?format=csv",
    ):
        # When it asks for another agency's rows
        response = client.get(url)
        # Then it gets its own only
        assert response.status_code == 200, url
        assert STATS not in response.text, url
    assert PORTAIL in client.get("/findings").text


def test_staff_see_every_agency(world: World) -> None:
    # Given an analyst; When it opens each page of Statistics' objects; Then they answer 200
    objects = other_agency_objects(world)
    client = world.analyst()
    for spec in ROUTES:
        if "GET" not in spec.methods or spec.access in ("public", "admin"):
            continue
        response = client.get(fill(spec, objects))
        assert response.status_code == 200, (spec.path, response.text[:300])
    # And the audit log is an admin's page only
    assert client.get("/audit").status_code == 404
    assert world.admin().get("/audit").status_code == 200


@pytest.mark.parametrize("number", ["³", "٣", "9" * 40, "-1", ""])
def test_query_numbers_that_are_not_ascii_digits_are_ignored(world: World, number: str) -> None:
    # Given an analyst asking for a page or an agency with "³" ("³".isdigit() is true,
    # int("³") raises), Arabic-Indic digits, a 40-digit number
    client = world.analyst()
    # When it opens the lists that take such numbers, Then they answer 200, unfiltered
    for path in (
        f"/findings?page={number}",
        f"/findings?agency={number}",
        f"/outbox?agency={number}",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])


def test_anonymous_requests_get_the_login_page(world: World) -> None:
    objects = other_agency_objects(world)
    client = world.make_client()
    for spec in ROUTES:
        if spec.access == "public":
            continue
        for method in spec.methods:
            url = fill(spec, objects)
            # When someone not signed in asks
            response = client.get(url) if method == "GET" else client.post(url, data={})
            # Then it sees the sign-in form, and no data
            assert 'name="password"' in response.text, (method, url)
            assert STATS not in response.text and PORTAIL not in response.text


def test_forms_without_the_session_csrf_token_are_refused(world: World) -> None:
    client = world.agency(world.data_id)
    finding = finding_id(world.settings, "tls.cert.expired")
    form = {"reason": "planned", "until": (date.today() + timedelta(days=10)).isoformat()}
    # When the explanation is posted without, or with another session's, token
    assert client.post(f"/findings/{finding}/explain", data=form).status_code == 403
    other = csrf_of(world.make_client().get("/login").text)
    assert (
        client.post(f"/findings/{finding}/explain", data={**form, "csrf": other}).status_code == 403
    )
    # Then nothing was recorded
    with session_scope(world.settings) as session:
        assert session.exec(select(Explanation)).all() == []


def test_sign_in_is_throttled_after_failures(world: World) -> None:
    client = world.make_client()
    csrf = csrf_of(client.get("/login").text)
    # Given five wrong passwords for alice
    for _ in range(5):
        response = client.post(
            "/login", data={"username": "alice", "password": "guess", "csrf": csrf}
        )
        assert response.status_code == 401
    # When the right one comes next; Then it is refused for now
    response = client.post(
        "/login", data={"username": "alice", "password": ANALYST_PASSWORD, "csrf": csrf}
    )
    assert response.status_code == 429
    with session_scope(world.settings) as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert actions.count("login_failed") == 5 and "login_throttled" in actions


def test_disabled_accounts_lose_their_session(world: World) -> None:
    from vigie.web.accounts import disable_user

    client = world.analyst()
    assert client.get("/runs").status_code == 200
    with session_scope(world.settings) as session:
        disable_user(session, "alice")
    assert 'name="password"' in client.get("/runs").text


def test_agency_links_expire_and_can_be_withdrawn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vigie.web.accounts import agency_link_token

    # Given a link signed link_days + 1 days ago
    real_time = time.time
    monkeypatch.setattr(
        "itsdangerous.timed.time.time",
        lambda: real_time() - (world.settings.web.link_days + 1) * 86400,
    )
    with session_scope(world.settings) as session:
        old = agency_link_token(session, world.settings, world.data_id)
    monkeypatch.setattr("itsdangerous.timed.time.time", real_time)
    client = world.make_client()
    # Then it no longer opens the agency
    assert client.get(f"/link/{old}").status_code == 403
    # Nor does a forged one
    assert client.get("/link/" + old[:-2] + "xx").status_code == 403
    # Given a contact signed in with a fresh link
    contact = world.agency(world.data_id)
    assert contact.get(f"/agencies/{world.data_id}").status_code == 200
    # When an analyst withdraws the agency's links
    analyst = world.analyst()
    page = analyst.get(f"/agencies/{world.data_id}")
    response = analyst.post(
        f"/agencies/{world.data_id}/revoke-links", data={"csrf": csrf_of(page.text)}
    )
    assert response.status_code == 200
    # Then the contact's session ends and its link is refused
    assert 'name="password"' in contact.get(f"/agencies/{world.data_id}").text
    time.sleep(1.1)  # links carry whole seconds: one signed after the withdrawal works
    assert world.agency(world.data_id).get("/findings").status_code == 200


def test_rechecks_are_throttled_per_agency_and_run_through_the_sweep(world: World) -> None:
    # Given a contact of Statistics, and no mandate: the sweep service refuses to probe
    client = world.agency(world.stats_id)
    with session_scope(world.settings) as session:
        domain_id = session.exec(select(Domain.id).where(Domain.name == STATS)).one()
    page = client.get(f"/applications/{domain_id}")
    csrf = csrf_of(page.text)
    for _ in range(world.settings.web.rechecks_per_day):
        # When it asks for a re-check
        response = client.post(f"/applications/{domain_id}/recheck", data={"csrf": csrf})
        assert response.status_code == 200 and "/rechecks/" in str(response.url)
        text = page_showing(client, str(response.url), "status-completed")
        # Then it ran as a sweep run, which recorded "not authorised" instead of probing
        assert "Non autorisé" in text or "Not authorised" in text
    # And one more the same day is refused
    response = client.post(f"/applications/{domain_id}/recheck", data={"csrf": csrf})
    assert response.status_code == 429
    # While analysts are not limited
    analyst = world.analyst()
    csrf = csrf_of(analyst.get(f"/applications/{domain_id}").text)
    response = analyst.post(f"/applications/{domain_id}/recheck", data={"csrf": csrf})
    assert "/rechecks/" in str(response.url)
    with session_scope(world.settings) as session:
        runs = session.exec(select(ScanRun).where(ScanRun.source == "web")).all()
        assert len(runs) >= 2 and all(r.domains == [STATS] for r in runs)


def test_every_response_carries_the_security_headers(world: World) -> None:
    client = world.analyst()
    for url in ("/", "/login", "/static/console.css", "/nowhere", f"/findings/{10**6}"):
        response = client.get(url)
        headers = response.headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["strict-transport-security"].startswith("max-age=31536000")
    cookie = client.get("/login?lang=en").headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie


def test_pages_have_no_inline_script_or_style(world: World) -> None:
    client = world.analyst()
    finding = finding_id(world.settings, "service.version_disclosed")
    for url in ("/", f"/agencies/{world.data_id}", f"/findings/{finding}", "/findings"):
        text = client.get(url).text
        assert "<script" not in text and " style=" not in text and "<style" not in text


def test_what_scanned_servers_sent_is_rendered_escaped(world: World) -> None:
    # Given findings whose banners, certificate names, cookie names and headers carry markup
    client = world.analyst()
    with session_scope(world.settings) as session:
        domain_id = session.exec(select(Domain.id).where(Domain.name == PORTAIL)).one()
    pages = [
        f"/findings/{finding_id(world.settings, check)}"
        for check in (
            "service.version_disclosed",
            "tls.cert.expired",
            "http.cookie.no_httponly",
            "http.hsts.missing",
            "dns.dangling_cname",
        )
    ]
    pages += [f"/applications/{domain_id}", f"/agencies/{world.data_id}", "/findings", "/"]
    for url in pages:
        text = client.get(url).text
        # Then none of it is markup, and all of it is there as text
        for hostile in HOSTILE_STRINGS:
            assert hostile not in text, (url, hostile)
    finding_page = client.get(pages[0]).text
    assert html.escape("<script>alert(1)</script>", quote=False) in finding_page


def test_a_recheck_runs_at_once_beside_the_sweep_in_progress(world: World) -> None:
    from vigie.sweep import acquire_lock, release_lock

    # Given a full sweep in progress (it holds the sweep lock)
    holder = acquire_lock(world.settings)
    client = world.agency(world.stats_id)
    with session_scope(world.settings) as session:
        domain_id = session.exec(select(Domain.id).where(Domain.name == STATS)).one()
    csrf = csrf_of(client.get(f"/applications/{domain_id}").text)
    try:
        # When the contact asks for a re-check of their application
        response = client.post(f"/applications/{domain_id}/recheck", data={"csrf": csrf})
        # Then it runs as its own on-demand run, without waiting for the sweep to end
        page_showing(client, str(response.url), "status-completed")
    finally:
        release_lock(world.settings, holder)


def test_cookies_are_secure_wherever_a_browser_keeps_them(world: World) -> None:
    from starlette.testclient import TestClient

    from vigie.web import create_app

    app = world.make_client().app

    def cookie(base_url: str, application: object = app) -> str:
        client = TestClient(application, base_url=base_url)  # type: ignore[arg-type]
        return client.get("/login").headers["set-cookie"].lower()

    # Over HTTPS and on loopback: Secure
    assert "secure" in cookie("https://console.example")
    assert "secure" in cookie("http://127.0.0.1:8080")
    assert "secure" in cookie("http://localhost:8080")
    # Plain HTTP to another name: a cookie the browser can keep (still HttpOnly, Strict)
    plain = cookie("http://console.example")
    assert "secure" not in plain and "httponly" in plain and "samesite=strict" in plain
    # Unless the deployment says always
    web = world.settings.web.model_copy(update={"secure_cookies": "always"})
    strict = create_app(world.settings.model_copy(update={"web": web}))
    assert "secure" in cookie("http://console.example", strict)
