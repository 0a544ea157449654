"""The port stage: which TCP ports are open (nmap), then what speaks on each.

This is the only module that imports nmap (python-nmap parses nmap's XML).
nmap is handed addresses, never names (``-n``: no DNS at all), many
addresses per run (``scan.nmap_batch_size``), with a TCP connect scan (or a
SYN scan when configured and root), no host discovery (``-Pn``), nmap's own
host timeout, retries and packet rate from the configuration. nmap's
``-sV`` is far too slow for a sweep; instead each open port gets a light
identification: its unprompted banner, an inline ``PING`` where a port no
number hints at stays silent (Redis and memcached answer it, and nothing
else names them), a TLS handshake where the port is silent or known for
TLS, and an HTTP request, each bounded by the probe timeout. The port
number is only a hint for which of these to try first.

Check IDs: none directly; a port scan that failed carries ``scan.timeout`` or
``scan.error`` in its :class:`PortScan`, which the engine reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import shutil
import ssl
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nmap

from vigie.config import Settings
from vigie.errors import ProbeError, ProbeTimeout
from vigie.model import OpenPort
from vigie.scanner.banners import (
    Opening,
    PortHint,
    classify_ping_reply,
    classify_reply,
    hint_for,
    is_tls_record,
)
from vigie.scanner.connection import (
    BoundedCache,
    NotTls,
    Stream,
    cancel_pending,
    open_stream,
    printable,
    probe_tls_context,
)
from vigie.scanner.http_wire import build_request
from vigie.scanner.probe_context import ProbeContext, RateLimiter

log = logging.getLogger("vigie.scanner.ports")

# nmap 7.93's 100 most common TCP ports (nmap -sT --top-ports 100 -oX - ...).
TOP100_TCP: tuple[int, ...] = (
    *(7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119),
    *(135, 139, 143, 144, 179, 199, 389, 427, 443, 444, 445, 465, 513, 514, 515, 543),
    *(544, 548, 554, 587, 631, 646, 873, 990, 993, 995, 1025, 1026, 1027, 1028, 1029),
    *(1110, 1433, 1720, 1723, 1755, 1900, 2000, 2001, 2049, 2121, 2717, 3000, 3128),
    *(3306, 3389, 3986, 4899, 5000, 5009, 5051, 5060, 5101, 5190, 5357, 5432, 5631),
    *(5666, 5800, 5900, 6000, 6001, 6646, 7070, 8000, 8008, 8009, 8080, 8081, 8443),
    *(8888, 9100, 9999, 10000, 32768, 49152, 49153, 49154, 49155, 49156, 49157),
)
# Always scanned, whatever scan.ports says: every database and remote-administration
# port CHECKS.md names, plus the mail, file transfer, SSH and web ports.
REQUIRED_PORTS: frozenset[int] = frozenset(
    {3306, 5432, 1433, 1521, 27017, 6379, 9200, 9300, 5984, 11211, 9042}
    | {23, 3389, 5900, 445, 139, 5985, 5986, 6000}
    | {21, 22, 25, 110, 143, 465, 587, 993, 995, 80, 443, 8080, 8443}
)

# Two nmap runs at once, their probes drawn from the sweep's rate budget.
NMAP_PARALLEL_RUNS = 2
# A batch allowed more probes per second than this runs uncapped: a connect scan
# on loopback peaks around 30,000.
NMAP_FULL_SPEED_PER_S = 50_000.0
# How long a partly filled batch waits for more addresses before nmap starts.
BATCH_LINGER_S = 0.3
# Extra time the whole nmap process gets beyond its host timeout.
NMAP_RUN_GRACE_S = 30.0
MAX_CACHED_HOSTS = 4096

# How long to wait for an unprompted banner before trying something else.
SERVER_FIRST_WAIT_S = 3.0  # SSH, FTP, POP3... greet at once
UNKNOWN_PORT_WAIT_S = 2.0
CLIENT_FIRST_WAIT_S = 0.5  # Redis, RDP... stay silent: a greeting proves something else
PING = b"PING\r\n"  # inline: Redis and memcached answer it at once


def port_list(settings: Settings) -> list[int]:
    """The TCP ports a sweep scans: ``scan.ports`` (or the top 100) plus REQUIRED_PORTS."""
    configured = TOP100_TCP if settings.scan.ports == "top100" else settings.scan.ports
    return sorted(set(configured) | REQUIRED_PORTS)


@dataclass(frozen=True)
class PortScan:
    """What nmap saw on one address; ``problem`` is set when it could not tell."""

    ip: str
    open_ports: tuple[int, ...] = ()
    names: dict[int, str] = field(default_factory=dict)  # nmap's table name per open port
    reasons: dict[int, str] = field(default_factory=dict)  # why nmap says open ("syn-ack")
    ports_scanned: int = 0
    problem_id: str = ""  # "scan.timeout" / "scan.error" when nmap failed for this host
    problem: str = ""
    command: str = ""  # the nmap command line, for evidence

    def excerpt(self, port: int) -> str:
        """nmap's line for one open port, as evidence: ``6379/tcp open redis (syn-ack)``."""
        return f"{port}/tcp open {self.names.get(port, '')} ({self.reasons.get(port, '')})"


