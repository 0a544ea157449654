"""An end-to-end lab of real, misconfigured servers, and what vigie must find in it.

Everything in scope lives on 127.0.11.0/24, named in Knot zones
(``e2e.gouv.example`` open to AXFR, with a lame and an unresolvable name
server; ``bon.gouv.example`` signed and tidy; ``autre.gouv.example`` with a
lax SPF and no DMARC). ``outside`` and ``mixte`` resolve (``mixte`` in
part), and name server ``ns-ext`` resolves, to 127.0.12.1: a tripwire
outside scope that listens on every scanned TCP port and on the name-server
port (TCP and UDP) and records anything it receives; ``redirige`` redirects
there by name and by address. The web sites are one real nginx (good HTTPS,
bad plain HTTP with exposed files, non-standard ports, legacy TLS,
certificate faults, a soft 404, plain HTTP on 443/8443), Python's
http.server answering TRACE, and hostile servers from the HTTP tests; the
services are redis-server (open, with ``requirepass``, on 6380), memcached,
PostgreSQL (trust), vsftpd (anonymous and not), OpenSSH (passwords, keys
only), aiosmtpd (without and with STARTTLS), and small Telnet/VNC/POP3 fakes.

``EXPECTED`` is, per registered name, the exact set of ``(check_id, port)``
above ``info`` that a sweep must store (``port`` is None for DNS findings):
nothing missing, nothing more. ``MUST_NOT`` names the tempting false
positives some cases exist for (implied by the exact sets, listed so that a
failure says which trap was fallen into). ``EXPECTED_PROBLEMS`` are the
probes that must fail (hostile hosts).

    with running_e2e_lab(folder, scanned_ports) as lab:
        config.write_text(lab.config_text(f"sqlite:///{folder}/vigie.db"))
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import selectors
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.dns_server import free_port, start_zone_server
from tests.scanner.http_servers import (
    HostileServers,
    big_headers,
    gzip_bomb,
    gzip_member,
    redirect_loop,
    slow_headers,
)
from tests.scanner.service_servers import (
    memcached,
    postgres,
    redis,
    silent_ports,
    smtp_server,
    sshd,
    vsftpd,
)
from tests.servers import require_program, running, wait_for_port

ZONE = "e2e.gouv.example"
GOOD_ZONE = "bon.gouv.example"
HOSTING_ZONE = "hebergeur.example"  # a provider's zone: the dangling alias points into it
NETWORK = "127.0.11.0/24"

DNS = "127.0.11.53"  # the resolver vigie is given, and ns1 of every lab zone
LAME_DNS = "127.0.11.54"  # ns3 of the lab zone: serves only the hosting zone (lame)
GOOD_WEB = "127.0.11.10"  # apex, www and static: HTTPS done right
BAD_WEB = "127.0.11.11"  # portail: plain HTTP, no headers, files it should not serve
ALT_WEB = "127.0.11.12"  # app: HTTP on 8080, HTTPS on 8443 only
LEGACY_WEB = "127.0.11.13"  # vieux: HTTPS on 443 only, TLS 1.0, self-signed
SOFT404_WEB = "127.0.11.14"  # actualites: 200 for every path
REDIRECT_WEB = "127.0.11.15"  # redirige: sends everyone to the out-of-scope name
EXPIRED_WEB = "127.0.11.16"  # expire: HTTPS done right, but the certificate has expired
MISMATCH_WEB = "127.0.11.17"  # autrenom: a certificate for another name
CHAIN_WEB = "127.0.11.18"  # chaine: sends its leaf without the intermediate
ODD_PORT_WEB = "127.0.11.19"  # intranet: HTTPS on 4443 only, a port nothing hints at
TRACE_WEB = "127.0.11.31"  # vieil-outil: Python's http.server, answers TRACE
OPEN_CACHE = "127.0.11.20"  # redis without auth, memcached
AUTH_REDIS = "127.0.11.21"  # redis with requirepass
FTP = "127.0.11.22"  # vsftpd, anonymous login
SSH = "127.0.11.23"  # sshd, password authentication
MAIL = "127.0.11.24"  # aiosmtpd on 25 and 587, no STARTTLS
SUBMISSION = "127.0.11.25"  # aiosmtpd on 587 with STARTTLS (a certificate the lab CA signed)
SSH_KEYS_ONLY = "127.0.11.26"  # sshd, public keys only
FTP_CLOSED = "127.0.11.27"  # vsftpd, anonymous refused
POSTGRES = "127.0.11.28"  # PostgreSQL letting anyone in (trust)
ODD_REDIS = "127.0.11.29"  # redis without auth on 6380, a port nothing hints at
DEAD = "127.0.11.30"  # nothing listens
SILENT = "127.0.11.40"  # muet: accepts on web, Redis and SSH ports, never says a word
LOOP_WEB = "127.0.11.41"  # boucle: redirects in a loop
SLOW_WEB = "127.0.11.42"  # lent: a status line, then one header byte a second
BOMB_WEB = "127.0.11.43"  # bombe: a gzip body that inflates to 2 GiB
HUGE_WEB = "127.0.11.44"  # entetes: 60 kB of header lines
SILENT_PORTS = (80, 8080, 6379, 22)
SILENT_WEB = "127.0.11.45"  # sourd: port 80 accepts and never answers
PLAIN_443 = "127.0.11.46"  # clair: plain HTTP on port 443 (listen 443 without ssl)
LEGACY_ADMIN = "127.0.11.47"  # admin: Telnet, VNC and POP3 without STLS (small fakes)
TRIPWIRE = "127.0.12.1"  # outside scope

# What vigie is told to scan (it always adds its required database/admin/mail/web ports).
LAB_PORTS = (21, 22, 25, 80, 443, 587, 4443, 5432, 6379, 6380, 8080, 8443, 11211)

MODERN_TLS = (
    "    ssl_protocols TLSv1.2 TLSv1.3;\n"
    "    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305;\n"
)
# TLS 1.0 to 1.2, suites without forward secrecy, anonymous and NULL ones: a 2012
# configuration. (Debian's OpenSSL 3 has no 3DES, RC4 or EXPORT suites left to offer.)
LEGACY_TLS = (
    "    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;\n"
    '    ssl_ciphers "ECDHE-RSA-AES128-SHA:AES128-SHA:AECDH-AES128-SHA:NULL-SHA:@SECLEVEL=0";\n'
)
GOOD_HEADERS = (
    '    add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;\n'
    "    add_header Content-Security-Policy \"default-src 'self'; frame-ancestors 'none'\" always;\n"
    '    add_header X-Frame-Options "DENY" always;\n'
    '    add_header X-Content-Type-Options "nosniff" always;\n'
    '    add_header Referrer-Policy "strict-origin-when-cross-origin" always;\n'
)
INDEX_HTML = (
    "<!DOCTYPE html><html><head><title>Agence</title></head><body>Bienvenue</body></html>\n"
)
# RFC 9116 §2.5.5: an expiry less than a year ahead (a later one is http.security_txt.invalid).
SECURITY_TXT = (
    "Contact: mailto:cert@e2e.gouv.example\n"
    f"Expires: {(dt.datetime.now(dt.UTC) + dt.timedelta(days=180)):%Y-%m-%dT%H:%M:%SZ}\n"
    "Preferred-Languages: fr\n"
)
EXPIRED_SECURITY_TXT = "Contact: mailto:cert@e2e.gouv.example\nExpires: 2021-06-30T00:00:00Z\n"
EXPOSED_FILES = {
    ".git/HEAD": "ref: refs/heads/main\n",
    ".git/config": (
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        '[remote "origin"]\n\turl = git@forge.e2e.gouv.example:portail/site.git\n'
    ),
    ".env": "APP_ENV=production\nDB_HOST=10.0.0.5\nDB_PASSWORD=Sup3rSecret!\nAPP_KEY=base64:abc\n",
    "backup.sql": (
        "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n"
        "CREATE TABLE `agents` (`id` int, `courriel` varchar(200));\n"
        "INSERT INTO `agents` VALUES (1,'directeur@e2e.gouv.example');\n"
    ),
    "info.php": (
        "<!DOCTYPE html><html><head><title>PHP 8.1.2 - phpinfo()</title></head><body>"
        '<table><tr class="h"><td><h1 class="p">PHP Version 8.1.2</h1></td></tr></table>'
        '<table><tr><td class="e">System </td><td class="v">Linux portail 5.15</td></tr>'
        '<tr><td class="e">Server API </td><td class="v">FPM/FastCGI</td></tr></table>'
        "</body></html>\n"
    ),
    "phpmyadmin/index.html": (
        '<html><head><title>phpMyAdmin</title></head><body><form method="post">'
        '<input name="pma_username"><input name="pma_password" type="password">'
        "</form></body></html>\n"
    ),
    "uploads/rapport-2025.pdf": "%PDF-1.4 not really\n",
    "uploads/budget.xlsx": "not really a spreadsheet\n",
}


def name(label: str) -> str:
    return f"{label}.{ZONE}" if label else ZONE


ZONE_TEXT = f"""$ORIGIN {ZONE}.
$TTL 300
@          IN SOA ns1 hostmaster 1 3600 600 86400 300
@          IN NS  ns1
@          IN NS  ns3
@          IN NS  ns9.{HOSTING_ZONE}.
@          IN NS  ns-ext.{HOSTING_ZONE}.
ns1        IN A   {DNS}
ns3        IN A   {LAME_DNS}
@          IN A   {GOOD_WEB}
@          IN MX  10 mail
@          IN TXT "v=spf1 +all"
_dmarc     IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@{ZONE}"
www        IN A   {GOOD_WEB}
static     IN CNAME www
portail    IN A   {BAD_WEB}
app        IN A   {ALT_WEB}
vieux      IN A   {LEGACY_WEB}
actualites IN A   {SOFT404_WEB}
redirige   IN A   {REDIRECT_WEB}
cache      IN A   {OPEN_CACHE}
session    IN A   {AUTH_REDIS}
ftp        IN A   {FTP}
ssh        IN A   {SSH}
mail       IN A   {MAIL}
smtp       IN A   {SUBMISSION}
sshcle     IN A   {SSH_KEYS_ONLY}
ftpferme   IN A   {FTP_CLOSED}
base       IN A   {POSTGRES}
file       IN A   {ODD_REDIS}
expire     IN A   {EXPIRED_WEB}
autrenom   IN A   {MISMATCH_WEB}
chaine     IN A   {CHAIN_WEB}
intranet   IN A   {ODD_PORT_WEB}
vieil-outil IN A  {TRACE_WEB}
mixte      IN A   {GOOD_WEB}
mixte      IN A   {TRIPWIRE}
courrier   IN MX  10 mail
ancien     IN CNAME disparu.{HOSTING_ZONE}.
mort       IN A   {DEAD}
muet       IN A   {SILENT}
boucle     IN A   {LOOP_WEB}
lent       IN A   {SLOW_WEB}
bombe      IN A   {BOMB_WEB}
entetes    IN A   {HUGE_WEB}
tourne     IN CNAME tourne2
sourd      IN A   {SILENT_WEB}
admin      IN A   {LEGACY_ADMIN}
clair      IN A   {PLAIN_443}
tourne2    IN CNAME tourne
outside    IN A   {TRIPWIRE}
"""

GOOD_ZONE_TEXT = f"""$ORIGIN {GOOD_ZONE}.
$TTL 300
@       IN SOA ns1.{ZONE}. hostmaster 1 3600 600 86400 300
@       IN NS  ns1.{ZONE}.
@       IN MX  10 mail.{ZONE}.
@       IN TXT "v=spf1 mx -all"
_dmarc  IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{GOOD_ZONE}"
@       IN CAA 0 issue "letsencrypt.org"
"""

OTHER_ZONE = "autre.gouv.example"  # a mail domain with a lax SPF and no DMARC
OTHER_ZONE_TEXT = f"""$ORIGIN {OTHER_ZONE}.
$TTL 300
@       IN SOA ns1.{ZONE}. hostmaster 1 3600 600 86400 300
@       IN NS  ns1.{ZONE}.
@       IN MX  10 mail.{ZONE}.
@       IN TXT "v=spf1 include:_spf.{HOSTING_ZONE} ?all"
@       IN CAA 0 issue "letsencrypt.org"
"""

HOSTING_ZONE_TEXT = f"""$ORIGIN {HOSTING_ZONE}.
$TTL 300
@       IN SOA ns1 hostmaster 1 3600 600 86400 300
@       IN NS  ns1
ns1     IN A   {DNS}
www     IN A   {GOOD_WEB}
_spf    IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
ns-ext  IN A   {TRIPWIRE}
"""

# --- what a sweep must store (above info) -----------------------------------------

Expected = frozenset[tuple[str, int | None]]

# security.txt: every registered name is asked for its file (the registry, not the
# Public Suffix List, says what a main host is: the same for lab and real names).


def _set(*items: tuple[str, int | None]) -> Expected:
    return frozenset(items)


GOOD_SITE: Expected = _set()
# A plain-HTTP site on port 80 that sends no security header and no security.txt.
HEADERLESS_HTTP_SITE: Expected = _set(
    ("tls.missing", 80),
    ("http.no_https_redirect", 80),
    ("http.csp.missing", 80),
    ("http.frame_options.missing", 80),
    ("http.content_type_options.missing", 80),
    ("http.security_txt.missing", 80),
)
EXPECTED: dict[str, Expected] = {
    ZONE: _set(
        ("dns.spf.permissive", None),
        ("dns.dmarc.policy_none", None),
        ("dns.dnssec.missing", None),
        ("dns.axfr_open", None),
        ("dns.lame_delegation", None),
        ("dns.ns_unresolvable", None),
    ),
    name("www"): GOOD_SITE,
    name("static"): GOOD_SITE,
    name("portail"): _set(
        ("tls.missing", 80),
        ("http.no_https_redirect", 80),
        ("http.csp.missing", 80),
        ("http.frame_options.missing", 80),
        ("http.content_type_options.missing", 80),
        ("http.version_disclosed", 80),
        ("http.cookie.no_httponly", 80),
        ("http.cookie.no_samesite", 80),
        ("http.exposed.vcs", 80),
        ("http.exposed.env_file", 80),
        ("http.exposed.server_status", 80),
        ("http.exposed.backup", 80),
        ("http.exposed.phpinfo", 80),
        ("http.exposed.admin_panel", 80),
        ("http.directory_listing", 80),
        ("http.security_txt.missing", 80),
    ),
    name("app"): _set(
        ("http.hsts.short_max_age", 8443),
        ("http.csp.unsafe", 8443),
        ("http.frame_options.missing", 8443),
        ("http.cookie.insecure", 8443),
        ("http.cookie.no_httponly", 8443),
        ("http.cookie.no_samesite", 8443),
        ("http.cors.permissive", 8443),
        ("http.security_txt.expired", 8443),
    ),
    name("vieux"): _set(
        ("tls.protocol.tls1_0", 443),
        ("tls.protocol.tls1_1", 443),
        ("tls.cipher.weak", 443),
        ("tls.cipher.no_forward_secrecy", 443),
        ("tls.cert.self_signed", 443),
        ("http.hsts.missing", 443),
        ("http.csp.missing", 443),
        ("http.frame_options.missing", 443),
        ("http.content_type_options.missing", 443),
        ("http.version_disclosed", 443),
        ("http.security_txt.missing", 443),
    ),
    name("actualites"): _set(
        ("tls.missing", 80),
        ("http.no_https_redirect", 80),
        ("http.security_txt.missing", 80),  # its soft 404 is an HTML page
    ),
    name("redirige"): _set(
        ("tls.missing", 80),
        ("http.no_https_redirect", 80),
    ),
    name("cache"): _set(
        ("service.database.exposed", 6379),
        ("service.database.no_auth", 6379),
        ("service.version_disclosed", 6379),
        ("service.database.exposed", 11211),
        ("service.database.no_auth", 11211),
        ("service.version_disclosed", 11211),
    ),
    name("session"): _set(("service.database.exposed", 6379)),
    name("ftp"): _set(
        ("service.ftp.exposed", 21),
        ("service.ftp.anonymous", 21),
        ("service.version_disclosed", 21),
    ),
    name("ssh"): _set(
        ("service.ssh.password_auth", 22),
        ("service.version_disclosed", 22),
    ),
    name("mail"): _set(
        ("service.cleartext_mail", 25),
        ("service.version_disclosed", 25),
        ("service.cleartext_mail", 587),
        ("service.version_disclosed", 587),
    ),
    name("expire"): _set(("tls.cert.expired", 443)),
    name("autrenom"): _set(("tls.cert.hostname_mismatch", 443)),
    name("chaine"): _set(("tls.cert.incomplete_chain", 443)),
    name("intranet"): _set(
        ("http.hsts.missing", 4443),
        ("http.csp.missing", 4443),
        ("http.frame_options.missing", 4443),
        ("http.content_type_options.missing", 4443),
        ("http.security_txt.missing", 4443),
    ),
    name("vieil-outil"): _set(
        ("tls.missing", 80),
        ("http.no_https_redirect", 80),
        ("http.csp.missing", 80),
        ("http.frame_options.missing", 80),
        ("http.content_type_options.missing", 80),
        ("http.version_disclosed", 80),
        ("http.trace_enabled", 80),
        ("http.security_txt.missing", 80),
    ),
    name("mixte"): GOOD_SITE,  # and its other address is out of scope
    name("smtp"): _set(("service.version_disclosed", 587)),
    name("sshcle"): _set(("service.version_disclosed", 22)),
    name("ftpferme"): _set(
        ("service.ftp.exposed", 21),
        ("service.version_disclosed", 21),
    ),
    name("base"): _set(
        ("service.database.exposed", 5432),
        ("service.database.no_auth", 5432),
    ),
    name("file"): _set(
        ("service.database.exposed", 6380),
        ("service.database.no_auth", 6380),
        ("service.version_disclosed", 6380),
    ),
    name("courrier"): _set(
        ("dns.spf.missing", None),
        # Its organisational domain (Public Suffix List) is gouv.example, which publishes
        # no DMARC record: the zone apex's p=none does not count (RFC 7489 §6.6.3).
        ("dns.dmarc.missing", None),
    ),
    name("ancien"): _set(("dns.dangling_cname", None)),
    name("mort"): _set(),
    # The hostile ones: they must cost their deadline at most, and be judged on what
    # they did answer.
    name("muet"): _set(),
    name("boucle"): _set(
        ("tls.missing", 80),
        ("http.no_https_redirect", 80),
        ("http.security_txt.missing", 80),
    ),
    name("lent"): _set(("tls.missing", 80)),  # the headers never end: nothing else to judge
    name("bombe"): _set(*HEADERLESS_HTTP_SITE),  # its answers are read, bounded
    name("entetes"): _set(*HEADERLESS_HTTP_SITE),
    name("tourne"): _set(),
    name("sourd"): _set(),  # nothing answered: nothing can be said
    name("admin"): _set(
        ("service.remote_admin.exposed", 23),
        ("service.remote_admin.exposed", 5900),
        ("service.cleartext_mail", 110),
    ),
    name("clair"): _set(  # plain HTTP on 443 and 8443
        ("tls.missing", 443),
        ("http.no_https_redirect", 443),
        ("http.csp.missing", 443),
        ("http.frame_options.missing", 443),
        ("http.content_type_options.missing", 443),
        ("http.security_txt.missing", 443),
        ("http.no_https_redirect", 8443),
        ("http.csp.missing", 8443),
        ("http.frame_options.missing", 8443),
        ("http.content_type_options.missing", 8443),
    ),  # a CNAME loop: a lookup failure, not a dangling alias
    name("outside"): _set(),
    GOOD_ZONE: _set(),
    OTHER_ZONE: _set(
        ("dns.spf.permissive", None),
        ("dns.dmarc.missing", None),
        ("dns.dnssec.missing", None),
    ),
}

# The traps: findings that a careless check would report here.
MUST_NOT: dict[str, tuple[str, ...]] = {
    ZONE: ("http.*", "tls.*", "dns.caa.missing above info"),
    name("www"): ("tls.*", "http.*"),
    name("static"): ("dns.dangling_cname", "tls.cert.hostname_mismatch", "http.*"),
    name("app"): ("tls.missing", "http.no_https_redirect on 8080", "tls.*"),
    name("vieux"): ("http.no_https_redirect (no port 80)", "tls.missing"),
    name("actualites"): ("http.exposed.*", "http.directory_listing", "http.* headers"),
    name("redirige"): ("anything sent to the out-of-scope host it redirects to",),
    name("session"): ("service.database.no_auth", "service.version_disclosed"),
    name("mail"): ("tls.*",),
    name("smtp"): ("service.cleartext_mail", "tls.*"),
    name("sshcle"): ("service.ssh.password_auth",),
    name("ftpferme"): ("service.ftp.anonymous",),
    name("expire"): ("http.*", "tls.cert.untrusted"),
    name("chaine"): ("tls.cert.untrusted",),
    name("mixte"): ("anything sent to its out-of-scope address",),
    GOOD_ZONE: ("dns.*",),
}

# The probes that must fail, and only those: (check_id, port, probe) per name. Hostile
# hosts cost a timeout each; a CNAME loop is a lookup failure.
EXPECTED_PROBLEMS: dict[str, frozenset[tuple[str, int | None, str]]] = {
    name("lent"): frozenset({("scan.timeout", 80, "http:80")}),
    name("muet"): frozenset({("scan.timeout", None, "backoff")}),
    name("sourd"): frozenset(
        {("scan.timeout", 80, "http:80"), ("scan.timeout", 80, "service:http:databases")}
    ),
    name("tourne"): frozenset(
        {
            ("scan.error", None, "resolve"),
            ("scan.error", None, "dns:mx"),
            ("scan.error", None, "dns:cname"),
            ("scan.error", None, "dns:caa"),  # RFC 8659 §3: the name's own CAA lookup loops too
            ("scan.error", None, "mail:mx"),
            ("scan.error", None, f"ipv6:web {name('tourne')}"),
        }
    ),
}

# Expected scan-level (info) outcomes, checked separately.
# (domain, address): the names that resolve to the tripwire, and the zone whose name
# server ns-ext does (a DNS probe finding: it carries no address).
OUT_OF_SCOPE = frozenset({(name("outside"), TRIPWIRE), (name("mixte"), TRIPWIRE), (ZONE, None)})
UNREACHABLE = name("mort")

MAIL_DOMAINS = frozenset({ZONE, GOOD_ZONE, OTHER_ZONE})


# --- certificates ---------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """Certificate and key files; the lab CA is what vigie trusts (``tls.extra_ca_file``)."""

    ca_file: Path
    good: tuple[Path, Path]  # apex, www, static, mixte, app, smtp
    legacy: tuple[Path, Path]  # self-signed RSA: vieux
    expired: tuple[Path, Path]
    mismatch: tuple[Path, Path]  # names intranet-old, served by autrenom
    # Both signed by an intermediate CA: intranet sends it, chaine does not (vigie learns
    # it from intranet, as it learns a public CA's intermediates from other sites).
    intranet: tuple[Path, Path]
    unchained: tuple[Path, Path]


def _self_signed_rsa(common_name: str, folder: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "legacy-cert.pem", folder / "legacy-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _write_leaf(
    leaf: trustme.LeafCert, folder: Path, stem: str, *, chain: bool
) -> tuple[Path, Path]:
    """The leaf (with the rest of its chain when ``chain``) and its key."""
    cert_file, key_file = folder / f"{stem}-cert.pem", folder / f"{stem}-key.pem"
    blobs = leaf.cert_chain_pems if chain else leaf.cert_chain_pems[:1]
    cert_file.write_bytes(b"".join(blob.bytes() for blob in blobs))
    leaf.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def make_certificates(folder: Path) -> Certificates:
    authority = trustme.CA(organization_name="CERT e2e lab")
    ca_file = folder / "lab-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    good_names = ("", "www", "static", "mixte", "app", "smtp")
    good = authority.issue_cert(*(name(label) for label in good_names))
    now = dt.datetime.now(dt.UTC)
    expired = authority.issue_cert(
        name("expire"),
        not_before=now - dt.timedelta(days=400),
        not_after=now - dt.timedelta(days=10),
    )
    intermediate = authority.create_child_ca()
    return Certificates(
        ca_file=ca_file,
        good=_write_leaf(good, folder, "good", chain=True),
        legacy=_self_signed_rsa(name("vieux"), folder),
        expired=_write_leaf(expired, folder, "expired", chain=True),
        mismatch=_write_leaf(
            authority.issue_cert(name("intranet-old")), folder, "mismatch", chain=True
        ),
        intranet=_write_leaf(
            intermediate.issue_cert(name("intranet")), folder, "intranet", chain=True
        ),
        unchained=_write_leaf(
            intermediate.issue_cert(name("chaine")), folder, "unchained", chain=False
        ),
    )


# --- nginx ------------------------------------------------------------------------


def _tls(cert: tuple[Path, Path], profile: str) -> str:
    return f"    ssl_certificate {cert[0]};\n    ssl_certificate_key {cert[1]};\n{profile}"


def _write_site_files(www: Path) -> dict[str, Path]:
    roots = {site: www / site for site in ("good", "bad", "app", "legacy")}
    for root in roots.values():
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    good_txt = roots["good"] / ".well-known" / "security.txt"
    good_txt.parent.mkdir(parents=True, exist_ok=True)
    good_txt.write_text(SECURITY_TXT, encoding="utf-8")
    app_txt = roots["app"] / ".well-known" / "security.txt"
    app_txt.parent.mkdir(parents=True, exist_ok=True)
    app_txt.write_text(EXPIRED_SECURITY_TXT, encoding="utf-8")
    for path, content in EXPOSED_FILES.items():
        target = roots["bad"] / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return roots


def nginx_config(folder: Path, certs: Certificates) -> Path:
    roots = _write_site_files(folder / "www")
    good = f"{name('')} {name('www')} {name('static')}"
    servers = [
        # The good site: port 80 sends to HTTPS, HTTPS has every header and security.txt.
        f"server {{\n    listen {GOOD_WEB}:80;\n    server_name {good};\n"
        "    return 301 https://$host$request_uri;\n}\n",
        f"server {{\n    listen {GOOD_WEB}:443 ssl http2;\n    server_name {good};\n"
        f"{_tls(certs.good, MODERN_TLS)}    root {roots['good']};\n{GOOD_HEADERS}"
        '    add_header Set-Cookie "session=8f2a; Path=/; Secure; HttpOnly; SameSite=Lax" always;\n'
        "    location = /.well-known/security.txt { default_type text/plain; }\n}\n",
        # portail: plain HTTP only, version shown, no headers, files it should not serve.
        f"server {{\n    listen {BAD_WEB}:80;\n    server_name {name('portail')};\n"
        f"    server_tokens on;\n    root {roots['bad']};\n"
        '    add_header Set-Cookie "PHPSESSID=9d2k4c7q; Path=/";\n'
        "    location /uploads/ { autoindex on; }\n"
        "    location = /nginx_status { stub_status; }\n}\n",
        # app: HTTP on 8080 sends to HTTPS on 8443, whose headers are weak.
        f"server {{\n    listen {ALT_WEB}:8080;\n    server_name {name('app')};\n"
        "    return 301 https://$host:8443$request_uri;\n}\n",
        f"server {{\n    listen {ALT_WEB}:8443 ssl;\n    server_name {name('app')};\n"
        f"{_tls(certs.good, MODERN_TLS)}    root {roots['app']};\n"
        '    add_header Strict-Transport-Security "max-age=86400" always;\n'
        "    add_header Content-Security-Policy \"default-src 'self' 'unsafe-inline'\" always;\n"
        '    add_header X-Content-Type-Options "nosniff" always;\n'
        '    add_header Referrer-Policy "no-referrer" always;\n'
        '    add_header Set-Cookie "sessionid=c81e728d; Path=/" always;\n'
        "    add_header Access-Control-Allow-Origin $http_origin always;\n"
        '    add_header Access-Control-Allow-Credentials "true" always;\n'
        "    location = /.well-known/security.txt { default_type text/plain; }\n}\n",
        # vieux: HTTPS only (no port 80), TLS 1.0, self-signed, nginx version shown.
        f"server {{\n    listen {LEGACY_WEB}:443 ssl;\n    server_name {name('vieux')};\n"
        f"    server_tokens on;\n{_tls(certs.legacy, LEGACY_TLS)}    root {roots['legacy']};\n}}\n",
        # actualites: every path answers 200 with the same page (soft 404), good headers.
        f"server {{\n    listen {SOFT404_WEB}:80;\n    server_name {name('actualites')};\n"
        f"{GOOD_HEADERS}    default_type text/html;\n"
        '    location / { return 200 "<html><body><h1>Actualites</h1>'
        '<p>La page $uri est introuvable.</p></body></html>\\n"; }\n}\n',
        # expire, autrenom, chaine: HTTPS only, good headers, one certificate fault each.
        *(
            f"server {{\n    listen {address}:443 ssl;\n    server_name {name(label)};\n"
            f"{_tls(cert, MODERN_TLS)}    root {roots['good']};\n{GOOD_HEADERS}"
            "    location = /.well-known/security.txt { default_type text/plain; }\n}\n"
            for address, label, cert in (
                (EXPIRED_WEB, "expire", certs.expired),
                (MISMATCH_WEB, "autrenom", certs.mismatch),
                (CHAIN_WEB, "chaine", certs.unchained),
            )
        ),
        # intranet: HTTPS on 4443, no header at all.
        f"server {{\n    listen {ODD_PORT_WEB}:4443 ssl;\n    server_name {name('intranet')};\n"
        f"{_tls(certs.intranet, MODERN_TLS)}    root {roots['app']};\n"
        "    location = /.well-known/security.txt { return 404; }\n}\n",
        # clair: plain HTTP where HTTPS belongs.
        f"server {{\n    listen {PLAIN_443}:443;\n    listen {PLAIN_443}:8443;\n"
        f"    server_name {name('clair')};\n"
        f"    root {roots['legacy']};\n}}\n",
        # redirige: sends everything to a name outside scope.
        f"server {{\n    listen {REDIRECT_WEB}:80;\n    server_name {name('redirige')};\n"
        "    location = /.well-known/security.txt {\n"
        f"        return 302 http://{TRIPWIRE}/.well-known/security.txt;\n    }}\n"
        f"    location / {{ return 302 http://{name('outside')}/; }}\n}}\n",
    ]
    (folder / "tmp").mkdir(exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(
        "user root;\ndaemon off;\nworker_processes 1;\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 1024; }\n"
        "http {\n    access_log off;\n    server_tokens off;\n"
        "    default_type application/octet-stream;\n"
        "    types { text/html html; text/plain txt; application/pdf pdf; }\n"
        f"    client_body_temp_path {folder}/tmp;\n    proxy_temp_path {folder}/tmp;\n"
        f"    fastcgi_temp_path {folder}/tmp;\n    uwsgi_temp_path {folder}/tmp;\n"
        f"    scgi_temp_path {folder}/tmp;\n" + "".join(servers) + "}\n",
        encoding="utf-8",
    )
    return config


WEB_LISTENERS = (
    (GOOD_WEB, 80),
    (GOOD_WEB, 443),
    (BAD_WEB, 80),
    (ALT_WEB, 8080),
    (ALT_WEB, 8443),
    (LEGACY_WEB, 443),
    (SOFT404_WEB, 80),
    (REDIRECT_WEB, 80),
    (EXPIRED_WEB, 443),
    (MISMATCH_WEB, 443),
    (CHAIN_WEB, 443),
    (ODD_PORT_WEB, 4443),
    (PLAIN_443, 443),
    (PLAIN_443, 8443),
)


@contextlib.contextmanager
def run_nginx(folder: Path, certs: Certificates) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    config = nginx_config(folder, certs)
    argv = [require_program("nginx"), "-c", str(config), "-e", str(folder / "error.log")]
    with running(argv, listen=WEB_LISTENERS[0], log=folder / "nginx.out"):
        for listener in WEB_LISTENERS:
            wait_for_port(*listener)
        yield


# --- small servers of our own --------------------------------------------------------


class _OldToolHandler(http.server.BaseHTTPRequestHandler):
    """An old internal tool: Python's http.server, no header, TRACE echoed back."""

    def do_GET(self) -> None:
        found = self.path == "/"
        body = INDEX_HTML.encode() if found else b"<html><body>Not found</body></html>\n"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_TRACE(self) -> None:
        echo = f"{self.requestline}\r\n{self.headers}".encode("latin-1", errors="replace")
        self.send_response(200)
        self.send_header("Content-Type", "message/http")
        self.send_header("Content-Length", str(len(echo)))
        self.end_headers()
        self.wfile.write(echo)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests print only what fails


