"""badssl.com rebuilt on loopback, each site scanned by vigie's TLS (and HTTP) family.

The peer is badssl.com (github.com/chromium/badssl.com, Apache-2.0; the site
definitions are ``domains/**/*.conf`` and ``nginx-includes/*.conf``, the
verdicts the front page's classes ``bad``/``dubious``/``good``, each page's
colour and the dashboard's risk sets in ``domains/misc/badssl.com``). No one
here wrote it. Each :class:`Case` restates one site: its certificate chain
(made here with the same defect, under a test root the scan trusts, so that
"good" really means good), its protocols and cipher string copied from the
site's nginx include, its DH group; nginx serves it on its own 127.0.40.x
address with the site's name as SNI, and vigie's TLS family scans it through
the same path as ``vigie scan`` (``check_tls`` on a ``HostTarget``, one sweep
for every site). The ``upgrade``/``http`` sites go through the HTTP family.

- ``bad``: badssl's verdict (the site has the weakness). Front-page ``bad``
  and ``good`` are taken as they are; a ``dubious`` site gets the verdict
  the dashboard's set or the page's colour gives, with the standard that
  names the defect (``why``).
- ``equivalent``: the vigie IDs whose presence means "vigie calls the site
  bad"; ``named``: the one ID for the defect the site names, which must be
  the one reported (expired -> ``tls.cert.expired``); ``None`` when vigie has
  no equivalent check (revocation, pinning, CT, EV, client certificates,
  mixed content, browser UI): such sites count against coverage, not
  agreement.
- ``disagree``: vigie gives the other verdict on purpose, naming the clause it
  follows; the case must still disagree, and counts against agreement.
- tlslite-ng, an independent pure-Python TLS server, serves with the site's
  suites, versions and DH group what Debian's OpenSSL 3 cannot (it is built
  without RC4 and 3DES suites and SSL 3.0, and refuses DH groups under 1024
  bits even at security level 0); ``left_out``: a site no server here can
  give (SSL 2.0), said why, never faked.
- Finally ``vigie init``, ``vigie targets import`` and ``vigie scan --all``
  sweep every site through the port stage and every family (Knot serves the
  zone), and must give the same verdicts.

Figures (cases, comparable, agreeing, recall on bad sites, false alarms) are
computed by :func:`agreement` and asserted at the bottom; no site ever gets
``tls.missing``.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.scanner.test_http_peer_cases import Agreement as PeerAgreement
from tests.scanner.tls_fixtures import (
    DAY,
    MODP_1024_PRIME,
    NOW,
    Issued,
    NginxFarm,
    TlsSite,
    make_ca,
    make_cert,
    make_leaf,
    openssl_signed,
    openssl_signed_leaf,
    rsa_key,
    scan,
    tlslite_server,
)
from tests.servers import require_program
from vigie.config import Settings
from vigie.model import FamilyResult, Finding, HostTarget, OpenPort
from vigie.scanner.tls import dh_group_problem

# tlslite-ng imports asyncore for an integration this suite does not use
pytestmark = pytest.mark.filterwarnings("ignore:The asyncore module:DeprecationWarning")
NET = "127.0.40"
ZONE = "badssl.test"  # badssl.com's names, under a test domain
DATA = Path(__file__).resolve().parents[1] / "data" / "tls" / "badssl"

# The vigie IDs that say what each kind of badssl site tests.
CERT = frozenset(
    {
        "tls.cert.expired",
        "tls.cert.not_yet_valid",
        "tls.cert.self_signed",
        "tls.cert.untrusted",
        "tls.cert.hostname_mismatch",
        "tls.cert.incomplete_chain",
        "tls.cert.weak_key",
        "tls.cert.weak_signature",
    }
)
CIPHER = frozenset({"tls.cipher.weak", "tls.cipher.no_forward_secrecy", "tls.dh.weak"})
PROTOCOL = frozenset(
    {"tls.protocol.sslv2", "tls.protocol.sslv3", "tls.protocol.tls1_0", "tls.protocol.tls1_1"}
)
SUITES = CIPHER | PROTOCOL  # a whole server configuration (mozilla-old/intermediate/modern)
DH = frozenset({"tls.dh.weak"})
HSTS = frozenset({"http.hsts.missing", "http.hsts.short_max_age"})
REDIRECT = frozenset({"http.no_https_redirect"})


def host(name: str) -> str:
    return f"{name}.{ZONE}"


# --- badssl's nginx includes, copied ------------------------------------------------------------

TLS_DEFAULTS = (
    "SSLv3 TLSv1 TLSv1.1 TLSv1.2",
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:DHE-DSS-AES128-GCM-SHA256:kEDH+AESGCM:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:"
    "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES256-SHA:"
    "DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:DHE-DSS-AES128-SHA256:DHE-RSA-AES256-SHA256:"
    "DHE-DSS-AES256-SHA:DHE-RSA-AES256-SHA:ECDHE-RSA-DES-CBC3-SHA:ECDHE-ECDSA-DES-CBC3-SHA:"
    "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:AES:"
    "DES-CBC3-SHA:HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!aECDH:!EDH-DSS-DES-CBC3-SHA:"
    "!EDH-RSA-DES-CBC3-SHA:!KRB5-DES-CBC3-SHA",
)
DHE_ONLY = (  # tls-dh480/512/1024/2048, dh-small-subgroup, dh-composite
    "TLSv1.1 TLSv1.2",
    "DHE-RSA-AES128-GCM-SHA256:DHE-DSS-AES128-GCM-SHA256:kEDH+AESGCM:DHE-RSA-AES128-SHA256:"
    "DHE-RSA-AES128-SHA:DHE-DSS-AES128-SHA256:DHE-RSA-AES256-SHA256:DHE-DSS-AES256-SHA:"
    "DHE-RSA-AES256-SHA:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!3DES:!MD5:!PSK",
)
SUITE_CONFS: dict[str, tuple[str, str]] = {
    "cbc": (
        "TLSv1.1 TLSv1.2",
        "AES256:AES128:3DES:!AESGCM:!RC4:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!MD5:!PSK",
    ),
    "null": ("TLSv1.1 TLSv1.2", "NULL:aNULL:eNULL:!RC4:!EXPORT:!DES:!CBC:!3DES:!MD5:!PSK"),
    "static-rsa": ("TLSv1.1 TLSv1.2", "kRSA"),
    "mozilla-old": (
        "SSLv3 TLSv1 TLSv1.1 TLSv1.2",
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-DSS-AES128-GCM-SHA256:kEDH+AESGCM:ECDHE-RSA-AES128-SHA256:"
        "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:"
        "ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:"
        "ECDHE-ECDSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:DHE-DSS-AES128-SHA256:"
        "DHE-RSA-AES256-SHA256:DHE-DSS-AES256-SHA:DHE-RSA-AES256-SHA:ECDHE-RSA-DES-CBC3-SHA:"
        "ECDHE-ECDSA-DES-CBC3-SHA:EDH-RSA-DES-CBC3-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:"
        "AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:AES:DES-CBC3-SHA:HIGH:SEED:!aNULL:"
        "!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!RSAPSK:!aDH:!aECDH:!EDH-DSS-DES-CBC3-SHA:"
        "!KRB5-DES-CBC3-SHA:!SRP",
    ),
    "mozilla-intermediate": (
        "TLSv1 TLSv1.1 TLSv1.2",
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256:"
        "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA384:"
        "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:"
        "ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA256:"
        "DHE-RSA-AES256-SHA:ECDHE-ECDSA-DES-CBC3-SHA:ECDHE-RSA-DES-CBC3-SHA:EDH-RSA-DES-CBC3-SHA:"
        "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:"
        "DES-CBC3-SHA:!DSS",
    ),
    "mozilla-modern": (
        "TLSv1.2",
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:"
        "ECDHE-RSA-AES128-SHA256",
    ),
}
# tls-v1-0/1/2.conf set only ssl_protocols: the ciphers are nginx's default.
NGINX_DEFAULT_CIPHERS = "HIGH:!aNULL:!MD5"


# --- the cases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One badssl.com site and its verdict."""

    name: str  # the badssl.com subdomain
    group: str  # its group on badssl.com's front page
    badssl: str  # its front-page class: "bad", "dubious", "good"
    bad: bool  # the verdict compared: the site has the weakness
    equivalent: frozenset[str] | None  # vigie IDs saying "bad"; None: no equivalent
    named: str = ""  # the one vigie ID for the defect badssl names, when there is one
    why: str = ""  # the reading of a dubious site, or why there is no equivalent
    disagree: str = ""  # vigie's other verdict, and the clause it follows
    left_out: str = ""  # why this machine cannot serve it
    port: int = 443


