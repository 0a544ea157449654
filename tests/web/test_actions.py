"""What people do in the console: explain and decide, change a severity, import the registry,
download tables; the digest's sign-in link; the users commands; the language."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from tests.report_data import DATA_AGENCY, PORTAIL, STATS, finding_id
from tests.web.conftest import World, csrf_of
from vigie.acceptance import list_acceptances
from vigie.db.queries import FindingFilter, query_findings
from vigie.db.session import session_scope
from vigie.db.tables import AuditEvent, Domain, FindingRecord
from vigie.model import Severity


def test_an_agency_explains_and_an_analyst_approves(world: World) -> None:
    # Given a contact of the Data agency on one of its open findings
    finding = finding_id(world.settings, "tls.cert.expired")
    contact = world.agency(world.data_id)
    page = contact.get(f"/findings/{finding}")
    until = date.today() + timedelta(days=60)
    # When it proposes to accept the risk until a date, with a reason
    response = contact.post(
        f"/findings/{finding}/explain",
        data={
            "csrf": csrf_of(page.text),
            "reason": "certificate renewal <b>planned</b>",
            "until": until.isoformat(),
        },
    )
    assert response.status_code == 200
    assert "certificate renewal &lt;b&gt;planned&lt;/b&gt;" in response.text
    # Then nothing is accepted yet, and the analyst sees it to decide
    with session_scope(world.settings) as session:
        assert list_acceptances(session) == []
    analyst = world.analyst()
    listing = analyst.get("/explanations")
    assert f"/findings/{finding}" in listing.text
    page = analyst.get(f"/findings/{finding}")
    explanation_id = int(page.text.split("/explanations/")[1].split("/")[0])
    # When the analyst approves it
    response = analyst.post(
        f"/explanations/{explanation_id}/decide",
        data={"csrf": csrf_of(page.text), "decision": "approve", "note": "ok until renewal"},
    )
    assert response.status_code == 200
    # Then the existing acceptance record holds it, and the finding reads as accepted
    with session_scope(world.settings) as session:
        [acceptance] = list_acceptances(session)
        views = query_findings(session, FindingFilter(agency=DATA_AGENCY))
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert acceptance.finding_id == finding and acceptance.until == until
    assert "approved by alice" in acceptance.accepted_by
    assert next(v for v in views if v.id == finding).accepted_until == until
    assert {"explanation_proposed", "explanation_approved"} <= set(actions)
    # And a second decision on it is refused
    page = analyst.get(f"/findings/{finding}")
    again = analyst.post(
        f"/explanations/{explanation_id}/decide",
        data={"csrf": csrf_of(page.text), "decision": "refuse"},
    )
    assert again.status_code == 400


def test_explanations_are_checked(world: World) -> None:
    finding = finding_id(world.settings, "tls.cert.expired")
    contact = world.agency(world.data_id)
    csrf = csrf_of(contact.get(f"/findings/{finding}").text)
    for reason, until in (
        ("", date.today() + timedelta(days=5)),
        ("later", date.today() - timedelta(days=1)),
        ("later", date.today() + timedelta(days=400)),
    ):
        response = contact.post(
            f"/findings/{finding}/explain",
            data={"csrf": csrf, "reason": reason, "until": until.isoformat()},
        )
        assert response.status_code == 400


def test_an_analyst_changes_a_checks_severity_for_the_deployment(world: World) -> None:
    from vigie.sweep import lifecycle_policy

    finding = finding_id(world.settings, "http.hsts.missing")
    analyst = world.analyst()
    page = analyst.get(f"/findings/{finding}")
    # When the analyst raises http.hsts.missing to high, with a reason
    response = analyst.post(
        f"/findings/{finding}/severity",
        data={"csrf": csrf_of(page.text), "severity": "high", "reason": "national policy 2026"},
    )
    assert response.status_code == 200
    # Then its open findings are high now, and the next sweep rates it high too
    with session_scope(world.settings) as session:
        record = session.get(FindingRecord, finding)
        assert record is not None and record.severity == "high"
    policy = lifecycle_policy(world.settings)
    assert policy.severity_of("http.hsts.missing", Severity.MEDIUM) is Severity.HIGH
    assert "national policy 2026" in analyst.get(f"/findings/{finding}").text
    # And an agency cannot do it
    contact = world.agency(world.data_id)
    csrf = csrf_of(contact.get(f"/findings/{finding}").text)
    refused = contact.post(
        f"/findings/{finding}/severity", data={"csrf": csrf, "severity": "info", "reason": "no"}
    )
    assert refused.status_code == 404


REGISTRY_OK = (
    "agency,agency_email,domain,language\n"
    f"Office of Statistics,securite@{STATS},{STATS},en\n"
    "Agence Nouvelle,rssi@nouvelle.gouv.ml,nouvelle.gouv.ml,fr\n"
)
REGISTRY_BAD = (
    "agency,agency_email,domain\n"
    "Agence Nouvelle,rssi@nouvelle.gouv.ml,nouvelle.gouv.ml\n"
    "Agence Nouvelle,not-an-address,autre.gouv.ml\n"
)


def test_registry_upload_previews_then_applies_all_or_nothing(world: World) -> None:
    analyst = world.analyst()
    csrf = csrf_of(analyst.get("/registry").text)
    # Given a CSV with one bad line: the preview names it and nothing is imported
    bad = analyst.post(
        "/registry/preview",
        data={"csrf": csrf},
        files={"file": ("registry.csv", REGISTRY_BAD.encode(), "text/csv")},
    )
    assert bad.status_code == 200 and "registry.csv:3" in bad.text
    assert "/registry/apply" not in bad.text
    # Given a valid CSV: the preview lists what changes
    good = analyst.post(
        "/registry/preview",
        data={"csrf": csrf, "prune": "1"},
        files={"file": ("registry.csv", REGISTRY_OK.encode(), "text/csv")},
    )
    assert "nouvelle.gouv.ml" in good.text and "Agence Nouvelle" in good.text
    assert "domaines : 1 nouveaux" in good.text  # registered by hand: pruning keeps them
    with session_scope(world.settings) as session:
        assert session.exec(select(Domain).where(Domain.name == "nouvelle.gouv.ml")).first() is None
    # When it is applied (without pruning this time)
    applied = analyst.post(
        "/registry/apply",
        data={"csrf": csrf, "csv_text": REGISTRY_OK, "filename": "registry.csv", "prune": ""},
    )
    assert applied.status_code == 200
    with session_scope(world.settings) as session:
        added = session.exec(select(Domain).where(Domain.name == "nouvelle.gouv.ml")).one()
        kept = session.exec(select(Domain).where(Domain.name == PORTAIL)).one()
        assert added.status == "active" and kept.status == "active"
        assert "registry_imported" in [e.action for e in session.exec(select(AuditEvent))]


def test_tables_download_what_the_filters_select(world: World) -> None:
    client = world.agency(world.data_id)
    # When the contact filters its findings to high and above, as CSV
    response = client.get("/findings?severity=high&format=csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert rows and all(r["severity"] in ("high", "critical") for r in rows)
    assert {r["domain"] for r in rows} <= {PORTAIL, "mail.and.gouv.ml"}
    # And as JSON and SARIF, the same findings
    as_json = client.get("/findings?severity=high&format=json").json()
    assert sorted(r["id"] for r in as_json) == sorted(int(r["id"]) for r in rows)
    sarif = json.loads(client.get("/findings?severity=high&format=sarif").text)
    assert len(sarif["runs"][0]["results"]) == len(rows)
    # Then the page shows the same count
    page = client.get("/findings?severity=high")
    assert f'id="finding-count">{len(rows)} ' in page.text
    # And the audit log has the download
    with session_scope(world.settings) as session:
        downloads = session.exec(select(AuditEvent).where(AuditEvent.action == "download")).all()
    assert len(downloads) == 3


def test_the_digest_carries_a_sign_in_link_that_opens_the_agency(world: World) -> None:
    from vigie.notify import run_notify

    settings = world.settings.model_copy(
        update={"web": world.settings.web.model_copy(update={"base_url": "https://console.test"})}
    )
    report = run_notify(settings, dry_run=True)
    draft = next(d for d in report.drafts if d.agency == DATA_AGENCY and d.kind == "digest")
    # Then the French digest says where to go, in text and HTML
    assert "Ouvrir vos applications dans la console du CERT" in draft.text
    link = next(w for w in draft.text.split() if w.startswith("https://console.test/link/"))
    assert f'href="{link}"' in draft.html
    # And the link opens that agency, and only it
    client = world.make_client()
    response = client.get(link.removeprefix("https://console.test"))
    assert str(response.url).endswith(f"/agencies/{world.data_id}")
    assert client.get(f"/agencies/{world.stats_id}").status_code == 404


def test_language_follows_the_agency_then_the_browser(world: World) -> None:
    # The Data agency reads French; Statistics reads English
    assert (
        "Constats ouverts par gravité"
        in world.agency(world.data_id).get(f"/agencies/{world.data_id}").text
    )
    assert (
        "Open findings by severity"
        in world.agency(world.stats_id).get(f"/agencies/{world.stats_id}").text
    )
    client = world.make_client()
    assert "Username" in client.get("/login", headers={"accept-language": "en-GB,en;q=0.8"}).text
    assert (
        "Nom d'utilisateur"
        in world.make_client().get("/login", headers={"accept-language": "fr-FR,en;q=0.5"}).text
    )


def test_users_commands(world: World) -> None:
    from vigie.cli import main

    runner = CliRunner()
    env = {"VIGIE_DATABASE_URL": world.settings.database.url}
    added = runner.invoke(
        main,
        ["users", "add", "bob", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
        env=env,
    )
    assert added.exit_code == 0, added.output
    short = runner.invoke(
        main, ["users", "add", "eve", "--password-stdin"], input="short\n", env=env
    )
    assert short.exit_code == 2
    listed = runner.invoke(main, ["users", "list", "--format", "json"], env=env)
    users = {u["username"]: u for u in json.loads(listed.output)}
    assert users["bob"]["role"] == "admin" and users["alice"]["role"] == "analyst"
    assert runner.invoke(main, ["users", "disable", "bob"], env=env).exit_code == 0
    listed = runner.invoke(main, ["users", "list", "--format", "json"], env=env)
    assert {u["username"]: u["active"] for u in json.loads(listed.output)}["bob"] is False
    # And the password is stored as an argon2 hash
    from vigie.db.tables import WebUser

    with session_scope(world.settings) as session:
        user = session.exec(select(WebUser).where(WebUser.username == "bob")).one()
    assert user.password_hash.startswith("$argon2id$")


def test_the_warmer_builds_the_pages_people_open(world: World) -> None:
    from vigie.web import cache

    # Given a warmer over the seeded registry
    warmer = cache.Warmer(world.settings)
    cache.clear()
    # When it runs once, then once more without new data
    assert warmer.warm_once() is True
    assert warmer.warm_once() is False
    # Then the overview and each agency's page are built for the current data
    with session_scope(world.settings) as session:
        version = cache.data_version(session)
    keys = list(cache._entries)
    assert any(k[0] == "overview" and k[3] == version for k in keys)
    assert {k[1] for k in keys if k[0] == "agency" and k[4] == version} == set(
        world.seeded.agency_ids.values()
    )
    # And a change in the data (an accepted risk) makes the next round build again
    analyst = world.analyst()
    finding = finding_id(world.settings, "tls.cert.expired")
    contact = world.agency(world.data_id)
    contact.post(
        f"/findings/{finding}/explain",
        data={
            "csrf": csrf_of(contact.get(f"/findings/{finding}").text),
            "reason": "renewal",
            "until": (date.today() + timedelta(days=9)).isoformat(),
        },
    )
    page = analyst.get(f"/findings/{finding}")
    explanation = page.text.split("/explanations/")[1].split("/")[0]
    analyst.post(
        f"/explanations/{explanation}/decide",
        data={"csrf": csrf_of(page.text), "decision": "approve"},
    )
    assert warmer.warm_once() is True


@pytest.mark.network
def test_vigie_serve_answers_on_the_address_it_is_given(world: World) -> None:
    import subprocess
    import sys
    import time

    import httpx

    from tests.web.servers import free_port

    host = "127.0.21.60"
    port = free_port(host)
    env = {
        "VIGIE_DATABASE_URL": world.settings.database.url,
        "VIGIE_WEB_PREBUILD": "false",
        "PATH": "/usr/bin:/bin",
    }
    # When the console is started from the command line
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from vigie.cli import main; main()",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
        ],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://{host}:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        # Then it serves the sign-in page with its headers, and no server banner
        assert response.status_code == 200 and 'name="password"' in response.text
        assert "server" not in response.headers
        assert "default-src 'none'" in response.headers["content-security-policy"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_redirects_plain_http_only_with_a_certificate(world: World) -> None:
    from vigie.cli import main

    env = {"VIGIE_DATABASE_URL": world.settings.database.url}
    result = CliRunner().invoke(main, ["serve", "--http-port", "8081"], env=env)
    assert result.exit_code == 2 and "--ssl-certfile" in result.output


def test_every_table_filters(world: World) -> None:
    analyst = world.analyst()
    # The registry by free text and status
    page = analyst.get("/registry?q=stats&status=active")
    assert STATS in page.text and PORTAIL not in page.text
    rows = list(csv.DictReader(io.StringIO(analyst.get("/registry?q=stats&format=csv").text)))
    assert [r["domain"] for r in rows] == [STATS]
    # Scan runs by status
    every = analyst.get("/runs?format=json").json()
    running = analyst.get("/runs?status=running&format=json").json()
    assert running and all(r["status"] == "running" for r in running)
    assert len(running) == sum(1 for r in every if r["status"] == "running")
    assert analyst.get("/runs?status=failed&format=json").json() == []
    # Mandates: none valid today in the seeded registry
    assert analyst.get("/mandates?valid=1&format=json").json() == []
