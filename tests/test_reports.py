"""Reports from a database holding hostile evidence: escaped everywhere, readable, as PDF too."""

from __future__ import annotations

import html
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from tests.report_data import (
    AFTER_RUNS,
    DATA_AGENCY,
    HOSTILE_STRINGS,
    MAIL,
    PORTAIL,
    RUN_DAYS,
    STATS,
    STATS_AGENCY,
    TAX,
    TAX_AGENCY,
    Seeded,
    finding_id,
    host,
    mail_findings,
    make_settings,
    portail_findings,
    register,
    seed,
    store_run,
)
from tests.servers import require_program
from vigie import i18n
from vigie.acceptance import accept_finding
from vigie.cli import main
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import ReportRecord
from vigie.errors import NotFoundError, UsageError
from vigie.model import Family, Finding
from vigie.reports import (
    build_agency_report,
    build_overview_report,
    build_posture_pack,
    render_agency_report,
    render_overview_report,
    render_posture_pack,
)

NOW = RUN_DAYS[-1] + timedelta(hours=6)

# Every element the report templates write; anything else came from the data.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "footer", "section", "div",
    "h1", "h2", "h3", "p", "span", "strong", "em", "code", "ul", "ol", "li",
    "table", "thead", "tbody", "tr", "th", "td", "br",
    "svg", "rect", "line", "text", "polyline", "circle",
}  # fmt: skip


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: bytes) -> _Page:
    parser = _Page()
    parser.feed(page.decode("utf-8"))
    return parser


def assert_inert(page: bytes) -> _Page:
    """No markup but the templates' own: no script, no handler, no external resource."""
    parsed = parse(page)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert not {a for a in parsed.attributes if a.startswith("on")}
    assert not parsed.attributes & {"src", "href", "srcset", "action", "formaction", "style"}
    text = page.decode("utf-8")
    for hostile in HOSTILE_STRINGS:
        assert hostile not in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert "<svg/" not in text.lower()
    return parsed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    seeded = seed(tmp_path_factory.mktemp("reports"))
    with session_scope(seeded.settings) as session:
        accept_finding(
            session,
            str(finding_id(seeded.settings, "http.hsts.missing")),
            reason="reverse proxy replaced in May <b>" + HOSTILE_STRINGS[0],
            until=AFTER_RUNS + timedelta(days=60),
            accepted_by="DSI <i>",
            today=AFTER_RUNS,
            now=NOW,
        )
    yield seeded
    dispose_engines()


