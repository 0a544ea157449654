#!/usr/bin/env python3
"""Web console speed at national scale, on SQLite.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/console.py                 # 2,000 / 200 / 100,000
    PYTHONPATH=$PWD .venv/bin/python benchmarks/console.py --domains 200 --agencies 20 --findings 10000

Seeds a database with DOMAINS domains spread over AGENCIES agencies and FINDINGS
findings with their history (status events over six sweeps, grade records per
sweep, host scans, accepted risks), then serves the console under uvicorn on
127.0.21.40 and times, over HTTP from an httpx client, the national overview,
agency pages and findings pages (unfiltered, by agency, by severity, page 5).
Prints median and 95th percentile per page, cold (first request after the data
changed) apart from the rest.

Rows are bulk-inserted with the tables' own models, as a sweep would leave
them; grades of the last sweep come from vigie.grading.record_grades itself.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlmodel import select  # noqa: E402

from vigie.catalogue import load_catalogue  # noqa: E402
from vigie.config import Settings  # noqa: E402
from vigie.db.migrate import upgrade_database  # noqa: E402
from vigie.db.session import get_engine, session_scope  # noqa: E402
from vigie.db.tables import (  # noqa: E402
    Agency,
    Contact,
    Domain,
    FindingEvent,
    FindingRecord,
    GradeRecord,
    HostScan,
    RiskAcceptance,
    ScanRun,
)
from vigie.model import Family, Severity  # noqa: E402

SWEEPS = 6
GRADES = ("A+", "A", "B", "C", "D", "E", "F")


def seed_national(
    settings: Settings, domains: int, agencies: int, findings: int, seed: int = 7
) -> dict[str, int]:
    """A national registry with history; returns the row counts."""
    rng = random.Random(seed)
    upgrade_database(settings)
    engine = get_engine(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    sweep_days = [now - timedelta(days=30 * (SWEEPS - 1 - i)) for i in range(SWEEPS)]
    checks = [c for c in load_catalogue() if c.check_id.split(".")[0] != "scan"]
    weights = {
        Severity.INFO: 6,
        Severity.LOW: 4,
        Severity.MEDIUM: 3,
        Severity.HIGH: 1.5,
        Severity.CRITICAL: 0.3,
    }
    due = settings.grading.due_days
    with session_scope(settings) as session:
        agency_rows = [
            Agency(
                name=f"Agence {i:03d} "
                + rng.choice(
                    ["des Données", "du Budget", "de la Santé", "des Routes", "de l'Éducation"]
                ),
                code=f"AG{i:03d}",
                language="fr" if i % 5 else "en",
            )
            for i in range(agencies)
        ]
        session.add_all(agency_rows)
        session.flush()
        agency_ids = [a.id for a in agency_rows]
        session.add_all(
            Contact(agency_id=a.id or 0, email=f"rssi@ag{index:03d}.gouv.ml")
            for index, a in enumerate(agency_rows)
        )
        domain_rows = [
            Domain(
                name=f"app{i:04d}.ag{i % agencies:03d}.gouv.ml", agency_id=agency_ids[i % agencies]
            )
            for i in range(domains)
        ]
        session.add_all(domain_rows)
        runs = [
            ScanRun(
                started_at=day,
                finished_at=day + timedelta(hours=2),
                status="completed",
                source="scheduler",
                families=[f.value for f in Family if f is not Family.SCAN],
                domains=[d.name for d in domain_rows],
                findings_count=findings // 2,
                hosts_planned=domains * 2,
                hosts_done=domains * 2,
            )
            for day in sweep_days
        ]
        session.add_all(runs)
        session.flush()
        run_ids = [r.id for r in runs]
    # Findings and their events, in batches of plain rows (the ORM unit of work is slow here).
    finding_table = FindingRecord.__table__  # type: ignore[attr-defined]
    event_table = FindingEvent.__table__  # type: ignore[attr-defined]
    records, events = [], []
    per_domain: dict[int, int] = {}
    for index in range(findings):
        d = rng.randrange(domains)
        domain = f"app{d:04d}.ag{d % agencies:03d}.gouv.ml"
        spec = rng.choices(checks, [weights[c.severity] for c in checks])[0]
        per_domain[d] = per_domain.get(d, 0) + 1
        first_sweep = rng.randrange(SWEEPS)
        first_seen = sweep_days[first_sweep]
        resolved = rng.random() < 0.25 and first_sweep < SWEEPS - 1
        status = "resolved" if resolved else ("new" if first_sweep == SWEEPS - 1 else "open")
        last_seen = (
            sweep_days[rng.randrange(first_sweep, SWEEPS - 1)] if resolved else sweep_days[-1]
        )
        days = due.get(spec.severity)
        ip = f"10.{d // 250}.{d % 250}.{rng.randrange(1, 4)}"
        port = (
            rng.choice([22, 25, 80, 443, 3306, 6379, 8080])
            if spec.family is not Family.DNS
            else None
        )
        records.append(
            {
                "id": index + 1,
                "fingerprint": f"{index:064x}",
                "check_id": spec.check_id,
                "family": spec.family.value,
                "severity": spec.severity.value,
                "domain": domain,
                "ip": None if spec.family is Family.DNS else ip,
                "port": port,
                "discriminator": "",
                "agency_id": agency_ids[d % agencies],
                "status": status,
                "first_seen": first_seen.replace(tzinfo=None),
                "last_seen": last_seen.replace(tzinfo=None),
                "resolved_at": last_seen.replace(tzinfo=None) if resolved else None,
                "status_changed_at": (last_seen if resolved else first_seen).replace(tzinfo=None),
                "missed_scans": 0,
                "due_date": (first_seen + timedelta(days=days)).date() if days else None,
                "evidence": {"banner": f"Server: nginx/1.{index % 20}.0", "port": port},
                "evidence_hash": f"{index:064x}",
                "last_run_id": run_ids[-1],
                "vantage": "default",
            }
        )
        events.append(
            {
                "finding_id": index + 1,
                "run_id": run_ids[first_sweep],
                "at": first_seen.replace(tzinfo=None),
                "from_status": None,
                "to_status": "new",
                "evidence": {},
                "evidence_hash": "",
            }
        )
        if first_sweep < SWEEPS - 1:
            events.append(
                {
                    "finding_id": index + 1,
                    "run_id": run_ids[first_sweep + 1],
                    "at": sweep_days[first_sweep + 1].replace(tzinfo=None),
                    "from_status": "new",
                    "to_status": "open",
                    "evidence": {},
                    "evidence_hash": "",
                }
            )
        if resolved:
            events.append(
                {
                    "finding_id": index + 1,
                    "run_id": None,
                    "at": (last_seen + timedelta(days=30)).replace(tzinfo=None),
                    "from_status": "open",
                    "to_status": "resolved",
                    "evidence": {},
                    "evidence_hash": "",
                }
            )
    with engine.begin() as connection:
        for start in range(0, len(records), 5000):
            connection.execute(finding_table.insert(), records[start : start + 5000])
        for start in range(0, len(events), 5000):
            connection.execute(event_table.insert(), events[start : start + 5000])
        connection.execute(
            HostScan.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "run_id": run_ids[-1],
                    "domain": f"app{d:04d}.ag{d % agencies:03d}.gouv.ml",
                    "ip": f"10.{d // 250}.{d % 250}.1",
                    "agency": agency_rows[d % agencies].name,
                    "started_at": sweep_days[-1].replace(tzinfo=None),
                    "finished_at": sweep_days[-1].replace(tzinfo=None),
                    "families": ["service", "tls", "http"],
                    "incomplete_families": [],
                    "open_ports": [80, 443],
                    "findings_count": per_domain.get(d, 0),
                    "vantage": "default",
                    "source": "scheduler",
                }
                for d in range(domains)
            ],
        )
        connection.execute(
            GradeRecord.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "domain": f"app{d:04d}.ag{d % agencies:03d}.gouv.ml",
                    "agency_id": agency_ids[d % agencies],
                    "run_id": run_ids[s],
                    "computed_at": sweep_days[s].replace(tzinfo=None),
                    "grade": rng.choice(GRADES),
                    "score": rng.randrange(30, 100),
                    "flagged": False,
                    "policy_version": "2026.1",
                    "reasons": [],
                }
                for d in range(domains)
                for s in range(SWEEPS - 1)
            ],
        )
    with session_scope(settings) as session:
        from vigie.grading import record_grades

        record_grades(session, run_ids[-1] or 0, settings, now=sweep_days[-1])
        open_ids = list(
            session.exec(
                select(FindingRecord.id)
                .where(FindingRecord.status != "resolved")
                .limit(findings // 50)
            )
        )
        session.add_all(
            RiskAcceptance(
                finding_id=finding_id or 0,
                reason="plan de migration",
                accepted_by="rssi",
                until=(now + timedelta(days=90)).date(),
            )
            for finding_id in open_ids[::3]
        )
    return {"domains": domains, "agencies": agencies, "findings": findings, "events": len(events)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domains", type=int, default=2000)
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page kind")
    parser.add_argument("--database", type=Path, default=None, help="keep the database here")
    args = parser.parse_args()

    from vigie.web.accounts import add_user

    folder = Path(tempfile.mkdtemp(prefix="vigie-console-bench-"))
    database = args.database or folder / "console.db"
    settings = Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{database}"},
            "web": {"secret": "benchmark-secret-0123456789abcdef"},
        }
    )
    started = time.perf_counter()
    counts = seed_national(settings, args.domains, args.agencies, args.findings)
    with session_scope(settings) as session:
        add_user(session, "bench", "benchmark password", "analyst")
        agency_ids = [i for i in session.exec(select(Agency.id)) if i is not None]
    print(f"seeded {counts} in {time.perf_counter() - started:.1f} s ({database})")

    for prebuild in (False, True):
        measure(settings, agency_ids, args.requests, prebuild)


def measure(settings: Settings, agency_ids: list[int], requests: int, prebuild: bool) -> None:
    """Time each page kind over HTTP; with ``prebuild`` once the warmer has built the pages."""
    import httpx

    from tests.web.servers import free_port, serve_console
    from vigie.web import cache, create_app

    cache.clear()
    web = settings.web.model_copy(update={"prebuild": prebuild})
    app = create_app(settings.model_copy(update={"web": web}))
    if prebuild:
        started = time.perf_counter()
        while app.state.warmer.built_version is None:
            time.sleep(0.5)
        print(
            f"\nwarmer: overview and {len(agency_ids)} agency pages built in "
            f"{time.perf_counter() - started:.1f} s"
        )
    else:
        print("\nno warmer: every page built on first request")
    host = "127.0.21.40"
    with serve_console(app, host, free_port(host)) as url:
        client = httpx.Client(base_url=url, timeout=300)
        login = client.get("/login")
        csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
        client.post(
            "/login", data={"username": "bench", "password": "benchmark password", "csrf": csrf}
        )
        rng = random.Random(3)
        kinds = {
            "overview": lambda: "/",
            "agency": lambda: f"/agencies/{rng.choice(agency_ids)}",
            "findings (all, page 1)": lambda: "/findings",
            "findings (agency)": lambda: f"/findings?agency={rng.choice(agency_ids)}",
            "findings (severity high, page 5)": lambda: "/findings?severity=high&page=5",
        }
        print(f"{'page':34} {'first ms':>9} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  n")
        for name, make in kinds.items():
            timings = []
            for _ in range(requests + 1):
                path = make()
                start = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            first, rest = timings[0], timings[1:]
            print(
                f"{name:34} {first:9.1f} {statistics.median(rest):10.1f} "
                f"{percentile(rest, 0.95):8.1f} {max(rest):8.1f}  {len(rest)}"
            )
    if prebuild:
        app.state.warmer.stop.set()


if __name__ == "__main__":
    main()
