"""TLS verdicts against oracles vigie did not write (issue 17).

- Handshakes the client cannot complete (real nginx on 127.0.25.x): a
  certificate list over OpenSSL's client limit (10,000 names; ``openssl
  s_client`` fails the same way, ``openssl verify`` accepts the chain), NULL
  suites only, a 512-bit key. The port stays TLS, the TLS family says it could
  not finish (``scan.error``) or judges what it could, never ``tls.missing``.
- Chains a client must refuse, each judged by ``openssl verify -purpose
  sslserver`` or cryptography's unmodified web-PKI verifier, and served by
  nginx or ``openssl s_server``: a clientAuth-only leaf under an e-mail-only
  intermediate, a name-constrained intermediate, a leaf marked CA.
- The same verdict for a host scanned alone or in a sweep with a host that
  sends the intermediate it omits.
- Host names: the ``idna`` package (IDNA 2008), RFC 6125 §6.4.3's own
  examples, the Public Suffix List; STARTTLS endpoints against the MX host
  (Knot serves the zone, aiosmtpd the mail).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import idna
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from publicsuffixlist import PublicSuffixList

from tests.dns_server import free_port, start_zone_server
from tests.scanner.tls_fixtures import (
    CA_ISSUERS_URL,
    CA_KEY_USAGE,
    NOW,
    Found,
    Issued,
    NginxFarm,
    TlsSite,
    found,
    make_ca,
    make_cert,
    make_leaf,
    openssl_server,
    rsa_key,
    scan,
    smtp_server,
)
from tests.servers import require_program
from vigie.config import Settings
from vigie.model import HostTarget, OpenPort
from vigie.scanner.connection import probe_tls_context
from vigie.scanner.http._family import web_endpoints
from vigie.scanner.ports import answers_in_tls, identify_port
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.tls import (
    CertificateIndex,
    Trust,
    TrustAnchors,
    covers_hostname,
    evaluate_chain,
    load_trust,
    name_matches,
    to_ace,
)
from vigie.scanner.tls._resources import MOZILLA_STORE_NAME

NET = "127.0.25"


def ip(n: int) -> str:
    return f"{NET}.{n}"


def settings(ca_file: Path, resolver: str = "", **tls: object) -> Settings:
    data: dict[str, object] = {
        "scope": {"allow": [f"{NET}.0/24"]},
        "scan": {"max_rate_per_s": 100_000, "probe_timeout_s": 2},
        "tls": {"extra_ca_file": str(ca_file), **tls},
    }
    if resolver:
        data["dns"] = {"resolvers": [resolver]}
    return Settings.model_validate(data)


def identify(cfg: Settings, address: str, port: int) -> OpenPort:
    async def run() -> OpenPort:
        ctx = ProbeContext.from_settings(cfg)
        try:
            return await identify_port(ctx, address, port, "https")
        finally:
            await ctx.aclose()

    return asyncio.run(run())


HTTP_80 = OpenPort(80, service="http", banner="HTTP/1.1 200 OK")


# --- a PKI with the certificates clients must refuse ----------------------------------------


def _server_auth(*oids: x509.ObjectIdentifier) -> tuple[x509.ExtensionType, bool]:
    return x509.ExtendedKeyUsage(list(oids or [ExtendedKeyUsageOID.SERVER_AUTH])), False


def _san(*names: str) -> tuple[x509.ExtensionType, bool]:
    return x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False


def _ca(path_length: int | None = None) -> tuple[x509.ExtensionType, bool]:
    return x509.BasicConstraints(ca=True, path_length=path_length), True


def _signs_certificates() -> tuple[x509.ExtensionType, bool]:
    return CA_KEY_USAGE, True


def _leaf() -> tuple[x509.ExtensionType, bool]:
    return x509.BasicConstraints(ca=False, path_length=None), True


@dataclass
class World:
    folder: Path
    root: Issued
    intermediate: Issued
    key: rsa.RSAPrivateKey
    chains: dict[str, list[Issued]]  # case name -> chain as served (leaf first)

    @property
    def ca_file(self) -> Path:
        path = self.folder / "root.pem"
        path.write_bytes(self.root.pem)
        return path


def build_world(folder: Path) -> World:
    root = make_ca("standards root", rsa_key())
    intermediate = make_ca("standards intermediate", rsa_key(), issuer=root)
    key = rsa_key()
    email_only = make_cert(
        "e-mail only intermediate",
        rsa_key(),
        root,
        [_ca(), _signs_certificates(), _server_auth(ExtendedKeyUsageOID.EMAIL_PROTECTION)],
    )
    constrained = make_cert(
        "constrained intermediate",
        rsa_key(),
        root,
        [
            _ca(),
            _signs_certificates(),
            (
                x509.NameConstraints(
                    permitted_subtrees=[x509.DNSName("allowed.vigie.test")], excluded_subtrees=None
                ),
                True,
            ),
        ],
    )
    client_leaf = make_cert(
        "client.vigie.test",
        key,
        email_only,
        [_leaf(), _san("client.vigie.test"), _server_auth(ExtendedKeyUsageOID.CLIENT_AUTH)],
    )
    sub = make_ca("standards sub-intermediate", rsa_key(), issuer=intermediate)
    ca_leaf = make_cert(
        "ca-leaf.vigie.test", key, intermediate, [_ca(), _san("ca-leaf.vigie.test")]
    )
    chains = {
        "client-auth": [client_leaf, email_only],
        "outside-constraints": [
            make_cert("nc.vigie.test", key, constrained, [_leaf(), _san("nc.vigie.test")]),
            constrained,
        ],
        "inside-constraints": [
            make_cert(
                "www.allowed.vigie.test",
                key,
                constrained,
                [_leaf(), _san("www.allowed.vigie.test"), _server_auth()],
            ),
            constrained,
        ],
        "ca-leaf": [ca_leaf, intermediate],
        "with-intermediate": [make_leaf(["full.vigie.test"], key, intermediate), intermediate],
        "incomplete-aia": [
            make_leaf(["aia.vigie.test"], key, intermediate, ca_issuers=CA_ISSUERS_URL)
        ],
        "incomplete-bare": [make_leaf(["bare.vigie.test"], key, intermediate)],
        # leaf + its issuer, whose own issuer (the intermediate) is left out: a gap
        # that no caIssuers URL announces
        "gap": [make_leaf(["gap.vigie.test"], key, sub), sub],
    }
    return World(folder, root, intermediate, key, chains)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("standards-pki"))


def openssl_verify(world: World, chain: list[Issued]) -> bool:
    """``openssl verify -purpose sslserver``: does OpenSSL's own path validation accept it?"""
    openssl = require_program("openssl")
    leaf, rest = world.folder / "verify-leaf.pem", world.folder / "verify-untrusted.pem"
    leaf.write_bytes(chain[0].pem)
    rest.write_bytes(b"".join(c.pem for c in chain[1:]) or world.intermediate.pem)
    argv = [openssl, "verify", "-purpose", "sslserver", "-CAfile", str(world.ca_file)]
    if len(chain) > 1:
        argv += ["-untrusted", str(rest)]
    return subprocess.run([*argv, str(leaf)], capture_output=True).returncode == 0