# --- nmap ----------------------------------------------------------------------------


@contextlib.contextmanager
def nmap_errors() -> Iterator[None]:
    """python-nmap's exceptions as vigie's probe errors."""
    try:
        yield
    except nmap.PortScannerTimeout as exc:
        raise ProbeTimeout(f"nmap: {exc}") from None
    except nmap.PortScannerError as exc:
        raise ProbeError(f"nmap: {str(exc).strip()[:1000]}") from None


def nmap_arguments(
    settings: Settings, ports: list[int], batch_size: int, ipv6: bool, rate: float | None = None
) -> tuple[list[str], float]:
    """nmap's options for one batch, and the host timeout they carry.

    ``rate`` is the batch's share of the sweep's rate (probes per second), or
    None when the sweep's burst has paid for the whole batch: nmap's own
    congestion control then sets the pace.
    """
    syn = settings.scan.syn_scan and hasattr(os, "geteuid") and os.geteuid() == 0
    if rate is not None:
        rate = max(rate, 1.0)
    host_timeout = nmap_host_timeout(settings, batch_size, len(ports), rate)
    arguments = [
        "-n",
        "-Pn",
        "-sS" if syn else "-sT",
        "-p",
        ",".join(str(port) for port in ports),
        "--max-retries",
        str(settings.scan.nmap_max_retries),
        "--host-timeout",
        f"{math.ceil(host_timeout)}s",
        "--min-hostgroup",
        str(batch_size),
    ]
    if rate is not None:
        arguments += ["--max-rate", f"{rate:.0f}"]
        delay_ms = math.ceil(1000 * batch_size / rate)
        if delay_ms > 1:
            # nmap meets --max-rate by polling, a third of a core while it holds back; a
            # per-host delay that spreads the batch under the cap costs it nothing.
            arguments += ["--scan-delay", f"{delay_ms}ms"]
    if ipv6:
        arguments.append("-6")
    return arguments, host_timeout


def nmap_host_timeout(
    settings: Settings, batch_size: int, port_count: int, rate: float | None
) -> float:
    """The configured host timeout, raised when the rate cap alone makes the batch longer.

    With the whole batch in one host group every host lasts about as long as
    the batch, so a timeout shorter than that would time out healthy hosts.
    """
    if rate is None:
        return settings.scan.nmap_host_timeout_s
    batch_duration = batch_size * port_count * (1 + settings.scan.nmap_max_retries) / rate
    return max(settings.scan.nmap_host_timeout_s, 2 * batch_duration + 10)


def batch_rate(budget: RateLimiter, probes: int) -> float | None:
    """The rate that spreads ``probes`` until the sweep's budget has paid for them.

    None (no cap) while the burst covers them, or when the spread rate is beyond
    what a connect scan reaches anyway.
    """
    delay = budget.reserve(probes)
    if delay <= 0 or probes / delay >= NMAP_FULL_SPEED_PER_S:
        return None
    return probes / delay


