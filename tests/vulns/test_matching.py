"""Version order and NVD applicability, against oracles vigie did not write.

Version order: dpkg itself (``dpkg --compare-versions``) decides. Applicability:
the fixture NVD records state their own ranges (OpenSSH before 9.6, Apache
2.4.49 exactly...), and the Debian data states the fixed package versions;
the expected verdicts are read from those statements.
"""

from __future__ import annotations

import subprocess
from datetime import date

import pytest

from tests.servers import require_program
from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.model import HostTarget, Severity
from vigie.scanner.software import identify_server, identify_ssh, software_findings, vuln_findings
from vigie.vulns import MatchIndex, compare_package, compare_upstream
from vigie.vulns.store import import_files, load_match_index

from .test_import import ALL

TARGET = HostTarget("www.example.gov.ml", "192.0.2.10")


def dpkg_says(left: str, op: str, right: str) -> bool:
    dpkg = require_program("dpkg")
    return subprocess.run([dpkg, "--compare-versions", left, op, right]).returncode == 0


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("9.2p1", "9.3"),
        ("9.2p1", "9.2"),
        ("8.9p1", "8.10p1"),
        ("2.4.57", "2.4.9"),
        ("1.1.1w", "1.1.1"),
        ("3.0~rc1", "3.0"),
        ("10.11.6", "10.11.19"),
    ],
)
def test_upstream_order_is_dpkgs(left: str, right: str) -> None:
    # Given two upstream versions, Then vigie orders them as dpkg does
    expected = -1 if dpkg_says(left, "lt", right) else 1 if dpkg_says(left, "gt", right) else 0
    assert compare_upstream(left, right) == expected


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u2"),
        ("1:9.2p1-2+deb12u3", "1:9.2p1-2+deb12u10"),
        ("1:9.2p1-2", "1:9.2p1-2+deb12u1"),
        ("9.9p1-1", "1:9.2p1-2"),
        ("2.4.62-1~deb12u1", "2.4.62-1"),
        ("1:8.9p1-3ubuntu0.6", "1:8.9p1-3ubuntu0.10"),
        ("5:7.0.15-1~deb12u1", "5:7.0.15-1"),
    ],
)
def test_package_order_is_dpkgs(left: str, right: str) -> None:
    # Given two Debian/Ubuntu package versions (epochs, revisions, ~ and +)
    expected = -1 if dpkg_says(left, "lt", right) else 1 if dpkg_says(left, "gt", right) else 0
    # Then vigie orders them as dpkg does
    assert compare_package(left, right) == expected


def test_upstream_prerelease_sorts_before_release() -> None:
    # Given the pre-release spelling upstreams use (3.0.0-rc1), dpkg's spelling (3.0.0~rc1)
    assert dpkg_says("3.0.0~rc1", "lt", "3.0.0")
    # Then vigie reads the upstream spelling the same way
    assert compare_upstream("3.0.0-rc1", "3.0.0") == -1


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> MatchIndex:
    folder = tmp_path_factory.mktemp("vulns")
    settings = Settings.model_validate({"database": {"url": f"sqlite:///{folder}/v.db"}})
    ensure_database(settings)
    import_files(settings, ALL)
    return load_match_index(settings)


def _cves(findings: list, check_id: str) -> set[str]:  # type: ignore[type-arg]
    return {c["id"] for f in findings if f.check_id == check_id for c in f.evidence["cves"]}


def _ssh(banner: str) -> list:  # type: ignore[type-arg]
    return [i.at(22) for i in identify_ssh(banner)]


def test_upstream_openssh_matches_the_ranges_the_nvd_states(index: MatchIndex) -> None:
    # Given an upstream OpenSSH 9.2p1 (no distribution revision)
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_9.2p1"), index)
    # Then every fixture CVE whose range holds 9.2p1 is listed, in ONE finding
    assert [f.check_id for f in findings] == ["vuln.cve"]
    assert _cves(findings, "vuln.cve") == {
        "CVE-2023-38408",  # before 9.3 (and 9.3, 9.3p1)
        "CVE-2024-6387",  # 8.5 <= v < 9.8
        "CVE-2023-48795",  # before 9.6
        "CVE-2023-51385",  # before 9.6
    }
    # And the severity follows the highest CVSS (9.8), EPSS is in the evidence,
    # and the fix that covers all of them is the upgrade target
    (finding,) = findings
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["max_cvss"] == 9.8
    assert any(c.get("epss") == 0.38466 for c in finding.evidence["cves"])
    assert finding.evidence["fixed_version"] == "9.8"
    # And the platform-only trap (OpenSSH named with vulnerable=false) is not taken
    assert "CVE-2099-10002" not in _cves(findings, "vuln.cve")


def test_newer_openssh_is_out_of_every_range(index: MatchIndex) -> None:
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_9.8p1"), index)
    assert findings == []


def test_backported_debian_revision_gives_nothing_above_info(index: MatchIndex) -> None:
    # Given Debian 12's OpenSSH at revision deb12u3, which carries every fix the data lists
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"), index)
    # Then no finding rises above info; CVE-2023-51385, which no Debian data covers, is
    # unconfirmed (info) rather than asserted
    assert all(f.check_id == "vuln.cve_unconfirmed" for f in findings)
    assert _cves(findings, "vuln.cve_unconfirmed") <= {"CVE-2023-51385"}
    assert not _cves(findings, "vuln.cve")