def case(
    name: str,
    group: str,
    badssl: str,
    bad: bool,
    equivalent: frozenset[str] | None,
    **extra: object,
) -> Case:
    return Case(name, group, badssl, bad, equivalent, **extra)  # type: ignore[arg-type]


def no_equivalent(name: str, group: str, badssl: str, bad: bool, why: str) -> Case:
    return Case(name, group, badssl, bad, None, why=why)


# tlslite-ng's HandshakeSettings for the sites nginx cannot serve here, from badssl's
# includes: tls-rc4.conf (RC4 without MD5: ECDHE-RSA-RC4-SHA, RC4-SHA), tls-rc4-md5.conf
# (RC4-MD5), tls-3des.conf (no ssl_dhparam: ECDHE-RSA-DES-CBC3-SHA, DES-CBC3-SHA),
# tls-dh480/512.conf (the DHE suites of DHE_ONLY with a 480/512-bit group); all speak
# TLS 1.1 and 1.2. dhGroups=[]: the server's own group, never an RFC 7919 one.
_TLS_1_1_AND_1_2 = {"minVersion": (3, 2), "maxVersion": (3, 3)}
_DHE_ONLY_TLSLITE = {
    "cipherNames": ["aes128gcm", "aes256gcm", "aes128", "aes256"],
    "macNames": ["sha", "sha256", "sha384", "aead"],
    "keyExchangeNames": ["dhe_rsa"],
    "dhGroups": [],
    **_TLS_1_1_AND_1_2,
}
TLSLITE: dict[str, dict[str, object]] = {
    "rc4": {"cipherNames": ["rc4"], "macNames": ["sha"], "keyExchangeNames": ["ecdhe_rsa", "rsa"], **_TLS_1_1_AND_1_2},
    "rc4-md5": {"cipherNames": ["rc4"], "macNames": ["md5"], "keyExchangeNames": ["rsa"], **_TLS_1_1_AND_1_2},
    "3des": {"cipherNames": ["3des"], "macNames": ["sha"], "keyExchangeNames": ["ecdhe_rsa", "rsa"], **_TLS_1_1_AND_1_2},
    "dh480": _DHE_ONLY_TLSLITE,
    "dh512": _DHE_ONLY_TLSLITE,
    # ssl-v3.conf: SSLv3 only, nginx's default ciphers (HIGH:!aNULL:!MD5)
    "ssl-v3": {"cipherNames": ["aes256", "aes128", "3des"], "macNames": ["sha"], "keyExchangeNames": ["rsa", "dhe_rsa"], "minVersion": (3, 0), "maxVersion": (3, 0)},
}  # fmt: skip
CASES = [
    # Certificate
    case("expired", "certificate", "bad", True, CERT, named="tls.cert.expired"),
    case("wrong.host", "certificate", "bad", True, CERT, named="tls.cert.hostname_mismatch"),
    case("self-signed", "certificate", "bad", True, CERT, named="tls.cert.self_signed"),
    case("untrusted-root", "certificate", "bad", True, CERT, named="tls.cert.untrusted"),
    no_equivalent(
        "revoked", "certificate", "bad", True,
        "revocation needs the CA's OCSP responder or CRL: vigie checks no revocation",
    ),
    no_equivalent(
        "pinning-test", "certificate", "bad", True,
        "public-key pins are a browser's preloaded list (HPKP, removed): nothing a server shows",
    ),
    case(
        "no-common-name", "certificate", "dubious", False, CERT,
        why="dashboard 'Secure (Uncommon)': the name is in subjectAltName, the only place "
        "RFC 9525 looks; CA/B BR §7.1.4.3 makes the CN optional",
    ),
    case(
        "no-subject", "certificate", "dubious", False, CERT,
        why="dashboard 'Secure (Uncommon)': an empty subject with a critical subjectAltName is "
        "what RFC 5280 §4.1.2.6 allows",
    ),
    case(
        "incomplete-chain", "certificate", "dubious", True, CERT,
        named="tls.cert.incomplete_chain",
        why="the server leaves out its intermediate: RFC 8446 §4.4.2 / RFC 5246 §7.4.2 require "
        "it; browsers that do not fetch AIA (Firefox) refuse the site",
    ),
    case("sha256", "certificate", "good", False, CERT),
    case("sha384", "certificate", "good", False, CERT),
    case("sha512", "certificate", "good", False, CERT),
    case("1000-sans", "certificate", "good", False, CERT),
    case("10000-sans", "certificate", "good", False, CERT),
    case("ecc256", "certificate", "good", False, CERT),
    case("ecc384", "certificate", "good", False, CERT),
    case("rsa2048", "certificate", "good", False, CERT),
    case("rsa4096", "certificate", "good", False, CERT),
    case(
        "rsa8192", "certificate", "dubious", False, CERT,
        why="dashboard 'Secure (Uncommon)': a large key, some clients are slow with it",
    ),
    no_equivalent(
        "extended-validation", "certificate", "good", False,
        "EV is a policy OID browsers once showed in the UI: vigie judges no EV status",
    ),
    # Local-only certificate sites (domains-local-only/cert); page colour red/yellow/green
    case("rsa512", "certificate (local)", "bad", True, CERT, named="tls.cert.weak_key"),
    case(
        "rsa1024", "certificate (local)", "dubious", True, CERT,
        named="tls.cert.weak_key",
        why="yellow page; CA/B BR §6.1.5 and NIST SP 800-131A: RSA keys under 2048 bits",
    ),
    case("rsa3072", "certificate (local)", "good", False, CERT),
    case("md5", "certificate (local)", "bad", True, CERT, named="tls.cert.weak_signature"),
    case("no-san", "certificate (local)", "bad", True, CERT, named="tls.cert.hostname_mismatch"),
    case(
        "reversed-chain", "certificate (local)", "dubious", True, CERT,
        why="orange page: the intermediate's certificate and key are served first, the leaf after",
    ),
    # Client certificate
    no_equivalent(
        "client", "client certificate", "good", False,
        "client authentication: vigie scans without a client certificate and judges none",
    ),
    no_equivalent(
        "client-cert-missing", "client certificate", "bad", True,
        "a browser test of the client certificate it sends",
    ),
    # Mixed content
    *(
        no_equivalent(
            name, "mixed content", badssl, badssl == "bad",
            "sub-resources of the page loaded over HTTP: vigie has no mixed-content check",
        )
        for name, badssl in (
            ("mixed-script", "bad"),
            ("very", "bad"),
            ("mixed", "dubious"),
            ("mixed-favicon", "dubious"),
            ("mixed-form", "dubious"),
        )
    ),
    # HTTP: the page and its forms over plain HTTP, HTTPS redirecting back to HTTP
    *(
        case(name, "http", "bad", True, REDIRECT, port=80)
        for name in (
            "http",
            "http-textarea",
            "http-password",
            "http-login",
            "http-dynamic-login",
            "http-credit-card",
        )
    ),
    # Cipher suite
    case(
        "cbc", "cipher suite", "dubious", True, None,
        why="dashboard 'Legacy Cryptography': AES-CBC suites only. vigie's tls.cipher.weak covers "
        "the suites RFC 9325 §4.1 forbids (NULL, RC4, under 112 bits, export, anonymous); no "
        "published vigie ID says 'CBC suites only'",
    ),
    case("rc4-md5", "cipher suite", "bad", True, CIPHER, named="tls.cipher.weak"),
    case("rc4", "cipher suite", "bad", True, CIPHER, named="tls.cipher.weak"),
    case("3des", "cipher suite", "bad", True, CIPHER, named="tls.cipher.weak"),
    case("null", "cipher suite", "bad", True, CIPHER, named="tls.cipher.weak"),
    case("mozilla-old", "cipher suite", "bad", True, SUITES),
    case(
        "mozilla-intermediate", "cipher suite", "dubious", True, SUITES,
        why="yellow page: TLS 1.0 and 1.1 (RFC 8996 §2-§3: MUST NOT) and static RSA "
        "(RFC 9325 §4.1: SHOULD NOT)",
    ),
    case("mozilla-modern", "cipher suite", "good", False, SUITES),
    # Key exchange
    case("dh480", "key exchange", "bad", True, DH),
    case("dh512", "key exchange", "bad", True, DH),
    case("dh1024", "key exchange", "bad", True, DH),
    case(
        "dh2048", "key exchange", "dubious", True, None,
        why="dashboard 'Legacy Cryptography': a 2048-bit group is of the size NIST SP 800-57 "
        "Part 1 Table 2 and RFC 7919 accept (vigie's tls.dh.weak threshold); the weakness badssl "
        "names is finite-field DHE itself, which browsers dropped and RFC 10015 deprecates in "
        "TLS 1.2: no published vigie ID says 'FFDHE offered'",
    ),
    case("dh-small-subgroup", "key exchange", "bad", True, DH),
    case("dh-composite", "key exchange", "bad", True, DH),
    case(
        "static-rsa", "key exchange", "dubious", True, CIPHER,
        named="tls.cipher.no_forward_secrecy",
        why="red page: RSA key transport only, RFC 9325 §4.1 'SHOULD NOT' (no forward secrecy)",
    ),
    # Protocol
    case(
        "tls-v1-0", "protocol", "dubious", True, PROTOCOL, port=1010,
        named="tls.protocol.tls1_0",
        why="red page; dashboard 'Legacy Cryptography': RFC 8996 §2 deprecates TLS 1.0",
    ),
    case(
        "tls-v1-1", "protocol", "dubious", True, PROTOCOL, port=1011,
        named="tls.protocol.tls1_1",
        why="red page; dashboard 'Legacy Cryptography': RFC 8996 §3 deprecates TLS 1.1",
    ),
    case("tls-v1-2", "protocol", "good", False, PROTOCOL, port=1012),
    # In the repository, off the front page (domains/protocol/ssl-v2.conf, ssl-v3.conf)
    case(
        "ssl-v2", "protocol", "bad", True, PROTOCOL, port=1002, named="tls.protocol.sslv2",
        left_out="no server here speaks SSL 2.0 (Debian's OpenSSL 3 and tlslite-ng have none)",
    ),
    case("ssl-v3", "protocol", "bad", True, PROTOCOL, port=1003, named="tls.protocol.sslv3"),
    # Certificate Transparency
    *(
        no_equivalent(
            name, "certificate transparency", badssl, True,
            "Certificate Transparency (SCTs, Expect-CT): vigie checks no SCT",
        )
        for name, badssl in (
            ("no-sct", "bad"),
            ("invalid-expected-sct", "bad"),
            ("preloaded-expect-ct", "dubious"),
        )
    ),
    # Upgrade
    case("hsts", "upgrade", "good", False, HSTS),
    case("upgrade", "upgrade", "good", False, REDIRECT, port=80),
    case("preloaded-hsts", "upgrade", "good", False, HSTS),
    case(
        "subdomain.preloaded-hsts", "upgrade", "bad", True, CERT,
        named="tls.cert.hostname_mismatch",
        why="the wildcard does not cover a name two labels down (RFC 6125 §6.4.3), and HSTS "
        "preloading leaves no way past the error",
    ),
    no_equivalent(
        "https-everywhere", "upgrade", "good", False,
        "a test of the HTTPS Everywhere browser extension's rewrite rules: a client feature",
    ),
    # UI
    *(
        no_equivalent(name, "ui", badssl, False, "how a browser displays a page or its name")
        for name, badssl in (
            ("spoofed-favicon", "dubious"),
            ("lock-title", "dubious"),
            ("long-extended-subdomain-name-containing-many-letters-and-dashes", "good"),
            ("longextendedsubdomainnamewithoutdashesinordertotestwordwrapping", "good"),
        )
    ),
    no_equivalent(
        "xn--n1aae7f7o", "certificate", "dubious", False,
        "an IDN homograph of a real name: how a browser displays names",
    ),
    # Known bad
    *(
        case(name, "known bad", "bad", True, CERT, named="tls.cert.untrusted")
        for name in ("superfish", "edellroot", "dsdtestprovider", "preact-cli", "webpack-dev-server")
    ),
    # Chrome tests
    case(
        "captive-portal", "chrome", "bad", True, CERT,
        named="tls.cert.hostname_mismatch",
        why="a certificate for login.captive-portal, not for the site's name",
    ),
    case("mitm-software", "chrome", "bad", True, CERT, named="tls.cert.untrusted"),
    no_equivalent(
        "known-interception", "chrome", "dubious", True,
        "Chrome's list of known interception keys (SPKI hashes of badssl's production key, "
        "which is not public); badssl's own Makefile: 'just a regular cert in test'",
    ),
    no_equivalent(
        "blocked-interception", "chrome", "bad", True,
        "Chrome's blocklist of interception keys (SPKI hashes of badssl's production key, "
        "which is not public); badssl's own Makefile: 'just a regular cert in test'",
    ),
    # Defunct
    case(
        "sha1-2016", "defunct", "dubious", True, CERT,
        named="tls.cert.weak_signature",
        why="yellow page: a SHA-1 signed leaf (CA/B BR §7.1.3.2.1 forbids SHA-1 since 2016)",
    ),
    case("sha1-2017", "defunct", "bad", True, CERT, named="tls.cert.weak_signature"),
    case("sha1-intermediate", "defunct", "bad", True, CERT, named="tls.cert.weak_signature"),
]  # fmt: skip
SERVED = [c for c in CASES if c.equivalent is not None and not c.left_out]
BY_NAME = {c.name: c for c in CASES}
HTTP_CASES = {c.name for c in SERVED if c.equivalent in (HSTS, REDIRECT)}


