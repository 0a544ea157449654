"""The port stage: the port list, nmap's options and output, batching, identification.

Network tests run real nmap against listeners and real servers on 127.0.2.x
(sshd, openssl s_server, Python's http.server, a port that never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scanner.service_servers import silent_ports, sshd
from tests.servers import require_program, running
from vigie.config import Settings
from vigie.model import OpenPort
from vigie.scanner import ports as ports_module
from vigie.scanner.ports import (
    REQUIRED_PORTS,
    TOP100_TCP,
    NmapPortStage,
    PortScan,
    batch_rate,
    fallback_ports,
    identify_port,
    nmap_arguments,
    nmap_host_timeout,
    parse_nmap_output,
    port_list,
    run_nmap,
)
from vigie.scanner.probe_context import ProbeContext, RateLimiter

# Every database and remote-administration port CHECKS.md names, and the usual services.
CHECKS_MD_PORTS = {3306, 5432, 1433, 1521, 27017, 6379, 9200, 9300, 5984, 11211, 9042}
CHECKS_MD_PORTS |= {23, 3389, 5900, 445, 139, 5985, 5986, 6000}
CHECKS_MD_PORTS |= {21, 22, 25, 110, 143, 465, 587, 993, 995, 80, 443, 8080, 8443}


def settings(**scan: object) -> Settings:
    return Settings.model_validate(
        {"scope": {"allow": ["127.0.2.0/24"]}, "scan": {"probe_timeout_s": 1, **scan}}
    )


# --- the port list and nmap's options -----------------------------------------------


def test_top100_is_nmaps_list_plus_every_port_the_checks_name() -> None:
    ports = port_list(settings())
    assert len(TOP100_TCP) == len(set(TOP100_TCP)) == 100
    assert set(ports) >= CHECKS_MD_PORTS
    assert REQUIRED_PORTS == CHECKS_MD_PORTS
    assert set(TOP100_TCP) <= set(ports)
    assert ports == sorted(set(ports))
    assert len(ports) == len(set(TOP100_TCP) | CHECKS_MD_PORTS)


def test_a_configured_port_list_still_includes_the_required_ports() -> None:
    ports = port_list(settings(ports=[2222, 22]))
    assert 2222 in ports
    assert set(ports) >= CHECKS_MD_PORTS
    assert 7 not in ports  # the top 100 is not added to an explicit list


def test_nmap_gets_addresses_no_dns_no_ping_and_the_configured_bounds() -> None:
    config = settings(nmap_max_retries=2, nmap_host_timeout_s=90)
    arguments, host_timeout = nmap_arguments(config, [22, 80], 4, False, rate=200)
    assert arguments[:4] == ["-n", "-Pn", "-sT", "-p"]
    assert arguments[4] == "22,80"
    assert arguments[arguments.index("--max-retries") + 1] == "2"
    assert arguments[arguments.index("--host-timeout") + 1] == "90s"
    assert arguments[arguments.index("--max-rate") + 1] == "200"
    # four hosts sharing 200 probes/s: one probe per host every 20 ms
    assert arguments[arguments.index("--scan-delay") + 1] == "20ms"
    assert "-6" not in arguments and "-sV" not in arguments and "-A" not in arguments
    assert host_timeout == 90
    v6, _ = nmap_arguments(config, [22], 1, True, rate=200)
    assert v6[-1] == "-6"


def test_a_batch_the_burst_paid_for_runs_at_nmaps_own_pace() -> None:
    arguments, host_timeout = nmap_arguments(settings(nmap_host_timeout_s=90), [22], 32, False)
    assert "--max-rate" not in arguments and "--scan-delay" not in arguments
    assert host_timeout == 90


def test_no_scan_delay_when_the_cap_is_far_above_what_a_batch_can_send() -> None:
    arguments, _ = nmap_arguments(settings(), [22], 32, False, rate=40_000)
    assert "--scan-delay" not in arguments
    assert arguments[arguments.index("--max-rate") + 1] == "40000"


def test_syn_scan_only_when_configured_and_root() -> None:
    arguments, _ = nmap_arguments(settings(syn_scan=True), [22], 1, False)
    expected = "-sS" if os.geteuid() == 0 else "-sT"
    assert arguments[2] == expected
    assert nmap_arguments(settings(syn_scan=False), [22], 1, False)[0][2] == "-sT"


def test_the_host_timeout_grows_when_the_rate_cap_makes_a_batch_long() -> None:
    config = settings(nmap_host_timeout_s=60, nmap_max_retries=0)
    # 256 hosts x 100 ports at 50 probes/s: 512 s for the batch
    assert nmap_host_timeout(config, 256, 100, 50) == pytest.approx(2 * 512 + 10)
    assert nmap_host_timeout(config, 1, 10, 50) == 60
    assert nmap_host_timeout(config, 256, 100, None) == 60


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_batches_within_the_burst_are_uncapped_then_share_the_rate() -> None:
    # Given a budget of 2,000 probes/s with 15 s of burst (30,000 probes), on a fake clock
    clock = FakeClock()
    budget = RateLimiter(2000, burst=30_000, clock=clock)
    # When batches of 3,520 probes (32 hosts x 110 ports) start back to back
    rates = [batch_rate(budget, 3520) for _ in range(10)]
    # Then the first eight fit in the burst and run uncapped
    assert rates[:8] == [None] * 8
    # And the next ones are spread until the budget has paid for them: the ninth
    # owes 1,680 probes beyond the burst (0.84 s), the tenth 5,200 (2.6 s)
    assert rates[8] == pytest.approx(3520 / 0.84)
    assert rates[9] == pytest.approx(3520 / 2.6)
    # And connections queue behind that debt
    assert budget.reserve() == pytest.approx(5201 / 2000)
    # And a batch started once the debt is paid and the bucket refilled is uncapped again
    clock.now += 60
    assert batch_rate(budget, 3520) is None


def test_every_sweep_of_a_process_draws_from_one_budget() -> None:
    # Given two Celery tasks (or two nightly sweeps) in one process, 1,000/s with 2 s of burst
    config = settings(max_rate_per_s=1000, rate_burst_s=2)
    first, second = ProbeContext.from_settings(config), ProbeContext.from_settings(config)
    # When the first spends the burst
    assert first.rate.reserve(2000) == 0
    # Then the second gets no fresh one: its next thousand wait about a second
    assert second.rate.reserve(1000) == pytest.approx(1.0, abs=0.05)
    # And another configuration has a bucket of its own
    assert ProbeContext.from_settings(settings(max_rate_per_s=999)).rate is not first.rate


def test_without_a_burst_connections_are_spaced_at_the_rate() -> None:
    clock = FakeClock()
    budget = RateLimiter(100, clock=clock)
    assert [budget.reserve() for _ in range(3)] == pytest.approx([0, 0.01, 0.02])
    clock.now += 0.5  # idle time refills at most one token (the bucket's size)
    assert [budget.reserve() for _ in range(2)] == pytest.approx([0, 0.01])


def test_fallback_names_come_from_the_port_number() -> None:
    scan = PortScan("127.0.2.1", (22, 443, 31337), names={22: "ssh", 443: "https", 31337: "Elite"})
    assert fallback_ports(scan) == [
        OpenPort(22, "ssh"),
        OpenPort(443, "http", tls=True),
        OpenPort(31337, "Elite"),
    ]


# --- nmap's output ----------------------------------------------------------------------

NMAP_ADDRESS = "127.0.2.20"
QUIET_ADDRESS = "127.0.2.21"


@contextlib.contextmanager
def listening(address: str, ports: tuple[int, ...]) -> Iterator[None]:
    with silent_ports(address, ports):
        yield


@pytest.mark.network
def test_real_nmap_output_gives_open_ports_and_a_timed_out_host_is_a_timeout() -> None:
    # Given listeners on two of three ports
    nmap = require_program("nmap")
    with listening(NMAP_ADDRESS, (6379, 2222)):
        xml = subprocess.run(
            [
                nmap,
                "-oX",
                "-",
                "-n",
                "-Pn",
                "-sT",
                "-p",
                "22,2222,6379",
                NMAP_ADDRESS,
                QUIET_ADDRESS,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # And a scan of all ports stopped by a tiny host timeout
        timed_out = subprocess.run(
            [
                nmap,
                "-oX",
                "-",
                "-n",
                "-Pn",
                "-sT",
                "-p",
                "1-65535",
                "--host-timeout",
                "50ms",
                QUIET_ADDRESS,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    # When python-nmap's parse of them is read
    scans = parse_nmap_output(xml, "", [NMAP_ADDRESS, QUIET_ADDRESS], 3, "nmap ...")
    stopped = parse_nmap_output(timed_out, "", [QUIET_ADDRESS], 65535, "nmap ...")
    # Then open ports are the listening ones; a host with none is no error
    assert scans[NMAP_ADDRESS].open_ports == (2222, 6379)
    assert scans[NMAP_ADDRESS].names[6379] == "redis"
    assert scans[NMAP_ADDRESS].problem_id == ""
    assert scans[QUIET_ADDRESS].open_ports == ()
    assert scans[QUIET_ADDRESS].problem_id == ""
    # And the timed-out host is a scan.timeout, not an empty host
    assert stopped[QUIET_ADDRESS].problem_id == "scan.timeout"


def test_garbage_instead_of_nmap_xml_is_an_error_for_every_address() -> None:
    with pytest.raises(ports_module.ProbeError):
        parse_nmap_output("not xml", "nmap: something broke", ["127.0.2.1"], 1, "nmap")


# --- batching --------------------------------------------------------------------------------

BATCH_ADDRESSES = tuple(f"127.0.2.{i}" for i in range(60, 72))


@pytest.mark.network
def test_addresses_are_batched_into_few_nmap_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a port stage with batches of 5 and a record of every nmap run
    runs: list[list[str]] = []

    async def recording(
        config: Settings, addresses: list[str], ports: list[int], rate: float | None
    ) -> dict[str, PortScan]:
        runs.append(list(addresses))
        return await run_nmap(config, addresses, ports, rate)

    monkeypatch.setattr(ports_module, "run_nmap", recording)
    config = settings(nmap_batch_size=5, max_rate_per_s=100_000)

    async def scan_all() -> list[PortScan]:
        stage = NmapPortStage(ProbeContext.from_settings(config), ports=[6379])
        try:
            # (one address asked twice, as two domains sharing it would)
            return await asyncio.gather(
                *(stage.scan(ip) for ip in (*BATCH_ADDRESSES, BATCH_ADDRESSES[0]))
            )
        finally:
            await stage.aclose()

    # When 12 addresses are asked for at once
    with listening(BATCH_ADDRESSES[3], (6379,)):
        scans = asyncio.run(scan_all())
    # Then nmap ran 3 times (5 + 5 + 2), each address once, addresses only
    assert sorted(len(run) for run in runs) == [2, 5, 5]
    assert sorted(ip for run in runs for ip in run) == sorted(BATCH_ADDRESSES)
    for run in runs:
        for address in run:
            ipaddress.ip_address(address)
    # And each answer belongs to its address
    assert [s.ip for s in scans] == [*BATCH_ADDRESSES, BATCH_ADDRESSES[0]]
    assert [s.open_ports for s in scans if s.open_ports] == [(6379,)]
    assert scans[3].open_ports == (6379,)


@pytest.mark.network
def test_the_burst_lets_a_small_scan_run_uncapped_and_a_spent_budget_caps_nmap() -> None:
    addresses = ["127.0.2.80", "127.0.2.81"]

    async def scan_with(config: Settings) -> list[PortScan]:
        stage = NmapPortStage(ProbeContext.from_settings(config), ports=[6379, 6380])
        try:
            return await asyncio.gather(*(stage.scan(ip) for ip in addresses))
        finally:
            await stage.aclose()

    # Given the default budget (15 s of 2,000 probes/s): nmap runs at its own pace
    with listening(addresses[0], (6379,)):
        uncapped = asyncio.run(scan_with(settings()))
        # And with no burst at 100 probes/s, the 4 probes are spread until paid for (one
        # token is in the bucket, three take 30 ms: 133 probes/s)
        capped = asyncio.run(scan_with(settings(max_rate_per_s=100, rate_burst_s=0)))
    assert "--max-rate" not in uncapped[0].command
    assert "--max-rate 133 " in capped[0].command
    # And both saw the same thing
    assert [s.open_ports for s in uncapped] == [s.open_ports for s in capped] == [(6379,), ()]


def test_a_name_is_never_handed_to_nmap() -> None:
    async def ask() -> None:
        stage = NmapPortStage(ProbeContext.from_settings(settings()), ports=[22])
        await stage.scan("www.example.ml")

    with pytest.raises(ValueError):
        asyncio.run(ask())


# --- identification ----------------------------------------------------------------------

SSH_ADDRESS = "127.0.2.30"
TLS_ADDRESS = "127.0.2.31"
WEB_ADDRESS = "127.0.2.32"
SILENT_ADDRESS = "127.0.2.33"


def _tls_pair(folder: Path) -> tuple[Path, Path]:
    import trustme

    authority = trustme.CA()
    leaf = authority.issue_cert("tls.vigie.test")
    key, cert = folder / "key.pem", folder / "cert.pem"
    leaf.private_key_pem.write_to_path(str(key))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    return key, cert


@pytest.fixture(scope="module")
def identification_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """sshd on 22 and on 6379; TLS web servers on 4443 (unknown) and 8080 (an HTTP port); a
    plain web server on 10000; a silent port 2222."""
    folder = tmp_path_factory.mktemp("identify")
    key, cert = _tls_pair(folder)
    openssl = require_program("openssl")

    def s_server(port: int) -> list[str]:
        return [
            openssl,
            "s_server",
            "-quiet",
            "-www",
            "-accept",
            f"{TLS_ADDRESS}:{port}",
            "-key",
            str(key),
            "-cert",
            str(cert),
        ]

    web = [
        sys.executable,
        "-m",
        "http.server",
        "10000",
        "--bind",
        WEB_ADDRESS,
        "--directory",
        str(folder),
    ]
    with contextlib.ExitStack() as stack:
        stack.enter_context(sshd(folder, SSH_ADDRESS, password_auth=False))
        stack.enter_context(running(s_server(4443), listen=(TLS_ADDRESS, 4443)))
        stack.enter_context(running(s_server(8080), listen=(TLS_ADDRESS, 8080)))
        stack.enter_context(running(web, listen=(WEB_ADDRESS, 10000)))
        stack.enter_context(silent_ports(SILENT_ADDRESS, (2222, 80)))
        yield


def identify(address: str, port: int, nmap_name: str = "") -> OpenPort:
    ctx = ProbeContext.from_settings(settings(probe_timeout_s=1))
    return asyncio.run(identify_port(ctx, address, port, nmap_name))


@pytest.mark.network
def test_identification_names_protocols_from_what_the_servers_send(
    identification_lab: None,
) -> None:
    # An SSH banner
    ssh = identify(SSH_ADDRESS, 22, "ssh")
    assert (ssh.service, ssh.tls) == ("ssh", False)
    assert ssh.banner.startswith("SSH-2.0-OpenSSH_")
    # TLS on a port nothing is known about, with HTTP inside
    tls = identify(TLS_ADDRESS, 4443, "unknown")
    assert (tls.service, tls.tls) == ("http", True)
    # TLS where plain HTTP was expected
    proxy = identify(TLS_ADDRESS, 8080, "http-proxy")
    assert (proxy.service, proxy.tls) == ("http", True)
    # Plain HTTP on an unknown port: the status line and Server header are the banner
    web = identify(WEB_ADDRESS, 10000, "snet-sensor-mgmt")
    assert (web.service, web.tls) == ("http", False)
    assert web.banner.startswith("HTTP/1.0 200") and "Server: SimpleHTTP" in web.banner


@pytest.mark.network
def test_redis_and_memcached_on_ports_of_their_own_choosing_are_named(tmp_path: Path) -> None:
    # Given Redis (no password) and memcached on ports nothing hints at
    address = "127.0.2.36"
    redis_argv = [
        require_program("redis-server"), "--bind", address, "--port", "6380",
        "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
    ]  # fmt: skip
    memcached_argv = [require_program("memcached"), "-l", address, "-p", "11299", "-U", "0"]
    with (
        running(redis_argv, listen=(address, 6380)),
        running([*memcached_argv, "-u", "root"], listen=(address, 11299)),
    ):
        # When their ports are identified
        redis = identify(address, 6380, "unknown")
        cache = identify(address, 11299, "unknown")
    # Then each is named from its answer to PING (Redis drops HTTP requests unanswered)
    assert (redis.service, redis.tls, redis.banner) == ("redis", False, "+PONG\r\n")
    assert (cache.service, cache.tls) == ("memcached", False)


@pytest.mark.network
def test_a_banner_wins_over_the_port_number(tmp_path: Path) -> None:
    # Given sshd listening on Redis's port
    with running(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(_sshd_on(tmp_path, "127.0.2.34", 6379))],
        listen=("127.0.2.34", 6379),
    ):
        found = identify("127.0.2.34", 6379, "redis")
    assert found.service == "ssh"


def _sshd_on(folder: Path, address: str, port: int) -> Path:
    key = folder / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-f", str(key), "-N", ""], check=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    config = folder / "sshd.conf"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {key}\nPidFile {folder / 'pid'}\nUsePAM no\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.network
def test_a_port_that_never_answers_costs_bounded_time_and_keeps_its_number_name(
    identification_lab: None,
) -> None:
    started = time.monotonic()
    unknown = identify(SILENT_ADDRESS, 2222, "EtherNetIP-1")
    web = identify(SILENT_ADDRESS, 80, "http")
    elapsed = time.monotonic() - started
    assert unknown == OpenPort(2222, "EtherNetIP-1")
    assert web == OpenPort(80, "http")
    # banner wait (2 s) + PING (0.5 s) + a TLS attempt (1 s) for 2222, HTTP (1 s) for 80
    assert elapsed < 6


# --- the measure ----------------------------------------------------------------------

MEASURE_ADDRESSES = tuple(f"127.0.2.{i}" for i in range(100, 140))


@pytest.mark.network
def test_port_stage_on_40_addresses_with_the_full_port_list() -> None:
    # Given 40 addresses, a few of them listening on database and admin ports
    listening_on = {
        MEASURE_ADDRESSES[0]: (6379, 5432),
        MEASURE_ADDRESSES[17]: (3389,),
        MEASURE_ADDRESSES[39]: (22,),
    }
    config = settings(max_rate_per_s=100_000)

    async def scan_all() -> tuple[list[PortScan], float, int]:
        stage = NmapPortStage(ProbeContext.from_settings(config))
        started = time.monotonic()
        try:
            scans = await asyncio.gather(*(stage.scan(ip) for ip in MEASURE_ADDRESSES))
        finally:
            await stage.aclose()
        return scans, time.monotonic() - started, len(stage.ports)

    with contextlib.ExitStack() as stack:
        for address, ports in listening_on.items():
            stack.enter_context(listening(address, ports))
        # When the port stage scans them
        scans, elapsed, port_count = asyncio.run(scan_all())
    # Then exactly the listening ports are open, and it is quick
    opened = {s.ip: s.open_ports for s in scans if s.open_ports}
    assert opened == {address: tuple(sorted(ports)) for address, ports in listening_on.items()}
    assert all(s.problem_id == "" for s in scans)
    print(
        f"\nport stage: {len(MEASURE_ADDRESSES)} addresses x {port_count} ports in {elapsed:.2f}s"
    )
    assert elapsed < 10


def _socket_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.network
def test_identification_closes_its_connections() -> None:
    # Given a silent listener
    before = _socket_count()
    with silent_ports("127.0.2.35", (2222,)):
        identify("127.0.2.35", 2222)
    # Then no file descriptor is left behind
    assert _socket_count() <= before + 1


@pytest.mark.network
def test_ipv6_addresses_get_their_own_nmap_run() -> None:
    # Given a listener on the IPv6 loopback, allowed explicitly
    config = Settings.model_validate(
        {"scope": {"allow": ["::1/128"]}, "scan": {"max_rate_per_s": 100_000}}
    )
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::1", 6379))
    listener.listen(4)

    async def scan() -> PortScan:
        stage = NmapPortStage(ProbeContext.from_settings(config), ports=[22, 6379])
        try:
            return await stage.scan("::1")
        finally:
            await stage.aclose()

    try:
        result = asyncio.run(scan())
    finally:
        listener.close()
    assert (result.problem_id, result.open_ports) == ("", (6379,))
    assert "-6" in result.command