def agency_page(seeded: Seeded, agency: str = DATA_AGENCY, **options: object) -> bytes:
    with session_scope(seeded.settings) as session:
        return render_agency_report(
            session,
            seeded.settings,
            agency,
            today=AFTER_RUNS,
            now=NOW,
            record=False,
            **options,  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("language", ["fr", "en"])
def test_agency_report_shows_hostile_evidence_as_text_only(seeded: Seeded, language: str) -> None:
    # Given evidence full of markup, When the agency report is rendered
    page = agency_page(seeded, language=language)
    # Then no markup but the templates' own survives
    parsed = assert_inert(page)
    text = "".join(parsed.text)
    # And the hostile strings are shown, as text, where a person can act on them
    for hostile in HOSTILE_STRINGS:
        assert hostile in text
    assert html.escape(HOSTILE_STRINGS[0], quote=False) in page.decode("utf-8")
    assert "reverse proxy replaced in May <b>" in text  # the acceptance reason, escaped


def test_overview_and_posture_are_inert(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        pages = [
            render_overview_report(session, seeded.settings, today=AFTER_RUNS, now=NOW),
            render_overview_report(
                session, seeded.settings, today=AFTER_RUNS, now=NOW, language="en"
            ),
            render_posture_pack(session, seeded.settings, "2026-03", now=NOW),
            render_posture_pack(
                session, seeded.settings, "2026-04", now=NOW, pseudonymise=True, language="en"
            ),
        ]
    for page in pages:
        assert_inert(page)


def test_agency_report_content_in_french(seeded: Seeded) -> None:
    # Given a French-speaking agency, When its report is rendered in its language (the default)
    page = agency_page(seeded)
    text = " ".join("".join(parse(page).text).split())
    # Then it speaks French, leads with what to fix first, and says what is overdue
    assert '<html lang="fr">' in page.decode("utf-8")
    assert f"Rapport d'exposition : {DATA_AGENCY}" in text
    fix_first = text.index("À corriger en priorité")
    first_item = text.index(i18n.check_title("dns.dangling_cname", "fr"))
    assert fix_first < first_item < text.index(i18n.check_title("dns.dmarc.missing", "fr"))
    assert "en retard depuis le 31 mars 2026" in text
    assert i18n.check_remediation("tls.cert.expired", "fr") in text
    assert "Historique des notes" in text
    # the application under the coming baseline
    assert "Selon la politique 2027.1" in text
    # the accepted risk is visible with its explanation and end date
    assert "accepté jusqu'au 1 juin 2026" in text


def test_agency_report_data(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        report = build_agency_report(
            session, seeded.settings, DATA_AGENCY, language="fr", today=AFTER_RUNS, now=NOW
        )
    assert report.grade == "F"  # median of A and F, the worse of the two middles
    assert [s.application.domain for s in report.applications] == [PORTAIL, MAIL]  # worst first
    assert report.overdue == 2 and report.accepted == 1 and report.flagged == 1
    assert [v.check_id for v in report.fix_first] == [
        "dns.dangling_cname",
        "tls.cert.expired",
        "dns.dmarc.missing",
        "service.cleartext_mail",
        "http.cookie.no_httponly",
        "service.version_disclosed",
    ]
    portail = report.applications[0]
    assert [g.check_id for g in portail.groups][:2] == ["dns.dangling_cname", "tls.cert.expired"]
    assert [v.check_id for v in portail.accepted] == ["http.hsts.missing"]
    assert [r.grade for r in portail.history] == ["F", "F", "F"]
    # the chart: one line per charted severity, ending at today's open counts
    series = {s.key: s.last for s in report.chart.series}
    assert series == {"critical": 0, "high": 2, "medium": 2, "low": 3}


def test_english_agency_gets_english(seeded: Seeded) -> None:
    page = agency_page(seeded, STATS_AGENCY)
    text = " ".join("".join(parse(page).text).split())
    assert '<html lang="en">' in page.decode("utf-8")
    assert f"Exposure report: {STATS_AGENCY}" in text
    assert i18n.check_title("http.csp.missing", "en") in text
    with session_scope(seeded.settings) as session, pytest.raises(NotFoundError):
        render_agency_report(session, seeded.settings, "Nobody", now=NOW)


def test_agency_report_pdf_holds_name_grade_and_findings(seeded: Seeded) -> None:
    pdftotext = require_program("pdftotext")
    pdf = agency_page(seeded, fmt="pdf")
    assert pdf.startswith(b"%PDF-")
    text = subprocess.run(
        [pdftotext, "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    flat = " ".join(text.split())
    assert DATA_AGENCY in flat
    assert re.search(r"^F$", text, re.MULTILINE)  # the agency's grade badge
    assert "Score 34 / 100" in flat  # 24, plus the 10 points of the accepted HSTS finding
    for check_id in (
        "dns.dangling_cname",
        "tls.cert.expired",
        "dns.dmarc.missing",
        "service.cleartext_mail",
    ):
        assert i18n.check_title(check_id, "fr") in flat
    assert PORTAIL in flat and MAIL in flat
    assert "alert(1)" in flat  # hostile evidence is shown as text, never run


def test_overview_data(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        report = build_overview_report(
            session, seeded.settings, language="fr", today=AFTER_RUNS, now=NOW
        )
    assert [(r.agency, r.grade) for r in report.ranking] == [
        (STATS_AGENCY, "A"),
        (DATA_AGENCY, "F"),
        (TAX_AGENCY, None),
    ]
    assert report.distribution == {"A+": 0, "A": 2, "B": 0, "C": 0, "D": 0, "E": 0, "F": 1}
    assert [a.domain for a in report.flagged] == [PORTAIL]
    assert (report.applications, report.assessed, report.meeting_baseline) == (4, 3, 2)
    assert report.overdue == 2 and report.accepted == 1
    assert report.common_failures[0].check_id == "dns.dangling_cname"
    assert {f.check_id for f in report.common_failures} == {
        "dns.dangling_cname",
        "tls.cert.expired",
        "dns.dmarc.missing",
        "service.cleartext_mail",
        "http.cookie.no_httponly",
        "service.version_disclosed",
        "http.csp.missing",
    }


def test_posture_pack_replays_the_month(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        march = build_posture_pack(session, seeded.settings, "2026-03", language="fr", now=NOW)
        april = build_posture_pack(session, seeded.settings, "2026-04", language="fr", now=NOW)
    # At the end of March the unauthenticated database was still open (resolved on 1 April)
    assert (march.national.critical, march.national.high) == (1, 2)
    assert (april.national.critical, april.national.high) == (0, 2)
    # Its fix took 31 days: fixed in April, nothing in March
    assert (march.national.fixed, march.national.median_days_to_fix) == (0, None)
    assert (april.national.fixed, april.national.median_days_to_fix) == (1, 31.0)
    # One agency of the two assessed meets the baseline (the tax office was never assessed)
    assert april.national.baseline_share == 0.5
    ministries = {m.name: m for m in march.ministries}
    assert ministries["Ministère du Numérique"].critical_checks == (
        ("service.database.no_auth", 1),
    )
    assert ministries["Ministry of Finance"].agencies_meeting_baseline == 1
    assert ministries[None].agencies_assessed == 0
    assert [p.month.label for p in april.trend] == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
    ]
    assert [p.critical for p in april.trend] == [0, 0, 0, 0, 1, 0]
    failing = {r.id: n for r, n in april.requirement_failures}
    # the hsts failure is accepted until June: it does not count
    assert failing["valid-certificate"] == 1 and failing["dmarc"] == 1 and failing["hsts"] == 0


def test_pseudonymised_pack_names_no_agency(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        named = render_posture_pack(session, seeded.settings, "2026-04", now=NOW)
        hidden = render_posture_pack(
            session, seeded.settings, "2026-04", now=NOW, pseudonymise=True
        )
    named_text = html.unescape(named.decode())
    hidden_text = html.unescape(hidden.decode())
    for name in (DATA_AGENCY, STATS_AGENCY, TAX_AGENCY):
        assert name in named_text
        assert name not in hidden_text
    for secret in ("AND", "DGI", PORTAIL, MAIL, STATS, TAX, "41.73."):
        assert secret not in hidden_text
    assert all(f"Organisme 0{n}" in hidden_text for n in (1, 2, 3))
    assert "Ministère du Numérique" in hidden_text  # ministries are what the pack is about


@pytest.mark.parametrize(
    ("month", "error"),
    [("2026-13", "expected YYYY-MM"), ("march", "expected"), ("2031-01", "not begun")],
)
def test_posture_month_errors(seeded: Seeded, month: str, error: str) -> None:
    with session_scope(seeded.settings) as session, pytest.raises(UsageError, match=error):
        build_posture_pack(session, seeded.settings, month, language="fr", now=NOW)


def test_changes_since_the_previous_report(tmp_path: Path) -> None:
    # Given two scans, and a report handed out after them
    settings = make_settings(tmp_path)
    ids = register(settings)
    for index in (0, 1):
        store_run(settings, RUN_DAYS[index], portail_findings(index) + mail_findings(), ids)
    with session_scope(settings) as session:
        first = build_agency_report(session, settings, DATA_AGENCY, language="fr", now=RUN_DAYS[1])
        assert first.changes.first_report
        render_agency_report(session, settings, DATA_AGENCY, now=RUN_DAYS[1] + timedelta(hours=1))
    # When a third scan resolves the database and finds a new problem on the mail server
    extra = host(
        MAIL,
        "41.73.1.25",
        Family.TLS,
        [Finding("tls.protocol.tls1_0", MAIL, "41.73.1.25", 995)],
        DATA_AGENCY,
    )
    store_run(settings, RUN_DAYS[2], [*portail_findings(2), *mail_findings(), extra], ids)
    with session_scope(settings) as session:
        page = render_agency_report(
            session, settings, DATA_AGENCY, now=RUN_DAYS[2] + timedelta(hours=1)
        )
        second = build_agency_report(
            session, settings, DATA_AGENCY, language="fr", now=RUN_DAYS[2] + timedelta(hours=2)
        )
        records = list(session.exec(select(ReportRecord)))
    # Then the report says what changed since the first one
    assert len(records) == 2
    text = " ".join("".join(parse(page).text).split())
    assert "Changements depuis le rapport précédent" in text
    assert "1 nouveau constat" in text and i18n.check_title("tls.protocol.tls1_0", "fr") in text
    assert "1 constat corrigé ou accepté" in text
    assert "A → B" in text  # the mail server's grade fell with TLS 1.0
    # and the one after it starts from the second report
    assert second.changes.previous_at == RUN_DAYS[2] + timedelta(hours=1)
    assert not (second.changes.new or second.changes.gone or second.changes.grade_changes)


def test_report_command_writes_html_and_pdf(seeded: Seeded, tmp_path: Path) -> None:
    env = {"VIGIE_DATABASE_URL": seeded.settings.database.url}
    runner = CliRunner()
    for args, start in (
        (["--agency", "AND", "--format", "pdf"], b"%PDF-"),
        (["--overview"], b"<!DOCTYPE html>"),
        (
            ["--posture", "--month", "2026-03", "--pseudonymise", "--language", "en"],
            b"<!DOCTYPE html>",
        ),
    ):
        output = tmp_path / "out"
        result = runner.invoke(main, ["report", *args, "--output", str(output)], env=env)
        assert result.exit_code == 0, result.output
        assert output.read_bytes().startswith(start)
    twice = runner.invoke(
        main, ["report", "--agency", "AND", "--overview", "-o", str(tmp_path / "x")], env=env
    )
    assert twice.exit_code == 2 and "choose one of" in twice.output
    unknown = runner.invoke(
        main, ["report", "--agency", "Nobody", "-o", str(tmp_path / "x")], env=env
    )
    assert unknown.exit_code == 2 and "no agency named" in unknown.output


@pytest.mark.slow
def test_render_time_for_two_hundred_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one agency with 20 applications and 200 open findings over three scans
    settings = make_settings(tmp_path)
    ids = register(settings)
    checks = [
        "http.csp.missing", "http.hsts.missing", "tls.protocol.tls1_0", "tls.cert.expired",
        "service.version_disclosed", "http.cookie.no_httponly", "dns.dmarc.missing",
        "http.frame_options.missing", "service.database.exposed", "http.exposed.phpinfo",
    ]  # fmt: skip
    with session_scope(settings) as session:
        from vigie.targets.registry import add_target

        for n in range(20):
            add_target(session, agency_name=DATA_AGENCY, domain_name=f"app{n}.and.gouv.ml")
    results = [
        host(f"app{n}.and.gouv.ml", f"41.73.9.{n}", Family.HTTP, [
            Finding(c, f"app{n}.and.gouv.ml", f"41.73.9.{n}", 443, evidence={"banner": HOSTILE_STRINGS[n % 3]})
            for c in checks
        ], DATA_AGENCY)
        for n in range(20)
    ]  # fmt: skip
    for when in RUN_DAYS:
        store_run(settings, when, results, ids)
    # When the agency report and the overview are rendered
    with session_scope(settings) as session:
        started = time.perf_counter()
        page = render_agency_report(session, settings, DATA_AGENCY, now=NOW, record=False)
        agency_s = time.perf_counter() - started
        started = time.perf_counter()
        overview = render_overview_report(session, settings, now=NOW)
        overview_s = time.perf_counter() - started
        started = time.perf_counter()
        render_agency_report(session, settings, DATA_AGENCY, now=NOW, record=False, fmt="pdf")
        pdf_s = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\n200 findings: agency HTML {agency_s:.2f}s, overview HTML {overview_s:.2f}s, agency PDF {pdf_s:.2f}s"
        )
    # Then both are inert and quick enough for a terminal
    assert_inert(page)
    assert_inert(overview)
    assert agency_s < 5 and overview_s < 5 and pdf_s < 60
