"""Real servers for the mail and IPv6 families' tests: Postfix, Unbound, and the tools that judge them.

- ``run_postfix`` runs one private Postfix (``master -d`` with its own
  configuration folder and queue) with one ``smtpd`` per MX address, each
  with its own TLS settings (``-o`` overrides in master.cf): STARTTLS on or
  off, a chosen certificate, TLS 1.0 allowed or not.
- ``run_unbound`` runs a validating Unbound in front of the Knot server of
  ``tests.dns_server``, with the signed zone's key as trust anchor: the AD bit
  vigie reads for DANE comes from a real validator.
- ``sign_with_bind`` signs a zone with BIND's ``dnssec-signzone`` (a signer
  vigie did not write), with chosen TLSA signatures expired or data tampered
  after signing: bogus data for every validator.
- ``openssl_*``, ``posttls_finger``, ``dig`` and ``delv`` wrap the independent
  tools the tests compare vigie with.

Every server binds one 127.0.22.x address (the mail tests' range);
tests/scanner/software_servers.py runs ``run_postfix`` on its own 127.0.20.x.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from tests.scanner.tls_fixtures import _OPENSSL_CNF as OPENSSL_LEGACY_CNF  # TLS 1.0 at SECLEVEL 0
from tests.servers import require_program, running, wait_for_port

POSTFIX_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass(frozen=True)
class Smtpd:
    """One MX address: STARTTLS or not, its certificate (key + chain PEM files), TLS 1.0."""

    address: str
    cert: Path | None = None  # PEM: leaf then chain
    key: Path | None = None
    legacy_tls: bool = False  # accept TLS 1.0 and 1.1

    def line(self) -> str:
        options = []
        if self.cert is None or self.key is None:
            options.append("-o smtpd_tls_security_level=none")
        else:
            options += [
                "-o smtpd_tls_security_level=may",
                f"-o smtpd_tls_cert_file={self.cert}",
                f"-o smtpd_tls_key_file={self.key}",
            ]
            if self.legacy_tls:
                options += [
                    "-o smtpd_tls_protocols=>=TLSv1",
                    "-o smtpd_tls_mandatory_protocols=>=TLSv1",
                    "-o tls_medium_cipherlist=DEFAULT:@SECLEVEL=0",
                ]
            else:
                options.append("-o smtpd_tls_protocols=>=TLSv1.2")
        return f"{self.address}:25 inet n - n - - smtpd " + " ".join(options)


@contextlib.contextmanager
def run_postfix(
    servers: Sequence[Smtpd], hostname: str, settings: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """A private Postfix with one smtpd per ``servers`` entry; yields its configuration folder.

    ``settings`` are extra main.cf parameters (``smtpd_banner``...). Its files
    live in a folder of their own under /tmp: Postfix's unprivileged processes
    cannot enter pytest's (mode 0700) temporary folders.
    """
    master = Path("/usr/lib/postfix/sbin/master")
    postfix = require_program("postfix")
    folder = Path(tempfile.mkdtemp(prefix="vigie-postfix-"))
    folder.chmod(0o755)
    try:
        with _postfix(master, postfix, folder, servers, hostname, settings or {}) as conf:
            yield conf
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _postfix(
    master: Path,
    postfix: str,
    folder: Path,
    servers: Sequence[Smtpd],
    hostname: str,
    settings: Mapping[str, str],
) -> Iterator[Path]:
    conf, queue, data = folder / "conf", folder / "queue", folder / "data"
    for sub in (conf, queue, data):
        sub.mkdir(parents=True, exist_ok=True)
    shutil.chown(data, user="postfix")
    (conf / "main.cf").write_text(
        "compatibility_level = 3.6\n"
        f"queue_directory = {queue}\ndata_directory = {data}\n"
        f"myhostname = {hostname}\nmydestination =\n"
        # The local-address list only: every smtpd binds its own address (master.cf).
        "inet_interfaces = all\ninet_protocols = ipv4\n"
        f"maillog_file = {folder}/maillog\nmaillog_file_prefixes = {folder}\n"
        "smtpd_tls_loglevel = 1\n"
        + "".join(f"{name} = {value}\n" for name, value in settings.items())
    )
    (conf / "master.cf").write_text(
        "".join(server.line() + "\n" for server in servers) + POSTFIX_SERVICES
    )
    openssl_cnf = folder / "openssl.cnf"
    openssl_cnf.write_text(OPENSSL_LEGACY_CNF)
    env = {"OPENSSL_CONF": str(openssl_cnf), "MAIL_CONFIG": str(conf)}
    subprocess.run(
        [postfix, "-c", str(conf), "check"], check=True, env={**os.environ, **env}, timeout=30
    )
    with running(
        [str(master), "-c", str(conf), "-d"],
        listen=(servers[0].address, 25),
        log=folder / "master.out",
        env=env,
    ):
        for server in servers:
            wait_for_port(server.address, 25)
        yield conf


@dataclass
class Unbound:
    address: str
    port: int
    anchors: list[str] = field(default_factory=list)

    @property
    def resolver(self) -> str:
        return f"{self.address}:{self.port}"


def dnskey_anchors(server: str, port: int, zone: str) -> list[str]:
    """The zone's DNSKEY records as Unbound trust-anchor lines (asked of the signer itself)."""
    query = dns.message.make_query(zone, "DNSKEY", want_dnssec=True)
    response = dns.query.tcp(query, server, port=port, timeout=3)
    return [rrset.to_text() for rrset in response.answer if rrset.rdtype == dns.rdatatype.DNSKEY]


