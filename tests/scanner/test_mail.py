"""Mail family: pure parsers on the RFCs' own examples, and the wiring on real servers.

The test world (127.0.22.x): Knot serves ``dnssec-lab.`` (signed by Knot) and
``plain-lab.`` (unsigned) on .2; a validating Unbound on .1, with the signed
zone's key as trust anchor, is vigie's resolver. One Postfix serves the MX
hosts: .11 STARTTLS with a certificate from a private CA (leaf + CA sent),
.12 without STARTTLS, .13 STARTTLS accepting TLS 1.0, .14 STARTTLS with a
self-signed certificate. nginx serves the MTA-STS policies on .21 (a
certificate from the private CA, trusted through ``tls.extra_ca_file``) and
.22 (a certificate from another CA). Every verdict is compared with what
``openssl s_client -starttls smtp``, ``posttls-finger``, ``dig`` or ``curl``
say of the same server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlmodel import select

import vigie.scanner.mail as mail
from tests.dns_server import ZoneServer, free_port, start_zone_server
from tests.scanner.mail_servers import (
    Smtpd,
    Unbound,
    cert_der,
    cert_digest,
    delv,
    dig,
    dnskey_anchors,
    posttls_finger,
    run_postfix,
    run_unbound,
    sign_with_bind,
    spki_der,
    spki_sha256,
    starttls_client,
)
from tests.servers import require_program, running, wait_for_port
from vigie.catalogue import CATALOGUE
from vigie.cli import main
from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.store import LifecyclePolicy, record_host_result
from vigie.db.tables import FindingRecord
from vigie.model import Family, FamilyResult, Finding, HostResult, HostTarget, Severity
from vigie.scanner.dns import Security, Validation
from vigie.scanner.mail._observe import (
    AddressObservation,
    HostObservation,
    MailObservation,
    StsObservation,
)
from vigie.scanner.mail._smtp import SmtpDialogue
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer, Lookup, Resolution

RESOLVER, KNOT = "127.0.22.1", "127.0.22.2"
MX_GOOD, MX_PLAIN, MX_WEAK, MX_SELF_SIGNED = (
    "127.0.22.11",
    "127.0.22.12",
    "127.0.22.13",
    "127.0.22.14",
)
MX_EXPIRED, MX_WRONG_NAME = "127.0.22.15", "127.0.22.16"
MX_SILENT = "127.0.22.17"  # accepts connections, never greets
MX_LEAF_ONLY = "127.0.22.18"  # the good certificate, without its CA in the chain
POLICY_GOOD, POLICY_BAD_CERT = "127.0.22.21", "127.0.22.22"
WEB = "127.0.22.30"
SIGNED, UNSIGNED = "dnssec-lab", "plain-lab"
MX_NAMES = [f"mx-good.{SIGNED}", f"mx-weak.{SIGNED}", f"mx-plain.{SIGNED}", f"mx-dane-bad.{SIGNED}"]

SOA = "@ SOA ns1 hostmaster 1 3600 600 86400 300"
LIFECYCLE = LifecyclePolicy(resolve_after_scans=2)


# --- pure: the RFCs' examples -------------------------------------------------------------------


def test_mta_sts_policy_example_of_rfc_8461() -> None:
    # Given the policy of RFC 8461 §3.2's example
    text = (
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
        "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n"
    )
    # When it is parsed
    policy = mail.parse_sts_policy(text)
    # Then it is valid, in enforce mode, with the three patterns and a week's max_age
    assert policy.valid and policy.mode == "enforce" and policy.max_age == 604800
    assert policy.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")


def test_mta_sts_patterns_match_one_label_as_rfc_8461_section_4_1_says() -> None:
    # Given RFC 8461 §4.1: "*.example.com" matches "mx1.example.com" but neither
    # "example.com" nor a name two labels down
    assert mail.mx_pattern_matches("*.example.com", "mx1.example.com")
    assert not mail.mx_pattern_matches("*.example.com", "example.com")
    assert not mail.mx_pattern_matches("*.example.com", "a.mx1.example.com")
    assert mail.mx_pattern_matches("mail.example.com", "MAIL.example.com.")


def test_mta_sts_policy_errors() -> None:
    # Given policies that break RFC 8461 §3.2 (mode, max_age, missing mx)
    # Then each is invalid, and mode none needs no mx
    assert not mail.parse_sts_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n").valid
    assert not mail.parse_sts_policy(
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n"
    ).valid
    assert not mail.parse_sts_policy("version: STSv1\nmode: testing\nmax_age: 86400\n").valid
    assert mail.parse_sts_policy("version: STSv1\nmode: none\nmax_age: 86400\n").valid


def test_mta_sts_txt_records_per_rfc_8461_section_3_1() -> None:
    # Given the record of RFC 8461 §3.1's example, then two records, then a bad id
    assert mail.select_sts_record(["v=STSv1; id=20160831085700Z;"]).record is not None
    assert mail.select_sts_record(["v=STSv1; id=1", "v=STSv1; id=2"]).record is None
    assert mail.select_sts_record(["v=STSv1; id=not-alnum!"]).record is None
    assert mail.select_sts_record(["v=spf1 -all"]).record is None


def test_tlsrpt_records_of_rfc_8460_section_3() -> None:
    # Given RFC 8460 §3's examples (mailto and https reporting URIs)
    assert mail.select_tlsrpt_record(["v=TLSRPTv1;rua=mailto:reports@example.com"]).record
    assert mail.select_tlsrpt_record(
        ["v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"]
    ).record
    # Then a record without rua, or with another scheme, gives no reports
    assert mail.select_tlsrpt_record(["v=TLSRPTv1;"]).record is None
    assert mail.select_tlsrpt_record(["v=TLSRPTv1; rua=ftp://example.com/"]).record is None


def test_tlsa_records_of_rfc_6698_section_2_3() -> None:
    # Given RFC 6698 §2.3's examples (an SHA-256 of a CA certificate, an SHA-512 of a key)
    first = mail.Tlsa.parse(
        "0 0 1 d2abde240d7cd3ee6b4b28c54df034b9 7983a1d16e8a410e4561cb106618e971"
    )
    second = mail.Tlsa.parse(
        "1 1 2 92003ba34942dc74152e2f2c408d29ec a5a520e7f2e06bb944f4dca346baf63c"
        " 1b177615d466f6c4b71c216a50292bd5 8c9ebdd2f74e38fe51ffd48c43326cbc"
    )
    # Then they parse (data split by spaces joined), and SMTP cannot use PKIX usages
    assert first is not None and len(first.data) == 32 and first.matching == 1
    assert second is not None and len(second.data) == 64 and second.selector == 1
    assert not first.usable and not second.usable  # RFC 7672 §3.1.3
    assert mail.Tlsa.parse("3 1 1 not-hex") is None
    dane_ee = mail.Tlsa.parse("3 1 1 " + first.data.hex())
    assert dane_ee is not None and dane_ee.usable


def test_null_mx_of_rfc_7505() -> None:
    # Given RFC 7505 §3's example "example.com. 3600 IN MX 0 ."
    assert mail.is_null_mx(mail.parse_mx(["0 ."]))
    # Then a null MX among real ones, or with another preference, is no null MX
    assert not mail.is_null_mx(mail.parse_mx(["0 .", "10 mx.example.com."]))
    assert not mail.is_null_mx(mail.parse_mx(["10 ."]))


def test_null_mx_rule_reads_spf() -> None:
    # Given a domain without MX: "v=spf1 -all" says it sends none, another SPF that it sends
    assert mail.spf_stance(["v=spf1 -all"]) is mail.SpfStance.SENDS_NONE
    assert mail.spf_stance(["v=spf1 include:_spf.example.com ~all"]) is mail.SpfStance.SENDS
    assert mail.null_mx_findings("web.example.ml", ["v=spf1 -all"]) == []
    assert mail.null_mx_findings("web.example.ml", ["v=spf1 a -all"]) == []
    # Then a domain with no SPF, or one that authorises no one without rejecting, is told
    for spf in ([], ["v=spf1 ~all"], ["v=spf1 -all", "v=spf1 ~all"]):
        found = mail.null_mx_findings("web.example.ml", spf)
        assert [f.check_id for f in found] == ["mail.null_mx.missing"], spf


# --- the world ----------------------------------------------------------------------------------


@dataclass
class MailWorld:
    folder: Path
    ca_file: Path
    good_cert: Path  # leaf then CA, as Postfix on .11/.13 serves it
    self_signed_cert: Path
    postfix_conf: Path
    unbound: Unbound
    results: dict[str, FamilyResult]
    unvalidated: dict[str, FamilyResult]  # the same domains through Knot, which does not validate
    settings: Settings


def _write_chain(
    ca: trustme.CA, names: list[str], folder: Path, stem: str, **dates: dt.datetime
) -> tuple[Path, Path]:
    leaf = ca.issue_cert(*names, **dates)
    cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


def _leaf_only(chain: Path) -> Path:
    leaf = chain.with_name("leaf-only.pem")
    leaf.write_bytes(
        x509.load_pem_x509_certificates(chain.read_bytes())[0].public_bytes(Encoding.PEM)
    )
    return leaf


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / "self.pem", folder / "self.key"
    subprocess.run(
        [require_program("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", "-days", "30",
         "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _policy(mode: str, *mx: str) -> str:
    return (
        "version: STSv1\r\n"
        + f"mode: {mode}\r\n"
        + "".join(f"mx: {m}\r\n" for m in mx)
        + ("max_age: 604800\r\n")
    )


POLICIES = {
    "good": _policy("enforce", f"mx-good.{SIGNED}"),
    "badcert": _policy("enforce", f"mx-bad.{SIGNED}"),
    "expired": _policy("enforce", f"mx-expired.{SIGNED}"),
    "wrongname": _policy("enforce", f"mx-wrongname.{SIGNED}"),
    "stsmismatch": _policy("enforce", "mx.elsewhere.example"),
    "ststesting": _policy("testing", f"*.{SIGNED}"),
    "stsbadcert": _policy("enforce", f"mx-good.{SIGNED}"),
    "stsredirect": _policy("enforce", f"mx-good.{SIGNED}"),  # served behind a redirect
    "stsnone": _policy("none"),
}
# RFC 8461 §3.3: a sender does not follow redirects when it fetches the policy.
REDIRECT = (
    " location = /.well-known/mta-sts.txt {"
    f" return 301 https://mta-sts.good.{SIGNED}/.well-known/mta-sts.txt; }}\n"
)


def _nginx(folder: Path, good: tuple[Path, Path], bad: tuple[Path, Path]) -> str:
    blocks = []
    for domain, policy in POLICIES.items():
        root = folder / "www" / domain / ".well-known"
        root.mkdir(parents=True, exist_ok=True)
        (root / "mta-sts.txt").write_text(policy)
        address, (cert, key) = (
            (POLICY_BAD_CERT, bad) if domain == "stsbadcert" else (POLICY_GOOD, good)
        )
        blocks.append(
            f"server {{\n listen {address}:443 ssl;\n server_name mta-sts.{domain}.{SIGNED};\n"
            f" ssl_certificate {cert};\n ssl_certificate_key {key};\n"
            f" root {folder / 'www' / domain};\n"
            + (REDIRECT if domain == "stsredirect" else "")
            + "}\n"
        )
    return (
        "user root;\ndaemon off;\nworker_processes 1;\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n access_log off;\n types {{ text/plain txt; }}\n"
        f" client_body_temp_path {folder}/tmp;\n proxy_temp_path {folder}/tmp;\n"
        f" fastcgi_temp_path {folder}/tmp;\n uwsgi_temp_path {folder}/tmp;\n"
        f" scgi_temp_path {folder}/tmp;\n" + "".join(blocks) + "}\n"
    )


def _zones(tlsa_good: str, tlsa_wrong: str) -> dict[str, str]:
    signed = "\n".join(
        [
            f"$ORIGIN {SIGNED}.",
            "$TTL 300",
            SOA,
            "@ NS ns1",
            f"ns1 A {KNOT}",
            "ns1 AAAA ::1",
            f"mx-good A {MX_GOOD}",
            f"mx-plain A {MX_PLAIN}",
            f"mx-weak A {MX_WEAK}",
            f"mx-bad A {MX_SELF_SIGNED}",
            f"mx-expired A {MX_EXPIRED}",
            f"mx-wrongname A {MX_WRONG_NAME}",
            "expired MX 10 mx-expired",
            f"mx-silent A {MX_SILENT}",
            "silent MX 10 mx-silent",
            "wrongname MX 10 mx-wrongname",
            f"mx-dane-bad A {MX_GOOD}",
            f"_25._tcp.mx-good TLSA 3 1 1 {tlsa_good}",
            f"_25._tcp.mx-weak TLSA 3 1 1 {tlsa_good}",
            f"_25._tcp.mx-dane-bad TLSA 3 1 1 {tlsa_wrong}",
            f"mx-daneself A {MX_SELF_SIGNED}",
            f"_25._tcp.mx-daneself TLSA 3 1 1 {tlsa_wrong}",  # the self-signed key: a match
            "daneself MX 10 mx-daneself",
            "good MX 10 mx-good",
            'good TXT "v=spf1 mx -all"',
            "plain MX 10 mx-plain",
            "weak MX 10 mx-weak",
            "badcert MX 10 mx-bad",
            "optbad MX 10 mx-bad",
            "stsmismatch MX 10 mx-good",
            "ststesting MX 10 mx-good",
            "stsbadcert MX 10 mx-good",
            "stsredirect MX 10 mx-good",
            "stsnone MX 10 mx-good",
            "danebad MX 10 mx-dane-bad",
            "nullmx MX 0 .",
            f"nomail A {WEB}",
            f"spfnone A {WEB}",
            'spfnone TXT "v=spf1 -all"',
            'noaddress TXT "site-verification=1"',
            *(f'_mta-sts.{d} TXT "v=STSv1; id=20261203"' for d in POLICIES),
            *(f"mta-sts.{d} A {POLICY_GOOD}" for d in POLICIES if d != "stsbadcert"),
            f"mta-sts.stsbadcert A {POLICY_BAD_CERT}",
            *(
                f'_smtp._tls.{d} TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{d}.{SIGNED}"'
                for d in ("good", "danebad", "stsmismatch", "ststesting", "stsbadcert", "badcert")
            ),
        ]
    )
    unsigned = "\n".join(
        [
            f"$ORIGIN {UNSIGNED}.",
            "$TTL 300",
            SOA,
            f"@ NS ns1.{SIGNED}.",
            f"unsigned MX 10 mx-good.{SIGNED}.",
        ]
    )
    return {SIGNED: signed + "\n", UNSIGNED: unsigned + "\n"}


DOMAINS = [
    "good", "plain", "weak", "badcert", "optbad", "stsmismatch", "ststesting", "stsbadcert",
    "danebad", "nullmx", "nomail", "spfnone", "stsredirect", "stsnone", "expired", "wrongname",
    "noaddress", "daneself",
]  # fmt: skip


def _settings(world_ca: Path, unbound: Unbound) -> Settings:
    return Settings.model_validate(
        {
            "dns": {"resolvers": [unbound.resolver], "timeout_s": 2.0, "lifetime_s": 4.0},
            "scope": {"allow": ["127.0.22.0/24"]},
            "tls": {"extra_ca_file": str(world_ca)},
            "scan": {"probe_timeout_s": 3.0},
            "mail": {"timeout_s": 5.0},
        }
    )


def _scan_all(settings: Settings, names: list[str]) -> dict[str, FamilyResult]:
    async def run() -> dict[str, FamilyResult]:
        ctx = ProbeContext.from_settings(settings)
        try:
            results = await asyncio.gather(*(mail.check_mail(ctx, name, False) for name in names))
            return dict(zip(names, results, strict=True))
        finally:
            await ctx.aclose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailWorld]:
    folder = tmp_path_factory.mktemp("mail")
    ca, other_ca = trustme.CA(), trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    good = _write_chain(ca, MX_NAMES, folder, "mx")
    self_signed = _self_signed(folder, f"mx-bad.{SIGNED}")
    last_year = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    expired = _write_chain(
        ca, [f"mx-expired.{SIGNED}"], folder, "expired", not_before=last_year,
        not_after=last_year + dt.timedelta(days=90),
    )  # fmt: skip
    policy_names = [f"mta-sts.{d}.{SIGNED}" for d in POLICIES]
    policy_good = _write_chain(ca, policy_names, folder, "policy")
    policy_bad = _write_chain(other_ca, policy_names, folder, "policy-bad")
    tlsa_good = spki_sha256(good[0])
    tlsa_wrong = spki_sha256(self_signed[0])
    servers = [
        Smtpd(MX_GOOD, *good),
        Smtpd(MX_PLAIN),
        Smtpd(MX_WEAK, *good, legacy_tls=True),
        Smtpd(MX_SELF_SIGNED, *self_signed),
        Smtpd(MX_EXPIRED, *expired),
        Smtpd(MX_LEAF_ONLY, _leaf_only(good[0]), good[1]),
        Smtpd(MX_WRONG_NAME, *_write_chain(ca, ["mail.other.example"], folder, "wrong")),
    ]
    port = free_port([RESOLVER, KNOT])
    nginx_conf = folder / "nginx.conf"
    (folder / "tmp").mkdir()
    nginx_conf.write_text(_nginx(folder, policy_good, policy_bad))
    with (
        run_postfix(servers, f"mx-good.{SIGNED}") as postfix_conf,
        running(
            [require_program("nginx"), "-c", str(nginx_conf), "-e", str(folder / "error.log")],
            listen=(POLICY_GOOD, 443),
            log=folder / "nginx.out",
        ),
        start_zone_server(folder, KNOT, port, _zones(tlsa_good, tlsa_wrong), signed={SIGNED}),
    ):
        wait_for_port(POLICY_BAD_CERT, 443)
        anchors = dnskey_anchors(KNOT, port, f"{SIGNED}.")
        with run_unbound(
            RESOLVER, port, (KNOT, port), [f"{SIGNED}.", f"{UNSIGNED}."], anchors
        ) as unbound:
            settings = _settings(ca_file, unbound)
            names = [f"{d}.{SIGNED}" for d in DOMAINS] + [f"unsigned.{UNSIGNED}"]
            results = _scan_all(settings, names)
            # The same world through a resolver that does not validate (Knot itself).
            direct = settings.model_copy(
                update={"dns": settings.dns.model_copy(update={"resolvers": [f"{KNOT}:{port}"]})}
            )
            unvalidated = _scan_all(direct, [f"{d}.{SIGNED}" for d in ("danebad", "plain", "good")])
            unvalidated["unsigned"] = _scan_all(direct, [f"unsigned.{UNSIGNED}"])[
                f"unsigned.{UNSIGNED}"
            ]
            yield MailWorld(
                folder,
                ca_file,
                good[0],
                self_signed[0],
                postfix_conf,
                unbound,
                results,
                unvalidated,
                settings,
            )


def curl_policy(
    world: MailWorld, domain: str, ip: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """curl's fetch of the policy, trusting the private CA only (no redirect followed)."""
    host = f"mta-sts.{domain}.{SIGNED}"
    return subprocess.run(
        [require_program("curl"), "-sS", *extra, "--cacert", str(world.ca_file),
         "--resolve", f"{host}:443:{ip}", f"https://{host}/.well-known/mta-sts.txt"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip


def verify_with_postfix(world: MailWorld, ip: str, name: str) -> str:
    """posttls-finger at level "secure": the certificate must chain to the CA and name ``name``."""
    args = ("-c", "-l", "secure", "-F", str(world.ca_file))
    return posttls_finger(world.postfix_conf, ip, *args, match=name)


def ids(result: FamilyResult) -> set[str]:
    return {f.check_id for f in result.findings}


def result_of(world: MailWorld, label: str) -> FamilyResult:
    name = label if "." in label else f"{label}.{SIGNED}"
    return world.results[name]


# --- the world's facts, from independent tools -------------------------------------------------------


@pytest.mark.network
def test_the_resolver_validates_the_signed_zone(world: MailWorld) -> None:
    # Given dig asking the validating resolver
    signed = dig(world.unbound, f"good.{SIGNED}", "MX")
    unsigned = dig(world.unbound, f"unsigned.{UNSIGNED}", "MX")
    # Then the signed zone's answers carry the AD flag, the unsigned zone's do not
    assert " ad" in signed.split("flags:")[1].split(";")[0]
    assert " ad" not in unsigned.split("flags:")[1].split(";")[0]


@pytest.mark.network
def test_good_domain_has_no_finding(world: MailWorld) -> None:
    # Given posttls-finger and openssl's DANE check: verified TLS and a matching TLSA
    finger = verify_with_postfix(world, MX_GOOD, f"mx-good.{SIGNED}")
    assert "Verified TLS connection established" in finger
    rrdata = f"3 1 1 {spki_sha256(world.good_cert)}"
    dane = starttls_client(
        MX_GOOD, "-dane_tlsa_domain", f"mx-good.{SIGNED}", "-dane_tlsa_rrdata", rrdata
    )
    assert "Verify return code: 0 (ok)" in dane
    # And curl fetches the policy over verified HTTPS
    curl = curl_policy(world, "good", POLICY_GOOD)
    assert "mode: enforce" in curl.stdout
    # When vigie judged good.dnssec-lab
    result = result_of(world, "good")
    # Then nothing is found and the scan is complete
    assert result.findings == [] and result.complete


@pytest.mark.network
def test_no_starttls(world: MailWorld) -> None:
    # Given openssl and posttls-finger: the server does not advertise STARTTLS
    assert "Didn't find STARTTLS" in starttls_client(MX_PLAIN)
    chat = posttls_finger(world.postfix_conf, MX_PLAIN)
    assert "250 CHUNKING" in chat and "STARTTLS" not in chat
    assert "250-STARTTLS" in posttls_finger(world.postfix_conf, MX_GOOD, "-l", "none")
    # When vigie judged plain.dnssec-lab
    found = ids(result_of(world, "plain"))
    # Then STARTTLS is missing, and so are MTA-STS, TLS-RPT and (signed zone) DANE
    assert found == {
        "mail.starttls.missing",
        "mail.mta_sts.missing",
        "mail.tlsrpt.missing",
        "mail.dane.missing",
    }


@pytest.mark.network
def test_tls_1_0_after_starttls(world: MailWorld) -> None:
    # Given openssl completing a TLS 1.0 handshake after STARTTLS on .13 and not on .11
    legacy = ["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]
    assert "New, TLSv1.0, Cipher is " in starttls_client(MX_WEAK, *legacy)
    assert "New, (NONE), Cipher is (NONE)" in starttls_client(MX_GOOD, *legacy)
    # When vigie judged weak.dnssec-lab
    weak = [f for f in result_of(world, "weak").findings if f.check_id == "mail.tls.weak"]
    # Then mail.tls.weak says TLS 1.0 (and 1.1) on that address
    assert len(weak) == 1 and weak[0].ip == MX_WEAK
    assert "TLSv1.0" in weak[0].evidence["weak_protocols"]
    assert "mail.tls.weak" not in ids(result_of(world, "good"))


@pytest.mark.network
def test_self_signed_certificate_is_severe_only_under_mta_sts_enforce(world: MailWorld) -> None:
    # Given posttls-finger: the certificate of .14 does not verify
    finger = verify_with_postfix(world, MX_SELF_SIGNED, f"mx-bad.{SIGNED}")
    assert "Verified TLS connection" not in finger and "verification failed" in finger
    # When vigie judged a domain whose enforce policy lists it, and one without MTA-STS
    enforced = [
        f for f in result_of(world, "badcert").findings if f.check_id == "mail.cert.invalid"
    ]
    opportunistic = [
        f for f in result_of(world, "optbad").findings if f.check_id == "mail.cert.invalid"
    ]
    # Then both report it; default severity (medium) under enforce, info otherwise
    assert len(enforced) == 1 and enforced[0].severity is None
    assert "self-signed" in enforced[0].evidence["problems"]
    assert len(opportunistic) == 1 and opportunistic[0].severity is Severity.INFO


@pytest.mark.network
def test_mta_sts_policy_not_listing_the_mx(world: MailWorld) -> None:
    # When vigie judged a domain whose enforce policy lists another MX
    found = [
        f for f in result_of(world, "stsmismatch").findings if f.check_id.startswith("mail.mta_sts")
    ]
    # Then the policy is invalid, naming the unlisted MX host
    assert [f.check_id for f in found] == ["mail.mta_sts.invalid"]
    assert found[0].evidence["unlisted_mx"] == [f"mx-good.{SIGNED}"]


@pytest.mark.network
def test_mta_sts_testing_mode(world: MailWorld) -> None:
    # Then testing mode is reported, and its *.dnssec-lab pattern covers the MX
    assert ids(result_of(world, "ststesting")) == {"mail.mta_sts.testing"}


@pytest.mark.network
def test_mta_sts_policy_on_an_untrusted_certificate(world: MailWorld) -> None:
    # Given curl refusing the policy host's certificate
    curl = curl_policy(world, "stsbadcert", POLICY_BAD_CERT)
    assert curl.returncode != 0
    # Then vigie finds the policy unusable, because of the certificate
    found = [
        f for f in result_of(world, "stsbadcert").findings if f.check_id == "mail.mta_sts.invalid"
    ]
    assert len(found) == 1 and "certificate" in found[0].evidence["reason"]


@pytest.mark.network
def test_dane_mismatch(world: MailWorld) -> None:
    # Given openssl's DANE verdict for the published (wrong) TLSA record
    rrdata = f"3 1 1 {spki_sha256(world.self_signed_cert)}"
    dane = starttls_client(
        MX_GOOD, "-dane_tlsa_domain", f"mx-dane-bad.{SIGNED}", "-dane_tlsa_rrdata", rrdata
    )
    assert "Verify return code: 0 (ok)" not in dane
    # When vigie judged danebad.dnssec-lab (MX mx-dane-bad, served by .11)
    found = [f for f in result_of(world, "danebad").findings if f.check_id == "mail.dane.invalid"]
    # Then the TLSA records do not match the certificate served
    assert len(found) == 1 and found[0].ip == MX_GOOD
    assert ids(result_of(world, "danebad")) == {"mail.dane.invalid", "mail.mta_sts.missing"}


@pytest.mark.network
def test_unsigned_domain_is_not_asked_for_dane(world: MailWorld) -> None:
    # Given an unsigned domain whose MX is the good server
    found = ids(result_of(world, f"unsigned.{UNSIGNED}"))
    # Then DANE is not missing (no DNSSEC), only MTA-STS and TLS-RPT are
    assert found == {"mail.mta_sts.missing", "mail.tlsrpt.missing"}


@pytest.mark.network
def test_domains_without_mail(world: MailWorld) -> None:
    # Given dig: nullmx publishes "MX 0 .", nomail no MX and no SPF, spfnone "v=spf1 -all"
    assert "MX\t0 ." in dig(world.unbound, f"nullmx.{SIGNED}", "MX")
    # Then only nomail is told to publish a null MX
    assert result_of(world, "nullmx").findings == []
    assert ids(result_of(world, "nomail")) == {"mail.null_mx.missing"}
    assert result_of(world, "spfnone").findings == []
    # And a name without any address is no implicit MX: nothing to ask of it
    assert "ANSWER SECTION" not in dig(world.unbound, f"noaddress.{SIGNED}", "A")
    assert result_of(world, "noaddress").findings == []


@pytest.mark.network
def test_tlsa_matching_agrees_with_openssl(world: MailWorld) -> None:
    # Given TLSA records computed with the openssl command line for the served chain
    ca = x509.load_pem_x509_certificates(world.ca_file.read_bytes())[0]
    chain = x509.load_pem_x509_certificates(world.good_cert.read_bytes())
    ca_file = world.folder / "ca-only.pem"
    ca_file.write_bytes(world.ca_file.read_bytes())
    records = [
        f"3 1 1 {spki_sha256(world.good_cert)}",
        f"3 0 1 {cert_digest(world.good_cert, 'sha256')}",
        f"3 0 2 {cert_digest(world.good_cert, 'sha512')}",
        f"2 0 1 {cert_digest(ca_file, 'sha256')}",
        f"3 1 1 {spki_sha256(world.self_signed_cert)}",
        f"2 0 1 {cert_digest(world.good_cert, 'sha256')}",  # the leaf is no trust anchor
    ]
    # And DANE-TA records that carry the whole anchor, for a server that sends only its leaf
    anchored = [
        f"2 0 0 {cert_der(ca_file).hex()}",
        f"2 1 0 {spki_der(ca_file).hex()}",
        f"2 0 1 {cert_digest(ca_file, 'sha256')}",  # a digest needs the anchor sent
    ]
    cases = [(MX_GOOD, chain, text) for text in records]
    cases += [(MX_LEAF_ONLY, chain[:1], text) for text in anchored]
    for ip, served, text in cases:
        # When openssl checks the record against the live server, and vigie against its chain
        verdict = starttls_client(
            ip, "-dane_tlsa_domain", f"mx-good.{SIGNED}", "-dane_tlsa_rrdata", text
        )
        record = mail.Tlsa.parse(text)
        assert record is not None
        # Then they agree
        agreed = mail.tlsa_matches(record, served) == ("Verify return code: 0 (ok)" in verdict)
        assert agreed, (ip, text)
    assert chain[-1] == ca


@pytest.mark.network
def test_signatures_alone_do_not_make_dane(world: MailWorld) -> None:
    # Given dig asking Knot directly: signatures come with the answers, without the AD flag,
    # and Knot cannot give the DS of dnssec-lab. (it lives in the root zone, which no server
    # of this world serves): only Unbound, holding the zone's key as trust anchor, validates
    direct = Unbound(KNOT, world.unbound.port)
    answer = dig(direct, f"_25._tcp.mx-dane-bad.{SIGNED}", "TLSA")
    assert "RRSIG" in answer and " ad" not in answer.split("flags:")[1].split(";")[0]
    ds = dig(direct, f"{SIGNED}.", "DS")  # the zone's own NODATA, not the parent's answer
    assert "ANSWER: 0," in ds and f"{SIGNED}.\t\t300\tIN\tSOA" in ds.split("AUTHORITY SECTION:")[1]
    # Then through Knot the records are not DNSSEC-validated and DANE does not apply
    # (RFC 7672 §2.2): the mismatching TLSA of danebad is no verdict there, and no domain
    # is asked for DANE; the other findings are those found through Unbound
    for label in ("danebad", "plain", "good"):
        through_knot = ids(world.unvalidated[f"{label}.{SIGNED}"])
        assert not {i for i in through_knot if i.startswith("mail.dane.")}, label
        through_unbound = ids(result_of(world, label))
        assert through_knot == {i for i in through_unbound if not i.startswith("mail.dane.")}
    assert "mail.dane.invalid" in ids(result_of(world, "danebad"))
    assert "mail.dane.missing" not in ids(world.unvalidated["unsigned"])


@pytest.mark.network
def test_mta_sts_policy_behind_a_redirect(world: MailWorld) -> None:
    # Given curl: the policy URL answers 301 (RFC 8461 §3.3: senders do not follow it)
    curl = curl_policy(world, "stsredirect", POLICY_GOOD, "-o", "/dev/null", "-w", "%{http_code}")
    assert curl.stdout == "301"
    # Then vigie finds the policy unusable
    found = [f for f in result_of(world, "stsredirect").findings if f.check_id.startswith("mail.m")]
    assert [f.check_id for f in found] == ["mail.mta_sts.invalid"]
    assert found[0].evidence["reason"] == "HTTP 301 (not 200)"


@pytest.mark.network
def test_mta_sts_mode_none_is_no_protection(world: MailWorld) -> None:
    # Given curl: the policy says "mode: none" (RFC 8461 §5: the policy is being withdrawn)
    assert "mode: none" in curl_policy(world, "stsnone", POLICY_GOOD).stdout
    # Then MTA-STS counts as missing
    found = [f for f in result_of(world, "stsnone").findings if f.check_id.startswith("mail.m")]
    assert [f.check_id for f in found] == ["mail.mta_sts.missing"]
    assert "mode none" in found[0].evidence["reason"]


def _lookup(name: str, rdtype: str, records: tuple[str, ...] = (), **flags: bool) -> Lookup:
    outcome = Answer.OK if records else Answer.NODATA
    return Lookup(name, rdtype, outcome, records=records, **flags)


def _example_observation(host: HostObservation, **extra: Any) -> MailObservation:
    """example.ml, MX mx.example.ml, with neither MTA-STS nor TLS-RPT."""
    sts = StsObservation(_lookup("_mta-sts.example.ml.", "TXT"), mail.select_sts_record([]))
    return MailObservation(
        "example.ml",
        _lookup("example.ml.", "MX", ("10 mx.example.ml.",)),
        (host,),
        sts,
        _lookup("_smtp._tls.example.ml.", "TXT"),
        **extra,
    )


def test_an_ipv6_address_the_scanner_cannot_route_is_skipped() -> None:
    # Given an MX host answering on IPv4 without STARTTLS, and an IPv6 address with no route
    plain = AddressObservation(MX_PLAIN, dialogue=SmtpDialogue("mx ESMTP", 250, ("PIPELINING",)))
    unroutable = AddressObservation(
        "2001:db8::25", dialogue=SmtpDialogue(error="OSError: unreachable", no_route=True)
    )
    host = HostObservation(
        "mx.example.ml",
        Resolution("mx.example.ml", (MX_PLAIN, "2001:db8::25"), Answer.OK),
        _lookup("_25._tcp.mx.example.ml.", "TLSA"),
        (plain, unroutable),
    )
    observation = _example_observation(host)
    # When the observation is judged
    found = mail.mail_findings(observation)
    # Then STARTTLS is missing on the IPv4 address, and the IPv6 one is no scan problem
    assert sorted(f.check_id for f in found) == [
        "mail.mta_sts.missing",
        "mail.starttls.missing",
        "mail.tlsrpt.missing",
    ]
    # And with no other address reached, the unroutable one is a scan error (no verdict)
    alone = _example_observation(
        HostObservation("mx.example.ml", host.resolution, host.tlsa, (unroutable,))
    )
    assert "scan.error" in {f.check_id for f in mail.mail_findings(alone)}


def test_an_unfinished_validation_is_a_scan_problem_not_a_verdict() -> None:
    # Given a secure MX RRset and an MX host whose TLSA records vigie could not validate
    # (the signing zone's DNSKEY or DS lookups failed)
    secure = Validation(Security.SECURE, by="resolver")
    unknown = Validation(Security.INDETERMINATE, "dane.example.ml. DNSKEY: no answer within 2s")
    tlsa = _lookup("_25._tcp.mx.example.ml.", "TLSA", ("3 1 1 " + "ab" * 32,))
    host = HostObservation(
        "mx.example.ml", Resolution("mx.example.ml", (), Answer.NODATA), tlsa, (), unknown
    )
    observation = _example_observation(host, mx_security=secure)
    # When the observation is judged
    found = {f.check_id: f for f in mail.mail_findings(observation)}
    # Then neither mail.dane.missing nor mail.dane.invalid: a scan error that says why
    assert not {i for i in found if i.startswith("mail.dane.")}
    assert "no answer within 2s" in found["scan.error"].evidence["detail"]


@pytest.mark.network
@pytest.mark.parametrize(
    ("label", "ip", "postfix_says", "vigie_says"),
    [
        ("expired", MX_EXPIRED, "certificate has expired", "expired"),
        ("wrongname", MX_WRONG_NAME, "hostname mismatch", "does not name the MX host"),
    ],
)
def test_certificate_defects_under_mta_sts_enforce(
    world: MailWorld, label: str, ip: str, postfix_says: str, vigie_says: str
) -> None:
    # Given posttls-finger refusing the MX certificate (trusted CA, but expired or another name)
    finger = verify_with_postfix(world, ip, f"mx-{label}.{SIGNED}")
    assert postfix_says in finger and "Verified TLS connection" not in finger
    # Then vigie reports it at the default severity: the enforce policy makes senders verify
    found = [f for f in result_of(world, label).findings if f.check_id == "mail.cert.invalid"]
    assert len(found) == 1 and found[0].severity is None and found[0].ip == ip
    assert found[0].evidence["problems"] == [vigie_says]
    assert found[0].evidence["verified_by"] == "MTA-STS enforce"


@pytest.mark.network
def test_a_silent_mx_costs_its_own_verdicts_only(world: MailWorld) -> None:
    # Given an MX address that accepts TCP and never says a word, and a 2 s host deadline
    with socket.socket() as silent:
        silent.bind((MX_SILENT, 25))
        silent.listen(8)
        settings = world.settings.model_copy(
            update={
                "scan": world.settings.scan.model_copy(update={"host_deadline_s": 2.0}),
                "mail": world.settings.mail.model_copy(update={"timeout_s": 30.0}),
            }
        )
        started = time.monotonic()
        # When vigie checks silent.dnssec-lab
        result = _scan_all(settings, [f"silent.{SIGNED}"])[f"silent.{SIGNED}"]
        elapsed = time.monotonic() - started
    # Then the MX probe gives up at 3/4 of the deadline, as a timeout, and the DNS-side
    # verdicts are still there
    assert elapsed < 5
    assert {"scan.timeout", "mail.mta_sts.missing", "mail.tlsrpt.missing"} <= ids(result)
    assert not result.complete and "mail.starttls.missing" not in ids(result)


def _cli(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    dispose_engines()
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.network
def test_vigie_scan_checks_mail_and_ipv6(world: MailWorld, tmp_path: Path) -> None:
    # Given a registry with four of the laboratory's domains
    config = tmp_path / "vigie.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "vigie.db"}"\n'
        f'[dns]\nresolvers = ["{world.unbound.resolver}"]\n'
        '[scope]\nallow = ["127.0.22.0/24"]\n'
        f'[tls]\nextra_ca_file = "{world.ca_file}"\n'
    )
    _cli(config, "init")
    labels = ["good", "plain", "optbad", "danebad"]
    for label in labels:
        _cli(config, "targets", "add", "--agency", "Labo", "--email", "cert@labo.gouv.ml",
             f"{label}.{SIGNED}")  # fmt: skip
    # When vigie scans them with only the mail and IPv6 families
    _cli(config, "scan", "--checks", "mail,ipv6", "--agency", "Labo", "--quiet")
    rows = json.loads(_cli(config, "findings", "--format", "json"))
    # Then the stored findings are the mail family's verdicts, with their severities
    stored = {(r["domain"], r["check_id"], r["severity"]) for r in rows}
    for label in labels:
        for finding in result_of(world, label).findings:
            severity = (finding.severity or CATALOGUE[finding.check_id].severity).value
            assert (f"{label}.{SIGNED}", finding.check_id, severity) in stored
    assert (f"optbad.{SIGNED}", "mail.cert.invalid", "info") in stored
    assert {r["check_id"].split(".")[0] for r in rows} <= {"mail", "ipv6"}


@pytest.mark.network
def test_dane_ee_makes_a_self_signed_certificate_valid(world: MailWorld) -> None:
    # Given: PKIX refuses the self-signed certificate, openssl's DANE check accepts it
    assert "Verified TLS connection" not in verify_with_postfix(
        world, MX_SELF_SIGNED, f"mx-daneself.{SIGNED}"
    )
    rrdata = f"3 1 1 {spki_sha256(world.self_signed_cert)}"
    dane = starttls_client(
        MX_SELF_SIGNED,
        *("-dane_tlsa_domain", f"mx-daneself.{SIGNED}", "-dane_tlsa_rrdata", rrdata),
        "-dane_ee_no_namechecks",  # SMTP's DANE-EE: no name check (RFC 7672 §3.1.1), as Postfix
    )
    assert "Verify return code: 0 (ok)" in dane
    # Then vigie finds neither a DANE mismatch nor a certificate problem (RFC 7672 §3.1.1)
    found = ids(result_of(world, "daneself"))
    assert "mail.dane.invalid" not in found and "mail.cert.invalid" not in found


def test_a_fixed_mx_finding_is_resolved(tmp_path: Path) -> None:
    # Given the store holding mail.starttls.missing on an MX address (a domain-level result)
    settings = load_settings(environ={"VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/v.db"})
    upgrade_database(settings)
    target = HostTarget(domain="example.ml", ip="")
    finding = Finding(
        "mail.starttls.missing", "example.ml", MX_PLAIN, 25, "mx.example.ml", {"reason": "x"}
    )

    def record(findings: list[Finding], complete: bool = True) -> str:
        result = HostResult(target=target)
        result.families[Family.MAIL] = FamilyResult(Family.MAIL, findings, complete)
        with session_scope(settings) as session:
            record_host_result(session, result, run_id=None, agency_id=None, policy=LIFECYCLE)
            return session.exec(select(FindingRecord)).one().status

    try:
        assert record([finding]) == "new"
        # When later complete scans no longer see it (the MX was fixed); an incomplete one
        # proves nothing
        assert record([], complete=False) == "new"
        assert record([]) == "new"
        # Then it is resolved like any other finding, though it names an address
        assert record([]) == "resolved"
    finally:
        dispose_engines()


# --- DANE needs DNSSEC-validated data (RFC 7672 §2.1-§2.2, RFC 6698 §4.1) -------------------------
#
# A second DNS world on 127.0.22.3 (Knot) and .4 (a validating Unbound): the signed zone
# ``dane-lab.`` delegates to ``secure.dane-lab.`` (signed by Knot, DS at the parent),
# ``island.dane-lab.`` (signed by Knot, no DS: an island of trust) and ``bogus.dane-lab.``
# (signed by BIND's dnssec-signzone, DS at the parent, one TLSA changed after signing and one
# with an expired signature). Unbound and delv trust the key of ``dane-lab.`` only, so every
# verdict they give went through a DS at a parent. All MX hosts are the good Postfix (.11).

KNOT_CHAIN, RESOLVER_CHAIN = "127.0.22.3", "127.0.22.4"
LAB = "dane-lab"
CHAIN_DOMAINS = {
    # domain: the mail.dane.* verdict independent validators lead to
    f"good.secure.{LAB}": set(),
    f"danebad.secure.{LAB}": {"mail.dane.invalid"},  # secure, no TLSA record matches
    f"notlsa.secure.{LAB}": {"mail.dane.missing"},
    f"badsig.secure.{LAB}": {"mail.dane.invalid"},  # bogus TLSA: data changed after signing
    f"expiredsig.secure.{LAB}": {"mail.dane.invalid"},  # bogus TLSA: signature expired
    f"islandmx.secure.{LAB}": {"mail.dane.missing"},  # secure MX, insecure TLSA (island)
    f"mail.island.{LAB}": set(),  # insecure MX: DANE does not apply, wrong TLSA ignored
}


@dataclass
class ChainWorld:
    port: int
    anchor: list[str]  # the DNSKEY records of dane-lab., the validators' only trust anchor
    unbound: Unbound
    validated: dict[str, FamilyResult]  # through Unbound
    direct: dict[str, FamilyResult]  # straight from Knot: vigie validates alone


def _chain_zones(folder: Path, good: str, wrong: str) -> tuple[dict[str, str], list[str]]:
    head = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\n"
    secure = (
        f"$ORIGIN secure.{LAB}.\n{head}ns1 A {KNOT_CHAIN}\n"
        f"mx A {MX_GOOD}\n_25._tcp.mx TLSA 3 1 1 {good}\n"
        f"mx-wrong A {MX_GOOD}\n_25._tcp.mx-wrong TLSA 3 1 1 {wrong}\n"
        f"mx-notlsa A {MX_GOOD}\n"
        "good MX 10 mx\ndanebad MX 10 mx-wrong\nnotlsa MX 10 mx-notlsa\n"
        f"badsig MX 10 mx-badsig.bogus.{LAB}.\nexpiredsig MX 10 mx-expired.bogus.{LAB}.\n"
        f"islandmx MX 10 mx.island.{LAB}.\n"
    )
    island = (
        f"$ORIGIN island.{LAB}.\n{head}ns1 A {KNOT_CHAIN}\n"
        f"mx A {MX_GOOD}\n_25._tcp.mx TLSA 3 1 1 {wrong}\nmail MX 10 mx\n"
    )
    bogus_text = (
        f"$ORIGIN bogus.{LAB}.\n{head}ns1 A {KNOT_CHAIN}\n"
        f"mx-badsig A {MX_GOOD}\n_25._tcp.mx-badsig TLSA 3 1 1 {wrong}\n"
        f"mx-expired A {MX_GOOD}\n_25._tcp.mx-expired TLSA 3 1 1 {good}\n"
    )
    bogus, bogus_ds = sign_with_bind(
        folder / "bind",
        f"bogus.{LAB}.",
        bogus_text,
        expired=[f"_25._tcp.mx-expired.bogus.{LAB}."],
        tampered={f"_25._tcp.mx-badsig.bogus.{LAB}.": f"3 1 1 {good}"},
    )
    parent = f"$ORIGIN {LAB}.\n{head}ns1 A {KNOT_CHAIN}\n"
    return {f"{LAB}.": parent, f"secure.{LAB}.": secure, f"island.{LAB}.": island,
            f"bogus.{LAB}.": bogus}, bogus_ds  # fmt: skip


def _delegate(server: ZoneServer, ds: list[str]) -> None:
    """The parent delegates the three zones; DS for secure (keymgr's) and bogus (BIND's)."""
    lines = [f"{child}.{LAB}. NS ns1.{LAB}." for child in ("secure", "island", "bogus")]
    lines += [*server.ds_records(f"secure.{LAB}."), *ds]
    text = f"$ORIGIN {LAB}.\n$TTL 300\n@ SOA ns1 hostmaster 2 3600 600 86400 300\n@ NS ns1\n"
    text += f"ns1 A {KNOT_CHAIN}\n" + "".join(f"{line}\n" for line in lines)
    server.replace_zone(f"{LAB}.", text, expect=(f"bogus.{LAB}.", "DS"))


@pytest.fixture(scope="module")
def chain_world(world: MailWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainWorld]:
    folder = tmp_path_factory.mktemp("dane-chain")
    good = spki_sha256(world.good_cert)
    wrong = spki_sha256(world.self_signed_cert)
    zones, bogus_ds = _chain_zones(folder, good, wrong)
    port = free_port([KNOT_CHAIN, RESOLVER_CHAIN])
    signed = {f"{LAB}.", f"secure.{LAB}.", f"island.{LAB}."}
    with start_zone_server(folder, KNOT_CHAIN, port, zones, signed=signed) as knot:
        _delegate(knot, bogus_ds)
        anchor = dnskey_anchors(KNOT_CHAIN, port, f"{LAB}.")
        with run_unbound(RESOLVER_CHAIN, port, (KNOT_CHAIN, port), [f"{LAB}."], anchor) as unbound:
            settings = world.settings.model_copy(
                update={
                    "dns": world.settings.dns.model_copy(update={"resolvers": [unbound.resolver]})
                }
            )
            direct = settings.model_copy(
                update={"dns": settings.dns.model_copy(update={"resolvers": [knot.resolver]})}
            )
            names = list(CHAIN_DOMAINS)
            yield ChainWorld(
                port, anchor, unbound, _scan_all(settings, names), _scan_all(direct, names)
            )


def dane_ids(result: FamilyResult) -> set[str]:
    return {f.check_id for f in result.findings if f.check_id.startswith("mail.dane.")}


@pytest.mark.network
def test_validators_see_the_chain_as_designed(chain_world: ChainWorld) -> None:
    # Given delv (validating from the parent's key, asking Knot) and Unbound's AD bit
    def delv_says(name: str, rdtype: str = "TLSA") -> str:
        return delv(KNOT_CHAIN, chain_world.port, chain_world.anchor, name, rdtype)

    assert "; fully validated" in delv_says(f"_25._tcp.mx.secure.{LAB}")
    assert "; fully validated" in delv_says(f"good.secure.{LAB}", "MX")
    assert "; unsigned answer" in delv_says(f"_25._tcp.mx.island.{LAB}")
    assert "resolution failed" in delv_says(f"_25._tcp.mx-badsig.bogus.{LAB}")
    assert "resolution failed" in delv_says(f"_25._tcp.mx-expired.bogus.{LAB}")
    assert "; fully validated" in delv_says(f"mx-badsig.bogus.{LAB}", "A")
    # And Unbound agrees: AD on the secure TLSA, SERVFAIL on the bogus ones, no AD on the island
    secure = dig(chain_world.unbound, f"_25._tcp.mx.secure.{LAB}", "TLSA")
    assert " ad" in secure.split("flags:")[1].split(";")[0]
    assert "SERVFAIL" in dig(chain_world.unbound, f"_25._tcp.mx-expired.bogus.{LAB}", "TLSA")
    island = dig(chain_world.unbound, f"_25._tcp.mx.island.{LAB}", "TLSA")
    assert "NOERROR" in island and " ad" not in island.split("flags:")[1].split(";")[0]


@pytest.mark.network
def test_dane_verdicts_follow_dnssec_validation(world: MailWorld, chain_world: ChainWorld) -> None:
    # Given the verdicts delv and Unbound lead to (test above), and openssl's DANE check:
    # the TLSA data of the bogus RRsets does match the server, only DNSSEC makes them unusable
    rrdata = f"3 1 1 {spki_sha256(world.good_cert)}"
    dane = starttls_client(
        *(MX_GOOD, "-dane_tlsa_domain", f"mx-expired.bogus.{LAB}", "-dane_tlsa_rrdata", rrdata),
        "-dane_ee_no_namechecks",  # SMTP's DANE-EE (RFC 7672 §3.1.1)
    )
    assert "Verify return code: 0 (ok)" in dane
    # When vigie judged each domain through the validating resolver
    # Then each gets exactly the verdict validation leads to
    for domain, expected in CHAIN_DOMAINS.items():
        assert dane_ids(chain_world.validated[domain]) == expected, domain
        assert chain_world.validated[domain].complete, domain


@pytest.mark.network
def test_vigie_validates_alone_through_a_resolver_that_does_not(chain_world: ChainWorld) -> None:
    # Given dig asking Knot directly: no AD bit ever
    direct = Unbound(KNOT_CHAIN, chain_world.port)
    answer = dig(direct, f"_25._tcp.mx.secure.{LAB}", "TLSA")
    assert "RRSIG" in answer and " ad" not in answer.split("flags:")[1].split(";")[0]
    # When vigie judged the same domains through Knot
    # Then its own validation gives the same DANE verdicts as the validating path
    for domain, expected in CHAIN_DOMAINS.items():
        assert dane_ids(chain_world.direct[domain]) == expected, domain


@pytest.mark.network
def test_bogus_tlsa_evidence_says_why(chain_world: ChainWorld) -> None:
    # Given delv's reasons: an expired signature, and one that does not verify
    for domain, why in (
        (f"expiredsig.secure.{LAB}", "expired"),
        (f"badsig.secure.{LAB}", "does not verify"),
    ):
        for path in (chain_world.validated, chain_world.direct):
            found = [f for f in path[domain].findings if f.check_id == "mail.dane.invalid"]
            # Then vigie's finding names the bogus RRset and the reason
            assert len(found) == 1 and "DNSSEC bogus" in found[0].evidence["reason"], domain
            assert why in found[0].evidence["reason"], (domain, found[0].evidence)
            assert found[0].evidence["zone"] == f"bogus.{LAB}"
            assert found[0].evidence["tlsa_records"], domain  # also when Unbound said SERVFAIL
