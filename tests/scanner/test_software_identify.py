"""Identification from recorded banners and headers of real products (pure functions).

Each input is a banner or header value as the product sends it, recorded from
real installations (Debian, Ubuntu, CentOS and upstream builds); the expected
product and version are the ones the banner states, and the distribution
revision the one the package carries (RFC 4253 §4.2 for SSH comments, RFC 9110
§10.2.4 for product tokens).
"""

from __future__ import annotations

import pytest

from vigie.scanner.software import (
    identify_edge,
    identify_greeting,
    identify_mysql,
    identify_owa,
    identify_page,
    identify_server,
    identify_ssh,
)
from vigie.scanner.software._identify import identify_aspnet_version, identify_powered_by


@pytest.mark.parametrize(
    ("banner", "product", "version", "revision", "release"),
    [
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", "openssh", "9.2p1", "2+deb12u3", "12"),
        ("SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3", "openssh", "8.4p1", "5+deb11u3", "11"),
        ("SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", "openssh", "8.9p1", "3ubuntu0.6", ""),
        ("SSH-2.0-OpenSSH_7.4", "openssh", "7.4", None, None),
        ("SSH-2.0-OpenSSH_9.6", "openssh", "9.6", None, None),
        ("SSH-2.0-dropbear_2022.83", "dropbear", "2022.83", None, None),
    ],
)
def test_ssh_banners(
    banner: str, product: str, version: str, revision: str | None, release: str | None
) -> None:
    (found,) = identify_ssh(banner)
    assert (found.product, found.version) == (product, version)
    if revision is None:
        assert found.package is None
    else:
        assert found.package is not None
        assert (found.package.revision, found.package.release) == (revision, release)


@pytest.mark.parametrize(
    ("protocol", "greeting", "product", "version"),
    [
        ("ftp", "220 (vsFTPd 3.0.3)", "vsftpd", "3.0.3"),
        ("ftp", "220 ProFTPD 1.3.5e Server (Debian) [::ffff:192.0.2.7]", "proftpd", "1.3.5e"),
        ("ftp", "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------", "pureftpd", ""),
        ("smtp", "220 mail.example.gov.ml ESMTP Postfix (Debian/GNU)", "postfix", ""),
        ("smtp", "220 mx.example.gov.ml ESMTP Exim 4.96 Thu, 03 Dec 2026 08:00:00 +0000", "exim", "4.96"),
        ("smtp", "220 mail.example.gov.ml ESMTP Sendmail 8.15.2/8.15.2; Thu, 3 Dec 2026", "sendmail", "8.15.2"),
        ("smtp", "220 EX01.example.gov.ml Microsoft ESMTP MAIL Service ready at Thu, 3 Dec 2026", "exchange", ""),
        ("imap", "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.", "dovecot", ""),
        ("pop3", "+OK Dovecot ready.", "dovecot", ""),
    ],
)  # fmt: skip
def test_greetings(protocol: str, greeting: str, product: str, version: str) -> None:
    (found,) = identify_greeting(protocol, greeting)
    assert (found.product, found.version) == (product, version)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nginx/1.22.1", [("nginx", "1.22.1", "")]),
        ("nginx", [("nginx", "", "")]),
        ("Apache/2.4.57 (Debian)", [("apache", "2.4.57", "debian")]),
        ("Apache/2.4.41 (Ubuntu)", [("apache", "2.4.41", "ubuntu")]),
        (
            "Apache/2.4.6 (CentOS) OpenSSL/1.0.2k-fips PHP/5.4.16",
            [("apache", "2.4.6", "centos"), ("openssl", "1.0.2k", "centos"), ("php", "5.4.16", "centos")],
        ),
        ("Microsoft-IIS/10.0", [("iis", "10.0", "")]),
        ("lighttpd/1.4.69", [("lighttpd", "1.4.69", "")]),
    ],
)  # fmt: skip
def test_server_header(value: str, expected: list[tuple[str, str, str]]) -> None:
    assert [(i.product, i.version, i.platform) for i in identify_server(value)] == expected