@contextlib.contextmanager
def run_unbound(
    address: str, port: int, upstream: tuple[str, int], zones: Sequence[str], anchors: list[str]
) -> Iterator[Unbound]:
    """A validating Unbound on ``address:port``: ``zones`` are stub zones at ``upstream``."""
    unbound = require_program("unbound")
    folder = Path(tempfile.mkdtemp(prefix="vigie-unbound-"))
    (folder / "anchors").write_text("\n".join(anchors) + "\n")
    stubs = "".join(
        f'stub-zone:\n    name: "{zone}"\n    stub-addr: {upstream[0]}@{upstream[1]}\n'
        for zone in zones
    )
    config = folder / "unbound.conf"
    config.write_text(
        "server:\n"
        f"    interface: {address}@{port}\n    port: {port}\n"
        f"    outgoing-interface: {address}\n"
        "    do-ip6: no\n    access-control: 127.0.0.0/8 allow\n"
        f'    username: ""\n    chroot: ""\n    directory: "{folder}"\n'
        f'    pidfile: "{folder}/unbound.pid"\n'
        '    use-syslog: no\n    logfile: ""\n    do-daemonize: no\n    verbosity: 1\n'
        "    do-not-query-localhost: no\n"
        f'    trust-anchor-file: "{folder}/anchors"\n'
        '    module-config: "validator iterator"\n'
        "    qname-minimisation: no\n    val-log-level: 2\n"
        "    cache-max-ttl: 5\n    cache-max-negative-ttl: 5\n"
        + stubs
        + "remote-control:\n    control-enable: no\n"
    )
    try:
        with running(
            [unbound, "-d", "-c", str(config)], listen=(address, port), log=folder / "log"
        ):
            yield Unbound(address, port, anchors)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the independent tools ----------------------------------------------------------------


def openssl(args: Sequence[str], stdin: str = "QUIT\n", timeout: float = 20) -> str:
    """Run the openssl command; its stdout and stderr together."""
    binary = require_program("openssl")
    result = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )
    return result.stdout + result.stderr


def starttls_client(ip: str, *extra: str) -> str:
    """``openssl s_client -starttls smtp`` against ``ip:25``."""
    return openssl(["s_client", "-starttls", "smtp", "-connect", f"{ip}:25", *extra])


def spki_sha256(cert: Path) -> str:
    """TLSA 3 1 1 data the way operators compute it (RFC 7671 §5.1 / openssl CLI)."""
    digest = subprocess.run(
        [require_program("openssl"), "dgst", "-sha256", "-r"],
        input=spki_der(cert),
        capture_output=True,
        check=True,
    ).stdout
    return digest.decode().split()[0]


