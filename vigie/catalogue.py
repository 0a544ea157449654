"""The check catalogue: every check ID of CHECKS.md with its default severity
and its English title and remediation (the gettext msgids; French lives in
``vigie/locale/fr/LC_MESSAGES/vigie.po``).

Check IDs are a public interface: never rename one; a retired check keeps its
ID reserved here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vigie.model import Family, Severity, family_of


@dataclass(frozen=True)
class CheckSpec:
    check_id: str
    severity: Severity
    title: str
    remediation: str

    @property
    def family(self) -> Family:
        return family_of(self.check_id)


_SPECS: tuple[CheckSpec, ...] = (
    CheckSpec(
        "service.open_port",
        Severity.INFO,
        'any open TCP port (the inventory; one finding per port)',
        "",
    ),
    CheckSpec(
        "service.database.exposed",
        Severity.HIGH,
        'MySQL/MariaDB, PostgreSQL, MSSQL, Oracle, MongoDB, Redis, Elasticsearch/OpenSearch, CouchDB, memcached, Cassandra reachable from the scanner',
        "",
    ),
    CheckSpec(
        "service.database.no_auth",
        Severity.CRITICAL,
        'the database answers a real query without credentials (Redis `PING`/`INFO`, MongoDB `listDatabases`, Elasticsearch `GET /`, memcached `stats`)',
        "",
    ),
    CheckSpec(
        "service.remote_admin.exposed",
        Severity.HIGH,
        'Telnet, RDP, VNC, SMB, WinRM, X11 reachable',
        "",
    ),
    CheckSpec(
        "service.ssh.exposed",
        Severity.INFO,
        'SSH reachable (inventory; the banner is evidence)',
        "",
    ),
    CheckSpec(
        "service.ssh.password_auth",
        Severity.MEDIUM,
        'SSH offers `password` or `keyboard-interactive` authentication',
        "",
    ),
    CheckSpec(
        "service.ftp.exposed",
        Severity.MEDIUM,
        'FTP reachable (cleartext credentials)',
        "",
    ),
    CheckSpec(
        "service.ftp.anonymous",
        Severity.HIGH,
        'FTP accepts `anonymous` login',
        "",
    ),
    CheckSpec(
        "service.cleartext_mail",
        Severity.LOW,
        'POP3/IMAP/SMTP submission reachable without offering STARTTLS',
        "",
    ),
    CheckSpec(
        "service.version_disclosed",
        Severity.LOW,
        'a banner discloses an exact product version',
        "",
    ),
    CheckSpec(
        "tls.missing",
        Severity.HIGH,
        'a web application answers on HTTP but offers no HTTPS',
        "",
    ),
    CheckSpec(
        "tls.protocol.sslv2",
        Severity.CRITICAL,
        'SSL 2.0 accepted',
        "",
    ),
    CheckSpec(
        "tls.protocol.sslv3",
        Severity.HIGH,
        'SSL 3.0 accepted',
        "",
    ),
    CheckSpec(
        "tls.protocol.tls1_0",
        Severity.MEDIUM,
        'TLS 1.0 accepted',
        "",
    ),
    CheckSpec(
        "tls.protocol.tls1_1",
        Severity.MEDIUM,
        'TLS 1.1 accepted',
        "",
    ),
    CheckSpec(
        "tls.protocol.no_tls1_3",
        Severity.INFO,
        'TLS 1.3 not offered',
        "",
    ),
    CheckSpec(
        "tls.cipher.weak",
        Severity.HIGH,
        'a NULL, anonymous, EXPORT, RC4, DES or 3DES suite is accepted',
        "",
    ),
    CheckSpec(
        "tls.cipher.no_forward_secrecy",
        Severity.MEDIUM,
        'a suite without (EC)DHE key exchange is accepted',
        "",
    ),
    CheckSpec(
        "tls.dh.weak",
        Severity.MEDIUM,
        'Diffie-Hellman group smaller than 2048 bits',
        "",
    ),
    CheckSpec(
        "tls.cert.expired",
        Severity.HIGH,
        'the leaf certificate is past notAfter',
        "",
    ),
    CheckSpec(
        "tls.cert.not_yet_valid",
        Severity.HIGH,
        'the leaf certificate is before notBefore',
        "",
    ),
    CheckSpec(
        "tls.cert.expiring_soon",
        Severity.MEDIUM,
        'the leaf expires within the configured window (default 30 days)',
        "",
    ),
    CheckSpec(
        "tls.cert.self_signed",
        Severity.HIGH,
        'the leaf is self-signed',
        "",
    ),
    CheckSpec(
        "tls.cert.untrusted",
        Severity.HIGH,
        'the chain does not lead to a trusted root (other than self-signed)',
        "",
    ),
    CheckSpec(
        "tls.cert.hostname_mismatch",
        Severity.HIGH,
        'the certificate does not cover the scanned host name',
        "",
    ),
    CheckSpec(
        "tls.cert.incomplete_chain",
        Severity.MEDIUM,
        'intermediates are missing from what the server sends',
        "",
    ),
    CheckSpec(
        "tls.cert.weak_key",
        Severity.HIGH,
        'RSA/DSA key under 2048 bits, EC key under 256 bits',
        "",
    ),
    CheckSpec(
        "tls.cert.weak_signature",
        Severity.HIGH,
        'signed with MD5 or SHA-1',
        "",
    ),
    CheckSpec(
        "tls.vuln.heartbleed",
        Severity.CRITICAL,
        'vulnerable to Heartbleed',
        "",
    ),
    CheckSpec(
        "tls.vuln.robot",
        Severity.HIGH,
        'vulnerable to ROBOT',
        "",
    ),
    CheckSpec(
        "tls.vuln.ccs_injection",
        Severity.HIGH,
        'vulnerable to OpenSSL CCS injection',
        "",
    ),
    CheckSpec(
        "tls.renegotiation.insecure",
        Severity.MEDIUM,
        'client-initiated or insecure renegotiation accepted',
        "",
    ),
    CheckSpec(
        "tls.compression",
        Severity.MEDIUM,
        'TLS compression enabled (CRIME)',
        "",
    ),
    CheckSpec(
        "http.no_https_redirect",
        Severity.MEDIUM,
        '`http://` does not redirect to `https://` on the same host',
        "",
    ),
    CheckSpec(
        "http.hsts.missing",
        Severity.MEDIUM,
        'HTTPS response without `Strict-Transport-Security`',
        "",
    ),
    CheckSpec(
        "http.hsts.short_max_age",
        Severity.LOW,
        'HSTS `max-age` under 15552000 (180 days)',
        "",
    ),
    CheckSpec(
        "http.csp.missing",
        Severity.LOW,
        'no `Content-Security-Policy`',
        "",
    ),
    CheckSpec(
        "http.csp.unsafe",
        Severity.LOW,
        'CSP `script-src`/`default-src` allows `unsafe-inline`, `unsafe-eval` or `*`',
        "",
    ),
    CheckSpec(
        "http.frame_options.missing",
        Severity.LOW,
        'neither `X-Frame-Options` nor CSP `frame-ancestors`',
        "",
    ),
    CheckSpec(
        "http.content_type_options.missing",
        Severity.LOW,
        'no `X-Content-Type-Options: nosniff`',
        "",
    ),
    CheckSpec(
        "http.referrer_policy.missing",
        Severity.INFO,
        'no `Referrer-Policy`',
        "",
    ),
    CheckSpec(
        "http.version_disclosed",
        Severity.LOW,
        '`Server`, `X-Powered-By` or `X-AspNet-Version` discloses a version',
        "",
    ),
    CheckSpec(
        "http.cookie.insecure",
        Severity.MEDIUM,
        'a cookie set over HTTPS lacks `Secure`',
        "",
    ),
    CheckSpec(
        "http.cookie.no_httponly",
        Severity.LOW,
        'a session-like cookie lacks `HttpOnly`',
        "",
    ),
    CheckSpec(
        "http.cors.permissive",
        Severity.MEDIUM,
        '`Access-Control-Allow-Origin` reflects any origin with credentials, or `*` on an authenticated response',
        "",
    ),
    CheckSpec(
        "http.trace_enabled",
        Severity.LOW,
        '`TRACE` method answered',
        "",
    ),
    CheckSpec(
        "http.security_txt.missing",
        Severity.LOW,
        'no valid `/.well-known/security.txt` (RFC 9116: `Contact` and `Expires` fields) on the main web host of the domain',
        "",
    ),
    CheckSpec(
        "http.security_txt.expired",
        Severity.LOW,
        '`security.txt` present but its `Expires` date has passed',
        "",
    ),
    CheckSpec(
        "http.directory_listing",
        Severity.MEDIUM,
        'an auto-generated directory index is served',
        "",
    ),
    CheckSpec(
        "http.exposed.vcs",
        Severity.HIGH,
        '`/.git/` or `/.svn/` contents served',
        "",
    ),
    CheckSpec(
        "http.exposed.env_file",
        Severity.CRITICAL,
        '`/.env` or similar configuration with secrets served',
        "",
    ),
    CheckSpec(
        "http.exposed.server_status",
        Severity.MEDIUM,
        '`/server-status`, `/nginx_status` or similar served',
        "",
    ),
    CheckSpec(
        "http.exposed.phpinfo",
        Severity.MEDIUM,
        'a `phpinfo()` page served',
        "",
    ),
    CheckSpec(
        "http.exposed.admin_panel",
        Severity.MEDIUM,
        'a database or server admin panel (phpMyAdmin, Adminer, Tomcat manager, …) served',
        "",
    ),
    CheckSpec(
        "http.exposed.backup",
        Severity.HIGH,
        'a backup or dump file (`.sql`, `.zip`, `.bak`, `.tar.gz` of the site) served',
        "",
    ),
    CheckSpec(
        "dns.axfr_open",
        Severity.HIGH,
        'a listed name server allows zone transfer',
        "",
    ),
    CheckSpec(
        "dns.dnssec.missing",
        Severity.LOW,
        'the zone is not signed',
        "",
    ),
    CheckSpec(
        "dns.spf.missing",
        Severity.MEDIUM,
        'a mail domain has no SPF record',
        "",
    ),
    CheckSpec(
        "dns.spf.permissive",
        Severity.HIGH,
        'SPF ends in `+all` or `?all`',
        "",
    ),
    CheckSpec(
        "dns.dmarc.missing",
        Severity.MEDIUM,
        'no `_dmarc` record',
        "",
    ),
    CheckSpec(
        "dns.dmarc.policy_none",
        Severity.LOW,
        'DMARC `p=none`',
        "",
    ),
    CheckSpec(
        "dns.caa.missing",
        Severity.INFO,
        'no CAA record',
        "",
    ),
    CheckSpec(
        "dns.dangling_cname",
        Severity.HIGH,
        'a CNAME points to a name that does not resolve (takeover risk)',
        "",
    ),
    CheckSpec(
        "dns.lame_delegation",
        Severity.MEDIUM,
        'a delegated name server does not answer authoritatively for the zone',
        "",
    ),
    CheckSpec(
        "dns.ns_unresolvable",
        Severity.HIGH,
        "a name server's own name does not resolve (its domain may be expired and taken over)",
        "",
    ),
    CheckSpec(
        "scan.unreachable",
        Severity.INFO,
        'the host did not answer at all',
        "",
    ),
    CheckSpec(
        "scan.out_of_scope",
        Severity.INFO,
        'the name resolved to an address outside the allowed scope, so nothing was sent',
        "",
    ),
    CheckSpec(
        "scan.not_authorised",
        Severity.INFO,
        'the agency has no valid scanning mandate while mandates are required, so nothing was sent',
        "",
    ),
    CheckSpec(
        "scan.timeout",
        Severity.INFO,
        'a probe hit its deadline; evidence says which',
        "",
    ),
    CheckSpec(
        "scan.error",
        Severity.INFO,
        'a probe failed unexpectedly; evidence holds the error',
        "",
    ),
)

CATALOGUE: dict[str, CheckSpec] = {spec.check_id: spec for spec in _SPECS}


class UnknownCheckError(KeyError):
    """A check ID that is not in the catalogue (a typo in code or configuration)."""


def spec_for(check_id: str) -> CheckSpec:
    try:
        return CATALOGUE[check_id]
    except KeyError:
        raise UnknownCheckError(check_id) from None


def checks_in(family: Family) -> list[CheckSpec]:
    return [spec for spec in _SPECS if spec.family is family]
