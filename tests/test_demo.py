"""``vigie demo``: the demonstration network, then the whole demo end to end.

Pure pieces first (the DNS authority, the Redis look-alike, the web sites, the
demo configuration), then the network with real clients (httpx, an ssl client,
redis-py, BIND's delv), then ``vigie demo`` itself through the CLI: a real
sweep with the real checks, the findings each application was built to show,
the well-configured application's grade, the files written, and nothing left
listening afterwards, also after Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import email
import email.policy
import errno
import html
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx
import pytest
import redis
import trustme
from click.testing import CliRunner

from tests.servers import require_program
from vigie.cli import main
from vigie.config import load_settings
from vigie.db.queries import FindingFilter, FindingView, query_findings
from vigie.db.session import dispose_engines, session_scope
from vigie.demo import (
    DEMO_NETWORK,
    DemoError,
    DemoNetwork,
    DemoWorld,
    PortPlan,
    build_world,
    choose_ports,
    demo_config_text,
    make_pki,
    registered_names,
)
from vigie.demo._dns import Authority
from vigie.demo._http import Request, Site, respond
from vigie.demo._network import legacy_protocols_available
from vigie.demo._redis import reply_to
from vigie.demo._run import DEMO_FAMILIES
from vigie.demo._world import NAMESERVER
from vigie.grading import grade_applications
from vigie.model import Severity, utcnow

pytestmark = pytest.mark.xdist_group("demo")  # the demo's addresses are fixed: one at a time

FIRST_ADDRESS = "127.77.0.10"


def _world(ports: PortPlan | None = None) -> DemoWorld:
    return build_world(ports or PortPlan(), utcnow())


# --- nothing listening: the proof used after every stop ------------------------------------


def _still_listening(world: DemoWorld) -> list[str]:
    """Every demo listener that something still holds (a bind of our own would fail)."""
    held = []
    for address, port, protocol in world.listeners():
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.settimeout(1.0)
                if sock.connect_ex((address, port)) != errno.ECONNREFUSED:
                    held.append(f"{address}:{port}/{protocol} accepts connections")
                continue
            try:
                sock.bind((address, port))
            except OSError:
                held.append(f"{address}:{port}/{protocol} is still bound")
    return held


# --- the DNS authority (pure) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.from_specs(_world().zones, NAMESERVER)


def _ask(
    authority: Authority, name: str, rdtype: str, *, tcp: bool = False, dnssec: bool = False
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
    return authority.respond(query, over_tcp=tcp)


def _texts(response: dns.message.Message, rdtype: str) -> list[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return [r.to_text() for rrset in response.answer if rrset.rdtype == wanted for r in rrset]


def test_zones_publish_the_engineered_mail_policies(authority: Authority) -> None:
    # Given the demo zones, when vigie's questions are asked, then each policy is as built.
    assert _texts(_ask(authority, "sante.gouv.example", "TXT"), "TXT") == ['"v=spf1 +all"']
    assert _texts(_ask(authority, "_dmarc.sante.gouv.example", "TXT"), "TXT") == [
        '"v=DMARC1; p=none"'
    ]
    assert _texts(_ask(authority, "finances.gouv.example", "TXT"), "TXT") == ['"v=spf1 mx -all"']
    education = _ask(authority, "education.gouv.example", "TXT")
    assert not any("v=spf1" in t for t in _texts(education, "TXT"))
    missing = _ask(authority, "_dmarc.education.gouv.example", "TXT")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.flags & dns.flags.AA


def test_names_outside_the_demo_are_refused_and_aliases_followed(authority: Authority) -> None:
    assert _ask(authority, "example.com", "A").rcode() == dns.rcode.REFUSED
    dangling = _ask(authority, "carte.transports.gouv.example", "A")
    assert dangling.rcode() == dns.rcode.NXDOMAIN
    assert _texts(dangling, "CNAME") == ["transports-carte.hebergeur.example."]
    nodata = _ask(authority, "mail.sante.gouv.example", "TXT")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA


def test_zone_transfer_only_for_the_open_zone_and_only_over_tcp(authority: Authority) -> None:
    open_zone = _ask(authority, "education.gouv.example", "AXFR", tcp=True)
    assert open_zone.rcode() == dns.rcode.NOERROR
    assert open_zone.answer[0].rdtype == dns.rdatatype.SOA
    assert open_zone.answer[-1].rdtype == dns.rdatatype.SOA
    names = {rrset.name.to_text() for rrset in open_zone.answer}
    assert "intranet.education.gouv.example." in names
    over_udp = _ask(authority, "education.gouv.example", "AXFR")
    assert over_udp.rcode() == dns.rcode.REFUSED
    closed = _ask(authority, "sante.gouv.example", "AXFR", tcp=True)
    assert closed.rcode() == dns.rcode.REFUSED


def test_only_the_good_zone_is_signed(authority: Authority) -> None:
    signed = _ask(authority, "finances.gouv.example", "DNSKEY", dnssec=True)
    types = {rrset.rdtype for rrset in signed.answer}
    assert types == {dns.rdatatype.DNSKEY, dns.rdatatype.RRSIG}
    without_do = _ask(authority, "finances.gouv.example", "DNSKEY")
    assert {rrset.rdtype for rrset in without_do.answer} == {dns.rdatatype.DNSKEY}
    unsigned = _ask(authority, "sante.gouv.example", "DNSKEY", dnssec=True)
    assert not unsigned.answer


# --- the Redis look-alike and the web sites (pure) --------------------------------------------


def test_redis_look_alike_answers_without_authentication() -> None:
    assert reply_to(["PING"], 6379) == (b"+PONG\r\n", True)
    info, open_after = reply_to(["INFO"], 6379)
    assert b"redis_version:" in info
    assert open_after
    auth, _ = reply_to(["AUTH", "secret"], 6379)
    assert auth.startswith(b"-ERR AUTH <password> called without any password configured")
    refused, _ = reply_to(["FLUSHALL"], 6379)
    assert refused.startswith(b"-ERR unknown command 'FLUSHALL'")
    assert reply_to(["QUIT"], 6379) == (b"+OK\r\n", False)


def _request(method: str, path: str, **headers: str) -> Request:
    lowered = {k.lower().replace("_", "-"): v for k, v in headers.items()}
    raw = f"{method} {path} HTTP/1.1\r\nHost: demo\r\n".encode()
    return Request(method, path, "HTTP/1.1", lowered, raw)


def test_site_redirects_traces_and_reflects_origins_only_when_built_to() -> None:
    redirecting = Site(host="finances.gouv.example", redirect_to_https=True)
    moved = respond(redirecting, _request("GET", "/login?x=1"))
    assert moved.status == 301
    assert ("Location", "https://finances.gouv.example/login?x=1") in moved.headers
    legacy = Site(host="legacy", trace_enabled=True, reflect_cors=True)
    traced = respond(legacy, _request("TRACE", "/"))
    assert traced.status == 200
    assert traced.body.startswith(b"TRACE / HTTP/1.1")
    assert respond(Site(host="modern"), _request("TRACE", "/")).status == 405
    reflected = respond(legacy, _request("GET", "/", origin="https://evil.example"))
    assert ("Access-Control-Allow-Origin", "https://evil.example") in reflected.headers
    assert ("Access-Control-Allow-Credentials", "true") in reflected.headers
    assert not any(
        name.startswith("Access-Control")
        for name, _ in respond(legacy, _request("GET", "/")).headers
    )


def test_demo_configuration_allows_exactly_the_demo_addresses(tmp_path: Path) -> None:
    world = _world(PortPlan.unprivileged())
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    config = tmp_path / "vigie.toml"
    config.write_text(demo_config_text(world, tmp_path, ca_file))
    settings = load_settings(config, environ={})
    assert settings.scope.allow == [f"127.77.0.{n}/32" for n in (10, 11, 12, 13)]
    assert settings.dns.resolvers == ["127.77.0.53:5353"]
    assert settings.scan.ports == [6379, 8080, 8443]
    assert settings.database.url == f"sqlite:///{tmp_path}/demo.db"
    assert settings.tls.extra_ca_file == ca_file
    assert settings.smtp.host.startswith("127.77.0.")
    assert all(address.startswith(DEMO_NETWORK.rsplit(".", 2)[0]) for address in world.addresses)


# --- the network with real clients -------------------------------------------------------------


@pytest.fixture(scope="class")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoNetwork]:
    world = build_world(choose_ports(FIRST_ADDRESS), utcnow())
    pki = make_pki(world, tmp_path_factory.mktemp("demo-pki"))
    demo = DemoNetwork(world, pki)
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()
    assert _still_listening(world) == []


@pytest.mark.network
class TestNetwork:
    """The demo network, started once for these tests, with real clients."""

    def test_good_application_serves_https_with_the_demo_ca(self, network: DemoNetwork) -> None:
        port = network.world.ports.https
        trusted = ssl.create_default_context(cafile=str(network.pki.ca_file))
        with httpx.Client(verify=trusted) as client:
            answer = client.get(f"https://127.77.0.10:{port}/.well-known/security.txt")
        assert answer.status_code == 200
        assert answer.text.startswith("Contact: mailto:securite@finances.gouv.example")
        assert answer.headers["strict-transport-security"].startswith("max-age=63072000")
        assert answer.extensions["http_version"] == b"HTTP/1.1"

    def test_legacy_application_accepts_tls_1_0(self, network: DemoNetwork) -> None:
        if not legacy_protocols_available():
            pytest.skip("this OpenSSL cannot speak TLS 1.0: the demo says so in its notes")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.warns(DeprecationWarning):
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("ALL:@SECLEVEL=0")
        with (
            socket.create_connection(("127.77.0.11", network.world.ports.https), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="sante.gouv.example") as tls,
        ):
            assert tls.version() == "TLSv1"

    def test_redis_look_alike_satisfies_a_real_client(self, network: DemoNetwork) -> None:
        client = redis.Redis(host="127.77.0.12", port=network.world.ports.redis, socket_timeout=5)
        try:
            assert client.ping() is True
            assert client.info()["redis_version"] == "6.0.16"
            assert client.dbsize() == 1274
        finally:
            client.close()

    def test_bind_delv_validates_the_signed_zone(
        self, network: DemoNetwork, tmp_path: Path
    ) -> None:
        delv = require_program("delv")
        address, port = network.world.dns_address, network.world.ports.dns
        key = dns.query.udp(
            dns.message.make_query("finances.gouv.example", "DNSKEY"), address, timeout=3, port=port
        ).answer[0][0]
        anchor = tmp_path / "anchor.conf"
        public_key = key.to_text().split(" ", 3)[3].replace(" ", "")
        anchor.write_text(
            f'trust-anchors {{ "finances.gouv.example." static-key 257 3 13 "{public_key}"; }};\n'
        )
        for rdtype in ("A", "TXT", "CAA", "DNSKEY"):
            checked = subprocess.run(
                [
                    *(delv, f"@{address}", "-p", str(port), "-a", str(anchor)),
                    *("+root=finances.gouv.example", "finances.gouv.example", rdtype),
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert "; fully validated" in checked.stdout, checked.stdout + checked.stderr


@pytest.mark.network
def test_a_taken_address_fails_the_start_and_leaves_nothing_open(tmp_path: Path) -> None:
    # Given something already listening on the education application's Redis port
    world = build_world(choose_ports(FIRST_ADDRESS), utcnow())
    demo = DemoNetwork(world, make_pki(world, tmp_path))
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.77.0.12", world.ports.redis))
        squatter.listen()
        # When the demo network starts, then it says why and opens nothing.
        with pytest.raises(DemoError, match="already in use"):
            demo.start()
        held = [
            h
            for h in _still_listening(world)
            if not h.startswith(f"127.77.0.12:{world.ports.redis}/")
        ]
    assert held == []


# --- vigie demo, end to end -----------------------------------------------------------------------


@dataclass
class DemoRun:
    exit_code: int
    output: str
    elapsed_s: float
    folder: Path
    views: list[FindingView]
    grades: dict[str, dict[str, object]]
    world: DemoWorld


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    require_program("nmap")
    ports = choose_ports(FIRST_ADDRESS)
    folder = tmp_path_factory.mktemp("demo") / "vigie-demo"
    started = time.monotonic()
    result = CliRunner().invoke(main, ["demo", "--output", str(folder)], env={"COLUMNS": "160"})
    elapsed = time.monotonic() - started
    settings = load_settings(folder / "vigie.toml", environ={})
    with session_scope(settings) as session:
        views = query_findings(session, FindingFilter())
        grades = {g.domain: g.to_dict() for g in grade_applications(session, settings)}
    dispose_engines()
    yield DemoRun(
        result.exit_code,
        result.output,
        elapsed,
        folder,
        views,
        grades,
        build_world(ports, utcnow()),
    )


def _found(run: DemoRun, domains: set[str]) -> set[str]:
    return {v.check_id for v in run.views if v.domain in domains}


@pytest.mark.slow
@pytest.mark.network
def test_demo_finishes_quickly_and_prints_findings_and_grades(demo_run: DemoRun) -> None:
    assert demo_run.exit_code == 0, demo_run.output
    assert demo_run.elapsed_s < 90
    for shown in ("Demonstration network", "Findings", "Grades", "demo network stopped"):
        assert shown in demo_run.output


@pytest.mark.slow
@pytest.mark.network
def test_every_family_shows_a_real_finding(demo_run: DemoRun) -> None:
    families = {v.check_id.split(".")[0] for v in demo_run.views if v.severity > Severity.INFO}
    assert families >= {f.value for f in DEMO_FAMILIES}


@pytest.mark.slow
@pytest.mark.network
def test_each_application_shows_the_weaknesses_it_was_built_with(demo_run: DemoRun) -> None:
    for app in demo_run.world.applications:
        expected = set(app.weaknesses)
        if not legacy_protocols_available():
            expected -= {"tls.protocol.tls1_0", "tls.protocol.tls1_1"}
        found = _found(demo_run, {app.domain, *app.aliases})
        assert expected <= found, f"{app.domain}: missing {sorted(expected - found)}"


@pytest.mark.slow
@pytest.mark.network
def test_the_well_configured_application_grades_well_and_is_not_flagged(
    demo_run: DemoRun,
) -> None:
    good = "finances.gouv.example"
    # Nothing above info, and the only info is the inventory of its two open ports (and
    # of the software it runs: an unversioned nginx).
    inventory = {"software.identified"}
    shown = {(v.check_id, v.port) for v in demo_run.views if v.domain == good}
    assert {v.severity for v in demo_run.views if v.domain == good} == {Severity.INFO}
    assert {s for s in shown if s[0] not in inventory} == {
        ("service.open_port", demo_run.world.ports.http),
        ("service.open_port", demo_run.world.ports.https),
    }
    assert demo_run.grades[good]["grade"] in ("A+", "A")
    assert demo_run.grades[good]["flagged"] is False
    others = [name for _, name in registered_names(demo_run.world) if name != good]
    assert all(demo_run.grades[name]["flagged"] for name in others)


@pytest.mark.slow
@pytest.mark.network
def test_no_probe_timed_out_or_failed(demo_run: DemoRun) -> None:
    problems = {(v.check_id, v.domain) for v in demo_run.views if v.check_id.startswith("scan.")}
    # The dangling alias has no address at all: the engine says so, nothing else may fail.
    assert problems <= {("scan.error", "carte.transports.gouv.example")}


@pytest.mark.slow
@pytest.mark.network
def test_reports_and_digests_are_written(demo_run: DemoRun) -> None:
    folder = demo_run.folder
    assert (folder / "vigie.toml").is_file()
    assert (folder / "registry.csv").read_text().startswith("agency,agency_code,agency_email")
    for app in demo_run.world.applications:
        report = folder / "reports" / f"agency-{app.agency_code.lower()}.html"
        text = html.unescape(report.read_text(encoding="utf-8"))
        assert app.agency in text
        assert app.domain in text
    overview = html.unescape((folder / "reports" / "overview.html").read_text(encoding="utf-8"))
    assert all(app.agency in overview for app in demo_run.world.applications)
    assert all(app.domain in overview for app in demo_run.world.applications if app.weaknesses)
    recipients = set()
    for path in sorted((folder / "emails").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["From"] == "veille@cert.gouv.example"
        assert message.get_body(("plain",)) is not None
        recipients.add(str(message["To"]))
    assert recipients >= {
        "securite@sante.gouv.example",
        "support@hebergeur.example",  # the operator is copied on its application
        "rssi@education.gouv.example",
        "security@transports.gouv.example",
    }


@pytest.mark.slow
@pytest.mark.network
def test_nothing_listens_after_the_demo(demo_run: DemoRun) -> None:
    assert _still_listening(demo_run.world) == []


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_demo_stops_its_servers(tmp_path: Path, stop_signal: signal.Signals) -> None:
    # Given a demo whose network is up and whose sweep has begun
    require_program("nmap")
    world = build_world(choose_ports(FIRST_ADDRESS), utcnow())
    vigie = Path(sys.executable).with_name("vigie")
    process = subprocess.Popen(
        [str(vigie), "demo", "--output", str(tmp_path / "vigie-demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A shell's background job ignores SIGINT; a terminal's Ctrl-C does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for_demo_dns(world, process)
        time.sleep(1.0)
        # When the user presses Ctrl-C (or the service manager sends SIGTERM)
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then the demo ends without finishing, and nothing is left listening.
    assert process.returncode != 0
    assert b"demo finished" not in output
    assert _still_listening(world) == []


def _wait_for_demo_dns(world: DemoWorld, process: subprocess.Popen[bytes]) -> None:
    query = dns.message.make_query("finances.gouv.example", "A")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the demo ended early: {process.stdout.read() if process.stdout else ''!r}"
            )
        try:
            dns.query.udp(query, world.dns_address, timeout=0.2, port=world.ports.dns)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    pytest.fail("the demo's DNS server never answered")
