"""Grading: the table of cases under the national baseline, policy versions, the store side."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from tests.report_data import (
    AFTER_RUNS,
    DATA_AGENCY,
    MAIL,
    PORTAIL,
    RUN_DAYS,
    STATS,
    TAX,
    Seeded,
    seed,
)
from vigie.catalogue import CATALOGUE
from vigie.cli import main
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import FindingRecord, GradeRecord
from vigie.errors import ConfigError, UsageError
from vigie.grading import (
    GRADES,
    OpenCheck,
    Policy,
    grade_applications,
    grade_checks,
    grade_history,
    load_policies,
    record_grades,
)
from vigie.model import Severity

POLICIES = load_policies()
V2026 = POLICIES.version("2026.1")
V2027 = POLICIES.version("2027.1")

S = Severity


def checks(*check_ids: str) -> list[OpenCheck]:
    """Open checks at their catalogue severity."""
    return [OpenCheck(c, CATALOGUE[c].severity) for c in check_ids]


# (open checks, letter, score, flagged, baseline requirements failed)
CASES_2026 = [
    pytest.param([], "A+", 100, False, (), id="nothing-open"),
    pytest.param(
        checks("service.open_port", "service.ssh.exposed"),
        "A+",
        100,
        False,
        (),
        id="inventory-only",
    ),
    pytest.param(
        checks("scan.error", "scan.timeout"), "A+", 100, False, (), id="scan-problems-weigh-nothing"
    ),
    pytest.param(checks("tls.protocol.no_tls1_3"), "A", 100, False, (), id="no-tls13-bars-A+"),
    pytest.param(checks("http.csp.missing"), "A", 97, False, (), id="one-low"),
    pytest.param(
        [OpenCheck("http.cookie.no_httponly", S.LOW)] * 3,
        "A",
        97,
        False,
        (),
        id="same-check-counted-once",
    ),
    pytest.param(
        checks("http.hsts.missing", "http.csp.missing"),
        "B",
        87,
        False,
        ("hsts",),
        id="medium-and-low",
    ),
    pytest.param(
        checks(
            "http.csp.missing",
            "http.frame_options.missing",
            "http.content_type_options.missing",
            "http.security_txt.missing",
            "http.version_disclosed",
        ),
        "B",
        85,
        False,
        (),
        id="five-header-lows",
    ),
    pytest.param(
        checks("tls.protocol.tls1_0"), "B", 90, False, ("tls-1.2-minimum",), id="tls10-caps-B"
    ),
    pytest.param(
        checks("tls.cert.incomplete_chain"), "B", 90, False, (), id="incomplete-chain-caps-B"
    ),
    pytest.param(
        checks(
            "dns.spf.missing", "dns.dmarc.missing", "http.hsts.missing", "http.no_https_redirect"
        ),
        "D",
        60,
        True,
        ("hsts", "dmarc"),
        id="four-mediums-below-C-flagged",
    ),
    pytest.param(
        checks("tls.compression", "http.directory_listing"),
        "C",
        80,
        False,
        (),
        id="compression-caps-C",
    ),
    pytest.param(
        checks("service.database.exposed"),
        "D",
        75,
        True,
        ("no-exposed-database",),
        id="db-exposed-caps-D",
    ),
    pytest.param(
        checks("service.remote_admin.exposed"),
        "D",
        75,
        True,
        ("no-exposed-remote-admin",),
        id="rdp-caps-D",
    ),
    pytest.param(checks("tls.missing"), "D", 75, True, ("tls-1.2-minimum",), id="no-https-caps-D"),
    pytest.param(
        checks("tls.cert.expired"), "E", 75, True, ("valid-certificate",), id="expired-cert-caps-E"
    ),
    pytest.param(
        checks("tls.cert.self_signed"),
        "E",
        75,
        True,
        ("valid-certificate",),
        id="self-signed-caps-E",
    ),
    pytest.param(
        checks("tls.cert.untrusted"), "E", 75, True, ("valid-certificate",), id="untrusted-caps-E"
    ),
    pytest.param(
        checks("tls.protocol.sslv3"), "E", 75, True, ("tls-1.2-minimum",), id="sslv3-caps-E"
    ),
    pytest.param(
        checks("http.exposed.vcs"), "E", 75, True, ("no-exposed-secrets",), id="git-caps-E"
    ),
    pytest.param(
        checks("tls.protocol.sslv2"), "F", 50, True, ("tls-1.2-minimum",), id="sslv2-caps-F"
    ),
    pytest.param(
        checks("service.database.no_auth"),
        "F",
        50,
        True,
        ("no-exposed-database",),
        id="db-no-auth-caps-F",
    ),
    pytest.param(
        checks("http.exposed.env_file"), "F", 50, True, ("no-exposed-secrets",), id="env-caps-F"
    ),
    pytest.param(
        checks("tls.cert.expired", "tls.protocol.sslv2"),
        "F",
        25,
        True,
        ("tls-1.2-minimum", "valid-certificate"),
        id="worst-cap-wins",
    ),
    pytest.param(
        checks(
            "service.database.no_auth",
            "service.database.exposed",
            "tls.vuln.heartbleed",
            "tls.missing",
        ),
        "F",
        0,
        True,
        ("tls-1.2-minimum", "no-exposed-database"),
        id="score-floors-at-zero",
    ),
    pytest.param(
        [OpenCheck("http.csp.missing", S.HIGH)], "C", 75, True, (), id="overridden-severity-counts"
    ),
]


@pytest.mark.parametrize(("open_checks", "letter", "score", "flagged", "failed"), CASES_2026)
def test_grades_under_the_2026_baseline(
    open_checks: list[OpenCheck], letter: str, score: int, flagged: bool, failed: tuple[str, ...]
) -> None:
    # Given the open checks of one application, When graded under 2026.1
    grade = grade_checks(open_checks, V2026)
    # Then letter, score, flag and baseline failures are exactly these
    assert (grade.letter, grade.score, grade.flagged) == (letter, score, flagged)
    assert set(grade.baseline_failures) == set(failed)
    assert grade.meets_baseline is (not failed)
    assert grade.policy_version == "2026.1"


CASES_2027 = [
    pytest.param(
        checks("tls.protocol.tls1_0"), "C", 88, False, ("tls-1.2-minimum",), id="tls10-caps-C"
    ),
    pytest.param(
        checks("dns.dmarc.policy_none"), "B", 90, False, ("dmarc-quarantine",), id="dmarc-none"
    ),
    pytest.param(
        checks("http.hsts.short_max_age"), "B", 90, False, ("hsts-six-months",), id="short-hsts"
    ),
    pytest.param(
        checks("tls.cert.expired"), "F", 75, True, ("valid-certificate",), id="expired-cert-caps-F"
    ),
    pytest.param(
        checks("service.database.exposed"), "E", 75, True, ("no-exposed-database",), id="db-caps-E"
    ),
    pytest.param(checks("dns.dnssec.missing"), "A", 96, False, (), id="dnssec-bars-A+"),
    pytest.param(
        checks("http.security_txt.missing"),
        "A",
        96,
        False,
        ("security-txt",),
        id="security-txt-required",
    ),
]


@pytest.mark.parametrize(("open_checks", "letter", "score", "flagged", "failed"), CASES_2027)
def test_grades_under_the_stricter_2027_baseline(
    open_checks: list[OpenCheck], letter: str, score: int, flagged: bool, failed: tuple[str, ...]
) -> None:
    grade = grade_checks(open_checks, V2027)
    assert (grade.letter, grade.score, grade.flagged) == (letter, score, flagged)
    assert set(grade.baseline_failures) == set(failed)


@pytest.mark.parametrize(
    ("flag_below", "open_checks", "flagged"),
    [
        ("C", checks("tls.compression"), False),  # C is not below C
        ("B", checks("tls.compression"), True),
        ("A+", checks("tls.protocol.no_tls1_3"), True),
        ("F", checks("service.database.exposed"), True),  # high: flagged whatever the grade
        ("F", checks("service.database.no_auth"), True),
        ("F", checks("dns.spf.missing", "dns.dmarc.missing", "http.hsts.missing"), False),
    ],
)
def test_flag_threshold_and_severity(
    flag_below: str, open_checks: list[OpenCheck], flagged: bool
) -> None:
    assert grade_checks(open_checks, V2026, flag_below).flagged is flagged


def test_grade_is_independent_of_finding_order() -> None:
    # Given the same findings in every order, Then the grade and its reasons never change
    items = checks(
        "tls.cert.expired", "http.csp.missing", "dns.dmarc.missing", "tls.protocol.tls1_0"
    )
    grades = {grade_checks(list(order), V2026) for order in itertools.permutations(items)}
    assert len(grades) == 1
    reasons = next(iter(grades)).reason_codes
    assert reasons[0] == "cap:E:tls.cert.expired"  # the worst cap explains the grade first


def test_reasons_round_trip_through_their_codes() -> None:
    grade = grade_checks(checks("tls.cert.expired", "http.csp.missing"), V2026)
    assert grade.reason_codes == [
        "cap:E:tls.cert.expired",
        "baseline:valid-certificate:tls.cert.expired",
        "penalty:25:tls.cert.expired",
        "penalty:3:http.csp.missing",
    ]
    from vigie.grading import Reason

    assert [Reason.parse(code) for code in grade.reason_codes] == list(grade.reasons)


@pytest.mark.parametrize("policy", [V2026, V2027], ids=lambda p: p.version)
def test_every_critical_check_is_disqualifying(policy: Policy) -> None:
    # Every check the catalogue calls critical caps the grade at D or worse, in every version.
    critical = [c for c, spec in CATALOGUE.items() if spec.severity is Severity.CRITICAL]
    assert critical
    for check_id in critical:
        assert GRADES.index(policy.caps[check_id]) >= GRADES.index("D"), check_id


def test_2027_is_never_kinder_than_2026() -> None:
    # The stricter baseline gives each single open check the same grade or a worse one.
    for check_id, spec in CATALOGUE.items():
        before = grade_checks([OpenCheck(check_id, spec.severity)], V2026)
        after = grade_checks([OpenCheck(check_id, spec.severity)], V2027)
        assert GRADES.index(after.letter) >= GRADES.index(before.letter), check_id


# --- policy versions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "on", "version"),
    [
        (None, date(2026, 1, 1), "2026.1"),
        ("CURRENT", date(2026, 12, 31), "2026.1"),
        ("current", date(2027, 1, 1), "2027.1"),
        ("NEXT", date(2026, 6, 1), "2027.1"),
        ("2026.1", date(2030, 1, 1), "2026.1"),
    ],
)
def test_policy_selection(name: str | None, on: date, version: str) -> None:
    assert POLICIES.select(name, on).version == version


def test_policy_selection_errors() -> None:
    with pytest.raises(UsageError, match=r"no grading policy is scheduled after 2027\.1"):
        POLICIES.select("NEXT", date(2027, 6, 1))
    with pytest.raises(UsageError, match=r"no grading policy version '1999\.1'"):
        POLICIES.select("1999.1", date(2027, 6, 1))
    with pytest.raises(ConfigError, match="no grading policy is in force on 2025-12-31"):
        POLICIES.in_force(date(2025, 12, 31))


def test_policy_texts_in_both_languages() -> None:
    for policy in POLICIES.policies:
        assert policy.summary("fr") != policy.summary("en")
        for requirement in policy.requirements:
            assert requirement.text("fr") and requirement.text("en")
            assert requirement.text("fr") != requirement.text("en")


VALID = """
[[policy]]
version = "t.1"
effective = 2026-01-01
summary = "test"
[policy.score]
thresholds = { "A+" = 100, "A" = 90, "B" = 80, "C" = 65, "D" = 50, "E" = 35, "F" = 0 }
[policy.score.severity_penalty]
critical = 50
high = 25
medium = 10
low = 3
info = 0
[policy.score.family_weight]
dns = 0.5
[policy.caps]
E = ["tls.cert.expired"]
"""


def test_a_policy_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(VALID, encoding="utf-8")
    policy = load_policies(path).in_force(date(2026, 5, 1))
    # family weight 0.5 halves DNS penalties: 10 -> 5
    assert grade_checks(checks("dns.dmarc.missing"), policy).score == 95
    assert grade_checks(checks("tls.cert.expired"), policy).letter == "E"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('E = ["tls.cert.expired"]', 'E = ["tls.cert.exprd"]'),
            "unknown check ID 'tls.cert.exprd'",
        ),
        (('E = ["tls.cert.expired"]', 'G = ["tls.cert.expired"]'), "'G' is not a grade"),
        (('"B" = 80', '"B" = 95'), "threshold scores must fall strictly"),
        (("info = 0\n", ""), "severity_penalty lacks info"),
        (("effective = 2026-01-01", 'effective = "soon"'), "'effective' must be a date"),
        (('version = "t.1"', 'version = ""'), "'version' is missing"),
        (("[policy.caps]", '[policy.caps]\nD = ["tls.cert.expired"]'), "listed under two grades"),
        (("dns = 0.5", "dnz = 0.5"), "family_weight"),
    ],
)
def test_bad_policy_files_are_refused(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(VALID.replace(*change), encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policies(path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(VALID + VALID.replace("2026-01-01", "2027-01-01"), encoding="utf-8")
    with pytest.raises(ConfigError, match="appears twice"):
        load_policies(path)


# --- grading applications from the store ---------------------------------------------


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    yield seed(tmp_path)
    dispose_engines()


def test_applications_graded_from_stored_findings(seeded: Seeded) -> None:
    # Given three scans stored for real, When grading as of the day after the last
    with session_scope(seeded.settings) as session:
        rows = {a.domain: a for a in grade_applications(session, seeded.settings, today=AFTER_RUNS)}
    # Then each application has exactly this grade
    portail = rows[PORTAIL]
    assert portail.grade is not None
    assert (portail.grade.letter, portail.grade.score, portail.flagged) == ("F", 24, True)
    assert [c.code for c in portail.grade.caps] == [
        "cap:F:dns.dangling_cname",
        "cap:E:tls.cert.expired",
    ]
    assert set(portail.grade.baseline_failures) == {"valid-certificate", "hsts", "dmarc"}
    # the database fixed after the first scan was resolved and no longer counts
    assert "service.database.no_auth" not in {v.check_id for v in portail.findings}
    assert portail.overdue == 2  # the two high findings (30 days) first seen on 1 March
    mail, stats = rows[MAIL].grade, rows[STATS].grade
    assert mail is not None and (mail.letter, mail.score, rows[MAIL].flagged) == ("A", 97, False)
    assert stats is not None and (stats.letter, stats.score) == ("A", 97)
    # an unreachable application is not assessed rather than graded A+
    assert rows[TAX].grade is None and rows[TAX].flagged is False


def test_agency_filter_and_next_policy(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        rows = grade_applications(session, seeded.settings, agency="AND", today=AFTER_RUNS)
        assert sorted(a.domain for a in rows) == [MAIL, PORTAIL]
        nxt = grade_applications(
            session, seeded.settings, policy=V2027, agency="AND", today=AFTER_RUNS
        )
    grades = {a.domain: a.grade.letter for a in nxt if a.grade}
    assert grades == {MAIL: "A", PORTAIL: "F"}
    assert {a.grade.policy_version for a in nxt if a.grade} == {"2027.1"}


def test_due_dates_follow_severity(seeded: Seeded) -> None:
    # Given findings first seen on 1 March, Then each is due after its severity's days
    with session_scope(seeded.settings) as session:
        due = {
            r.check_id: r.due_date
            for r in session.exec(select(FindingRecord).where(FindingRecord.domain == PORTAIL))
        }
    assert due["tls.cert.expired"] == date(2026, 3, 31)  # high: 30 days
    assert due["service.database.no_auth"] == date(2026, 3, 16)  # critical: 15 days
    assert due["http.hsts.missing"] == date(2026, 5, 30)  # medium: 90 days
    assert due["service.version_disclosed"] == date(2026, 8, 28)  # low: 180 days
    assert due["service.open_port"] is None  # info: no deadline


def test_grade_records_per_run_with_policy_version(seeded: Seeded) -> None:
    with session_scope(seeded.settings) as session:
        history = grade_history(session, domain=PORTAIL)
        assert [(r.run_id, r.grade, r.policy_version) for r in history] == [
            (seeded.run_ids[0], "F", "2026.1"),
            (seeded.run_ids[1], "F", "2026.1"),
            (seeded.run_ids[2], "F", "2026.1"),
        ]
        # the first run had the unauthenticated database: the score was lower then
        assert history[0].score < history[2].score
        assert "cap:F:service.database.no_auth" in history[0].reasons
        # the unreachable application gets no record; the others one per run
        assert not grade_history(session, domain=TAX)
        assert len(grade_history(session, agency=DATA_AGENCY)) == 6
        # recording the same run again replaces its records instead of adding
        record_grades(session, seeded.run_ids[2], seeded.settings, now=RUN_DAYS[2])
        session.flush()
        count = len(
            list(session.exec(select(GradeRecord).where(GradeRecord.run_id == seeded.run_ids[2])))
        )
    assert count == 3
    with session_scope(seeded.settings) as session, pytest.raises(UsageError):
        grade_history(session, agency="nobody")


def test_grades_command(seeded: Seeded) -> None:
    env = {"VIGIE_DATABASE_URL": seeded.settings.database.url, "VIGIE_GRADING_POLICY": "2026.1"}
    runner = CliRunner()
    result = runner.invoke(main, ["grades", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    rows = {r["domain"]: r for r in json.loads(result.output)}
    assert rows[PORTAIL]["grade"] == "F" and rows[PORTAIL]["flagged"] is True
    assert rows[TAX]["grade"] is None
    flagged = runner.invoke(main, ["grades", "--flagged", "--format", "json"], env=env)
    assert [r["domain"] for r in json.loads(flagged.output)] == [PORTAIL]
    future = runner.invoke(
        main, ["grades", "--policy", "2027.1", "--agency", "OS", "--format", "csv"], env=env
    )
    assert future.exit_code == 0, future.output
    lines = future.output.splitlines()
    assert lines[0].startswith("agency,domain,grade,score,flagged")
    assert lines[1].startswith(f"Office of Statistics,{STATS},A,96,False")
    history = runner.invoke(
        main, ["grades", "--history", "--domain", MAIL, "--format", "json"], env=env
    )
    assert [r["grade"] for r in json.loads(history.output)] == ["A", "A", "A"]
    table = runner.invoke(main, ["grades"], env=env)
    assert table.exit_code == 0 and "policy 2026.1" in table.output
    bad = runner.invoke(main, ["grades", "--policy", "1999.9"], env=env)
    assert bad.exit_code == 2 and "no grading policy version" in bad.output


def test_record_grades_uses_the_policy_in_force_on_the_day(seeded: Seeded) -> None:
    # Given the same findings graded on 2 January 2027, Then the 2027.1 baseline applies
    later = datetime(2027, 1, 2, tzinfo=UTC)
    with session_scope(seeded.settings) as session:
        records = {
            r.domain: r
            for r in record_grades(session, seeded.run_ids[2], seeded.settings, now=later)
        }
    assert {r.policy_version for r in records.values()} == {"2027.1"}
    assert records[STATS].grade == "A" and records[STATS].score == 96


def test_the_documented_caps_are_the_policy_caps() -> None:
    # docs/grading.md is what agencies read: its 2026.1 cap table must say what the policy does.
    doc = (Path(__file__).parents[1] / "docs" / "grading.md").read_text(encoding="utf-8")
    section = doc.split("Policy **2026.1**", 1)[1].split("Policy **2027.1**", 1)[0]
    documented = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in GRADES:
            for check_id in cells[1].split(","):
                documented[check_id.strip().strip("`")] = cells[0]
    assert documented == dict(V2026.caps)