def cert_der(cert: Path) -> bytes:
    """``openssl x509 -outform DER``: TLSA selector 0, matching type 0 data."""
    binary = require_program("openssl")
    return subprocess.run(
        [binary, "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, check=True
    ).stdout


def spki_der(cert: Path) -> bytes:
    """``openssl x509 -pubkey | openssl pkey -pubin -outform DER``: selector 1, type 0."""
    pubkey = openssl(["x509", "-in", str(cert), "-noout", "-pubkey"], stdin="")
    binary = require_program("openssl")
    return subprocess.run(
        [binary, "pkey", "-pubin", "-outform", "DER"],
        input=pubkey.encode(),
        capture_output=True,
        check=True,
    ).stdout


def cert_digest(cert: Path, algorithm: str) -> str:
    """``openssl x509 -outform DER | openssl dgst -<algorithm>``: TLSA selector 0 data."""
    digest = subprocess.run(
        [require_program("openssl"), "dgst", f"-{algorithm}", "-r"],
        input=cert_der(cert),
        capture_output=True,
        check=True,
    ).stdout
    return digest.decode().split()[0]


def posttls_finger(conf: Path, ip: str, *args: str, match: str = "") -> str:
    """Postfix's own TLS probe of ``[ip]:25`` (no DNS), the certificate matched against ``match``."""
    binary = require_program("posttls-finger")
    result = subprocess.run(
        [binary, *args, f"[{ip}]:25", *([match] if match else [])],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MAIL_CONFIG": str(conf)},
    )
    return result.stdout + result.stderr


def dig(resolver: Unbound, name: str, rdtype: str) -> str:
    binary = require_program("dig")
    result = subprocess.run(
        [binary, f"@{resolver.address}", "-p", str(resolver.port), "+dnssec", name, rdtype],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return result.stdout


def sign_with_bind(
    folder: Path,
    origin: str,
    text: str,
    expired: Sequence[str] = (),
    tampered: dict[str, str] | None = None,
) -> tuple[str, list[str]]:
    """``text`` signed by BIND's dnssec-signzone (ECDSA P-256, a KSK and a ZSK); the TLSA
    RRsets owned by ``expired`` carry signatures valid only in January 2025, and those
    owned by a key of ``tampered`` get that TLSA data after signing. Returns the signed
    zone text and the DS record of the KSK (``dnssec-dsfromkey``)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "zone"
    source.write_text(text)
    keygen = require_program("dnssec-keygen")
    for flags in ((), ("-f", "KSK")):
        subprocess.run(
            [keygen, "-q", *flags, "-a", "ECDSAP256SHA256", "-K", str(folder), origin],
            check=True, capture_output=True, cwd=folder,
        )  # fmt: skip
    signer = require_program("dnssec-signzone")
    base = [signer, "-q", "-S", "-K", str(folder), "-o", origin]
    subprocess.run(
        [*base, "-f", "signed", str(source)], check=True, capture_output=True, cwd=folder
    )
    old = ["-P", "-s", "20250101000000", "-e", "20250201000000", "-f", "old", str(source)]
    subprocess.run([*base, *old], check=True, capture_output=True, cwd=folder)
    zone = dns.zone.from_file(str(folder / "signed"), origin, relativize=False)
    stale = dns.zone.from_file(str(folder / "old"), origin, relativize=False)
    for owner in expired:
        name = dns.name.from_text(owner)
        zone.replace_rdataset(
            name, stale.find_rdataset(name, dns.rdatatype.RRSIG, dns.rdatatype.TLSA)
        )
    for owner, data in (tampered or {}).items():
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TLSA, data)
        zone.replace_rdataset(dns.name.from_text(owner), dns.rdataset.from_rdata(300, rdata))
    ds = subprocess.run(
        [require_program("dnssec-dsfromkey"), "-2", "-f", str(folder / "signed"), origin],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return zone.to_text(relativize=False), [line.strip() for line in ds.splitlines() if line]


def delv(address: str, port: int, anchor: Sequence[str], name: str, rdtype: str) -> str:
    """BIND's delv, validating itself from ``anchor`` (DNSKEY texts of one zone) with
    ``address:port`` as the only server asked."""
    folder = Path(tempfile.mkdtemp(prefix="vigie-delv-"))
    try:
        keys = []
        lines = "\n".join(anchor).splitlines()
        for record in lines:  # "zone. TTL IN DNSKEY flags protocol algorithm key..."
            parts = record.split()
            flags, protocol, algorithm = parts[4:7]
            key = "".join(parts[7:])
            keys.append(f'"{parts[0]}" static-key {flags} {protocol} {algorithm} "{key}";')
        (folder / "anchors").write_text("trust-anchors {\n" + "\n".join(keys) + "\n};\n")
        zone = lines[0].split()[0]
        result = subprocess.run(
            [require_program("delv"), f"@{address}", "-p", str(port), "-a",
             str(folder / "anchors"), f"+root={zone}", name, rdtype],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        return result.stdout + result.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