def parse_nmap_output(
    xml_output: str, stderr: str, addresses: list[str], ports_scanned: int, command: str
) -> dict[str, PortScan]:
    """One PortScan per address from nmap's XML (python-nmap parses it)."""
    parser = nmap.PortScanner.__new__(nmap.PortScanner)  # its __init__ runs `nmap -V`
    with nmap_errors():
        result: dict[str, Any] = parser.analyse_nmap_xml_scan(
            nmap_xml_output=xml_output,
            nmap_err=stderr,
            nmap_err_keep_trace=[stderr] if stderr.strip() else [],
            nmap_warn_keep_trace=[],
        )
    timed_out = _timed_out_hosts(xml_output)
    hosts: dict[str, Any] = result.get("scan", {})
    scans: dict[str, PortScan] = {}
    for address in addresses:
        key = _nmap_key(address, hosts)
        if address in timed_out or (key is not None and key in timed_out):
            scans[address] = PortScan(
                address,
                ports_scanned=ports_scanned,
                problem_id="scan.timeout",
                problem="nmap host timeout: the port scan of this address did not finish",
                command=command,
            )
        elif key is None:
            scans[address] = PortScan(
                address,
                ports_scanned=ports_scanned,
                problem_id="scan.error",
                problem=f"nmap reported nothing for this address: {stderr.strip()[:500]}",
                command=command,
            )
        else:
            tcp: dict[int, dict[str, Any]] = hosts[key].get("tcp", {})
            opened = sorted(port for port, info in tcp.items() if info.get("state") == "open")
            scans[address] = PortScan(
                address,
                open_ports=tuple(opened),
                names={port: str(tcp[port].get("name", "")) for port in opened},
                reasons={port: str(tcp[port].get("reason", "")) for port in opened},
                ports_scanned=ports_scanned,
                command=command,
            )
    return scans


def _nmap_key(address: str, hosts: dict[str, Any]) -> str | None:
    """nmap writes IPv6 addresses in its own (compressed) form."""
    if address in hosts:
        return address
    wanted = ipaddress.ip_address(address)
    for key in hosts:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(key) == wanted:
                return key
    return None


def _timed_out_hosts(xml_output: str) -> set[str]:
    try:
        root = ElementTree.fromstring(xml_output)
    except ElementTree.ParseError:
        return set()
    found: set[str] = set()
    for host in root.iter("host"):
        if host.get("timedout") == "true":
            for address in host.iter("address"):
                if address.get("addrtype") in ("ipv4", "ipv6"):
                    found.add(address.get("addr", ""))
    return found


async def run_nmap(
    settings: Settings, addresses: list[str], ports: list[int], rate: float | None = None
) -> dict[str, PortScan]:
    """One nmap process for ``addresses`` (all IPv4 or all IPv6); never raises for a host.

    ``rate``: the run's cap in probes per second (None: nmap's own pace).
    """
    program = shutil.which("nmap")
    ipv6 = ipaddress.ip_address(addresses[0]).version == 6
    arguments, host_timeout = nmap_arguments(settings, ports, len(addresses), ipv6, rate)
    # For evidence: the options as run, the port list counted rather than spelled out.
    shown = [f"<{len(ports)} ports>" if "," in a else a for a in arguments]
    command = " ".join(["nmap", *shown, f"<{len(addresses)} addresses>"])
    if program is None:
        return _failed(addresses, ports, "scan.error", "nmap is not installed", command)
    # Started with subprocess (vfork and exec) and waited for on a thread: uvloop forks
    # first, and a forked copy of a large sweep process, until it execs, doubles the
    # memory a supervisor sees.
    process = subprocess.Popen(
        [program, "-oX", "-", *arguments, *addresses],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    limit = host_timeout + NMAP_RUN_GRACE_S
    try:
        stdout, stderr = await asyncio.to_thread(process.communicate, timeout=limit)
    except subprocess.TimeoutExpired:
        return _failed(
            addresses, ports, "scan.timeout", f"nmap ran longer than {limit:g}s", command
        )
    finally:
        if process.poll() is None:  # timed out, or the sweep was cancelled
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            # the thread in communicate() ends once the pipes close
            await asyncio.to_thread(process.wait)
    try:
        return parse_nmap_output(
            stdout.decode("utf-8", errors="replace"),
            stderr.decode("utf-8", errors="replace"),
            addresses,
            len(ports),
            command,
        )
    except (ProbeError, ProbeTimeout) as exc:
        return _failed(addresses, ports, "scan.error", str(exc), command)


def _failed(
    addresses: list[str], ports: list[int], check_id: str, detail: str, command: str
) -> dict[str, PortScan]:
    return {
        address: PortScan(
            address, ports_scanned=len(ports), problem_id=check_id, problem=detail, command=command
        )
        for address in addresses
    }


# --- identification ----------------------------------------------------------------


def http_banner(answer: bytes) -> str:
    """The status line and Server header of an HTTP answer."""
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.lower().startswith("server:")]
    return printable("\n".join(kept))


