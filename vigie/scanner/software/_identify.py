"""Which software a host runs, from what the scan already saw: pure functions.

Each function takes one observation (a banner, a header value, a page) and
returns the :class:`Identification` it proves, or nothing. Sources:
SSH identification strings (RFC 4253 §4.2: ``SSH-protoversion-softwareversion
SP comments``, where Debian and Ubuntu put the package revision); FTP, SMTP,
POP3 and IMAP greetings (RFC 959 §4.2, RFC 5321 §4.2, RFC 1939 §4, RFC 9051
§7.1); the HTTP ``Server`` and ``X-Powered-By`` product tokens (RFC 9110
§10.2.4: ``product/version (comment)``) and ``X-AspNet-Version``; the HTML
``<meta name="generator">`` (HTML Living Standard §4.2.5.1) and versioned
assets of WordPress, Joomla and Drupal; the MySQL handshake's server version
(protocol v10) and Redis ``INFO`` ``redis_version``; edge devices' login
pages (see ``_edge``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigie.parsing import is_ascii_digits
from vigie.vulns import PackageVersion
from vigie.vulns.products import PRODUCTS, Product

EVIDENCE_CHARS = 200


@dataclass(frozen=True)
class Identification:
    """One product seen on one port of a host."""

    product: str  # key of vigie.vulns.products.PRODUCTS
    version: str  # upstream version ("" when not shown)
    seen_in: str  # banner, header, page, path
    source: str  # "SSH banner", "Server header", "meta generator"...
    text: str  # what was seen (truncated, untrusted)
    confidence: str  # high (name and version stated), medium, low
    package: PackageVersion | None = None  # a distribution package revision, when shown
    platform: str = ""  # OS the banner names: debian, ubuntu, windows...
    port: int | None = None

    @property
    def info(self) -> Product:
        return PRODUCTS[self.product]

    def at(self, port: int | None) -> Identification:
        return Identification(
            self.product,
            self.version,
            self.seen_in,
            self.source,
            self.text,
            self.confidence,
            self.package,
            self.platform,
            port,
        )


def _cut(text: str) -> str:
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + "…"


def _ident(
    product: str,
    version: str,
    seen_in: str,
    source: str,
    text: str,
    *,
    package: PackageVersion | None = None,
    platform: str = "",
    confidence: str = "",
) -> Identification:
    return Identification(
        product,
        version,
        seen_in,
        source,
        _cut(text),
        confidence or ("high" if version else "medium"),
        package,
        platform or (package.distro if package else ""),
    )


# --- distribution revisions -------------------------------------------------------

_DEBIAN_RELEASE = re.compile(r"(?:deb|bpo)(\d+)")
_UBUNTU_RELEASE = re.compile(r"ubuntu\d*\.(\d\d\.\d\d)")


def distro_package(upstream: str, marker: str) -> PackageVersion | None:
    """``Debian-2+deb12u3`` / ``Ubuntu-3ubuntu0.6`` / ``0+deb12u1`` -> the package version.

    Debian's OpenSSH puts ``Debian-<revision>`` in the SSH comments, Ubuntu's
    ``Ubuntu-<revision>``; MariaDB appends ``-<revision>`` to its version.
    """
    text = marker.strip()
    lowered = text.lower()
    distro = ""
    revision = text
    for name in ("debian", "ubuntu"):
        if lowered.startswith(name + "-"):
            distro, revision = name, text[len(name) + 1 :]
            break
    if not distro:
        if "ubuntu" in lowered:
            distro = "ubuntu"
        elif "deb" in lowered:
            distro = "debian"
        else:
            return None
    revision = revision.split()[0] if revision.split() else ""
    if not is_ascii_digits(revision[:1]):
        return PackageVersion(distro, upstream)
    release = ""
    if distro == "debian":
        found = _DEBIAN_RELEASE.search(revision)
        release = found.group(1) if found else ""
    else:
        found_ubuntu = _UBUNTU_RELEASE.search(revision)
        release = found_ubuntu.group(1) if found_ubuntu else ""
    return PackageVersion(distro, upstream, revision, release)


def platform_of(comment: str) -> str:
    lowered = comment.lower()
    for name in ("debian", "ubuntu", "centos", "red hat", "freebsd"):
        if name in lowered:
            return name
    if "win32" in lowered or "win64" in lowered or "windows" in lowered:
        return "windows"
    if "unix" in lowered or "linux" in lowered:
        return "unix"
    return ""


# --- SSH --------------------------------------------------------------------------

_SSH = re.compile(r"^SSH-[\d.]+-(?P<software>\S+)(?: (?P<comments>[^\r\n]*))?")
_OPENSSH = re.compile(r"^OpenSSH_(?P<version>\d+\.\d+(?:\.\d+)?(?:p\d+)?)", re.IGNORECASE)
_DROPBEAR = re.compile(r"^dropbear_(?P<version>\d{4}\.\d+)", re.IGNORECASE)


def identify_ssh(banner: str) -> list[Identification]:
    """``SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`` -> OpenSSH 9.2p1, Debian revision 2+deb12u3."""
    for line in banner.splitlines():
        found = _SSH.match(line.strip())
        if found is None:
            continue
        software, comments = found["software"], (found["comments"] or "").strip()
        openssh = _OPENSSH.match(software)
        if openssh:
            version = openssh["version"]
            package = distro_package(version, comments) if comments else None
            # Ubuntu's older OpenSSH writes "OpenSSH_8.2p1 Ubuntu-4ubuntu0.5" too.
            return [_ident("openssh", version, "banner", "SSH banner", line, package=package)]
        dropbear = _DROPBEAR.match(software)
        if dropbear:
            return [_ident("dropbear", dropbear["version"], "banner", "SSH banner", line)]
    return []


# --- FTP and mail greetings --------------------------------------------------------

_FTP_PATTERNS = (
    (re.compile(r"\(vsFTPd (?P<version>\d+\.\d+\.\d+)\)", re.IGNORECASE), "vsftpd"),
    (re.compile(r"\bvsFTPd\b", re.IGNORECASE), "vsftpd"),
    (re.compile(r"ProFTPD (?P<version>\d+\.\d+\.\d+[a-z]?\d*)", re.IGNORECASE), "proftpd"),
    (re.compile(r"\bProFTPD\b", re.IGNORECASE), "proftpd"),
    (re.compile(r"Pure-FTPd", re.IGNORECASE), "pureftpd"),
    (
        re.compile(r"FileZilla Server(?: version)? (?P<version>\d+\.\d+\.\d+[a-z]?)", re.I),
        "filezilla_server",
    ),
)
_SMTP_PATTERNS = (
    (re.compile(r"\bESMTP Postfix\b|\bPostfix\b", re.IGNORECASE), "postfix"),
    (re.compile(r"\bExim (?P<version>\d+\.\d+(?:\.\d+)?)", re.IGNORECASE), "exim"),
    (re.compile(r"\bSendmail (?P<version>\d+\.\d+\.\d+)", re.IGNORECASE), "sendmail"),
    (re.compile(r"Microsoft ESMTP MAIL Service", re.IGNORECASE), "exchange"),
)
_MAILBOX_PATTERNS = (
    (
        re.compile(r"\bDovecot\b(?: (?P<version>\d+\.\d+\.\d+(?:\.\d+)?))?", re.IGNORECASE),
        "dovecot",
    ),
    (re.compile(r"Microsoft Exchange", re.IGNORECASE), "exchange"),
)
_GREETING_SOURCES = {
    "ftp": ("FTP greeting", _FTP_PATTERNS),
    "smtp": ("SMTP greeting", _SMTP_PATTERNS),
    "pop3": ("POP3 greeting", _MAILBOX_PATTERNS),
    "imap": ("IMAP greeting", _MAILBOX_PATTERNS),
}


def identify_greeting(protocol: str, greeting: str) -> list[Identification]:
    """An FTP, SMTP, POP3 or IMAP server's greeting line -> its product (and version)."""
    source, patterns = _GREETING_SOURCES[protocol]
    first = greeting.splitlines()[0] if greeting else ""
    for pattern, product in patterns:
        found = pattern.search(first)
        if found:
            groups = found.groupdict()
            version = groups.get("version") or ""
            platform = platform_of(first)
            package = (
                PackageVersion(platform, version)
                if platform in ("debian", "ubuntu") and version
                else None
            )
            confidence = "high" if version else "medium"
            return [
                _ident(
                    product,
                    version,
                    "banner",
                    source,
                    first,
                    package=package,
                    platform=platform,
                    confidence=confidence,
                )
            ]
    return []