def test_every_badssl_site_is_a_case() -> None:
    # Given the front page's sites (badssl.com's domains/misc/badssl.com/index.html, commit
    # 6e53ae0) and the local-only ones (domains-local-only/cert)
    front_page = {
        "expired", "wrong.host", "self-signed", "untrusted-root", "revoked", "pinning-test",
        "no-common-name", "no-subject", "incomplete-chain", "sha256", "sha384", "sha512",
        "1000-sans", "10000-sans", "ecc256", "ecc384", "rsa2048", "rsa4096", "rsa8192",
        "extended-validation", "client", "client-cert-missing", "mixed-script", "very", "mixed",
        "mixed-favicon", "mixed-form", "http", "http-textarea", "http-password", "http-login",
        "http-dynamic-login", "http-credit-card", "cbc", "rc4-md5", "rc4", "3des", "null",
        "mozilla-old", "mozilla-intermediate", "mozilla-modern", "dh480", "dh512", "dh1024",
        "dh2048", "dh-small-subgroup", "dh-composite", "static-rsa", "tls-v1-0", "tls-v1-1",
        "tls-v1-2", "no-sct", "hsts", "upgrade", "preloaded-hsts", "subdomain.preloaded-hsts",
        "https-everywhere", "spoofed-favicon", "lock-title",
        "long-extended-subdomain-name-containing-many-letters-and-dashes",
        "longextendedsubdomainnamewithoutdashesinordertotestwordwrapping", "superfish",
        "edellroot", "dsdtestprovider", "preact-cli", "webpack-dev-server", "captive-portal",
        "mitm-software", "sha1-2016", "sha1-2017", "sha1-intermediate", "invalid-expected-sct",
    }  # fmt: skip
    local_only = {"rsa512", "rsa1024", "rsa3072", "md5", "no-san"}
    # Then each is a case, once; the others are sites of the repository off the front page
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert front_page | local_only <= set(names)
    assert set(names) - front_page - local_only == {
        "ssl-v2",
        "ssl-v3",
        "reversed-chain",
        "preloaded-expect-ct",
        "xn--n1aae7f7o",
        "known-interception",
        "blocked-interception",
    }
    # And every dubious site or missing equivalent says why; a named ID is an equivalent one
    assert all(c.why for c in CASES if c.badssl == "dubious" or c.equivalent is None)
    assert all(c.equivalent and c.named in c.equivalent for c in CASES if c.named)