def describe(
    answer: bytes, hint: PortHint | None, port: int, fallback: str, tls: bool
) -> OpenPort | None:
    """An OpenPort when ``answer`` proves a protocol, else None."""
    name = classify_reply(answer, hint.service if hint else None)
    if name is None:
        return None
    banner = http_banner(answer) if name == "http" else printable(answer)
    return OpenPort(port=port, service=name, banner=banner, tls=tls)


async def _greeting(ctx: ProbeContext, ip: str, port: int, wait_s: float) -> bytes:
    async with open_stream(ctx, ip, port) as stream:
        return await stream.banner(min(wait_s, ctx.settings.scan.probe_timeout_s))


async def _http_answer(stream: Stream, ip: str) -> bytes:
    host = f"[{ip}]" if ":" in ip else ip
    await stream.send(build_request("GET", host, "/"))
    return await stream.read_until(
        lambda got: b"\r\n\r\n" in got or b"\n\n" in got, 4096, accept_partial=True
    )


async def _identify_by_ping(ctx: ProbeContext, ip: str, port: int) -> OpenPort | None:
    """Redis or memcached on a port of their own choosing, from their answer to ``PING``."""
    try:
        async with open_stream(ctx, ip, port) as stream:
            await stream.send(PING)
            answer = await stream.banner(min(CLIENT_FIRST_WAIT_S, stream.timeout_s))
    except ProbeError:  # refused or reset: the TLS and HTTP attempts may still tell
        return None
    name = classify_ping_reply(answer)
    return OpenPort(port, name, printable(answer)) if name else None


async def _plain_http(ctx: ProbeContext, ip: str, port: int) -> bytes:
    async with open_stream(ctx, ip, port) as stream:
        return await _http_answer(stream, ip)


async def _over_tls(ctx: ProbeContext, ip: str, port: int) -> bytes:
    """After a TLS handshake: the server's greeting, else its answer to an HTTP request."""
    async with open_stream(ctx, ip, port, tls=True) as stream:
        greeting = await stream.banner(min(CLIENT_FIRST_WAIT_S, stream.timeout_s))
        if greeting:
            return greeting
        return await _http_answer(stream, ip)


async def identify_port(ctx: ProbeContext, ip: str, port: int, nmap_name: str) -> OpenPort:
    """Name the protocol on an open port from what it says; the number is only a hint."""
    hint = hint_for(port)
    fallback = OpenPort(
        port=port, service=hint.service if hint else nmap_name, tls=bool(hint and hint.tls)
    )
    try:
        found = await _identify(ctx, ip, port, hint, fallback)
    except (ProbeTimeout, ProbeError) as exc:
        log.debug("port not identified", extra={"ip": ip, "port": port, "reason": str(exc)})
        return fallback
    return found or fallback