def webpki_accepts(world: World, chain: list[Issued], name: str) -> bool:
    """cryptography's verifier with its own, unmodified CA/B web-PKI policy."""
    builder = verification.PolicyBuilder().store(verification.Store([world.root.cert]))
    verifier = builder.time(NOW).build_server_verifier(x509.DNSName(name))
    try:
        verifier.verify(chain[0].cert, [c.cert for c in chain[1:]])
    except verification.VerificationError:
        return False
    return True


# --- pure: chains a client must refuse ----------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("client-auth", "client.vigie.test"),
        ("outside-constraints", "nc.vigie.test"),
        ("ca-leaf", "ca-leaf.vigie.test"),
    ],
)
def test_chains_a_client_refuses_are_untrusted(world: World, case: str, name: str) -> None:
    # Given a chain that reaches the trusted root but breaks a path-validation rule
    chain = world.chains[case]
    anchors = TrustAnchors.from_stores({"test": [world.root.cert]})
    # When vigie judges it
    verdict = evaluate_chain([c.cert for c in chain], anchors, CertificateIndex(), NOW)
    # Then it is untrusted, with the reason, as cryptography's own web-PKI policy says
    assert not webpki_accepts(world, chain, name)
    assert verdict.trust is Trust.UNTRUSTED and verdict.refusal
    # And OpenSSL agrees where it checks the same rule (EKU, name constraints)
    if case != "ca-leaf":
        assert not openssl_verify(world, chain)