# --- databases ----------------------------------------------------------------------

_MYSQL = re.compile(r"^(?:5\.5\.5-)?(?P<version>\d+\.\d+\.\d+)(?:-(?P<rest>.*))?$")


def identify_mysql(server_version: str) -> list[Identification]:
    """A MySQL handshake's server version: ``5.5.5-10.11.6-MariaDB-0+deb12u1``, ``8.0.36``."""
    found = _MYSQL.match(server_version.strip())
    if found is None:
        return []
    rest = found["rest"] or ""
    product = "mariadb" if "mariadb" in server_version.lower() else "mysql"
    package = None
    marker = rest.split("MariaDB", 1)[1].lstrip("-") if "MariaDB" in rest else rest
    if marker:
        package = distro_package(found["version"], marker)
    source = "MySQL handshake server version"
    return [_ident(product, found["version"], "banner", source, server_version, package=package)]


def identify_redis(version: str) -> list[Identification]:
    text = version.strip()
    if not re.match(r"^\d+\.\d+\.\d+$", text):
        return []
    return [_ident("redis", text, "banner", "Redis INFO redis_version", f"redis_version:{text}")]


# --- HTTP headers -------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<name>[A-Za-z][\w.!-]*)(?:/(?P<version>[\w.+~-]+))?(?:\s+\((?P<comment>[^)]*)\))?"
)
_SERVER_PRODUCTS = {
    "nginx": "nginx",
    "apache": "apache",
    "microsoft-iis": "iis",
    "lighttpd": "lighttpd",
    "openssl": "openssl",
    "php": "php",
    "apache-coyote": "",
    "openresty": "",
}
_VERSIONED = re.compile(r"^\d+(?:\.\d+)+[a-z]?\d*$")


