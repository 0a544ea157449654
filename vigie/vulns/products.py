"""The products vigie can identify, and their names in each data source.

One entry per product: the CPE 2.3 (vendor, product) pairs the NVD has used for
it (the first is the one vigie reports; products change hands, as nginx moved
from ``nginx:nginx`` to ``f5:nginx``), its names on endoflife.date, and its
source package names in Debian and Ubuntu. The sweep loads only these
products' CVEs into memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    key: str  # vigie's name for it
    label: str  # what reports show
    cpes: tuple[tuple[str, str], ...]
    part: str = "a"  # CPE part: a(pplication), o(perating system), h(ardware)
    eol: tuple[str, ...] = ()  # endoflife.date product names
    packages: tuple[str, ...] = ()  # Debian/Ubuntu source packages
    cms: bool = False
    edge: bool = False  # a VPN / edge appliance

    def cpe_name(self, version: str = "") -> str:
        """The CPE 2.3 formatted string of this product at ``version`` (``*`` if unknown)."""
        vendor, product = self.cpes[0]
        text, update = _split_update(self.key, version)
        return f"cpe:2.3:{self.part}:{_quote(vendor)}:{_quote(product)}:{text}:{update}:*:*:*:*:*:*"


def _quote(component: str) -> str:
    """CPE 2.3 §6.2.3: characters other than letters, digits and _ - . are quoted."""
    return "".join(c if c.isalnum() or c in "_-." else "\\" + c for c in component)


def _split_update(key: str, version: str) -> tuple[str, str]:
    if not version:
        return "*", "*"
    if key == "openssh" and "p" in version:
        base, _, update = version.partition("p")
        return _quote(base), "p" + _quote(update)
    return _quote(version), "*"


_PRODUCTS = (
    Product("openssh", "OpenSSH", (("openbsd", "openssh"),), packages=("openssh",)),
    Product(
        "dropbear",
        "Dropbear SSH",
        (("dropbear_ssh_project", "dropbear_ssh"),),
        packages=("dropbear",),
    ),
    Product(
        "nginx",
        "nginx",
        (("f5", "nginx"), ("nginx", "nginx"), ("f5", "nginx_open_source")),
        eol=("nginx",),
        packages=("nginx",),
    ),
    Product(
        "apache",
        "Apache HTTP Server",
        (("apache", "http_server"),),
        eol=("apache-http-server", "apache"),
        packages=("apache2",),
    ),
    Product("lighttpd", "lighttpd", (("lighttpd", "lighttpd"),), packages=("lighttpd",)),
    Product(
        "iis",
        "Microsoft IIS",
        (("microsoft", "internet_information_services"), ("microsoft", "iis")),
        eol=("iis",),
    ),
    Product(
        "tomcat",
        "Apache Tomcat",
        (("apache", "tomcat"),),
        eol=("tomcat",),
        packages=("tomcat9", "tomcat10"),
    ),
    Product(
        "php",
        "PHP",
        (("php", "php"),),
        eol=("php",),
        packages=("php8.2", "php7.4", "php8.1", "php8.3", "php8.4"),
    ),
    Product("aspnet", "ASP.NET", (("microsoft", "asp.net"),), eol=("dotnetfx",)),
    Product(
        "openssl", "OpenSSL", (("openssl", "openssl"),), eol=("openssl",), packages=("openssl",)
    ),
    Product(
        "vsftpd",
        "vsftpd",
        (("beasts", "vsftpd"), ("vsftpd_project", "vsftpd")),
        packages=("vsftpd",),
    ),
    Product("proftpd", "ProFTPD", (("proftpd", "proftpd"),), packages=("proftpd-dfsg",)),
    Product("pureftpd", "Pure-FTPd", (("pureftpd", "pure-ftpd"),), packages=("pure-ftpd",)),
    Product("filezilla_server", "FileZilla Server", (("filezilla-project", "filezilla_server"),)),
    Product("postfix", "Postfix", (("postfix", "postfix"),), packages=("postfix",)),
    Product("exim", "Exim", (("exim", "exim"),), packages=("exim4",)),
    Product("sendmail", "Sendmail", (("sendmail", "sendmail"),), packages=("sendmail",)),
    Product("dovecot", "Dovecot", (("dovecot", "dovecot"),), packages=("dovecot",)),
    Product(
        "exchange",
        "Microsoft Exchange Server",
        (("microsoft", "exchange_server"),),
        eol=("msexchange", "exchange"),
    ),
    Product(
        "mysql",
        "MySQL",
        (("oracle", "mysql"), ("oracle", "mysql_server"), ("mysql", "mysql")),
        eol=("mysql",),
        packages=("mysql-8.0", "mysql-5.7"),
    ),
    Product(
        "mariadb",
        "MariaDB",
        (("mariadb", "mariadb"),),
        eol=("mariadb",),
        packages=("mariadb", "mariadb-10.11", "mariadb-10.6", "mariadb-10.5", "mariadb-10.3"),
    ),
    Product(
        "redis",
        "Redis",
        (("redis", "redis"), ("redislabs", "redis")),
        eol=("redis",),
        packages=("redis",),
    ),
    Product(
        "postgresql",
        "PostgreSQL",
        (("postgresql", "postgresql"),),
        eol=("postgresql",),
        packages=("postgresql-15", "postgresql-13", "postgresql-16", "postgresql-17"),
    ),
    Product("mongodb", "MongoDB", (("mongodb", "mongodb"),), eol=("mongodb",)),
    Product(
        "elasticsearch", "Elasticsearch", (("elastic", "elasticsearch"),), eol=("elasticsearch",)
    ),
    Product("memcached", "memcached", (("memcached", "memcached"),), packages=("memcached",)),
    Product(
        "wordpress",
        "WordPress",
        (("wordpress", "wordpress"),),
        eol=("wordpress",),
        packages=("wordpress",),
        cms=True,
    ),
    Product("joomla", "Joomla!", (("joomla", "joomla!"),), eol=("joomla",), cms=True),
    Product("drupal", "Drupal", (("drupal", "drupal"),), eol=("drupal",), cms=True),
    Product(
        "fortios",
        "Fortinet FortiGate (FortiOS)",
        (("fortinet", "fortios"),),
        part="o",
        eol=("fortios",),
        edge=True,
    ),
    Product(
        "citrix_adc",
        "Citrix ADC / Gateway (NetScaler)",
        (
            ("citrix", "netscaler_application_delivery_controller"),
            ("citrix", "netscaler_gateway"),
            ("citrix", "application_delivery_controller_firmware"),
            ("citrix", "gateway_firmware"),
            ("citrix", "application_delivery_controller"),
            ("citrix", "gateway"),
        ),
        eol=("citrix-adc", "netscaler"),
        edge=True,
    ),
    Product(
        "ivanti_connect_secure",
        "Ivanti / Pulse Connect Secure",
        (("ivanti", "connect_secure"), ("pulsesecure", "pulse_connect_secure")),
        eol=("ivanti-connect-secure", "pulse-connect-secure"),
        edge=True,
    ),
    Product(
        "panos",
        "Palo Alto Networks GlobalProtect (PAN-OS)",
        (("paloaltonetworks", "pan-os"),),
        part="o",
        eol=("pan-os", "panos"),
        edge=True,
    ),
    Product(
        "bigip",
        "F5 BIG-IP",
        (("f5", "big-ip_access_policy_manager"), ("f5", "big-ip_local_traffic_manager")),
        eol=("f5-bigip", "big-ip"),
        edge=True,
    ),
    Product(
        "sonicos",
        "SonicWall SSL VPN (SonicOS)",
        (("sonicwall", "sonicos"),),
        part="o",
        eol=("sonicos",),
        edge=True,
    ),
)

PRODUCTS: dict[str, Product] = {p.key: p for p in _PRODUCTS}

# Operating systems a banner may name: (vendor, product) as the NVD writes them.
PLATFORMS: dict[str, tuple[str, str]] = {
    "debian": ("debian", "debian_linux"),
    "ubuntu": ("canonical", "ubuntu_linux"),
    "windows": ("microsoft", "windows"),
    "centos": ("centos", "centos"),
    "red hat": ("redhat", "enterprise_linux"),
    "freebsd": ("freebsd", "freebsd"),
    # "(Unix)": some Unix, surely not Windows; no CPE names it, so it rules out only
    # configurations that need a named OS.
    "unix": ("", "unix"),
}


def all_cpe_products() -> set[tuple[str, str]]:
    """Every (vendor, product) a sweep may need the CVEs of."""
    return {pair for product in PRODUCTS.values() for pair in product.cpes}


def all_packages() -> set[str]:
    return {name for product in PRODUCTS.values() for name in product.packages}


def all_eol_names() -> set[str]:
    return {name for product in PRODUCTS.values() for name in product.eol}
