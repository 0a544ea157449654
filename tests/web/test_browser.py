"""The console in a real browser: Debian's chromium driven by Selenium (chromium-driver).

A small world on 127.0.21.0/24: Knot serving ``vigie-web.test``, a tiny web server
for the agency's application (its Server header carries markup), the console under
uvicorn. A contact follows the digest's link, filters findings, asks for a re-check
that sweeps the real server, and explains a finding; an analyst signs in, approves
the explanation and downloads a CSV.
"""

from __future__ import annotations

import csv
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.dns_server import free_port, start_zone_server
from tests.web.servers import chromium, serve_console
from vigie.config import Settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.web import cache, create_app
from vigie.web.accounts import add_user

pytestmark = [
    pytest.mark.slow,
    pytest.mark.network,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="chromium and chromium-driver are not installed (scripts/setup.sh --test)",
    ),
]

KNOT = "127.0.21.53"
WEB = "127.0.21.30"
CONSOLE = "127.0.21.20"
ZONE = "vigie-web.test"
APP = f"www.{ZONE}"
HOSTILE_SERVER = "<script>alert('vigie')</script>"
PASSWORD = "analyst browser password"


class HostileHandler(BaseHTTPRequestHandler):
    def version_string(self) -> str:
        return f"nginx/1.18.0 {HOSTILE_SERVER}"

    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><title>Agence</title><p>Bienvenue</p>"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # scanners hang up abruptly: not the test's business