def test_older_debian_revision_is_decided_by_the_fixed_version(index: MatchIndex) -> None:
    # Given revision deb12u1: the Debian data fixed CVE-2024-6387 in deb12u3 and
    # CVE-2023-48795 in deb12u2, CVE-2023-38408 in deb12u1
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1"), index)
    affected = _cves(findings, "vuln.cve")
    assert {"CVE-2024-6387", "CVE-2023-48795"} <= affected
    assert "CVE-2023-38408" not in affected
    (cve,) = [f for f in findings if f.check_id == "vuln.cve"]
    # Then the remediation target is the Debian package version with every fix
    assert cve.evidence["fixed_version"] == "1:9.2p1-2+deb12u3"
    assert cve.evidence["distribution"] == {
        "distro": "debian",
        "revision": "2+deb12u1",
        "release": "12",
    }


def test_ubuntu_revision_without_data_for_a_cve_is_unconfirmed(index: MatchIndex) -> None:
    # Given Ubuntu 22.04's OpenSSH 8.9p1 at 3ubuntu0.6; OSV says CVE-2024-6387 is fixed
    # in 3ubuntu0.10 on 22.04 and says nothing of the others
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6"), index)
    assert _cves(findings, "vuln.cve") == {"CVE-2024-6387"}
    assert "CVE-2023-48795" in _cves(findings, "vuln.cve_unconfirmed")
    unconfirmed = [f for f in findings if f.check_id == "vuln.cve_unconfirmed"]
    assert all(f.severity in (None, Severity.INFO) for f in unconfirmed)


def test_known_exploited_goes_with_the_exact_version(index: MatchIndex) -> None:
    # Given Apache 2.4.49, named exactly by two CVEs in CISA's catalogue
    idents = [i.at(80) for i in identify_server("Apache/2.4.49 (Unix)")]
    findings = vuln_findings(TARGET, idents, index)
    assert _cves(findings, "vuln.known_exploited") == {"CVE-2021-41773", "CVE-2021-42013"}
    # And 2.4.51, named by neither, is not
    later = vuln_findings(TARGET, [i.at(80) for i in identify_server("Apache/2.4.51")], index)
    assert not _cves(later, "vuln.known_exploited")


def test_and_configuration_with_a_platform(index: MatchIndex) -> None:
    # Given a record that needs Apache before 2.4.99 AND Windows (platform, vulnerable=false)
    def cves(server: str) -> set[str]:
        idents = [i.at(80) for i in identify_server(server)]
        return _cves(vuln_findings(TARGET, idents, index), "vuln.cve")

    # Then a banner that says Windows matches, one that says Debian does not, and one
    # that says nothing of its platform matches (the platform cannot be seen)
    assert "CVE-2099-10001" in cves("Apache/2.4.57 (Win64)")
    assert "CVE-2099-10001" not in cves("Apache/2.4.57 (Debian)")
    assert "CVE-2099-10001" not in cves("Apache/2.4.57 (Unix)")
    assert "CVE-2099-10001" in cves("Apache/2.4.57")


def test_end_of_life_and_outdated_cms(index: MatchIndex) -> None:
    from vigie.scanner.software import identify_page

    today = date(2026, 12, 3)
    # Given nginx 1.20.1: its cycle ended on 2022-05-24 (endoflife.date data)
    nginx = [i.at(80) for i in identify_server("nginx/1.20.1")]
    found = {f.check_id: f for f in software_findings(TARGET, nginx, index, today)}
    assert found["software.end_of_life"].evidence["eol"] == "2022-05-24"
    assert found["software.end_of_life"].evidence["upgrade_to"] == "1.27.3"
    # And nginx 1.27.3, the current cycle's latest, is neither
    current = [i.at(80) for i in identify_server("nginx/1.27.3")]
    assert {f.check_id for f in software_findings(TARGET, current, index, today)} == {
        "software.identified"
    }
    # Given WordPress 6.7.0 (supported cycle, latest 6.7.1): outdated, not end of life
    page = '<meta name="generator" content="WordPress 6.7" />'
    wordpress = [i.at(443) for i in identify_page(page, {})]
    checks = {f.check_id: f for f in software_findings(TARGET, wordpress, index, today)}
    assert checks["software.cms.outdated"].evidence["fixed_version"] == "6.7.1"
    assert "software.end_of_life" not in checks


def test_revision_without_release_is_judged_by_the_release_shipping_that_upstream(
    index: MatchIndex,
) -> None:
    # Given Debian's original bookworm revision (no +debNN suffix): the tracker fixed
    # CVE-2024-6387 in bookworm's 1:9.2p1-2+deb12u3 and says bullseye (8.4p1) was not affected
    findings = vuln_findings(TARGET, _ssh("SSH-2.0-OpenSSH_9.2p1 Debian-2"), index)
    # Then bookworm's verdict, the release that ships 9.2p1, decides: affected
    assert "CVE-2024-6387" in _cves(findings, "vuln.cve")


def test_one_finding_per_product_version_on_the_host(index: MatchIndex) -> None:
    # Given Apache 2.4.49 answering on 80 and on 443
    idents = [i.at(port) for port in (443, 80) for i in identify_server("Apache/2.4.49 (Unix)")]
    findings = vuln_findings(TARGET, idents, index)
    # Then one vuln.cve and one vuln.known_exploited, each naming both ports
    assert sorted(f.check_id for f in findings) == ["vuln.cve", "vuln.known_exploited"]
    assert all(f.evidence["ports"] == [80, 443] and f.port == 80 for f in findings)