# --- the world: a PKI like badssl's, and its sites --------------------------------------------


def _openssl_key(folder: Path, bits: int) -> rsa.RSAPrivateKey:
    """``openssl genrsa``: cryptography refuses to make keys under 1024 bits (rsa512)."""
    path = folder / f"rsa{bits}.pem"
    argv = [require_program("openssl"), "genrsa", "-out", str(path), str(bits)]
    subprocess.run(argv, check=True, capture_output=True)
    return _private_key(path.read_bytes())


def _private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _badssl_ca(name: str) -> Issued:
    """One of badssl's published CAs (tests/data/tls/badssl), with its private key."""
    with warnings.catch_warnings():  # DSDTestProvider's serial number is negative
        warnings.simplefilter("ignore")
        cert = x509.load_pem_x509_certificate((DATA / f"ca-{name}.crt").read_bytes())
    return Issued(cert, _private_key((DATA / f"ca-{name}.key").read_bytes()))


def _dh_pem(prime: int, generator: int = 2) -> bytes:
    """PKCS#3 DHParameter (SEQUENCE of two INTEGERs) in PEM, for any size (cryptography
    refuses groups under 512 bits)."""

    def der_int(value: int) -> bytes:
        body = value.to_bytes(value.bit_length() // 8 + 1, "big")
        return b"\x02" + _der_length(len(body)) + body

    body = der_int(prime) + der_int(generator)
    der = b"\x30" + _der_length(len(body)) + body
    import base64

    lines = base64.encodebytes(der).decode().replace("\n", "")
    wrapped = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN DH PARAMETERS-----\n{wrapped}\n-----END DH PARAMETERS-----\n".encode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _safe_prime(bits: int) -> int:
    """A safe prime of ``bits`` bits, from ``openssl prime -generate -safe`` (what
    ``openssl dhparam`` does, which refuses sizes under 512)."""
    argv = [require_program("openssl"), "prime", "-generate", "-safe", "-bits", str(bits)]
    return int(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def _leaf_without_san(name: str, key: rsa.RSAPrivateKey, issuer: Issued) -> Issued:
    """badssl's no-san: the name only as the subject's CN, no subjectAltName."""
    return make_cert(
        name,
        key,
        issuer,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )


def _leaf_with_subject(
    subject: x509.Name, name: str, key: rsa.RSAPrivateKey, issuer: Issued, *, critical_san: bool
) -> Issued:
    """no-common-name (subject without CN) and no-subject (empty subject, critical SAN)."""
    return make_cert(
        name,
        key,
        issuer,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.SubjectAlternativeName([x509.DNSName(name)]), critical_san),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
        subject=subject,
    )


@dataclass
class Site:
    """A case as served: its nginx blocks and the ports the scan is given."""

    case: Case
    ip: str
    blocks: list[TlsSite]
    ports: list[OpenPort]
    chain: list[Issued] = field(default_factory=list)
    tlslite: dict[str, object] | None = None  # served by tlslite-ng, not nginx


@dataclass
class BadsslWorld:
    folder: Path
    root: Issued
    sites: dict[str, Site] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        path = self.folder / "badssl-root.pem"
        path.write_bytes(self.root.pem)
        return path


HTTP_80 = OpenPort(80, service="http", banner="HTTP/1.1 200 OK")
REDIRECT_80 = OpenPort(80, service="http", banner="HTTP/1.1 301 Moved Permanently")


def build_world(folder: Path) -> BadsslWorld:
    """badssl's certificates (certs/Makefile) made again, under a root the scan trusts."""
    rsa8192 = _private_key((DATA / "leaf-rsa8192.key").read_bytes())  # made once: slow to find
    root = make_ca("BadSSL Root Certificate Authority", rsa_key())
    intermediate = make_ca("BadSSL Intermediate Certificate Authority", rsa_key(), issuer=root)
    untrusted_root = make_ca("BadSSL Untrusted Root Certificate Authority", rsa_key())
    main = rsa_key()  # leaf-main.key
    wildcard = [f"*.{ZONE}", ZONE]

    def leaf(
        names: list[str] | None = None,
        key: CertificateIssuerPrivateKeyTypes = main,
        issuer: Issued | None = intermediate,
        **kwargs: object,
    ) -> Issued:
        return make_leaf(names or wildcard, key, issuer, **kwargs)  # type: ignore[arg-type]

    normal = [leaf(), intermediate]  # wildcard-normal = wildcard-rsa2048
    sha1_intermediate = openssl_signed(
        folder,
        "/CN=BadSSL SHA-1 Intermediate Certificate Authority",
        rsa_key(),
        root,
        "sha1",
        ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"],
        days=3650,
    )
    world = BadsslWorld(folder, root)
    chains: dict[str, list[Issued]] = {
        # expired while its issuer was valid (like badssl's, from 2015 under a CA valid then)
        "expired": [leaf(not_before=NOW - 25 * DAY, not_after=NOW - 5 * DAY), intermediate],
        "wrong.host": normal,
        "self-signed": [leaf(issuer=None)],
        "untrusted-root": [leaf(issuer=untrusted_root), untrusted_root],
        "no-common-name": [
            _leaf_with_subject(
                x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BadSSL")]),
                host("no-common-name"), main, intermediate, critical_san=False,
            ),
            intermediate,
        ],
        "no-subject": [
            _leaf_with_subject(x509.Name([]), host("no-subject"), main, intermediate, critical_san=True),
            intermediate,
        ],
        "incomplete-chain": [leaf()],
        "sha256": normal,
        "sha384": [leaf(digest=hashes.SHA384()), intermediate],
        "sha512": [leaf(digest=hashes.SHA512()), intermediate],
        "1000-sans": [leaf([host("1000-sans"), *(f"n{i}.1000-sans.{ZONE}" for i in range(999))]), intermediate],
        "10000-sans": [leaf([host("10000-sans"), *(f"n{i}.10000-sans.{ZONE}" for i in range(9999))]), intermediate],
        "ecc256": [leaf(key=ec.generate_private_key(ec.SECP256R1())), intermediate],
        "ecc384": [leaf(key=ec.generate_private_key(ec.SECP384R1())), intermediate],
        "rsa2048": normal,
        "rsa3072": [leaf(key=rsa_key(3072)), intermediate],
        "rsa4096": [leaf(key=rsa_key(4096)), intermediate],
        "rsa1024": [leaf(key=rsa_key(1024)), intermediate],
        "md5": [openssl_signed_leaf(folder, wildcard, main, intermediate, "md5"), intermediate],
        "no-san": [_leaf_without_san(host("no-san"), main, intermediate), intermediate],
        # the intermediate's certificate (and key) first, then the leaf it signed
        "reversed-chain": [intermediate, leaf([host("reversed-chain")])],
        "captive-portal": [leaf([f"login.captive-portal.{ZONE}"]), intermediate],
        "subdomain.preloaded-hsts": normal,
        "sha1-2016": [openssl_signed_leaf(folder, wildcard, main, intermediate, "sha1"), intermediate],
        "sha1-2017": [openssl_signed_leaf(folder, [f"*.{ZONE}"], main, intermediate, "sha1"), intermediate],
        "sha1-intermediate": [leaf(issuer=sha1_intermediate), sha1_intermediate],
        **{
            name: [leaf([host(name)], issuer=_badssl_ca(name))]  # the leaf alone, as badssl
            for name in ("superfish", "edellroot", "dsdtestprovider", "preact-cli",
                         "webpack-dev-server", "mitm-software")
        },
    }  # fmt: skip
    dh2048 = (DATA / "dh2048.pem").read_bytes()
    tlslite_dh = {"dh480": _safe_prime(480), "dh512": _safe_prime(512)}
    dhparams = {
        "dh1024": _dh_pem(MODP_1024_PRIME),
        "dh2048": dh2048,
        "dh-small-subgroup": (DATA / "dh-small-subgroup.pem").read_bytes(),
        "dh-composite": (DATA / "dh-composite.pem").read_bytes(),
        "mozilla-old": _dh_pem(MODP_1024_PRIME),  # tls-mozilla-old.conf: dh1024.pem
    }
    chains["rsa8192"] = [leaf(key=rsa8192), intermediate]
    chains["rsa512"] = [leaf(key=_openssl_key(folder, 512)), intermediate]
    for n, item in enumerate(SERVED, start=1):
        ip = f"{NET}.{n}"
        chain = chains.get(item.name, normal)
        site = _site(item, ip, chain, dhparams, dh2048)
        if item.name in TLSLITE:  # tlslite-ng takes the site's own port from nginx
            site.tlslite = dict(TLSLITE[item.name])
            if item.name in tlslite_dh:
                site.tlslite["dhParams"] = (2, tlslite_dh[item.name])
            site.blocks = [block for block in site.blocks if block.port != item.port]
            site.chain = chain
        world.sites[item.name] = site
    return world


def _site(
    item: Case, ip: str, chain: list[Issued], dhparams: dict[str, bytes], dh2048: bytes
) -> Site:
    """badssl's server blocks for one site (domains/**/<site>.conf)."""
    name = item.name
    protocols, ciphers = TLS_DEFAULTS
    dhparam: bytes | None = dh2048
    extra = ""
    if name in SUITE_CONFS:
        protocols, ciphers = SUITE_CONFS[name]
        dhparam = dhparams.get(name)
        if name == "mozilla-modern":
            extra = "add_header Strict-Transport-Security max-age=15768000;"
    elif name in dhparams:
        protocols, ciphers = DHE_ONLY
        dhparam = dhparams[name]
    elif item.group == "protocol":
        version = {
            "tls-v1-0": "TLSv1",
            "tls-v1-1": "TLSv1.1",
            "tls-v1-2": "TLSv1.2",
            "ssl-v3": "SSLv3",
        }[name]
        protocols, ciphers, dhparam = version, NGINX_DEFAULT_CIPHERS, None
    # Debian's OpenSSL 3 needs security level 0 to speak TLS 1.0/1.1, NULL suites, small keys
    ciphers += ":@SECLEVEL=0"

    def tls(port: int = 443, extra: str = extra) -> TlsSite:
        return TlsSite(
            ip,
            port,
            chain=chain,
            protocols=protocols,
            ciphers=ciphers,
            dhparam=dhparam,
            extra=extra,
        )

    https = OpenPort(443, service="https", tls=True)
    if item.group == "http":  # port 80 serves the page; 443 sends the visitor back to HTTP
        return Site(
            item, ip,
            [TlsSite(ip, 80), tls(extra=f"return 301 http://{host(name)}$request_uri;")],
            [HTTP_80, https],
        )  # fmt: skip
    if name == "upgrade":  # port 80 redirects "/" to HTTPS; 443: upgrade-insecure-requests
        return Site(
            item, ip,
            [
                TlsSite(ip, 80, extra=(
                    f"location = / {{ return 301 https://{host(name)}$request_uri; }} "
                    "location / { return 200 'plain\\n'; }"
                )),
                tls(extra="add_header Content-Security-Policy upgrade-insecure-requests;"),
            ],
            [REDIRECT_80, https],
        )  # fmt: skip
    if name in ("hsts", "preloaded-hsts"):
        value = "max-age=15768000; includeSubDomains" + ("; preload" if "preloaded" in name else "")
        return Site(
            item, ip,
            [TlsSite(ip, 80), tls(extra=f'add_header Strict-Transport-Security "{value}";')],
            [HTTP_80, https],
        )  # fmt: skip
    # Every other site: port 80 sends the visitor to HTTPS (badssl's first server block)
    to_https = (
        f"return 301 https://{host(name)}{'' if item.port == 443 else f':{item.port}'}$request_uri;"
    )
    blocks = [TlsSite(ip, 80, extra=to_https), tls(item.port)]
    ports = [REDIRECT_80, OpenPort(item.port, service="https", tls=True)]
    if item.port != 443:  # tls-v1-x: 443 has badssl's defaults and redirects to the port
        defaults = TLS_DEFAULTS[1] + ":@SECLEVEL=0"
        blocks.append(
            TlsSite(ip, 443, chain=chain, protocols=TLS_DEFAULTS[0], ciphers=defaults,
                    dhparam=dh2048, extra=to_https)
        )  # fmt: skip
        ports.append(https)
    return Site(item, ip, blocks, ports)


# --- scanning ---------------------------------------------------------------------------------


def settings(world: BadsslWorld, **tls: object) -> Settings:
    return Settings.model_validate(
        {
            "scope": {"allow": [f"{NET}.0/24"]},
            "scan": {"max_rate_per_s": 100_000, "probe_timeout_s": 3},
            "tls": {"extra_ca_file": str(world.ca_file), **tls},
        }
    )


@dataclass
class Scanned:
    findings: dict[str, list[Finding]]  # case name -> findings (TLS, and HTTP where it applies)
    results: dict[str, FamilyResult]  # case name -> the TLS family's result
    seconds: dict[str, float]


def scan_all(world: BadsslWorld) -> Scanned:
    """One sweep over every site's TLS (as ``vigie scan`` runs the family); HTTP where relevant."""
    cfg = settings(world)
    sites = list(world.sites.values())
    started = time.monotonic()
    results = scan(cfg, [(HostTarget(host(s.case.name), s.ip), s.ports) for s in sites])
    tls_seconds = time.monotonic() - started
    findings = {s.case.name: list(r.findings) for s, r in zip(sites, results, strict=True)}
    started = time.monotonic()
    for site in sites:
        if site.case.name in HTTP_CASES:
            findings[site.case.name] += http_findings(cfg, site)
    http_seconds = time.monotonic() - started
    return Scanned(
        findings,
        {s.case.name: r for s, r in zip(sites, results, strict=True)},
        {"tls": tls_seconds, "http": http_seconds},
    )


def http_findings(cfg: Settings, site: Site) -> list[Finding]:
    """The HTTP family on the site's two ports, as the engine runs it after the port stage."""
    import asyncio

    from vigie.scanner.http import check_http
    from vigie.scanner.probe_context import ProbeContext

    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(cfg)
        try:
            return await check_http(ctx, HostTarget(host(site.case.name), site.ip), site.ports)
        finally:
            await ctx.aclose()

    return list(asyncio.run(run()).findings)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadsslWorld]:
    """Every site served: one nginx for the most, a tlslite-ng server for each of the rest."""
    folder = tmp_path_factory.mktemp("badssl")
    world = build_world(folder)
    blocks = [block for site in world.sites.values() for block in site.blocks]
    with NginxFarm(folder, blocks).run(), contextlib.ExitStack() as stack:
        for site in world.sites.values():
            if site.tlslite is not None:
                tlslite = tlslite_server(site.ip, site.case.port, site.chain, **site.tlslite)
                stack.enter_context(tlslite)
        yield world


