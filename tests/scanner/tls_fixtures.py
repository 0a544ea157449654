"""Certificates and a real nginx for the TLS tests: one server block per case.

Every case gets its own 127.0.4.x address. Certificates are made with
``cryptography`` (trustme cannot make the broken ones: SHA-1 signatures,
1024-bit keys, expired or future validity windows). nginx loads them under a
private OpenSSL configuration at security level 0, because Debian's OpenSSL 3
otherwise refuses to load a 1024-bit key or a SHA-1 signed certificate, and to
speak TLS 1.0/1.1; each server block then narrows protocols and suites itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from tests.servers import require_program, running, wait_for_port
from vigie.config import Settings
from vigie.model import FamilyResult, HostTarget, OpenPort
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.tls import check_tls

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
# Where the test intermediate would be published (never fetched: vigie reads the URL only).
CA_ISSUERS_URL = "http://pki.vigie.test/intermediate.cer"

# RFC 2409 section 6.2, the 1024-bit MODP group: a fixed prime, so the weak
# DH case needs no slow parameter generation.
MODP_1024_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vigie tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


# What a CA's key may do: sign certificates and CRLs (RFC 5280 §4.2.1.3).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def make_ca(
    common_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: Issued | None = None,
    path_length: int | None = None,
) -> Issued:
    """A CA certificate: self-signed root when ``issuer`` is None, else an intermediate."""
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 30 * DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_leaf(
    hostnames: Sequence[str],
    key: CertificateIssuerPrivateKeyTypes,
    issuer: Issued | None,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    digest: hashes.HashAlgorithm | None = None,
    ca_issuers: str | None = None,
) -> Issued:
    """A server certificate for ``hostnames``; self-signed when ``issuer`` is None.

    ``ca_issuers``: an Authority Information Access caIssuers URL, as public CAs
    put in every leaf (CA/B BR §7.1.2.7.7).
    """
    subject = _name(hostnames[0])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - 10 * DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if ca_issuers is not None:
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, digest or hashes.SHA256()), key)


def weak_dh_params_pem() -> bytes:
    """The RFC 2409 1024-bit group as PKCS#3 PEM, for nginx's ``ssl_dhparam``."""
    numbers = dh.DHParameterNumbers(MODP_1024_PRIME, 2)
    return numbers.parameters().parameter_bytes(
        serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3
    )


@dataclass
class TlsSite:
    """One nginx server block: a TLS listener on ``ip:port`` (or plain HTTP when no cert)."""

    ip: str
    port: int = 443
    chain: Sequence[Issued] = ()  # leaf first, as the server sends it
    protocols: str = "TLSv1.2 TLSv1.3"
    ciphers: str = "ECDHE+AESGCM:ECDHE+CHACHA20"
    dhparam: bytes | None = None
    extra: str = ""

    def block(self, folder: Path, name: str) -> str:
        if not self.chain:
            body = self.extra or "return 200 'plain\\n';"  # extra: the whole plain-HTTP server
            return f"server {{ listen {self.ip}:{self.port}; {body} }}\n"
        chain_path = folder / f"{name}.chain.pem"
        key_path = folder / f"{name}.key.pem"
        chain_path.write_bytes(b"".join(item.pem for item in self.chain))
        key_path.write_bytes(self.chain[0].key_pem)
        lines = [
            f"listen {self.ip}:{self.port} ssl;",
            f"ssl_certificate {chain_path};",
            f"ssl_certificate_key {key_path};",
            f"ssl_protocols {self.protocols};",
            f"ssl_ciphers '{self.ciphers}';",
            "ssl_prefer_server_ciphers on;",
        ]
        if self.dhparam is not None:
            dh_path = folder / f"{name}.dh.pem"
            dh_path.write_bytes(self.dhparam)
            lines.append(f"ssl_dhparam {dh_path};")
        if self.extra:
            lines.append(self.extra)
        lines.append("return 200 'ok\\n';")
        return "server {\n" + textwrap.indent("\n".join(lines), "    ") + "\n}\n"