async def _identify(
    ctx: ProbeContext, ip: str, port: int, hint: PortHint | None, fallback: OpenPort
) -> OpenPort | None:
    opening = hint.opening if hint else None
    if opening is Opening.TLS:
        found = await _identify_tls(ctx, ip, port, hint, fallback)
        if found is not None:
            return found
        opening = None  # not TLS after all: treat it as an unknown port
    if opening is Opening.HTTP:
        return await _identify_http_first(ctx, ip, port, hint, fallback)
    if opening is Opening.CLIENT_FIRST:
        greeting = await _greeting(ctx, ip, port, CLIENT_FIRST_WAIT_S)
        return describe(greeting, hint, port, fallback.service, False)
    wait = UNKNOWN_PORT_WAIT_S
    if opening is Opening.SERVER_FIRST:
        # SMTP servers may delay their greeting on purpose (greet pause)
        smtp = hint is not None and hint.service == "smtp"
        wait = ctx.settings.scan.probe_timeout_s if smtp else SERVER_FIRST_WAIT_S
    greeting = await _greeting(ctx, ip, port, wait)
    if greeting:
        return describe(greeting, hint, port, fallback.service, False) or OpenPort(
            port, fallback.service, printable(greeting)
        )
    if hint is None:
        found = await _identify_by_ping(ctx, ip, port)
        if found is not None:
            return found
    found = await _identify_tls(ctx, ip, port, hint, fallback)
    if found is not None:
        return found
    return describe(await _plain_http(ctx, ip, port), hint, port, fallback.service, False)