@dataclass
class Lab:
    settings: Settings
    console_url: str
    downloads: Path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    cache.clear()
    zone = (
        f"$ORIGIN {ZONE}.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
        f"ns1 A {KNOT}\nwww A {WEB}\n"
    )
    port = free_port([KNOT])
    web = QuietServer((WEB, 80), HostileHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with start_zone_server(tmp_path, KNOT, port, {ZONE: zone}) as knot:
            settings = Settings.model_validate(
                {
                    "database": {"url": f"sqlite:///{tmp_path}/console.db"},
                    "dns": {"resolvers": [knot.resolver], "timeout_s": 1, "lifetime_s": 3},
                    "scope": {"allow": ["127.0.21.0/24"], "require_mandate": True},
                    "scan": {"ports": [80], "host_deadline_s": 60, "probe_timeout_s": 3},
                    "http": {"connect_timeout_s": 2, "read_timeout_s": 3, "total_timeout_s": 10},
                    "web": {"secret": "browser-test-secret-0123456789abcdef", "prebuild": False},
                }
            )
            upgrade_database(settings)
            _register(settings)
            with serve_console(create_app(settings), CONSOLE, free_port([CONSOLE])) as url:
                downloads = tmp_path / "downloads"
                downloads.mkdir()
                yield Lab(settings, url, downloads)
    finally:
        web.shutdown()
        web.server_close()
        dispose_engines()


def _register(settings: Settings) -> None:
    from vigie.sweep import SweepRequest, run_sweep
    from vigie.targets.registry import add_mandate, add_target

    with session_scope(settings) as session:
        add_target(
            session,
            agency_name="Agence du Web",
            domain_name=APP,
            emails=["rssi@agence-web.gouv.ml"],
        )
        add_target(
            session,
            agency_name="Autre Agence",
            domain_name=f"autre.{ZONE}",
            emails=["rssi@autre.gouv.ml"],
        )
        add_mandate(
            session,
            agency_name="Agence du Web",
            legal_basis="Décret 2026-101 art. 4",
            reference="MAND-2026-007",
            valid_from=date.today() - timedelta(days=30),
            valid_until=None,
            cidrs=["127.0.21.0/24"],
        )
        add_user(session, "alice", PASSWORD, "analyst")
    # The nightly sweep has run once: the agency has findings and a digest is due.
    run_sweep(settings, SweepRequest(domains=(APP,), source="cli"))


@pytest.fixture
def browser(lab: Lab) -> Iterator[Any]:
    driver = chromium(downloads=lab.downloads)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except WebDriverException:  # the page was reloading under us
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting in the browser")
        time.sleep(0.3)


def click_and_load(browser: Any, element: Any) -> None:
    """Click something that loads a new page, and wait until the new page is there."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    element.click()

    def old_page_gone(_: Any) -> bool:
        # Mid-navigation chromium may answer "node does not belong to the document"
        # rather than "stale element": either way the old page is gone.
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(browser, 30).until(old_page_gone)
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )


def digest_link(settings: Settings, base_url: str) -> str:
    from vigie.notify import run_notify

    web = settings.web.model_copy(update={"base_url": base_url})
    report = run_notify(settings.model_copy(update={"web": web}), dry_run=True)
    draft = next(d for d in report.drafts if d.agency == "Agence du Web")
    return next(w for w in draft.text.split() if w.startswith(f"{base_url}/link/"))


def test_agency_and_analyst_work_a_finding_in_the_browser(lab: Lab, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    # Given the digest's link: the contact lands on its agency, in French
    browser.get(digest_link(lab.settings, lab.console_url))
    assert browser.current_url.endswith("/agencies/1")
    assert "Agence du Web" in browser.find_element(By.TAG_NAME, "h1").text
    assert "Constats ouverts par gravité" in browser.page_source
    # And another agency's page does not exist for it
    browser.get(f"{lab.console_url}/agencies/2")
    assert "Introuvable" in browser.find_element(By.TAG_NAME, "h1").text

    # When it filters its findings to medium and above
    browser.get(f"{lab.console_url}/findings")
    everything = int(browser.find_element(By.ID, "finding-count").text.split()[0])
    Select(browser.find_element(By.NAME, "severity")).select_by_value("medium")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.filters button"))
    assert "severity=medium" in browser.current_url
    medium = int(browser.find_element(By.ID, "finding-count").text.split()[0])
    assert 0 < medium < everything
    rows = browser.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    assert len(rows) == medium
    # The version the server disclosed, with its markup, is text on the finding's page
    browser.get(f"{lab.console_url}/findings?check=http.version_disclosed&status=all")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#findings tbody a"))
    assert HOSTILE_SERVER in browser.find_element(By.CSS_SELECTOR, "pre.evidence-block").text
    assert browser.execute_script("return document.scripts.length") == 0

    # When it asks for a re-check of its application
    browser.get(f"{lab.console_url}/applications/1")
    click_and_load(
        browser, browser.find_element(By.XPATH, "//button[contains(., 'Vérifier à nouveau')]")
    )
    wait_for(lambda: "/rechecks/" in browser.current_url, timeout=10)
    # Then the page follows the sweep until it is done (it refreshes itself, no script)
    wait_for(
        lambda: (
            "status-completed"
            in browser.find_element(By.ID, "recheck-status").get_attribute("class")
        ),
        timeout=90,
    )
    summary = browser.find_element(By.ID, "recheck-summary").text
    assert "constats relevés" in summary
    assert "Hôtes analysés : 2 sur 2" in browser.page_source  # the address and the DNS zone

    # When it explains a finding: accepted until a date, with the reason
    browser.get(f"{lab.console_url}/findings?severity=medium")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "#findings tbody a"))
    finding_url = browser.current_url
    browser.find_element(By.ID, "reason").send_keys("Migration vers le nouvel hébergeur en mars")
    click_and_load(browser, browser.find_element(By.XPATH, "//button[contains(., 'Envoyer')]"))
    wait_for(lambda: "explication envoyée au CERT" in browser.page_source, timeout=10)

    # Then an analyst signs in and approves it
    browser.delete_all_cookies()
    browser.get(f"{lab.console_url}/explanations")
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form.stack button"))
    wait_for(lambda: browser.current_url.endswith("/explanations"), timeout=10)
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "table tbody a"))
    assert browser.current_url == finding_url
    click_and_load(browser, browser.find_element(By.XPATH, "//button[@value='approve']"))
    wait_for(lambda: "explication approuvée" in browser.page_source, timeout=10)
    assert "accepté jusqu" in browser.find_element(By.CSS_SELECTOR, "p.accepted").text

    # And downloads the agency's findings as CSV
    browser.get(f"{lab.console_url}/findings?agency=1&severity=medium")
    browser.find_element(By.LINK_TEXT, "CSV").click()  # a download: the page stays
    path = wait_for(lambda: next(iter(lab.downloads.glob("findings*.csv")), None), timeout=20)
    rows_csv = list(csv.DictReader(path.open(encoding="utf-8")))
    assert len(rows_csv) == medium
    assert all(r["domain"] == APP for r in rows_csv)
    assert any(r["accepted_until"] for r in rows_csv)
