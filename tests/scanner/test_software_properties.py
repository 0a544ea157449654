"""Property tests: no banner, header, page or version text makes identification or matching raise.

Banners and pages are chosen by whoever runs the server; NVD, OSV and Debian
version strings come from files vigie imports. Identification returns
products or nothing, and version ordering always gives an answer (or None for
a package version dpkg would refuse), whatever the text.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vigie.scanner.software._edge import identify_edge, identify_owa
from vigie.scanner.software._identify import (
    _GREETING_SOURCES,
    distro_package,
    identify_aspnet_version,
    identify_generator,
    identify_greeting,
    identify_mysql,
    identify_page,
    identify_powered_by,
    identify_redis,
    identify_server,
    identify_ssh,
)
from vigie.vulns._versions import compare_package, compare_upstream, epoch_of, upstream_of
from vigie.vulns.products import PRODUCTS

HOSTILE = st.sampled_from(
    ["³", "٩.٢", "²", "\x00", "\u200b", "-", "~", ":", "+", "..", "p", "deb12u", "ubuntu0."]
)
VERSIONISH = st.one_of(
    HOSTILE,
    st.text(max_size=20),
    st.lists(st.one_of(st.integers(0, 10**20).map(str), HOSTILE), max_size=6).map("".join),
    st.lists(st.integers(0, 99).map(str), min_size=1, max_size=5).map(".".join),
)
PREFIXES = st.sampled_from(
    [
        "SSH-2.0-OpenSSH_",
        "SSH-2.0-dropbear_",
        "nginx/",
        "Apache/",
        "Microsoft-IIS/",
        "5.5.5-",
        "220 ProFTPD ",
        "220 (vsFTPd ",
        "PHP/",
        "WordPress ",
        "Joomla! ",
        "",
    ]
)
BANNER = st.one_of(
    st.text(max_size=120), st.builds(lambda p, v, t: p + v + t, PREFIXES, VERSIONISH, VERSIONISH)
)


def known(identifications: list[object]) -> None:
    for ident in identifications:
        assert ident.product in PRODUCTS  # type: ignore[attr-defined]


@given(BANNER)
def test_banner_identification_never_raises(text: str) -> None:
    known(identify_ssh(text))
    known(identify_mysql(text))
    known(identify_redis(text))
    known(identify_server(text))
    known(identify_powered_by(text))
    known(identify_aspnet_version(text))
    known(identify_generator(text))
    for protocol in _GREETING_SOURCES:
        known(identify_greeting(protocol, text))


@given(
    st.one_of(st.text(max_size=300), BANNER.map(lambda b: f"<meta name=generator content='{b}'>")),
    st.dictionaries(st.sampled_from(["server", "x-powered-by", "x-owa-version"]), BANNER),
    st.sampled_from(["/", "/owa/", "/remote/login", "/global-protect/login.esp", "/dana-na/"]),
)
def test_page_identification_never_raises(body: str, headers: dict[str, str], path: str) -> None:
    known(identify_page(body, headers))
    known(identify_edge(path, body, headers))
    known(identify_owa(path, body, headers))


@given(
    VERSIONISH, st.one_of(VERSIONISH, st.builds(lambda a, b: a + "-" + b, VERSIONISH, VERSIONISH))
)
def test_version_ordering_never_raises(left: str, right: str) -> None:
    assert compare_upstream(left, right) in (-1, 0, 1)
    assert compare_upstream(left, left) == 0
    assert compare_package(left, right) in (-1, 0, 1, None)
    upstream_of(right)
    epoch_of(right)
    distro_package(left, right)