def test_chain_inside_name_constraints_is_trusted(world: World) -> None:
    chain = world.chains["inside-constraints"]
    anchors = TrustAnchors.from_stores({"test": [world.root.cert]})
    verdict = evaluate_chain([c.cert for c in chain], anchors, CertificateIndex(), NOW)
    assert openssl_verify(world, chain) and webpki_accepts(world, chain, "www.allowed.vigie.test")
    assert verdict.trust is Trust.TRUSTED and not verdict.refusal


def openssl_verify_error(world: World, chain: list[Issued]) -> int:
    """OpenSSL's verify error code for ``chain`` (0 when it validates)."""
    openssl = require_program("openssl")
    leaf, rest = world.folder / "code-leaf.pem", world.folder / "code-untrusted.pem"
    leaf.write_bytes(chain[0].pem)
    rest.write_bytes(b"".join(c.pem for c in chain[1:]))
    argv = [openssl, "verify", "-CAfile", str(world.ca_file)]
    if len(chain) > 1:
        argv += ["-untrusted", str(rest)]
    done = subprocess.run([*argv, str(leaf)], capture_output=True, text=True)
    out = done.stdout + done.stderr
    codes = [int(part.split()[0]) for part in out.split("error ")[1:] if part[:1].isdigit()]
    return codes[0] if codes else 0


def test_chain_defects_follow_openssl_verify_codes(world: World) -> None:
    # Given chains that stop short of the trusted root, and one that ends on a root nobody
    # trusts; OpenSSL names the defect: 20 = the issuer of the last certificate is nowhere
    # (the server left it out), 19 = a self-signed root in the chain is not trusted,
    # 18 = the leaf is self-signed
    other_root = make_ca("standards unknown root", rsa_key())
    cases = [
        ([*world.chains["incomplete-bare"]], 20, Trust.INCOMPLETE),
        ([*world.chains["incomplete-aia"]], 20, Trust.INCOMPLETE),
        ([make_leaf(["r.vigie.test"], world.key, other_root), other_root], 19, Trust.UNTRUSTED),
        ([make_leaf(["s.vigie.test"], world.key, None)], 18, Trust.SELF_SIGNED),
        ([*world.chains["with-intermediate"]], 0, Trust.TRUSTED),
    ]
    anchors = TrustAnchors.from_stores({"test": [world.root.cert]})
    for chain, code, trust in cases:
        # Then vigie's verdict is the one OpenSSL's code names
        assert openssl_verify_error(world, chain) == code
        verdict = evaluate_chain([c.cert for c in chain], anchors, CertificateIndex(), NOW)
        assert verdict.trust is trust, chain[0].cert.subject


def test_trust_anchors_are_one_store() -> None:
    # Given the default configuration (no extra CA file)
    material = load_trust(None)
    # Then the anchors are exactly certifi's copy of the Mozilla bundle, no other store beside it
    bundle = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())
    sha256 = hashes.SHA256()
    assert {c.fingerprint(sha256) for c in material.anchors.roots} == {
        c.fingerprint(sha256) for c in bundle
    }
    stores = {store for stores in material.anchors.stores_of.values() for store in stores}
    assert stores == {MOZILLA_STORE_NAME}