def client_hello() -> bytes:
    """The ClientHello the probe context sends, as bytes to write on a plain connection."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = probe_tls_context().wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls_object.do_handshake()
    return outgoing.read()


async def answers_in_tls(ctx: ProbeContext, ip: str, port: int) -> bool:
    """Does the port answer a ClientHello with a TLS record (a ServerHello or an alert)?

    RFC 8446 §5.1 / RFC 5246 §6.2: every TLS message travels in records whose
    header is a content type (22 handshake, 21 alert) and a 3.x version. A
    server that sends one speaks TLS, even when Python's client then cannot
    finish the handshake (only NULL suites, a 512-bit key, a certificate list
    over OpenSSL's client limit): that is the TLS family's to judge, not
    evidence of plain text. Raises ProbeError/ProbeTimeout like any probe.
    """
    async with open_stream(ctx, ip, port) as stream:
        await stream.send(client_hello())
        first = await stream.read_until(lambda got: len(got) >= 3, 3, accept_partial=True)
    return is_tls_record(first)


async def _identify_tls(
    ctx: ProbeContext, ip: str, port: int, hint: PortHint | None, fallback: OpenPort
) -> OpenPort | None:
    """An OpenPort with tls=True when the port speaks TLS, else None.

    A handshake Python's client could not complete still proves TLS when the
    server answered in TLS records (:func:`answers_in_tls`): the port keeps
    tls=True, with no banner, so that no later stage reads it as plain HTTP.
    """
    try:
        answer = await _over_tls(ctx, ip, port)
    except NotTls:
        try:
            speaks_tls = await answers_in_tls(ctx, ip, port)
        except ProbeTimeout:  # silent this time: the plain-text probes that follow decide
            speaks_tls = False
        if speaks_tls:
            return OpenPort(port, fallback.service or "ssl", "", tls=True)
        return None
    found = describe(answer, hint, port, fallback.service, True)
    return found or OpenPort(port, fallback.service or "ssl", printable(answer), tls=True)


async def _identify_http_first(
    ctx: ProbeContext, ip: str, port: int, hint: PortHint | None, fallback: OpenPort
) -> OpenPort | None:
    answer = await _plain_http(ctx, ip, port)
    if not answer or is_tls_record(answer):
        return await _identify_tls(ctx, ip, port, hint, fallback)
    return describe(answer, hint, port, fallback.service, False)


def fallback_ports(scan: PortScan) -> list[OpenPort]:
    """The open ports named from their number alone, when there was no time to identify them."""
    ports = []
    for port in scan.open_ports:
        hint = hint_for(port)
        name = hint.service if hint else scan.names.get(port, "")
        ports.append(OpenPort(port=port, service=name, tls=bool(hint and hint.tls)))
    return ports


async def identify_open_ports(ctx: ProbeContext, scan: PortScan) -> list[OpenPort]:
    """Identify every open port of one address (in parallel, within the host's cap)."""
    return list(
        await asyncio.gather(
            *(
                identify_port(ctx, scan.ip, port, scan.names.get(port, ""))
                for port in scan.open_ports
            )
        )
    )


# --- the stage --------------------------------------------------------------------------


@dataclass
class _StageTiming:
    """How long the sweep's nmap runs took, for the operator's log and the benchmark."""

    runs: int = 0
    addresses: int = 0
    first_start: float = math.inf
    last_end: float = 0.0
    nmap_s: float = 0.0

    def add(self, started: float, ended: float, addresses: int) -> None:
        self.runs += 1
        self.addresses += addresses
        self.first_start = min(self.first_start, started)
        self.last_end = max(self.last_end, ended)
        self.nmap_s += ended - started

    def summary(self) -> dict[str, object]:
        return {
            "nmap_runs": self.runs,
            "addresses": self.addresses,
            # from the first nmap start to the last nmap end: the port scan's wall time
            "wall_s": round(self.last_end - self.first_start, 3),
            "nmap_s": round(self.nmap_s, 3),
        }


class NmapPortStage:
    """Batches the addresses of a sweep into few nmap runs; identifies each host's ports.

    Results are kept per address (bounded), so domains sharing an address
    are port-scanned and identified once.
    """

    def __init__(self, ctx: ProbeContext, ports: list[int] | None = None) -> None:
        self._ctx = ctx
        self._ports = ports or port_list(ctx.settings)
        self._batch_size = ctx.settings.scan.nmap_batch_size
        self._pending: dict[int, list[str]] = {4: [], 6: []}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._futures: dict[str, asyncio.Future[PortScan]] = {}
        self._scans = BoundedCache[str, PortScan](MAX_CACHED_HOSTS)
        self._identified = BoundedCache[str, "asyncio.Task[list[OpenPort]]"](MAX_CACHED_HOSTS)
        self._runs = asyncio.Semaphore(NMAP_PARALLEL_RUNS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._timing = _StageTiming()

    @property
    def ports(self) -> list[int]:
        return list(self._ports)

    async def scan(self, ip: str) -> PortScan:
        """nmap's view of ``ip``, from the next batch run (or from an earlier one)."""
        done = self._scans.get(ip)
        if done is not None:
            return done
        future = self._futures.get(ip)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._futures[ip] = future
            self._enqueue(ip)
        return await asyncio.shield(future)

    async def identify(self, ip: str, scan: PortScan) -> list[OpenPort]:
        """The open ports of ``ip`` with their protocol, banner and TLS flag."""
        task = self._identified.get(ip)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.ensure_future(identify_open_ports(self._ctx, scan))
            self._identified.put(ip, task)
        return list(await asyncio.shield(task))

    async def aclose(self) -> None:
        """Stop timers, nmap runs and identifications still going (the sweep is over)."""
        if self._timing.runs:
            log.info("port stage", extra=self._timing.summary())
        await cancel_pending(self._identified.values())
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _enqueue(self, ip: str) -> None:
        version = ipaddress.ip_address(ip).version
        self._pending[version].append(ip)
        if len(self._pending[version]) >= self._batch_size:
            self._flush(version)
        elif version not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[version] = loop.call_later(BATCH_LINGER_S, self._flush, version)

    def _flush(self, version: int) -> None:
        timer = self._timers.pop(version, None)
        if timer is not None:
            timer.cancel()
        batch, self._pending[version] = self._pending[version], []
        if batch:
            task = asyncio.ensure_future(self._run_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[str]) -> None:
        try:
            async with self._runs:
                rate = batch_rate(self._ctx.rate, len(batch) * len(self._ports))
                log.info(
                    "nmap batch",
                    extra={
                        "addresses": len(batch),
                        "ports": len(self._ports),
                        "max_rate": round(rate) if rate is not None else "uncapped",
                    },
                )
                started = time.monotonic()
                scans = await run_nmap(self._ctx.settings, batch, self._ports, rate)
                self._timing.add(started, time.monotonic(), len(batch))
            for ip in batch:
                self._scans.put(ip, scans[ip])
                done = self._futures.pop(ip)
                if not done.done():
                    done.set_result(scans[ip])
        finally:
            for ip in batch:
                waiting = self._futures.pop(ip, None)
                if waiting is not None and not waiting.done():
                    waiting.cancel()
