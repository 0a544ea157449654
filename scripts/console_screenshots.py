#!/usr/bin/env python3
"""Screenshots of the web console's main pages, for the README (headless chromium).

    PYTHONPATH=$PWD .venv/bin/python scripts/console_screenshots.py [--output docs/screenshots]

Seeds a small national registry with history (benchmarks/console.py's seeder), adds
an explanation waiting for a decision and a finished re-check, serves the console on
127.0.21.50 and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlmodel import select  # noqa: E402

from benchmarks.console import seed_national  # noqa: E402
from tests.web.servers import chromium, free_port, serve_console  # noqa: E402
from vigie.config import Settings  # noqa: E402
from vigie.db.session import session_scope  # noqa: E402
from vigie.db.tables import (  # noqa: E402
    Domain,
    Explanation,
    FindingRecord,
    HostScan,
    Recheck,
    ScanRun,
)
from vigie.web import create_app  # noqa: E402
from vigie.web.accounts import add_user, agency_link_token  # noqa: E402

PASSWORD = "screenshot password"


def prepare(settings: Settings) -> dict[str, int]:
    seed_national(settings, domains=60, agencies=8, findings=420, seed=11)
    with session_scope(settings) as session:
        add_user(session, "analyste", PASSWORD, "analyst")
        finding = (
            session.exec(
                select(FindingRecord)
                .where(
                    FindingRecord.check_id == "tls.cert.expired", FindingRecord.status != "resolved"
                )
                .limit(1)
            ).first()
            or session.exec(
                select(FindingRecord).where(FindingRecord.severity == "high").limit(1)
            ).one()
        )
        finding.evidence = {
            "subject": "CN=portail.ag001.gouv.ml",
            "not_after": "2026-10-31T23:59:59Z",
            "banner": "<script>alert('scanned text stays text')</script>",
        }
        session.add(finding)
        session.add(
            Explanation(
                finding_id=finding.id or 0,
                reason="Renouvellement du certificat prévu avec le nouveau prestataire (bon de commande 2026-114).",
                until=date.today() + timedelta(days=45),
                proposed_by=f"agency:{finding.agency_id}",
            )
        )
        domain = session.exec(select(Domain).where(Domain.name == finding.domain)).one()
        run = ScanRun(
            source="web",
            families=["dns", "http", "service", "tls"],
            domains=[domain.name],
            hosts_planned=2,
            finished_at=datetime.now(UTC),
            hosts_done=2,
            findings_count=31,
            status="completed",
        )
        session.add(run)
        session.flush()
        for ip, ports, count in (("10.0.0.2", [25, 80, 443], 27), ("", [], 4)):
            session.add(
                HostScan(
                    run_id=run.id or 0,
                    domain=domain.name,
                    ip=ip,
                    agency="",
                    open_ports=ports,
                    families=run.families,
                    findings_count=count,
                    source="web",
                )
            )
        session.add(
            Recheck(
                domain=domain.name,
                agency_id=domain.agency_id,
                requested_by=f"agency:{domain.agency_id}",
                status="completed",
                run_id=run.id,
                summary={
                    "hosts": 2,
                    "findings": 31,
                    "new": 1,
                    "reopened": 0,
                    "resolved": 3,
                    "not_authorised": [],
                    "postponed": [],
                },
            )
        )
        session.flush()
        recheck = session.exec(select(Recheck)).one()
        return {
            "finding": finding.id or 0,
            "agency": finding.agency_id or 0,
            "domain": domain.id or 0,
            "recheck": recheck.id or 0,
            "token_agency": finding.agency_id or 0,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    folder = Path(tempfile.mkdtemp(prefix="vigie-shots-"))
    settings = Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{folder}/console.db"},
            "web": {"secret": "screenshots-secret-0123456789abcdef", "prebuild": False},
        }
    )
    ids = prepare(settings)
    with session_scope(settings) as session:
        token = agency_link_token(session, settings, ids["token_agency"])
    args.output.mkdir(parents=True, exist_ok=True)
    driver = chromium(window="1280,1500")
    host = "127.0.21.50"
    try:
        with serve_console(create_app(settings), host, free_port(host)) as url:
            driver.get(f"{url}/login")
            driver.save_screenshot(str(args.output / "login.png"))
            driver.find_element(By.ID, "username").send_keys("analyste")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.CSS_SELECTOR, "form.stack button").click()
            pages = {
                "overview": "/",
                "agency": f"/agencies/{ids['agency']}",
                "application": f"/applications/{ids['domain']}",
                "finding": f"/findings/{ids['finding']}",
                "findings": "/findings?severity=medium",
                "runs": "/runs",
                "recheck": f"/rechecks/{ids['recheck']}",
                "registry": "/registry",
            }
            for name, path in pages.items():
                driver.get(f"{url}{path}")
                driver.save_screenshot(str(args.output / f"{name}.png"))
            # What an agency's contact sees, in English, from the digest's link
            driver.delete_all_cookies()
            driver.get(f"{url}/link/{token}")
            driver.get(f"{url}/agencies/{ids['agency']}?lang=en")
            driver.save_screenshot(str(args.output / "agency-contact-en.png"))
    finally:
        driver.quit()
    print(f"screenshots in {args.output}")


if __name__ == "__main__":
    main()