# --- pure: host names ---------------------------------------------------------------------------


def _cert_for(world: World, *names: str) -> x509.Certificate:
    return make_leaf(list(names), world.key, world.intermediate).cert


def test_idna_2008_keeps_sharp_s(world: World) -> None:
    # Given the idna package's IDNA 2008 reading of faß.de (IDNA 2003 maps ß to ss)
    ace = idna.encode("faß.de", uts46=True).decode()
    assert ace == "xn--fa-hia.de" != "fass.de"
    # Then vigie's A-label is the same, and a certificate for fass.de does not cover faß.de
    assert to_ace("faß.de") == ace
    assert not covers_hostname(_cert_for(world, "fass.de"), "faß.de")
    assert covers_hostname(_cert_for(world, ace), "faß.de")
    assert covers_hostname(_cert_for(world, "*.xn--fa-hia.de"), "www.faß.de")


@pytest.mark.parametrize(
    ("pattern", "hostname", "covered"),
    [
        # RFC 6125 §6.4.3: "*.example.com" matches "foo.example.com" but not
        # "bar.foo.example.com" or "example.com".
        ("*.example.com", "foo.example.com", True),
        ("*.example.com", "bar.foo.example.com", False),
        ("*.example.com", "example.com", False),
        # §6.4.3 leaves "baz*.example.net", "*baz.example.net", "b*z.example.net" to the
        # client; CA/B BR §7.1.4.2 forbids them and browsers match none: neither does vigie.
        ("baz*.example.net", "baz1.example.net", False),
        ("*baz.example.net", "foobaz.example.net", False),
        ("b*z.example.net", "buzz.example.net", False),
        # §6.4.1: case-insensitive; the root dot is not part of the name
        ("WWW.Example.COM", "www.example.com.", True),
    ],
)
def test_rfc_6125_examples(pattern: str, hostname: str, covered: bool) -> None:
    assert name_matches(pattern, hostname) is covered


@pytest.mark.parametrize("suffix", ["co.uk", "gouv.ml", "gouv.fr", "com.br"])
def test_no_wildcard_over_a_public_suffix(world: World, suffix: str) -> None:
    # Given a suffix the Public Suffix List (ICANN section) calls public
    assert PublicSuffixList(only_icann=True).is_public(suffix)
    # Then "*.suffix" covers no name under it (CA/B BR §3.2.2.6)
    assert not covers_hostname(_cert_for(world, f"*.{suffix}"), f"vigie.{suffix}")
    # While one label further down, under a registrable domain, the wildcard holds
    assert covers_hostname(_cert_for(world, f"*.vigie.{suffix}"), f"www.vigie.{suffix}")


# --- real servers -------------------------------------------------------------------------------


@dataclass
class Farm:
    world: World
    huge: Issued

    @property
    def cfg(self) -> Settings:
        return settings(self.world.ca_file)