def identify_server(value: str, header: str = "Server") -> list[Identification]:
    """``Apache/2.4.57 (Debian) OpenSSL/3.0.11`` -> Apache 2.4.57 on Debian, OpenSSL 3.0.11."""
    found: list[Identification] = []
    platform = ""
    tokens = list(_TOKEN.finditer(value))
    for token in tokens:
        if token["comment"]:
            platform = platform or platform_of(token["comment"])
    for token in tokens:
        product = _SERVER_PRODUCTS.get(token["name"].lower())
        if not product:
            continue
        # "PHP/8.1.2-1ubuntu2.14": the upstream version, then the package revision.
        upstream, _, rest = (token["version"] or "").partition("-")
        version = upstream if _VERSIONED.match(upstream) else ""
        package = distro_package(version, rest) if version and rest else None
        if package is None and platform in ("debian", "ubuntu") and version:
            package = PackageVersion(platform, version)
        found.append(
            _ident(
                product,
                version,
                "header",
                f"{header} header",
                f"{header}: {value}",
                package=package,
                platform=platform,
            )
        )
    return found


def identify_powered_by(value: str) -> list[Identification]:
    """``X-Powered-By: PHP/8.2.7`` or ``ASP.NET``."""
    if value.strip().lower().startswith("asp.net"):
        return [
            _ident(
                "aspnet",
                "",
                "header",
                "X-Powered-By header",
                f"X-Powered-By: {value}",
                platform="windows",
            )
        ]
    return identify_server(value, "X-Powered-By")


def identify_aspnet_version(value: str) -> list[Identification]:
    """``X-AspNet-Version: 4.0.30319``: the .NET Framework's CLR version."""
    text = value.strip()
    if not _VERSIONED.match(text):
        return []
    return [
        _ident(
            "aspnet",
            text,
            "header",
            "X-AspNet-Version header",
            f"X-AspNet-Version: {text}",
            platform="windows",
        )
    ]