def test_powered_by_carries_the_package_revision() -> None:
    (ubuntu,) = identify_powered_by("PHP/8.1.2-1ubuntu2.14")
    assert ubuntu.version == "8.1.2" and ubuntu.package is not None
    assert (ubuntu.package.distro, ubuntu.package.revision) == ("ubuntu", "1ubuntu2.14")
    (debian,) = identify_powered_by("PHP/7.4.33-1+deb11u4")
    assert debian.package is not None and debian.package.release == "11"
    (aspnet,) = identify_powered_by("ASP.NET")
    assert aspnet.product == "aspnet" and aspnet.platform == "windows"
    (clr,) = identify_aspnet_version("4.0.30319")
    assert clr.version == "4.0.30319"


@pytest.mark.parametrize(
    ("server_version", "product", "version", "revision"),
    [
        ("5.5.5-10.11.6-MariaDB-0+deb12u1", "mariadb", "10.11.6", "0+deb12u1"),
        ("5.5.5-10.6.12-MariaDB-0ubuntu0.22.04.1", "mariadb", "10.6.12", "0ubuntu0.22.04.1"),
        ("8.0.36-0ubuntu0.22.04.1", "mysql", "8.0.36", "0ubuntu0.22.04.1"),
        ("8.0.36", "mysql", "8.0.36", None),
        ("5.7.44-log", "mysql", "5.7.44", None),
    ],
)
def test_mysql_handshake_versions(
    server_version: str, product: str, version: str, revision: str | None
) -> None:
    (found,) = identify_mysql(server_version)
    assert (found.product, found.version) == (product, version)
    assert (found.package.revision if found.package else None) == revision


def test_cms_pages() -> None:
    wordpress = '<meta name="generator" content="WordPress 6.4.2" />'
    assert [(i.product, i.version) for i in identify_page(wordpress, {})] == [
        ("wordpress", "6.4.2")
    ]
    joomla = '<meta name="generator" content="Joomla! - Open Source Content Management" />'
    assert [(i.product, i.version) for i in identify_page(joomla, {})] == [("joomla", "")]
    drupal = {"x-generator": "Drupal 10 (https://www.drupal.org)"}
    assert [(i.product, i.version) for i in identify_page("<html></html>", drupal)] == [
        ("drupal", "")
    ]
    assets = "<script src='/wp-includes/js/wp-emoji-release.min.js?ver=6.7.1'></script>"
    assert [(i.product, i.version) for i in identify_page(assets, {})] == [("wordpress", "6.7.1")]


def test_edge_login_pages_and_what_is_not_one() -> None:
    fortigate = '<script src="/remote/fgt_lang?lang=en"></script><div class="ftnt-fortinet-grid">'
    assert [i.product for i in identify_edge("/remote/login", fortigate, {})] == ["fortios"]
    citrix = "<title>Citrix Gateway</title><script src='/vpn/js/gateway_login_view.js'>"
    assert [i.product for i in identify_edge("/vpn/index.html", citrix, {})] == ["citrix_adc"]
    # A soft-404 that echoes the path asked for, and a redirect to it, prove nothing
    echo = "<h1>Not Found</h1><p>The requested URL /tmui/login.jsp was not found.</p>"
    assert identify_edge("/tmui/login.jsp", echo, {}) == []
    assert identify_edge("/dana-na/auth/url_default/welcome.cgi", "", {
        "location": "https://vpn.example.gov.ml/dana-na/auth/url_default/welcome.cgi"
    }) == []  # fmt: skip
    # One marker away from its login path is not enough
    assert identify_edge("/", "<p>We use Citrix at work</p>", {}) == []


def test_owa_build() -> None:
    page = '<link rel="stylesheet" href="/owa/auth/15.2.1118/themes/resources/fabric.css">'
    (found,) = identify_owa("/owa/auth/logon.aspx", page, {})
    assert (found.product, found.version) == ("exchange", "15.2.1118")
    (header,) = identify_owa("/owa/", "", {"x-owa-version": "15.1.2507.39"})
    assert header.version == "15.1.2507.39"