# Security level 0 for every TLS context nginx creates: see the module docstring.
_OPENSSL_CNF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
CipherString = DEFAULT:@SECLEVEL=0
MinProtocol = TLSv1
"""


@dataclass
class NginxFarm:
    """Many server blocks in one nginx process, written under ``folder``."""

    folder: Path
    sites: list[TlsSite] = field(default_factory=list)

    def config(self) -> str:
        blocks = "".join(site.block(self.folder, f"site{i}") for i, site in enumerate(self.sites))
        return (
            "user root;\ndaemon off;\nmaster_process on;\nworker_processes 1;\n"
            f"pid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n"
            f"    access_log off;\n    client_body_temp_path {self.folder}/body;\n"
            f"    proxy_temp_path {self.folder}/proxy;\n    fastcgi_temp_path {self.folder}/fcgi;\n"
            f"    uwsgi_temp_path {self.folder}/uwsgi;\n    scgi_temp_path {self.folder}/scgi;\n"
            f"{textwrap.indent(blocks, '    ')}}}\n"
        )

    @contextmanager
    def run(self) -> Iterator[None]:
        nginx = require_program("nginx")
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        openssl_cnf = self.folder / "openssl.cnf"
        openssl_cnf.write_text(_OPENSSL_CNF)
        first = self.sites[0]
        with running(
            [nginx, "-c", str(conf), "-p", str(self.folder)],
            listen=(first.ip, first.port),
            log=self.folder / "nginx.out",
            env={"OPENSSL_CONF": str(openssl_cnf)},
        ):
            for site in self.sites:
                wait_for_port(site.ip, site.port)
            yield


def openssl_signed(
    folder: Path,
    subject: str,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: Issued,
    digest: str,
    extensions: Sequence[str],
    days: int = 90,
) -> Issued:
    """A certificate signed by the openssl command: cryptography refuses to sign with MD5 or SHA-1.

    ``subject`` in openssl's ``/CN=...`` form; ``extensions`` as ``openssl req -addext`` values.
    """
    openssl = require_program("openssl")
    stem = folder / f"{subject.strip('/').replace('/', '_').replace('=', '-')}.{digest}"
    key_path, csr_path, cert_path = (stem.with_suffix(s) for s in (".key", ".csr", ".pem"))
    ca_path, ca_key_path = stem.with_suffix(".ca.pem"), stem.with_suffix(".ca.key")
    key_path.write_bytes(Issued(issuer.cert, key).key_pem)
    ca_path.write_bytes(issuer.pem)
    ca_key_path.write_bytes(issuer.key_pem)
    addext = [arg for extension in extensions for arg in ("-addext", extension)]
    subprocess.run(
        [openssl, "req", "-new", "-key", str(key_path), "-subj", subject, *addext, "-out", str(csr_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [openssl, "x509", "-req", "-in", str(csr_path), "-CA", str(ca_path), "-CAkey", str(ca_key_path),
         f"-{digest}", "-days", str(days), "-copy_extensions", "copy", "-out", str(cert_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Issued(x509.load_pem_x509_certificate(cert_path.read_bytes()), key)


def openssl_signed_leaf(
    folder: Path, hostnames: Sequence[str], key: rsa.RSAPrivateKey, issuer: Issued, digest: str
) -> Issued:
    """A leaf for ``hostnames`` signed with ``digest`` (md5, sha1) by the openssl command."""
    sans = ",".join(f"DNS:{h}" for h in hostnames)
    return openssl_signed(
        folder, f"/CN={hostnames[0]}", key, issuer, digest, [f"subjectAltName={sans}"]
    )


@dataclass
class TlsCase:
    """One misconfiguration served on its own address, with the findings it must produce."""

    name: str
    ip: str
    sites: list[TlsSite]
    open_ports: list[int]
    expected: set[tuple[str, str]]  # (check ID, discriminator)
    domain: str = ""


@dataclass
class Pki:
    """A root and an intermediate the extra CA file trusts, and a CA nobody trusts."""

    folder: Path
    root: Issued = field(init=False)
    intermediate: Issued = field(init=False)
    other_intermediate: Issued = field(init=False)
    server_key: rsa.RSAPrivateKey = field(init=False)

    def __post_init__(self) -> None:
        self.root = make_ca("vigie test root", rsa_key())
        self.intermediate = make_ca("vigie test intermediate", rsa_key(), issuer=self.root)
        other_root = make_ca("unknown root", rsa_key())
        self.other_intermediate = make_ca("unknown intermediate", rsa_key(), issuer=other_root)
        self.server_key = rsa_key()  # one key for every leaf: key generation is slow

    def leaf(self, host: str, **kwargs: object) -> Issued:
        return make_leaf([host], self.server_key, self.intermediate, **kwargs)  # type: ignore[arg-type]

    def chain(self, host: str, **kwargs: object) -> list[Issued]:
        return [self.leaf(host, **kwargs), self.intermediate]

    def extra_ca_file(self, *, with_intermediate: bool = False) -> Path:
        path = self.folder / ("ca-with-intermediate.pem" if with_intermediate else "ca.pem")
        path.write_bytes(self.root.pem + (self.intermediate.pem if with_intermediate else b""))
        return path


def address(n: int) -> str:
    return f"127.0.4.{n}"


def host(name: str) -> str:
    return f"{name}.vigie.test"


def standard_cases(pki: Pki) -> list[TlsCase]:
    """The misconfigurations nginx can serve on Debian's OpenSSL 3, one per address."""

    def case(name: str, n: int, expected: set[tuple[str, str]], **site: Any) -> TlsCase:
        chain = site.pop("chain", None) or pki.chain(host(name))
        return TlsCase(
            name,
            address(n),
            [TlsSite(address(n), chain=chain, **site)],
            [443],
            expected,
            host(name),
        )

    leaf_1024 = make_leaf([host("weak-key")], rsa_key(1024), pki.intermediate)
    md5_leaf = openssl_signed_leaf(
        pki.folder, [host("md5")], pki.server_key, pki.intermediate, "md5"
    )
    sha1_leaf = openssl_signed_leaf(
        pki.folder, [host("sha1")], pki.server_key, pki.intermediate, "sha1"
    )
    good = case("good", 10, set())
    good.sites.append(TlsSite(address(10), port=80))
    good.open_ports = [80, 443]
    return [
        good,
        case("expired", 11, {("tls.cert.expired", "")}, chain=pki.chain(host("expired"), not_before=NOW - 400 * DAY, not_after=NOW - 2 * DAY)),
        case("future", 12, {("tls.cert.not_yet_valid", "")}, chain=pki.chain(host("future"), not_before=NOW + 5 * DAY, not_after=NOW + 300 * DAY)),
        case("expiring", 13, {("tls.cert.expiring_soon", "")}, chain=pki.chain(host("expiring"), not_after=NOW + 10 * DAY)),
        case("self-signed", 14, {("tls.cert.self_signed", "")}, chain=[make_leaf([host("self-signed")], pki.server_key, None)]),
        case("untrusted", 15, {("tls.cert.untrusted", "")}, chain=[make_leaf([host("untrusted")], pki.server_key, pki.other_intermediate), pki.other_intermediate]),
        case("mismatch", 16, {("tls.cert.hostname_mismatch", "")}, chain=pki.chain("elsewhere.example")),
        case("incomplete", 17, {("tls.cert.incomplete_chain", "")}, chain=[pki.leaf(host("incomplete"), ca_issuers=CA_ISSUERS_URL)]),
        case("weak-key", 18, {("tls.cert.weak_key", "")}, chain=[leaf_1024, pki.intermediate]),
        case("sha1", 19, {("tls.cert.weak_signature", "")}, chain=[sha1_leaf, pki.intermediate]),
        case("md5", 30, {("tls.cert.weak_signature", "")}, chain=[md5_leaf, pki.intermediate]),
        case(
            "legacy", 20,
            {("tls.protocol.tls1_0", ""), ("tls.protocol.tls1_1", ""), ("tls.protocol.no_tls1_3", "")},
            protocols="TLSv1 TLSv1.1 TLSv1.2", ciphers="ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        ),
        case(
            "rsa-kex", 21, {("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_AES_128_CBC_SHA")},
            ciphers="ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA",
        ),
        case(
            "dh-1024", 22,
            {("tls.dh.weak", ""), ("tls.protocol.tls1_0", ""), ("tls.protocol.no_tls1_3", "")},
            # Several DHE suites in TLS 1.0 and 1.2: a handshake stopped at the certificate
            # takes its DH group from a completed one; the weak-DH evidence lists them all.
            protocols="TLSv1 TLSv1.2",
            ciphers=(
                "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-GCM-SHA256:"
                "DHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:DHE-RSA-CAMELLIA128-SHA:@SECLEVEL=0"
            ),
            dhparam=weak_dh_params_pem(),
        ),
        case("tls12-only", 23, {("tls.protocol.no_tls1_3", "")}, protocols="TLSv1.2"),
        case(
            "weak-suites", 24,
            {
                ("tls.cipher.weak", "TLS_RSA_WITH_NULL_SHA256"),
                ("tls.cipher.no_forward_secrecy", "TLS_RSA_WITH_NULL_SHA256"),
                ("tls.cipher.weak", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
            },
            ciphers="ECDHE-RSA-AES128-GCM-SHA256:NULL-SHA256:AECDH-AES128-SHA:@SECLEVEL=0",
        ),
        TlsCase(
            "plain-on-443", address(25), [TlsSite(address(25), port=443), TlsSite(address(25), port=80)],
            [80, 443], {("tls.missing", "")}, host("plain-on-443"),
        ),
        TlsCase("http-only", address(26), [TlsSite(address(26), port=80)], [80], {("tls.missing", "")}, host("http-only")),
    ]  # fmt: skip


@contextmanager
def smtp_server(ip: str, port: int, chain: Sequence[Issued] | None, folder: Path) -> Iterator[None]:
    """A real SMTP server (aiosmtpd) offering STARTTLS with ``chain``, or no STARTTLS at all."""
    import ssl

    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    tls_context = None
    if chain:
        chain_path, key_path = folder / f"smtp-{ip}.pem", folder / f"smtp-{ip}.key"
        chain_path.write_bytes(b"".join(item.pem for item in chain))
        key_path.write_bytes(chain[0].key_pem)
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(chain_path, key_path)
    controller = Controller(
        Sink(), hostname=ip, port=port, tls_context=tls_context, ready_timeout=10
    )
    controller.start()
    try:
        yield
    finally:
        controller.stop()


@contextmanager
def silent_listener(ip: str, port: int) -> Iterator[None]:
    """A port that accepts TCP connections and never says a word."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(64)
        yield


def make_cert(
    common_name: str,
    key: CertificateIssuerPrivateKeyTypes,
    issuer: Issued,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    subject: x509.Name | None = None,
) -> Issued:
    """A certificate with exactly ``extensions`` (value, critical), signed by ``issuer``.

    For the cases a client must refuse, which ``make_leaf`` and ``make_ca`` never
    produce: a clientAuth-only leaf, a leaf marked CA, a name-constrained or
    e-mail-only intermediate.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name) if subject is None else subject)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 10 * DAY)
        .not_valid_after(NOW + 365 * DAY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


@contextmanager
def openssl_server(folder: Path, ip: str, chain: Sequence[Issued], *options: str) -> Iterator[None]:
    """``openssl s_server`` on ``ip:443`` sending ``chain`` (leaf first), with ``options``."""
    openssl = require_program("openssl")
    name = ip.replace(".", "-")
    leaf, key, rest = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.chain"
    leaf.write_bytes(chain[0].pem)
    key.write_bytes(chain[0].key_pem)
    rest.write_bytes(b"".join(item.pem for item in chain[1:]))
    argv = [openssl, "s_server", "-accept", f"{ip}:443", "-cert", str(leaf), "-key", str(key), "-www", "-quiet"]  # fmt: skip
    if len(chain) > 1:
        argv += ["-cert_chain", str(rest)]
    with running([*argv, *options], listen=(ip, 443), log=folder / f"{name}.log"):
        yield


Found = set[tuple[str, str]]


def found(result: FamilyResult) -> Found:
    return {(f.check_id, f.discriminator) for f in result.findings}


def scan(cfg: Settings, targets: list[tuple[HostTarget, list[OpenPort]]]) -> list[FamilyResult]:
    """check_tls for every target concurrently in one sweep context, as the engine does."""

    async def sweep() -> list[FamilyResult]:
        ctx = ProbeContext.from_settings(cfg)
        try:
            return list(await asyncio.gather(*(check_tls(ctx, t, p) for t, p in targets)))
        finally:
            await ctx.aclose()

    return asyncio.run(sweep())


@contextmanager
def tlslite_server(ip: str, port: int, chain: Sequence[Issued], **settings: Any) -> Iterator[None]:
    """A TLS server made with tlslite-ng (pure Python), for what Debian's OpenSSL 3 cannot
    serve: RC4 and 3DES suites, DH groups under 1024 bits. ``settings`` are tlslite's
    ``HandshakeSettings`` attributes (cipherNames, macNames, keyExchangeNames, dhParams...).

    Each connection is handshaken on its own thread, answered with one HTTP response,
    and closed; a failed handshake is the client's refusal and is let go.
    """
    import socket
    import threading

    from tlslite import X509, HandshakeSettings, TLSConnection, X509CertChain
    from tlslite.utils.keyfactory import parsePEMKey

    certs = X509CertChain([X509().parse(item.pem.decode()) for item in chain])
    key = parsePEMKey(chain[0].key_pem.decode(), private=True)
    handshake = HandshakeSettings()
    for name, value in settings.items():
        setattr(handshake, name, value)

    def serve(conn: socket.socket) -> None:
        conn.settimeout(10)
        tls = TLSConnection(conn)
        try:
            tls.handshakeServer(certChain=certs, privateKey=key, settings=handshake)
            tls.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            tls.close()
        except Exception:
            pass
        finally:
            conn.close()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((ip, port))
    listener.listen(128)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed: the server ends
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(timeout=5)