@contextlib.contextmanager
def old_tool(address: str, port: int) -> Iterator[None]:
    server = http.server.ThreadingHTTPServer((address, port), _OldToolHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def submission_with_starttls(address: str, certs: Certificates) -> Iterator[None]:
    """aiosmtpd on 587 offering STARTTLS with a certificate the lab CA signed."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certs.good)
    controller = Controller(
        Sink(),
        hostname=address,
        port=587,
        server_hostname=name("smtp"),
        ident="Postfix 3.7.11",
        tls_context=context,
        require_starttls=True,
    )
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@contextlib.contextmanager
def redis_on(folder: Path, address: str, port: int) -> Iterator[None]:
    """redis-server without authentication on ``port``."""
    argv = [
        require_program("redis-server"),
        "--bind", address, "--port", str(port), "--protected-mode", "no",
        "--save", "", "--appendonly", "no", "--dir", str(folder),
    ]  # fmt: skip
    with running(argv, listen=(address, port), log=folder / f"redis-{address}-{port}.log"):
        yield


async def telnet_login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Telnet daemon: option negotiation (IAC DO TERMINAL-TYPE, IAC WILL ECHO), a prompt."""
    writer.write(b"\xff\xfd\x18\xff\xfb\x01\r\nlogin: ")
    await writer.drain()
    await reader.read(1024)


async def vnc_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFB 3.8 offering VNC authentication only."""
    writer.write(b"RFB 003.008\n")
    await writer.drain()
    await reader.readexactly(12)
    writer.write(b"\x01\x02")
    await writer.drain()
    await reader.read(1024)


async def pop3_without_stls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """POP3 whose capabilities have no STLS: passwords travel in clear text."""
    writer.write(b"+OK POP3 server ready\r\n")
    await writer.drain()
    while line := await reader.readline():
        command = line.strip().upper()
        if command == b"CAPA":
            writer.write(b"+OK Capability list follows\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n")
        elif command == b"QUIT":
            writer.write(b"+OK bye\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()


@contextlib.contextmanager
def hostile_web() -> Iterator[HostileServers]:
    """The misbehaving web servers (each on port 80 of its own address), and the small
    Telnet, VNC and POP3 fakes."""
    servers = HostileServers()
    try:
        servers.serve(LOOP_WEB, 80, redirect_loop)
        servers.serve(SLOW_WEB, 80, slow_headers)
        servers.serve(BOMB_WEB, 80, gzip_bomb(gzip_member(64 << 20), 32))  # 2 GiB inflated
        servers.serve(HUGE_WEB, 80, big_headers(60_000))
        servers.serve(LEGACY_ADMIN, 23, telnet_login)
        servers.serve(LEGACY_ADMIN, 5900, vnc_server)
        servers.serve(LEGACY_ADMIN, 110, pop3_without_stls)
        yield servers
    finally:
        servers.close()


# --- the tripwire ---------------------------------------------------------------


@dataclass
class Tripwire:
    """Listens outside scope on every scanned TCP port and on the name-server port (TCP and
    UDP); records whoever connects or sends a datagram."""

    address: str
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...] = ()
    connections: list[tuple[str, int]] = field(default_factory=list)

    def _listeners(self) -> list[socket.socket]:
        listeners = []
        for kind, ports in (
            (socket.SOCK_STREAM, self.tcp_ports),
            (socket.SOCK_DGRAM, self.udp_ports),
        ):
            for port in ports:
                sock = socket.socket(socket.AF_INET, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self.address, port))
                if kind == socket.SOCK_STREAM:
                    sock.listen(16)
                sock.setblocking(False)
                listeners.append(sock)
        return listeners

    @contextlib.contextmanager
    def listening(self) -> Iterator[Tripwire]:
        listeners = self._listeners()
        stop = threading.Event()
        thread = threading.Thread(target=self._watch, args=(listeners, stop), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=2)
            for sock in listeners:
                sock.close()

    def _watch(self, listeners: list[socket.socket], stop: threading.Event) -> None:
        selector = selectors.DefaultSelector()
        for sock in listeners:
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.05):
                listener = key.fileobj
                assert isinstance(listener, socket.socket)
                with contextlib.suppress(OSError):
                    self.connections.append(self._receive(listener))
        selector.close()

    @staticmethod
    def _receive(listener: socket.socket) -> tuple[str, int]:
        port = int(listener.getsockname()[1])
        if listener.type == socket.SOCK_DGRAM:
            _, peer = listener.recvfrom(4096)
            return peer[0], port
        connection, peer = listener.accept()
        connection.close()
        return peer[0], port


# --- the whole lab ----------------------------------------------------------------


@dataclass(frozen=True)
class E2eLab:
    resolver: str  # "ip:port" of the Knot server
    nameserver_port: int  # the port every lab name server listens on
    ca_file: Path
    tripwire: Tripwire
    registry: Path
    bad_site_root: Path  # portail's document root: a test may take a file away

    def config_text(
        self,
        database_url: str,
        *,
        max_rate_per_s: float | None = None,
        resolve_after_scans: int | None = None,
    ) -> str:
        lines = [
            "[database]",
            f'url = "{database_url}"',
            "[scope]",
            f'allow = ["{NETWORK}"]',
            "[dns]",
            f'resolvers = ["{self.resolver}"]',
            f"nameserver_port = {self.nameserver_port}",
            "timeout_s = 2",
            "lifetime_s = 4",
            "[tls]",
            f'extra_ca_file = "{self.ca_file}"',
            "[http]",  # the slow-headers host costs this, not 30 s
            "connect_timeout_s = 3",
            "read_timeout_s = 3",
            "total_timeout_s = 6",
            "[smtp]",  # immediate alerts go nowhere: nothing listens there
            f'host = "{DEAD}"',
            "port = 2525",
            "timeout_s = 2",
            "[scan]",
            f"ports = [{', '.join(str(p) for p in LAB_PORTS)}]",
            "host_deadline_s = 60",
            "probe_timeout_s = 3",
            "concurrency = 32",
        ]
        if max_rate_per_s is not None:
            lines.append(f"max_rate_per_s = {max_rate_per_s:g}")
        if resolve_after_scans is not None:
            lines += ["[findings]", f"resolve_after_scans = {resolve_after_scans}"]
        return "\n".join(lines) + "\n"


def write_registry(folder: Path) -> Path:
    path = folder / "e2e-registry.csv"
    rows = ["agency,agency_code,agency_email,domain,mail_domain"]
    for domain in EXPECTED:
        mail = "yes" if domain in MAIL_DOMAINS else "no"
        rows.append(f"Agence de Test E2E,E2E,rssi@{ZONE},{domain},{mail}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def running_e2e_lab(folder: Path, scanned_ports: tuple[int, ...]) -> Iterator[E2eLab]:
    """Every server of the lab, and a tripwire on ``scanned_ports`` outside scope."""
    certs = make_certificates(folder)
    port = free_port([DNS, LAME_DNS])
    zones = {
        ZONE: ZONE_TEXT,
        GOOD_ZONE: GOOD_ZONE_TEXT,
        OTHER_ZONE: OTHER_ZONE_TEXT,
        HOSTING_ZONE: HOSTING_ZONE_TEXT,
    }
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            start_zone_server(
                folder, DNS, port, zones, axfr_allowed={ZONE}, signed={GOOD_ZONE}, with_parents=True
            )
        )
        stack.enter_context(
            start_zone_server(folder, LAME_DNS, port, {HOSTING_ZONE: HOSTING_ZONE_TEXT})
        )
        stack.enter_context(run_nginx(folder / "nginx", certs))
        stack.enter_context(redis(folder, OPEN_CACHE))
        stack.enter_context(redis(folder, AUTH_REDIS, password="correct-horse-battery"))
        stack.enter_context(memcached(folder, OPEN_CACHE))
        stack.enter_context(vsftpd(folder, FTP, anonymous=True))
        stack.enter_context(sshd(folder, SSH, password_auth=True))
        stack.enter_context(smtp_server(MAIL, 25, folder, starttls=False))
        stack.enter_context(smtp_server(MAIL, 587, folder, starttls=False))
        stack.enter_context(submission_with_starttls(SUBMISSION, certs))
        stack.enter_context(sshd(folder, SSH_KEYS_ONLY, password_auth=False))
        stack.enter_context(vsftpd(folder, FTP_CLOSED, anonymous=False))
        stack.enter_context(postgres(POSTGRES, "trust"))
        stack.enter_context(redis_on(folder, ODD_REDIS, 6380))
        stack.enter_context(old_tool(TRACE_WEB, 80))
        stack.enter_context(silent_ports(SILENT, SILENT_PORTS))
        stack.enter_context(silent_ports(SILENT_WEB, (80,)))
        stack.enter_context(hostile_web())
        wire = stack.enter_context(Tripwire(TRIPWIRE, (*scanned_ports, port), (port,)).listening())
        yield E2eLab(
            resolver=server.resolver,
            nameserver_port=port,
            ca_file=certs.ca_file,
            tripwire=wire,
            registry=write_registry(folder),
            bad_site_root=folder / "nginx" / "www" / "bad",
        )
