"""A small national registry with three scans of history, stored for real.

Findings go through ``vigie.db.store.record_host_result`` into a SQLite file,
exactly as a sweep stores them; grades through ``vigie.grading.record_grades``.
Evidence, cookie names and reasons carry hostile markup, as a hostile server
(or a careless hand) would send it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import SQLModel, select

from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import get_engine, session_scope
from vigie.db.store import LifecyclePolicy, record_host_result
from vigie.db.tables import Agency, FindingRecord, ScanRun
from vigie.grading import record_grades
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget
from vigie.targets.registry import add_target

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_ATTRIBUTE = '"><img src=x onerror=alert(1)>'
HOSTILE_SVG = "<svg/onload=alert(1)>"
HOSTILE_STRINGS = (HOSTILE_SCRIPT, HOSTILE_ATTRIBUTE, HOSTILE_SVG)

DATA_AGENCY = "Agence Nationale des Données"
STATS_AGENCY = "Office of Statistics"
TAX_AGENCY = "Direction des Impôts"

PORTAIL = "portail.and.gouv.ml"
MAIL = "mail.and.gouv.ml"
STATS = "stats.gouv.ml"
TAX = "impots.gouv.ml"

RUN_DAYS = (
    datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
    datetime(2026, 3, 15, 2, 0, tzinfo=UTC),
    datetime(2026, 4, 1, 2, 0, tzinfo=UTC),
)
AFTER_RUNS = date(2026, 4, 2)


def make_settings(tmp_path: Path) -> Settings:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/v.db"})
    upgrade_database(settings)
    # Tables added since the last generated migration (ReportRecord) are created here.
    SQLModel.metadata.create_all(get_engine(settings))
    return settings


def register(settings: Settings) -> dict[str, int]:
    """The registry: three agencies, four applications. Returns agency ids by name."""
    with session_scope(settings) as session:
        for agency, domain, language in (
            (DATA_AGENCY, PORTAIL, "fr"),
            (DATA_AGENCY, MAIL, "fr"),
            (STATS_AGENCY, STATS, "en"),
            (TAX_AGENCY, TAX, "fr"),
        ):
            add_target(
                session,
                agency_name=agency,
                domain_name=domain,
                emails=[f"securite@{domain}"],
                language=language,
            )
        parents = {DATA_AGENCY: "Ministère du Numérique", STATS_AGENCY: "Ministry of Finance"}
        ids = {}
        for agency in session.exec(select(Agency)):
            agency.parent = parents.get(agency.name)
            agency.code = {DATA_AGENCY: "AND", STATS_AGENCY: "OS", TAX_AGENCY: "DGI"}[agency.name]
            session.add(agency)
            assert agency.id is not None
            ids[agency.name] = agency.id
    return ids


def host(
    domain: str, ip: str, family: Family, findings: list[Finding], agency: str = ""
) -> HostResult:
    result = HostResult(target=HostTarget(domain=domain, ip=ip, agency=agency))
    result.families[family] = FamilyResult(family=family, findings=findings)
    return result


def portail_findings(run: int) -> list[HostResult]:
    ip = "41.73.1.10"
    service = [
        Finding("service.open_port", PORTAIL, ip, 22, evidence={"service": "ssh"}),
        Finding("service.open_port", PORTAIL, ip, 443, evidence={"service": "https"}),
        Finding(
            "service.version_disclosed",
            PORTAIL,
            ip,
            22,
            evidence={"banner": "SSH-2.0-OpenSSH_7.4 " + HOSTILE_SCRIPT},
        ),
    ]
    if run == 0:  # fixed after the first scan: resolved after two clean scans
        service += [
            Finding("service.open_port", PORTAIL, ip, 6379, evidence={"service": "redis"}),
            Finding(
                "service.database.no_auth",
                PORTAIL,
                ip,
                6379,
                "redis",
                {"reply": "+PONG " + HOSTILE_SCRIPT},
            ),
        ]
    tls = [
        Finding(
            "tls.cert.expired",
            PORTAIL,
            ip,
            443,
            evidence={"subject": "CN=" + HOSTILE_SVG, "not_after": "2026-02-01"},
        )
    ]
    http = [
        Finding("http.hsts.missing", PORTAIL, ip, 443, evidence={"server": HOSTILE_ATTRIBUTE}),
        Finding(
            "http.cookie.no_httponly",
            PORTAIL,
            ip,
            443,
            discriminator=HOSTILE_SCRIPT,
            evidence={"set_cookie": HOSTILE_SCRIPT + "=1; Path=/", "server": HOSTILE_ATTRIBUTE},
        ),
    ]
    dns = [
        Finding("dns.dmarc.missing", PORTAIL, evidence={"queried": "_dmarc." + PORTAIL}),
        Finding(
            "dns.dangling_cname",
            PORTAIL,
            discriminator="old." + PORTAIL,
            evidence={"cname": HOSTILE_SVG + ".evil.example"},
        ),
    ]
    return [
        host(PORTAIL, ip, Family.SERVICE, service, DATA_AGENCY),
        host(PORTAIL, ip, Family.TLS, tls, DATA_AGENCY),
        host(PORTAIL, ip, Family.HTTP, http, DATA_AGENCY),
        host(PORTAIL, "", Family.DNS, dns, DATA_AGENCY),
    ]


def mail_findings() -> list[HostResult]:
    ip = "41.73.1.25"
    return [
        host(
            MAIL,
            ip,
            Family.SERVICE,
            [
                Finding("service.open_port", MAIL, ip, 25, evidence={"service": "smtp"}),
                Finding("service.cleartext_mail", MAIL, ip, 110, evidence={"banner": "+OK POP3"}),
            ],
            DATA_AGENCY,
        )
    ]


def stats_findings() -> list[HostResult]:
    ip = "41.73.2.10"
    return [
        host(
            STATS,
            ip,
            Family.HTTP,
            [
                Finding(
                    "http.csp.missing", STATS, ip, 443, evidence={"url": "https://stats.gouv.ml/"}
                )
            ],
            STATS_AGENCY,
        ),
        host(
            STATS,
            ip,
            Family.TLS,
            [Finding("tls.protocol.no_tls1_3", STATS, ip, 443, evidence={"offered": ["TLSv1.2"]})],
            STATS_AGENCY,
        ),
    ]


def tax_findings() -> list[HostResult]:
    return [
        host(
            TAX,
            "41.73.3.10",
            Family.SCAN,
            [Finding("scan.unreachable", TAX, "41.73.3.10", evidence={"tried": [80, 443]})],
            TAX_AGENCY,
        )
    ]


@dataclass
class Seeded:
    settings: Settings
    agency_ids: dict[str, int]
    run_ids: list[int] = field(default_factory=list)


def store_run(
    settings: Settings, when: datetime, results: list[HostResult], agency_ids: dict[str, int]
) -> int:
    """One sweep's worth of results, then its grades, as the sweep stores them."""
    policy = LifecyclePolicy(resolve_after_scans=2, due_days=settings.grading.due_days)
    with session_scope(settings) as session:
        run = ScanRun(started_at=when, finished_at=when)
        session.add(run)
        session.flush()
        assert run.id is not None
        for result in results:
            record_host_result(
                session,
                result,
                run_id=run.id,
                agency_id=agency_ids[result.target.agency],
                policy=policy,
                now=when,
            )
        record_grades(session, run.id, settings, now=when)
        return run.id


def seed(tmp_path: Path) -> Seeded:
    settings = make_settings(tmp_path)
    seeded = Seeded(settings, register(settings))
    for index, when in enumerate(RUN_DAYS):
        results = portail_findings(index) + mail_findings() + stats_findings() + tax_findings()
        seeded.run_ids.append(store_run(settings, when, results, seeded.agency_ids))
    return seeded


def finding_id(settings: Settings, check_id: str, domain: str = PORTAIL) -> int:
    with session_scope(settings) as session:
        record = session.exec(
            select(FindingRecord).where(
                FindingRecord.check_id == check_id, FindingRecord.domain == domain
            )
        ).first()
        assert record is not None and record.id is not None
        return record.id


def iter_hostile() -> Iterator[str]:
    yield from HOSTILE_STRINGS
