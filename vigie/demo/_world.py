"""The fictional agencies of the demo, their applications and their DNS zones.

Everything lives under ``gouv.example`` (``.example`` is reserved by RFC 2606:
it can never be a real name) on loopback addresses of 127.77.0.0/24. Each
application is built with the weaknesses a CERT really meets, from every
check family; one application is configured well and must grade well.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta

from vigie.demo._dns import ZoneSpec
from vigie.demo._http import Page, Site
from vigie.demo._pki import CertificateKind

DEMO_NETWORK = "127.77.0.0/24"
DNS_ADDRESS = "127.77.0.53"
PARENT_ZONE = "gouv.example"
NAMESERVER = f"ns1.{PARENT_ZONE}"
HOSTING_ZONE = "hebergeur.example"  # a hosting provider's zone, for the dangling alias

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# "SSLCipherSuite ALL" as on a 2012 Apache: every suite this OpenSSL still has, with
# RSA key exchange (no forward secrecy) and anonymous ECDH (no authentication).
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"


@dataclass(frozen=True)
class PortPlan:
    """The ports the demo listens on: standard ones as root, high ones otherwise."""

    http: int = 80
    https: int = 443
    dns: int = 53
    redis: int = 6379

    @classmethod
    def unprivileged(cls) -> PortPlan:
        return cls(http=8080, https=8443, dns=5353)

    @property
    def scanned(self) -> list[int]:
        """What vigie is told to scan: exactly the ports the demo may open."""
        return sorted({self.http, self.https, self.redis})


@dataclass(frozen=True)
class TlsProfile:
    certificate: CertificateKind
    minimum: ssl.TLSVersion
    maximum: ssl.TLSVersion
    ciphers: str
    rsa_key: bool = False  # RSA allows suites without forward secrecy


@dataclass(frozen=True)
class DemoApplication:
    """One registered application of one agency, and how the demo serves it."""

    domain: str
    address: str
    agency: str
    agency_code: str
    language: str
    contact: str
    http_site: Site | None = None  # plain HTTP (port 80)
    https_site: Site | None = None  # HTTPS (port 443)
    tls: TlsProfile | None = None
    redis: bool = False
    well_configured: bool = False
    operator: str | None = None
    operator_email: str | None = None
    # Registered names of the same agency without an address of their own.
    aliases: tuple[str, ...] = ()
    # The check IDs this application is built to show (documentation and tests).
    weaknesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoWorld:
    applications: tuple[DemoApplication, ...]
    zones: tuple[ZoneSpec, ...]
    ports: PortPlan
    dns_address: str = DNS_ADDRESS

    @property
    def addresses(self) -> list[str]:
        return sorted({app.address for app in self.applications})

    @property
    def resolver(self) -> str:
        return self.dns_address if self.ports.dns == 53 else f"{self.dns_address}:{self.ports.dns}"

    def listeners(self) -> list[tuple[str, int, str]]:
        """Every (address, port, protocol) the demo opens."""
        found = [
            (self.dns_address, self.ports.dns, "udp"),
            (self.dns_address, self.ports.dns, "tcp"),
        ]
        for app in self.applications:
            if app.http_site is not None:
                found.append((app.address, self.ports.http, "tcp"))
            if app.https_site is not None:
                found.append((app.address, self.ports.https, "tcp"))
            if app.redis:
                found.append((app.address, self.ports.redis, "tcp"))
        return found


# --- pages ------------------------------------------------------------------------


def _home(title: str, body: str) -> Page:
    html = (
        '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n<p>{body}</p>\n</body></html>\n"
    )
    return Page(html.encode())


def _text(body: str) -> Page:
    return Page(body.encode(), "text/plain; charset=utf-8")


def _security_txt(contact: str, expires: datetime, language: str) -> Page:
    return _text(
        f"Contact: mailto:{contact}\n"
        f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        f"Preferred-Languages: {language}, en\n"
        "Policy: https://cert.gouv.example/divulgation\n"
    )


def _host(domain: str, port: int, default: int) -> str:
    return domain if port == default else f"{domain}:{port}"


# --- the agencies -------------------------------------------------------------------


def _finances(ports: PortPlan, now: datetime) -> DemoApplication:
    domain = "finances.gouv.example"
    contact = f"securite@{domain}"
    headers = (
        ("Server", "nginx"),
        ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ("Permissions-Policy", "geolocation=(), camera=(), microphone=()"),
    )
    home = _home(
        "Ministère de l'Économie et des Finances",
        "Déclarations, paiements et marchés publics en ligne.",
    )
    site = Site(
        host=_host(domain, ports.https, 443),
        headers=headers,
        pages={
            "/": Page(
                home.body,
                headers=(("Set-Cookie", "session=4f1c2e; Path=/; Secure; HttpOnly; SameSite=Lax"),),
            ),
            "/.well-known/security.txt": _security_txt(contact, now + timedelta(days=180), "fr"),
        },
    )
    return DemoApplication(
        domain=domain,
        address="127.77.0.10",
        agency="Ministère de l'Économie et des Finances",
        agency_code="MEF",
        language="fr",
        contact=contact,
        http_site=Site(host=_host(domain, ports.https, 443), redirect_to_https=True),
        https_site=site,
        tls=TlsProfile(
            CertificateKind.VALID, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, MODERN_CIPHERS
        ),
        well_configured=True,
    )


def _sante(ports: PortPlan) -> DemoApplication:
    domain = "sante.gouv.example"
    headers = (("Server", "Apache/2.4.29 (Ubuntu)"), ("X-Powered-By", "PHP/7.2.24"))
    site = Site(
        host=domain,
        headers=headers,
        trace_enabled=True,
        pages={
            "/": Page(
                _home("Ministère de la Santé", "Portail des établissements de santé.").body,
                headers=(("Set-Cookie", "PHPSESSID=9d2k4c7q1m; path=/"),),
            ),
            "/.git/HEAD": _text("ref: refs/heads/master\n"),
            "/.git/config": _text(
                "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
                '[remote "origin"]\n\turl = git@git.sante.gouv.example:portail/site.git\n'
                "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
            ),
        },
    )
    return DemoApplication(
        domain=domain,
        address="127.77.0.11",
        agency="Ministère de la Santé",
        agency_code="MS",
        language="fr",
        contact=f"securite@{domain}",
        http_site=site,
        https_site=site,
        tls=TlsProfile(
            CertificateKind.EXPIRED,
            ssl.TLSVersion.TLSv1,
            ssl.TLSVersion.TLSv1_2,
            LEGACY_CIPHERS,
            rsa_key=True,
        ),
        operator="Hébergeur Sahel SARL",
        operator_email="support@hebergeur.example",
        weaknesses=(
            "tls.protocol.tls1_0",
            "tls.protocol.tls1_1",
            "tls.protocol.no_tls1_3",
            "tls.cipher.weak",  # "ALL" includes anonymous (AECDH) suites
            "tls.cipher.no_forward_secrecy",
            "tls.cert.expired",
            "http.no_https_redirect",
            "http.hsts.missing",
            "http.csp.missing",
            "http.frame_options.missing",
            "http.content_type_options.missing",
            "http.version_disclosed",
            "http.cookie.insecure",
            "http.cookie.no_httponly",
            "http.trace_enabled",
            "http.security_txt.missing",
            "http.exposed.vcs",
            "dns.spf.permissive",
            "dns.dmarc.policy_none",
            "dns.caa.missing",
            "dns.dnssec.missing",
        ),
    )


def _education(ports: PortPlan, now: datetime) -> DemoApplication:
    domain = "education.gouv.example"
    contact = f"rssi@{domain}"
    listing = (
        "<html>\r\n<head><title>Index of /uploads/</title></head>\r\n<body>\r\n"
        '<h1>Index of /uploads/</h1><hr><pre><a href="../">../</a>\r\n'
        '<a href="bulletins-2025.pdf">bulletins-2025.pdf</a>      12-Jan-2026 10:02   482113\r\n'
        '<a href="resultats-examens.xlsx">resultats-examens.xlsx</a>  03-Feb-2026 16:40  1204551\r\n'
        "</pre><hr></body>\r\n</html>\r\n"
    )
    site = Site(
        host=_host(domain, ports.https, 443),
        headers=(
            ("Server", "nginx"),
            ("Strict-Transport-Security", "max-age=86400"),
            ("Content-Security-Policy", "default-src * 'unsafe-inline' 'unsafe-eval'"),
            ("X-Content-Type-Options", "nosniff"),
        ),
        reflect_cors=True,
        pages={
            "/": _home("Ministère de l'Éducation nationale", "Examens, bourses et concours."),
            "/uploads/": Page(listing.encode()),
            "/nginx_status": _text(
                "Active connections: 3 \nserver accepts handled requests\n 15432 15432 29810 \n"
                "Reading: 0 Writing: 1 Waiting: 2 \n"
            ),
            "/.well-known/security.txt": _security_txt(contact, now - timedelta(days=60), "fr"),
        },
    )
    return DemoApplication(
        domain=domain,
        address="127.77.0.12",
        agency="Ministère de l'Éducation nationale",
        agency_code="MEN",
        language="fr",
        contact=contact,
        http_site=Site(host=_host(domain, ports.https, 443), redirect_to_https=True),
        https_site=site,
        tls=TlsProfile(
            CertificateKind.SELF_SIGNED,
            ssl.TLSVersion.TLSv1_2,
            ssl.TLSVersion.TLSv1_2,
            MODERN_CIPHERS,
        ),
        redis=True,
        weaknesses=(
            "service.database.exposed",
            "service.database.no_auth",
            "service.version_disclosed",
            "tls.cert.self_signed",
            "tls.protocol.no_tls1_3",
            "http.hsts.short_max_age",
            "http.csp.unsafe",
            "http.frame_options.missing",
            "http.referrer_policy.missing",
            "http.cors.permissive",
            "http.directory_listing",
            "http.exposed.server_status",
            "http.security_txt.expired",
            "dns.spf.missing",
            "dns.dmarc.missing",
            "dns.axfr_open",
            "dns.caa.missing",
            "dns.dnssec.missing",
        ),
    )


def _transports(ports: PortPlan) -> DemoApplication:
    domain = "transports.gouv.example"
    dump = (
        "-- MySQL dump 10.13  Distrib 5.7.33, for Linux (x86_64)\n--\n"
        "-- Host: localhost    Database: transports\n"
        "-- ------------------------------------------------------\n\n"
        "DROP TABLE IF EXISTS `usagers`;\n"
        "CREATE TABLE `usagers` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
        "  `courriel` varchar(255) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
        "INSERT INTO `usagers` VALUES (1,'exemple@transports.gouv.example');\n"
    )
    site = Site(
        host=_host(domain, ports.http, 80),
        headers=(("Server", "nginx/1.14.2"),),
        pages={
            "/": _home("National Transport Agency", "Driving licences and vehicle registration."),
            "/backup.sql": Page(dump.encode(), "application/octet-stream"),
        },
    )
    return DemoApplication(
        domain=domain,
        address="127.77.0.13",
        agency="National Transport Agency",
        agency_code="ANT",
        language="en",
        contact=f"security@{domain}",
        http_site=site,
        aliases=(f"carte.{domain}",),
        weaknesses=(
            "tls.missing",
            "http.version_disclosed",
            "http.exposed.backup",
            "http.security_txt.missing",
            "dns.dangling_cname",
            "dns.caa.missing",
            "dns.dnssec.missing",
        ),
    )


# --- zones --------------------------------------------------------------------------


def _mail_records(address: str) -> str:
    return f"@ IN A {address}\n@ IN MX 10 mail\nmail IN A {address}\n"


def _zones(apps: dict[str, DemoApplication]) -> tuple[ZoneSpec, ...]:
    finances, sante, education, transports = (
        apps["MEF"],
        apps["MS"],
        apps["MEN"],
        apps["ANT"],
    )
    delegations = "".join(
        f"{app.domain.removesuffix('.' + PARENT_ZONE)} IN NS {NAMESERVER}.\n"
        for app in apps.values()
    )
    return (
        ZoneSpec(PARENT_ZONE, f"ns1 IN A {DNS_ADDRESS}\n" + delegations),
        ZoneSpec(
            finances.domain,
            _mail_records(finances.address)
            + f"www IN A {finances.address}\n"
            + '@ IN TXT "v=spf1 mx -all"\n'
            + f'_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{finances.domain}"\n'
            + '@ IN CAA 0 issue "pki.gouv.example"\n'
            + f'@ IN CAA 0 iodef "mailto:{finances.contact}"\n',
            signed=True,
        ),
        ZoneSpec(
            sante.domain,
            _mail_records(sante.address)
            + '@ IN TXT "v=spf1 +all"\n'
            + '_dmarc IN TXT "v=DMARC1; p=none"\n',
        ),
        ZoneSpec(
            education.domain,
            _mail_records(education.address)
            + f"intranet IN A {education.address}\n"
            + f"sauvegardes IN A {education.address}\n"
            + '@ IN TXT "site-verification=7Yk2mQ"\n',
            allow_transfer=True,
        ),
        ZoneSpec(
            transports.domain,
            _mail_records(transports.address)
            + f'@ IN TXT "v=spf1 ip4:{transports.address} ~all"\n'
            + f'_dmarc IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@{transports.domain}"\n'
            + f"carte IN CNAME transports-carte.{HOSTING_ZONE}.\n",
        ),
        ZoneSpec(HOSTING_ZONE, "www IN A 127.77.0.60\n"),
        # The top of the tree, empty: CAA and DMARC lookups climb up to it (RFC 8659 §3,
        # RFC 7489 §6.6.3) and must get an answer, not REFUSED.
        ZoneSpec("example", ""),
    )


def build_world(ports: PortPlan, now: datetime) -> DemoWorld:
    """The demo's agencies, applications and zones for this run."""
    applications = (
        _finances(ports, now),
        _sante(ports),
        _education(ports, now),
        _transports(ports),
    )
    by_code = {app.agency_code: app for app in applications}
    return DemoWorld(applications=applications, zones=_zones(by_code), ports=ports)


def registered_names(world: DemoWorld) -> list[tuple[DemoApplication, str]]:
    """Every name the registry lists, with the application (and agency) it belongs to."""
    names = []
    for app in world.applications:
        names.append((app, app.domain))
        names.extend((app, alias) for alias in app.aliases)
    return names