def _key_512(folder: Path) -> rsa.RSAPrivateKey:
    """cryptography refuses to generate keys under 1024 bits: OpenSSL makes this one."""
    path = folder / "rsa512.pem"
    subprocess.run(
        [require_program("openssl"), "genrsa", "-out", str(path), "512"],
        check=True,
        capture_output=True,
    )
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@pytest.fixture(scope="module")
def farm(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    folder = tmp_path_factory.mktemp("standards-nginx")
    names = ["huge.vigie.test", *(f"n{i}.huge.vigie.test" for i in range(10_000))]
    huge = make_leaf(names, world.key, world.intermediate)
    weak = make_leaf(["k512.vigie.test"], _key_512(folder), world.intermediate)
    sites = [
        TlsSite(ip(1), chain=[huge, world.intermediate]),
        TlsSite(ip(1), port=80),
        TlsSite(
            ip(2),
            chain=[
                make_leaf(["null.vigie.test"], world.key, world.intermediate),
                world.intermediate,
            ],
            protocols="TLSv1.2",
            ciphers="NULL-SHA256:NULL-SHA:@SECLEVEL=0",
        ),
        TlsSite(ip(2), port=80),
        TlsSite(ip(3), chain=[weak, world.intermediate], ciphers="ECDHE+AESGCM:@SECLEVEL=0"),
        TlsSite(ip(3), port=80),
        TlsSite(ip(4), port=443),  # plain HTTP on 443
    ]
    for n, case in enumerate(
        [
            "client-auth",
            "outside-constraints",
            "inside-constraints",
            "with-intermediate",
            "incomplete-aia",
            "incomplete-bare",
            "gap",
        ],
        start=10,
    ):
        sites.append(TlsSite(ip(n), chain=world.chains[case]))
    with NginxFarm(folder, sites).run():
        yield Farm(world, huge)


@pytest.mark.network
def test_certificate_list_over_the_client_limit_is_a_scan_error_not_missing_tls(
    farm: Farm,
) -> None:
    # Given a valid HTTPS site whose certificate has 10,000 names (OpenSSL accepts the chain)
    assert openssl_verify(farm.world, [farm.huge, farm.world.intermediate])
    # And OpenSSL's own client cannot complete the handshake (its certificate list limit)
    s_client = subprocess.run(
        [require_program("openssl"), "s_client", "-connect", f"{ip(1)}:443"],
        input=b"",
        capture_output=True,
        timeout=10,
    )
    assert b"excessive message size" in s_client.stdout + s_client.stderr
    # When the port stage identifies 443 and the TLS family scans it next to HTTP on 80
    port = identify(farm.cfg, ip(1), 443)
    [result] = scan(farm.cfg, [(HostTarget("huge.vigie.test", ip(1)), [HTTP_80, port])])
    # Then the port stays TLS (so HTTP judges it as HTTPS), and the family says it could
    # not complete the handshake, never that TLS is missing
    assert port.tls and [e.scheme for e in web_endpoints([port])] == ["https"]
    assert found(result) == {("scan.error", "tls:443")}
    assert "excessive message size" in result.findings[0].evidence["detail"]
    assert not result.complete
    # And sslyze's own per-suite mode, whose connectivity test fails there, says the same
    per_suite = settings(farm.world.ca_file, suite_enumeration="per_suite")
    [same] = scan(per_suite, [(HostTarget("huge.vigie.test", ip(1)), [HTTP_80, port])])
    assert found(same) == found(result) and "excessive message size" in str(same.findings)


@pytest.mark.network
@pytest.mark.parametrize(
    ("n", "domain", "expected"),
    [
        (
            2,
            "null.vigie.test",
            {
                ("tls.cipher.weak", "TLS_RSA_WITH_NULL_SHA256"),
                ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_NULL_SHA256"),
                ("tls.cipher.weak", "TLS_RSA_WITH_NULL_SHA"),
                ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_NULL_SHA"),
                ("tls.protocol.no_tls1_3", ""),
            },
        ),
        (3, "k512.vigie.test", {("tls.cert.weak_key", ""), ("tls.protocol.no_tls1_3", "")}),
    ],
)
def test_servers_python_cannot_talk_to_stay_tls(
    farm: Farm, n: int, domain: str, expected: Found
) -> None:
    # Given a server Python's TLS client cannot complete a handshake with
    with socket.create_connection((ip(n), 443), timeout=5) as raw, pytest.raises(ssl.SSLError):
        probe_tls_context().wrap_socket(raw).do_handshake()
    # When the port stage identifies 443
    port = identify(farm.cfg, ip(n), 443)
    # Then it is TLS (no plain-HTTP reading, hence no http.no_https_redirect on it)
    assert port.tls and port.banner == ""
    assert [e.scheme for e in web_endpoints([HTTP_80, port])] == ["http", "https"]
    # And the TLS family (sslyze's legacy OpenSSL talks to it) judges what it serves
    [result] = scan(farm.cfg, [(HostTarget(domain, ip(n)), [HTTP_80, port])])
    judged = {f for f in found(result) if f[0] != "scan.error"}
    assert judged == expected
    assert ("tls.missing", "") not in found(result)


@pytest.mark.network
def test_plain_http_on_443_is_still_plain(farm: Farm) -> None:
    port = identify(farm.cfg, ip(4), 443)
    assert not port.tls and port.banner.startswith("HTTP/1.1 200")

    async def raw() -> bool:
        ctx = ProbeContext.from_settings(farm.cfg)
        try:
            return await answers_in_tls(ctx, ip(4), 443)
        finally:
            await ctx.aclose()

    assert asyncio.run(raw()) is False


@pytest.mark.network
@pytest.mark.parametrize(
    ("n", "domain", "expected"),
    [
        (10, "client.vigie.test", {("tls.cert.untrusted", "")}),
        (11, "nc.vigie.test", {("tls.cert.untrusted", "")}),
        (12, "www.allowed.vigie.test", set()),
    ],
)
def test_path_validation_on_real_servers(farm: Farm, n: int, domain: str, expected: Found) -> None:
    # Given nginx serving the chain; When vigie scans it
    [result] = scan(farm.cfg, [(HostTarget(domain, ip(n)), [OpenPort(443)])])
    # Then the verdict is OpenSSL's (openssl verify -purpose sslserver on the same chain)
    case = {10: "client-auth", 11: "outside-constraints", 12: "inside-constraints"}[n]
    assert openssl_verify(farm.world, farm.world.chains[case]) is (not expected)
    assert {f for f in found(result) if f[0].startswith("tls.cert")} == expected


@pytest.mark.network
def test_ca_leaf_on_openssl_s_server_is_untrusted(world: World, tmp_path: Path) -> None:
    # Given openssl s_server sending a leaf marked CA:TRUE (cryptography's web-PKI refuses it)
    chain = world.chains["ca-leaf"]
    assert not webpki_accepts(world, chain, "ca-leaf.vigie.test")
    with openssl_server(tmp_path, ip(20), chain, "-no_tls1_3", "-cipher", "ECDHE+AESGCM"):
        cfg = settings(world.ca_file, connections_per_server=1)
        [result] = scan(cfg, [(HostTarget("ca-leaf.vigie.test", ip(20)), [OpenPort(443)])])
    # Then vigie calls it untrusted and says why
    [untrusted] = [f for f in result.findings if f.check_id == "tls.cert.untrusted"]
    assert "cA must not be asserted" in untrusted.evidence["refused_because"]


@pytest.mark.network
@pytest.mark.parametrize(
    ("n", "domain", "verdict"),
    [
        (14, "aia.vigie.test", "tls.cert.incomplete_chain"),
        (15, "bare.vigie.test", "tls.cert.incomplete_chain"),
        (16, "gap.vigie.test", "tls.cert.untrusted"),
    ],
)
def test_verdict_does_not_depend_on_the_other_hosts_of_the_sweep(
    farm: Farm, n: int, domain: str, verdict: str
) -> None:
    # Given a server that omits its intermediate (a lone leaf with and without an AIA
    # caIssuers URL; a leaf and sub-intermediate without the intermediate above them)
    target = (HostTarget(domain, ip(n)), [OpenPort(443)])
    other = (HostTarget("full.vigie.test", ip(13)), [OpenPort(443)])
    # When it is scanned alone, and in one sweep with a host that sends that intermediate
    [alone] = scan(farm.cfg, [target])
    together, sender = scan(farm.cfg, [target, other])
    # Then both give the same verdict: the chain alone decides
    assert found(alone) == found(together) == {(verdict, "")}
    assert found(sender) == set()


# --- STARTTLS: the MX host's name -------------------------------------------------------------


@pytest.mark.network
def test_starttls_certificate_is_matched_against_the_mx_host(world: World, tmp_path: Path) -> None:
    # Given vigie.test whose MX is mx.vigie.test at 127.0.25.40, where SMTP offers STARTTLS
    # (and IMAPS listens) with a certificate for mx.vigie.test only, and 127.0.25.41
    # offering one for a stranger
    mail, stranger, dns = ip(40), ip(41), ip(53)
    zone = (
        "$ORIGIN vigie.test.\n$TTL 300\n"
        "@ SOA ns.vigie.test. hostmaster.vigie.test. 1 3600 600 86400 300\n"
        f"@ NS ns\nns A {dns}\n@ MX 10 mx\nmx A {mail}\n"
    )
    port = free_port([dns])
    (tmp_path / "imaps").mkdir()
    mx_chain = [make_leaf(["mx.vigie.test"], world.key, world.intermediate), world.intermediate]
    other_chain = [
        make_leaf(["mail.other.test"], world.key, world.intermediate),
        world.intermediate,
    ]
    with (
        start_zone_server(tmp_path, dns, port, {"vigie.test": zone}) as knot,
        smtp_server(mail, 25, mx_chain, tmp_path),
        smtp_server(stranger, 25, other_chain, tmp_path),
        # IMAPS (implicit TLS, RFC 8314) with the same certificate: nginx's TLS is TLS
        NginxFarm(tmp_path / "imaps", [TlsSite(mail, port=993, chain=mx_chain)]).run(),
    ):
        cfg = settings(world.ca_file, resolver=knot.resolver)
        at_mx, elsewhere = scan(
            cfg,
            [
                (HostTarget("vigie.test", mail), [OpenPort(25), OpenPort(993)]),
                (HostTarget("vigie.test", stranger), [OpenPort(25)]),
            ],
        )
    # Then the MX host's certificate covers the endpoint (no mismatch against vigie.test)
    assert found(at_mx) == set() and at_mx.complete
    # And a certificate for neither the domain nor its MX host at that address is a mismatch
    assert found(elsewhere) == {("tls.cert.hostname_mismatch", "")}
    [mismatch] = elsewhere.findings
    assert mismatch.evidence["accepted_names"] == ["vigie.test"]
    assert mismatch.evidence["starttls"] == "smtp"


def test_validity_window_of_the_verdict(world: World) -> None:
    # An expired leaf under a valid path is expired, not untrusted: dates have their own check
    leaf = make_leaf(
        ["old.vigie.test"],
        world.key,
        world.intermediate,
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=2),
    )
    anchors = TrustAnchors.from_stores({"test": [world.root.cert]})
    verdict = evaluate_chain([leaf.cert, world.intermediate.cert], anchors, CertificateIndex(), NOW)
    assert verdict.trust is Trust.TRUSTED