# --- pages --------------------------------------------------------------------------

_META_GENERATOR = re.compile(
    r"<meta\s+[^>]*?name\s*=\s*[\"']generator[\"'][^>]*?content\s*=\s*[\"'](?P<content>[^\"']+)"
    r"|<meta\s+[^>]*?content\s*=\s*[\"'](?P<content2>[^\"']+)[\"'][^>]*?name\s*=\s*[\"']generator",
    re.IGNORECASE,
)
_GENERATORS = (
    (re.compile(r"^WordPress\s+(?P<version>\d+\.\d+(?:\.\d+)?)", re.I), "wordpress"),
    (re.compile(r"^WordPress\b", re.I), "wordpress"),
    (re.compile(r"^Joomla!?(?:\s+(?P<version>\d+\.\d+(?:\.\d+)?))?", re.I), "joomla"),
    (re.compile(r"^Drupal\s+(?P<version>\d+(?:\.\d+)*)", re.I), "drupal"),
)
_WP_ASSET = re.compile(r"/wp-(?:includes|admin)/[^\"'?]+\?ver=(?P<version>\d+\.\d+(?:\.\d+)?)")
_WP_PATH = re.compile(r"/wp-(?:content|includes)/")
_DRUPAL_ASSET = re.compile(r"/(?:core/)?misc/drupal\.js\?v=(?P<version>\d+\.\d+(?:\.\d+)?)")
_JOOMLA_MARK = re.compile(r"/media/(?:jui|system)/js/|/media/vendor/joomla", re.I)


def identify_generator(content: str, *, source: str = "meta generator") -> list[Identification]:
    for pattern, product in _GENERATORS:
        found = pattern.match(content.strip())
        if found:
            version = found.groupdict().get("version") or ""
            # "Drupal 10" names the major release only: a branch, not a version.
            if product == "drupal" and "." not in version:
                return [_ident(product, "", "page", source, content, confidence="medium")]
            return [_ident(product, version, "page", source, content)]
    return []


def identify_page(body: str, headers: dict[str, str]) -> list[Identification]:
    """A CMS from its front page: generator meta tag, X-Generator, versioned assets."""
    found: list[Identification] = []
    match = _META_GENERATOR.search(body)
    if match:
        found += identify_generator(match["content"] or match["content2"] or "")
    generator = headers.get("x-generator")
    if generator and not found:
        found += identify_generator(generator, source="X-Generator header")
    products = {i.product for i in found}
    versions = {i.product for i in found if i.version}
    if "wordpress" not in versions:
        with_asset = _versioned_asset(found, "wordpress", _WP_ASSET, body)
        if with_asset is not None:
            found = with_asset
        elif "wordpress" not in products:
            found += _path_marker("wordpress", _WP_PATH, "wp-content paths", body)
    if "drupal" not in versions:
        found = _versioned_asset(found, "drupal", _DRUPAL_ASSET, body) or found
    if "joomla" not in products:
        found += _path_marker("joomla", _JOOMLA_MARK, "Joomla media paths", body)
    return found


def _path_marker(
    product: str, pattern: re.Pattern[str], source: str, body: str
) -> list[Identification]:
    """A low-confidence identification from a path only ``product`` uses, or nothing."""
    mark = pattern.search(body)
    if mark is None:
        return []
    return [_ident(product, "", "page", source, mark.group(0), confidence="low")]


def _versioned_asset(
    found: list[Identification], product: str, pattern: re.Pattern[str], body: str
) -> list[Identification] | None:
    """``found`` with ``product`` identified from a versioned asset URL in ``body`` (it
    replaces a version-less identification of the same product); None when there is none."""
    asset = pattern.search(body)
    if asset is None:
        return None
    evidence = asset.group(0)
    ident = _ident(
        product, asset["version"], "page", "versioned asset", evidence, confidence="medium"
    )
    return [*(i for i in found if i.product != product), ident]
