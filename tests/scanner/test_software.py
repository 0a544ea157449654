"""The software and vuln families on real servers, through the real engine (nmap, probes).

Oracles: each real daemon's version comes from its Debian package (dpkg-query)
or its own ``--version``, never from vigie; vulnerable versions are recorded
banners of real releases (tests/scanner/software_servers.py says which) because
two versions of a package cannot be installed side by side; the CVE verdicts
follow the fixture data's own statements (NVD ranges, Debian fixed versions,
CISA's catalogue), tests/data/vulns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scanner import software_servers as servers
from tests.vulns.test_import import ALL
from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.model import Family, FamilyResult, Finding, HostResult, Severity
from vigie.scanner.engine import DomainJob, SweepEngine, _Collector
from vigie.scanner.http import check_http
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Resolution
from vigie.scanner.service import check_services
from vigie.scanner.software import INDEX_KEY, check_software, check_vulns
from vigie.vulns._versions import upstream_of
from vigie.vulns.store import import_files, load_match_index

ZONE = "sw.test"
HOSTS = {
    servers.SSHD: "sshd",
    servers.VSFTPD: "vsftpd",
    servers.REDIS: "redis",
    servers.NGINX: "nginx",
    servers.APACHE: "apache",
    servers.DOVECOT: "dovecot",
    servers.MARIADB: "mariadb",
    servers.OLD_SSH: "old-ssh",
    servers.OLD_APACHE: "old-apache",
    servers.BACKPORTED_SSH: "backported-ssh",
    servers.UPSTREAM_SSH: "upstream-ssh",
    servers.WORDPRESS: "wordpress",
    servers.FORTIGATE: "fortigate",
    servers.GLOBALPROTECT: "globalprotect",
    servers.OLD_VSFTPD: "old-vsftpd",
    servers.POSTFIX: "postfix",
}
FAMILIES = frozenset({Family.SERVICE, Family.HTTP, Family.SOFTWARE, Family.VULN})


class FixedResolver:
    async def resolve_addresses(self, name: str) -> Resolution:
        label = name.removesuffix(f".{ZONE}")
        address = next(ip for ip, host in HOSTS.items() if host == label)
        return Resolution(name, (address,), Answer.OK)


async def _no_dns(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    return FamilyResult(Family.DNS)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, HostResult]]:
    """Every server started, the fixture data imported, one sweep by the real engine."""
    folder = tmp_path_factory.mktemp("software")
    from tests.scanner import service_servers

    data = Settings.model_validate({"database": {"url": f"sqlite:///{folder}/vulns.db"}})
    ensure_database(data)
    import_files(data, ALL)
    index = load_match_index(data)
    with contextlib.ExitStack() as stack:
        stack.enter_context(service_servers.sshd(folder, servers.SSHD, password_auth=False))
        stack.enter_context(service_servers.vsftpd(folder, servers.VSFTPD, anonymous=False))
        stack.enter_context(service_servers.redis(folder, servers.REDIS))
        stack.enter_context(servers.nginx(folder))
        stack.enter_context(servers.apache(folder))
        stack.enter_context(servers.dovecot(folder))
        stack.enter_context(servers.mariadb(folder))
        stack.enter_context(servers.postfix())
        stack.enter_context(servers.RecordedBanners())
        config = Settings.model_validate(
            {
                "scope": {"allow": ["127.0.20.0/24"]},
                "scan": {
                    "ports": [21, 22, 25, 80, 110, 143, 3306, 6379],
                    "probe_timeout_s": 2,
                    "host_deadline_s": 30,
                    "max_rate_per_s": 20_000,
                },
            }
        )
        ctx = ProbeContext.from_settings(config)
        ctx.resolver = FixedResolver()  # type: ignore[assignment]
        ctx.shared[INDEX_KEY] = index
        engine = SweepEngine(
            ctx,
            host_families={Family.SERVICE: check_services, Family.HTTP: check_http},
            derived_families={Family.SOFTWARE: check_software, Family.VULN: check_vulns},
            domain_check=_no_dns,
        )
        jobs = [DomainJob(f"{name}.{ZONE}", families=FAMILIES) for name in HOSTS.values()]
        collector = _Collector()
        asyncio.run(engine.run(jobs, collector))
        yield {r.target.ip: r for r in collector.results if r.target.ip}


def found(result: HostResult, check_id: str) -> list[Finding]:
    return [f for f in result.findings if f.check_id == check_id]


def identified(result: HostResult, product: str) -> Finding:
    matches = [f for f in found(result, "software.identified") if f.evidence["product"] == product]
    assert matches, f"{product} not identified: {[f.evidence for f in result.findings]}"
    return matches[0]


def vuln_ids(result: HostResult) -> set[str]:
    return {f.check_id for f in result.findings if f.check_id.startswith("vuln.")}


def severity(finding: Finding) -> Severity:
    from vigie.catalogue import CATALOGUE

    return finding.severity or CATALOGUE[finding.check_id].severity


pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_real_openssh_is_identified_with_its_debian_revision(swept: dict[str, HostResult]) -> None:
    # Given this machine's sshd, whose package version dpkg knows (1:9.2p1-2+deb12u10...)
    package = servers.package_version("openssh-server")
    # Then vigie names the upstream version and the Debian revision the banner carries
    finding = identified(swept[servers.SSHD], "OpenSSH")
    assert finding.evidence["version"] == upstream_of(package)
    assert finding.evidence["distribution"]["revision"] == package.split("-", 1)[1]
    assert finding.evidence["distribution"]["release"] == "12"
    assert finding.evidence["cpe"].startswith("cpe:2.3:a:openbsd:openssh:")
    assert finding.port == 22 and finding.evidence["seen_in"] == "banner"
    # And no vuln.* finding above info: every CVE the data lists is fixed in this revision
    assert all(
        severity(f) is Severity.INFO
        for f in swept[servers.SSHD].findings
        if f.family is Family.VULN
    )


def test_real_daemons_are_identified_exactly(swept: dict[str, HostResult]) -> None:
    nginx = servers.program_version(["nginx", "-v"], r"nginx/(\S+)")
    apache = servers.program_version(["apache2", "-v"], r"Apache/(\S+)")
    redis = servers.program_version(["redis-server", "--version"], r"v=(\S+)")
    mariadb = servers.program_version(["mariadbd", "--version"], r"Ver (\S+?)-MariaDB-(\S+)")
    vsftpd = upstream_of(servers.package_version("vsftpd"))
    assert identified(swept[servers.NGINX], "nginx").evidence["version"] == nginx
    web = identified(swept[servers.APACHE], "Apache HTTP Server")
    assert web.evidence["version"] == apache
    assert (
        web.evidence["seen_in"] == "header" and web.evidence["distribution"]["distro"] == "debian"
    )
    assert identified(swept[servers.REDIS], "Redis").evidence["version"] == redis
    assert identified(swept[servers.VSFTPD], "vsftpd").evidence["version"] == vsftpd
    maria = identified(swept[servers.MARIADB], "MariaDB")
    revision = servers.package_version("mariadb-server").split("-", 1)[1]
    assert maria.evidence["version"] == mariadb
    assert maria.evidence["distribution"]["revision"] == revision
    dovecot = [
        f
        for f in found(swept[servers.DOVECOT], "software.identified")
        if f.evidence["product"] == "Dovecot"
    ]
    assert {f.port for f in dovecot} == {110, 143}


def test_real_postfix_is_identified_without_a_version(swept: dict[str, HostResult]) -> None:
    """The real Postfix on port 25, with Debian's ``smtpd_banner``.

    Postfix's banner carries no version (``$myhostname ESMTP $mail_name``,
    ``(Debian/GNU)`` on Debian; ``$mail_version`` appears only if an admin adds
    it), so vigie names the product and the platform and no version.
    """
    # Given this machine's Postfix, whose mail_name its own postconf gives
    mail_name = servers.program_version(["postconf", "-d", "-h", "mail_name"], r"(\S+)")
    # Then vigie names Postfix, on Debian, seen in the SMTP greeting of port 25
    finding = identified(swept[servers.POSTFIX], "Postfix")
    assert finding.port == 25 and finding.evidence["seen_in"] == "banner"
    assert finding.evidence["platform"] == "debian"
    assert finding.evidence["observed"].endswith(f"mail.vigie.test ESMTP {mail_name} (Debian/GNU)")
    # And no version: the banner has none, so nothing is matched against CVE ranges
    assert finding.evidence["version"] == ""
    assert finding.evidence["cpe"].startswith("cpe:2.3:a:postfix:postfix:*:")
    assert not found(swept[servers.POSTFIX], "vuln.cve")


def test_vulnerable_old_versions(swept: dict[str, HostResult]) -> None:
    # Given Debian 12's OpenSSH before the fixes of deb12u2 and deb12u3
    old_ssh = swept[servers.OLD_SSH]
    (cve,) = found(old_ssh, "vuln.cve")
    listed = {c["id"] for c in cve.evidence["cves"]}
    assert {"CVE-2024-6387", "CVE-2023-48795"} <= listed and "CVE-2023-38408" not in listed
    assert severity(cve) is Severity.HIGH and cve.evidence["fixed_version"] == "1:9.2p1-2+deb12u3"
    # Given Apache 2.4.49: in CISA's catalogue, so critical, on the urgent path
    old_apache = swept[servers.OLD_APACHE]
    (kev,) = found(old_apache, "vuln.known_exploited")
    assert {c["id"] for c in kev.evidence["cves"]} == {"CVE-2021-41773", "CVE-2021-42013"}
    assert severity(kev) is Severity.CRITICAL
    # Given vsftpd 2.3.4
    (backdoor,) = found(swept[servers.OLD_VSFTPD], "vuln.cve")
    assert [c["id"] for c in backdoor.evidence["cves"]] == ["CVE-2011-2523"]
    assert severity(backdoor) is Severity.CRITICAL
    # Given the same upstream OpenSSH without a distribution revision: upstream ranges decide
    (upstream,) = found(swept[servers.UPSTREAM_SSH], "vuln.cve")
    assert severity(upstream) is Severity.CRITICAL  # CVE-2023-38408, CVSS 9.8


def test_backported_revision_gives_nothing_above_info(swept: dict[str, HostResult]) -> None:
    result = swept[servers.BACKPORTED_SSH]
    assert identified(result, "OpenSSH").evidence["distribution"]["revision"] == "2+deb12u3"
    assert not found(result, "vuln.cve") and not found(result, "vuln.known_exploited")
    assert all(severity(f) is Severity.INFO for f in result.findings if f.family is Family.VULN)


def test_cms_and_edge_devices(swept: dict[str, HostResult]) -> None:
    # Given WordPress 6.4.2 (cycle 6.4 ended 2024-04-02, latest 6.4.5)
    wordpress = swept[servers.WORDPRESS]
    assert identified(wordpress, "WordPress").evidence["version"] == "6.4.2"
    (outdated,) = found(wordpress, "software.cms.outdated")
    assert outdated.evidence["fixed_version"] == "6.4.5"
    assert found(wordpress, "software.end_of_life")
    # Given a FortiGate SSL VPN and a GlobalProtect portal login page
    for address, product in (
        (servers.FORTIGATE, "Fortinet FortiGate (FortiOS)"),
        (servers.GLOBALPROTECT, "Palo Alto Networks GlobalProtect (PAN-OS)"),
    ):
        (edge,) = found(swept[address], "software.edge_device.exposed")
        assert edge.evidence["product"] == product
    # And no edge appliance is claimed on a plain web server
    for address in (servers.NGINX, servers.APACHE, servers.WORDPRESS, servers.OLD_APACHE):
        assert not found(swept[address], "software.edge_device.exposed")


def test_platform_node_is_not_the_vulnerable_product(swept: dict[str, HostResult]) -> None:
    # Given Apache on Debian and a record that needs Windows (platform node, vulnerable=false)
    cves = {c["id"] for f in found(swept[servers.APACHE], "vuln.cve") for c in f.evidence["cves"]}
    assert "CVE-2099-10001" not in cves


def test_families_are_complete_when_the_servers_answered(swept: dict[str, HostResult]) -> None:
    for address in (servers.NGINX, servers.WORDPRESS, servers.FORTIGATE):
        assert swept[address].families[Family.SOFTWARE].complete
        assert swept[address].families[Family.VULN].complete


def test_index_path_needs_no_database(tmp_path: Path) -> None:
    # The scanner's modules never import the database layer
    import subprocess
    import sys

    code = (
        "import sys, vigie.scanner.software, vigie.scanner.families; "
        "print(any(m.startswith('vigie.db') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _trace_status(address: str) -> int:
    """What the server itself answers to TRACE (RFC 9110 §9.3.8), asked directly."""
    with socket.create_connection((address, 80), timeout=5) as connection:
        connection.sendall(b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return int(connection.recv(4096).split(b" ", 2)[1])


def test_trace_and_server_versions_as_the_real_servers_answer(
    swept: dict[str, HostResult],
) -> None:
    # Given Apache with its defaults (TraceEnable On, ServerTokens Full) and nginx with its
    # own (TRACE refused with 405, server_tokens on), each asked directly
    assert _trace_status(servers.APACHE) == 200
    assert _trace_status(servers.NGINX) == 405
    apache, nginx = swept[servers.APACHE], swept[servers.NGINX]
    # Then vigie's TRACE verdict is the servers' own answer
    assert found(apache, "http.trace_enabled") and not found(nginx, "http.trace_enabled")
    # And both Server headers name a version, which vigie reports as disclosed
    for result, product in ((apache, "Apache/"), (nginx, "nginx/")):
        [disclosed] = found(result, "http.version_disclosed")
        assert product in json.dumps(disclosed.evidence)