def self_signed_root(
    name: x509.Name, key: rsa.RSAPrivateKey, extensions: list[tuple[x509.ExtensionType, bool]]
) -> x509.Certificate:
    """A self-signed certificate named ``name`` with exactly ``extensions``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=900))
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(key, hashes.SHA256())


# --- roots whose private keys are public ----------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data" / "tls"


def test_chain_under_a_published_key_root_is_untrusted(world: World) -> None:
    # Given the Superfish root and its private key (published in 2015; the key file is the
    # public one), and a lone leaf it signed
    from vigie.scanner.tls._certificates import compromised_roots

    [superfish] = [c for c in compromised_roots() if "Superfish" in c.subject.rfc4514_string()]
    key = serialization.load_pem_private_key((DATA / "superfish.key").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    leaf = make_leaf(["fish.vigie.test"], world.key, Issued(superfish, key))
    leaf.cert.verify_directly_issued_by(superfish)  # oracle: cryptography says who signed it
    # When vigie judges it, even with that root among the anchors
    pinned = TrustAnchors.from_stores({"test": [world.root.cert, superfish]})
    for anchors in (TrustAnchors.from_stores({"test": [world.root.cert]}), pinned):
        verdict = evaluate_chain([leaf.cert], anchors, CertificateIndex(), NOW)
        # Then it is untrusted, and the evidence names the root
        assert verdict.trust is Trust.UNTRUSTED and "Superfish" in verdict.refusal
    # And a look-alike root with the same name but its own key is judged like any other
    own_key = rsa_key()
    lookalike = self_signed_root(superfish.subject, own_key, [_ca()])
    other = make_leaf(["fish.vigie.test"], world.key, Issued(lookalike, own_key))
    assert other.cert.issuer == leaf.cert.issuer
    plain = TrustAnchors.from_stores({"test": [world.root.cert]})
    verdict = evaluate_chain([other.cert], plain, CertificateIndex(), NOW)
    assert verdict.trust is Trust.INCOMPLETE and not verdict.refusal


def test_v3_root_without_basic_constraints_is_refused_as_by_openssl(
    world: World, tmp_path: Path
) -> None:
    # Given a private root made without basicConstraints (version 3), trusted by
    # configuration, and a leaf it issued
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bare private root")])
    root = self_signed_root(name, key, [])
    leaf = make_leaf(["bare-root.vigie.test"], world.key, Issued(root, key))
    # Then OpenSSL refuses it for a TLS server (its issuer is no CA), and so does vigie
    (tmp_path / "root.pem").write_bytes(Issued(root, key).pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.pem)
    openssl = require_program("openssl")
    argv = [openssl, "verify", "-purpose", "sslserver", "-CAfile", str(tmp_path / "root.pem")]
    done = subprocess.run([*argv, str(tmp_path / "leaf.pem")], capture_output=True, text=True)
    assert done.returncode != 0 and "invalid CA certificate" in done.stdout + done.stderr
    anchors = TrustAnchors.from_stores({"test": [root]})
    verdict = evaluate_chain([leaf.cert], anchors, CertificateIndex(), NOW)
    assert verdict.trust is Trust.UNTRUSTED and "basicConstraints" in verdict.refusal


@pytest.mark.network
def test_sni_is_the_idna_2008_name(world: World, tmp_path: Path) -> None:
    # Given openssl s_server answering SNI xn--fa-hia.vigie.test (faß, IDNA 2008) with a
    # certificate for that name, and any other SNI (fass.vigie.test, the IDNA 2003 reading)
    # with a certificate for fass.vigie.test
    ace = idna.encode("faß.vigie.test", uts46=True).decode()
    sharp = make_leaf([ace], world.key, world.intermediate)
    double_s = make_leaf(["fass.vigie.test"], world.key, world.intermediate)
    (tmp_path / "sharp.pem").write_bytes(sharp.pem + world.intermediate.pem)
    (tmp_path / "sharp.key").write_bytes(sharp.key_pem)
    extra = ["-servername", ace, "-cert2", str(tmp_path / "sharp.pem")]
    extra += ["-key2", str(tmp_path / "sharp.key"), "-no_tls1_3", "-cipher", "ECDHE+AESGCM"]
    with openssl_server(tmp_path, ip(21), [double_s, world.intermediate], *extra):
        cfg = settings(world.ca_file, connections_per_server=1)
        [result] = scan(cfg, [(HostTarget("faß.vigie.test", ip(21)), [OpenPort(443)])])
    # Then vigie asked for the IDNA 2008 name and got the certificate that covers it (s_server
    # sends no intermediate with -cert2: the only defect left is that one)
    assert {f for f in found(result) if f[0].startswith("tls.cert")} == {
        ("tls.cert.incomplete_chain", "")
    }
    [incomplete] = [f for f in result.findings if f.check_id == "tls.cert.incomplete_chain"]
    assert incomplete.evidence["certificates"][0]["sans"] == [ace]