@pytest.fixture(scope="module")
def scanned(farm: BadsslWorld) -> Scanned:
    return scan_all(farm)


def says_bad(item: Case, check_ids: set[str]) -> bool:
    """The site's defect is reported: its named ID, else any of its equivalent IDs."""
    assert item.equivalent is not None
    if item.named:
        return item.named in check_ids
    return bool(check_ids & item.equivalent)


def on_the_site(item: Case, port: int | None) -> bool:
    """A finding about the site's own server: on its port (tls-v1-x: 1010-1012, where 443
    holds badssl's defaults), or about the host (no port)."""
    return item.port == 443 or port in (item.port, None)


def vigie_says_bad(item: Case, findings: list[Finding]) -> bool:
    return says_bad(item, {f.check_id for f in findings if on_the_site(item, f.port)})


@pytest.mark.parametrize(
    "group", ["dh-small-subgroup.pem", "dh-composite.pem", "dh2048.pem", "modp1024"]
)
def test_dh_group_structure_is_openssls(group: str) -> None:
    # Given badssl's DH groups and RFC 2409's 1024-bit MODP group
    if group == "modp1024":
        prime = MODP_1024_PRIME
    else:
        pem = (DATA / group).read_bytes()
        prime = serialization.load_pem_parameters(pem).parameter_numbers().p  # type: ignore[attr-defined]

    def openssl_says_prime(n: int) -> bool:
        argv = [require_program("openssl"), "prime", "-hex", format(n, "X")]
        return "is prime" in subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    # When vigie judges the modulus; Then it is a safe prime exactly when OpenSSL's own
    # primality test says p and (p-1)/2 are both prime
    safe = openssl_says_prime(prime) and openssl_says_prime((prime - 1) // 2)
    assert (dh_group_problem(prime) is None) is safe
    assert safe is (group in ("dh2048.pem", "modp1024"))


# --- the verdicts ---------------------------------------------------------------------------------


@pytest.mark.network
@pytest.mark.parametrize("item", SERVED, ids=lambda c: c.name)
def test_badssl_site(scanned: Scanned, item: Case) -> None:
    # Given badssl's site rebuilt on loopback; When vigie scans it
    findings = scanned.findings[item.name]
    verdict = vigie_says_bad(item, findings)
    ids = sorted({f.check_id for f in findings})
    # Then vigie gives badssl's verdict, except where it follows a clause badssl does not
    if item.disagree:
        assert verdict is not item.bad, f"now agrees with badssl: {item.disagree} ({ids})"
    else:
        assert verdict is item.bad, ids
    # And never says that a TLS site has no TLS
    assert "tls.missing" not in ids


@dataclass
class Agreement(PeerAgreement):
    """The HTTP peer suite's figures, with the recall on the sites badssl calls bad."""

    bad: int = 0  # comparable sites badssl calls bad
    caught: int = 0  # of which vigie flags
    left_out: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.caught / self.bad


def agreement(scanned: Scanned) -> Agreement:
    figures = Agreement(len(CASES), len(SERVED), 0)
    figures.left_out = [c.name for c in CASES if c.left_out]
    for item in SERVED:
        verdict = vigie_says_bad(item, scanned.findings[item.name])
        figures.bad += item.bad
        figures.caught += item.bad and verdict
        figures.tally(item.name, verdict, item.bad)
    return figures


@pytest.mark.network
def test_agreement_figures(scanned: Scanned) -> None:
    figures = agreement(scanned)
    print(
        f"\nbadssl cases {figures.cases}, comparable {figures.comparable} "
        f"({figures.coverage:.1%}), agreeing {figures.agreeing} ({figures.rate:.1%}); "
        f"recall on bad sites {figures.caught}/{figures.bad} ({figures.recall:.3f}); "
        f"missed {figures.missed}; false alarms {figures.false_alarms}; "
        f"left out {figures.left_out}; scan seconds {scanned.seconds}"
    )
    # Every disagreement is one the cases name with the clause vigie follows
    assert {c.name for c in SERVED if c.disagree} == {*figures.missed, *figures.false_alarms}
    assert figures.rate >= 0.97
    assert figures.recall == 1.0
    assert figures.coverage >= 0.70  # the rest: no vigie equivalent, or no server here
    # No site badssl serves over TLS is ever said to have no TLS
    assert not any(
        f.check_id == "tls.missing" for findings in scanned.findings.values() for f in findings
    )


# --- the real CLI: vigie init, targets import, scan --all ------------------------------------

DNS_SERVER = f"{NET}.250"


def _zone(world: BadsslWorld) -> str:
    records = "".join(f"{site.case.name} A {site.ip}\n" for site in world.sites.values())
    return (
        f"$ORIGIN {ZONE}.\n$TTL 300\n"
        f"@ SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n"
        f"@ NS ns\nns A {DNS_SERVER}\n{records}"
    )


@dataclass
class Swept:
    check_ids: dict[str, set[str]]  # site name -> the check IDs stored for its server
    all_ids: dict[str, set[str]]  # site name -> every check ID stored for its name
    seconds: float


@pytest.fixture(scope="module")
def swept(farm: BadsslWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    """``vigie scan --all`` over every site, as an operator runs it (DNS served by Knot)."""
    from click.testing import CliRunner

    from tests.dns_server import free_port, start_zone_server
    from vigie.cli import main
    from vigie.db.session import dispose_engines

    folder = tmp_path_factory.mktemp("badssl-cli")
    port = free_port([DNS_SERVER])
    registry = folder / "registry.csv"
    rows = [f"BadSSL,BSSL,rssi@badssl.example,{host(name)},no" for name in farm.sites]
    registry.write_text("agency,agency_code,agency_email,domain,mail_domain\n" + "\n".join(rows))
    config = folder / "vigie.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder / "vigie.db"}"\n'
        f'[scope]\nallow = ["{NET}.0/24"]\n'
        f'[dns]\nresolvers = ["{DNS_SERVER}:{port}"]\nnameserver_port = {port}\n'
        f'[tls]\nextra_ca_file = "{farm.ca_file}"\n'
        "[scan]\nports = [80, 443, 1003, 1010, 1011, 1012]\nprobe_timeout_s = 3\nconcurrency = 32\n"
    )

    def invoke(*args: str) -> None:
        result = CliRunner().invoke(main, ["--config", str(config), *args])
        dispose_engines()
        assert result.exit_code in (0, 1), result.output  # 1: findings at --fail-on

    with start_zone_server(folder, DNS_SERVER, port, {ZONE: _zone(farm)}):
        invoke("init")
        invoke("targets", "import", str(registry))
        started = time.monotonic()
        invoke("scan", "--all", "--quiet")
        seconds = time.monotonic() - started
    import sqlite3

    with sqlite3.connect(folder / "vigie.db") as connection:
        rows = connection.execute("select domain, check_id, port from finding").fetchall()
    check_ids: dict[str, set[str]] = {name: set() for name in farm.sites}
    all_ids: dict[str, set[str]] = {name: set() for name in farm.sites}
    for domain, check_id, port in rows:
        name = str(domain).removesuffix(f".{ZONE}")
        all_ids[name].add(str(check_id))
        if on_the_site(BY_NAME[name], port):
            check_ids[name].add(str(check_id))
    yield Swept(check_ids, all_ids, seconds)


@pytest.mark.network
@pytest.mark.slow
def test_vigie_scan_gives_the_same_verdicts(swept: Swept, scanned: Scanned) -> None:
    # Given every site swept by the real CLI (port stage, every family, the store)
    print(f"\nvigie scan --all over {len(swept.check_ids)} badssl sites: {swept.seconds:.1f} s")
    for item in SERVED:
        ids = swept.check_ids[item.name]
        # Then each site gets the verdict the TLS family gave alone, and never tls.missing
        assert says_bad(item, ids) is vigie_says_bad(item, scanned.findings[item.name]), (
            item.name,
            sorted(ids),
        )
        assert "tls.missing" not in swept.all_ids[item.name], item.name


@pytest.mark.network
@pytest.mark.parametrize("name", ["dh480", "dh512"])
def test_sslyze_per_suite_mode_also_sees_groups_the_client_refuses(
    farm: BadsslWorld, name: str
) -> None:
    # Given a server whose DH group OpenSSL's client refuses ("dh key too small")
    site = farm.sites[name]
    cfg = settings(farm, suite_enumeration="per_suite")
    # When vigie enumerates with sslyze's own one-suite-per-connection commands
    [result] = scan(cfg, [(HostTarget(host(name), site.ip), site.ports)])
    # Then the group is weak there too (sslyze keeps no key for such a suite)
    assert "tls.dh.weak" in {f.check_id for f in result.findings}


@pytest.mark.network
def test_a_certificate_list_over_one_record_is_probed_completely(scanned: Scanned) -> None:
    # Given 1000-sans: its certificate message (about 30 kB) spans several TLS records
    # (RFC 5246 §6.2.1, RFC 8446 §5.1: handshake messages may be fragmented)
    result = scanned.results["1000-sans"]
    # Then every probe completes, Heartbleed, CCS injection and ROBOT included
    problems = [f.evidence.get("detail") for f in result.findings if f.check_id.startswith("scan.")]
    assert result.complete and not problems, problems
