"""Run one tool and measure it: wall time, CPU, peak RSS, and what the farm saw.

- Wall time: from start to the end of the tool's process.
- CPU: user + system time of the tool and every descendant it waited for
  (``os.wait4``'s resource usage of the child).
- Peak RSS: the largest sum of resident memory over the tool's process tree,
  sampled from ``/proc`` every ``RSS_SAMPLE_S``; and, separately, the largest
  single process (its ``VmHWM``; ``ru_maxrss`` would charge every child for
  the memory of this Python process it was forked from).
- Connections: counted at the farm by nftables in the namespace: every TCP SYN
  to a farm host, per host and per port class (443 = TLS, 80 = HTTP, any), so
  a connection the tool opened but never used still counts.
- Requests: lines nginx logged during the tool's run.
- Farm CPU: the CPU nginx spent serving the tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _farm.hosts import DNS_ADDRESS

RSS_SAMPLE_S = 0.1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NFT_TABLE = "vigiebench"
HOST_RANGE = "127.100.1.0-127.100.255.255"
PORT_SETS = {"tls": "tcp dport 443", "web": "tcp dport 80", "any": ""}


@dataclass
class Measurement:
    """One tool's figures; connection counts are per host targeted."""

    tool: str
    hosts: int
    note: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system, the tool and its children
    sys_s: float = 0.0  # of which in the kernel (loopback TCP is charged to the sender)
    peak_rss_mb: float = 0.0  # the whole process tree
    largest_rss_mb: float = 0.0  # the largest single process
    farm_cpu_s: float = 0.0
    tls_conns: dict[str, int] = field(default_factory=dict)  # host ip -> SYNs to 443
    web_conns: dict[str, int] = field(default_factory=dict)
    all_conns: dict[str, int] = field(default_factory=dict)
    dns_queries: int = 0
    http_requests: int = 0
    # vigie's own "port stage" log line: first nmap start to last nmap end, and the
    # summed duration of its nmap runs (two run at a time)
    port_scan_s: float | None = None
    nmap_run_s: float | None = None
    exit_code: int = 0
    logged: bytes = b""  # what nginx logged during the run (not reported)

    def per_host(self, counts: dict[str, int]) -> float:
        """Mean connections per targeted host (hosts never contacted count as 0)."""
        return sum(counts.values()) / self.hosts if self.hosts else 0.0

    def max_per_host(self, counts: dict[str, int]) -> int:
        return max(counts.values(), default=0)

    def as_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "hosts": self.hosts,
            "note": self.note,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "sys_s": round(self.sys_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "largest_rss_mb": round(self.largest_rss_mb, 1),
            "farm_cpu_s": round(self.farm_cpu_s, 3),
            "tls_conns_per_host": round(self.per_host(self.tls_conns), 1),
            "tls_conns_max_host": self.max_per_host(self.tls_conns),
            "web_conns_per_host": round(self.per_host(self.web_conns), 1),
            "all_conns_per_host": round(self.per_host(self.all_conns), 1),
            "http_requests_per_host": round(self.http_requests / self.hosts, 1)
            if self.hosts
            else 0,
            "dns_queries": self.dns_queries,
            "port_scan_s": self.port_scan_s,
            "nmap_run_s": self.nmap_run_s,
            "exit_code": self.exit_code,
        }


def median_of(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median wall time (its other figures kept together)."""
    ordered = sorted(runs, key=lambda m: m.wall_s)
    return ordered[(len(ordered) - 1) // 2]


# --- connection counters (nftables, inside the namespace) -----------------------


class FarmCounters:
    """nftables counters of SYNs to farm hosts; absent when ``nft`` is not installed."""

    def __init__(self) -> None:
        self.available = shutil.which("nft") is not None

    def install(self) -> None:
        if not self.available:
            return
        sets = "\n".join(
            f"  set {name} {{ type ipv4_addr; size 65535; flags dynamic; counter; }}"
            for name in PORT_SETS
        )
        rules = "\n".join(
            f"    ip daddr {HOST_RANGE} {match} tcp flags syn / syn,ack add @{name} {{ ip daddr }}"
            for name, match in PORT_SETS.items()
        )
        ruleset = f"""\
table inet {NFT_TABLE} {{
  counter dns {{}}
{sets}
  chain input {{
    type filter hook input priority 0; policy accept;
{rules}
    ip daddr {DNS_ADDRESS} udp dport 53 counter name dns
  }}
}}
"""
        subprocess.run(["nft", "-f", "-"], input=ruleset.encode(), check=True)

    def reset(self) -> None:
        if not self.available:
            return
        for name in PORT_SETS:
            subprocess.run(["nft", "flush", "set", "inet", NFT_TABLE, name], check=True)
        subprocess.run(
            ["nft", "reset", "counter", "inet", NFT_TABLE, "dns"], check=True, capture_output=True
        )

    def _set(self, name: str) -> dict[str, int]:
        out = subprocess.run(
            ["nft", "-j", "list", "set", "inet", NFT_TABLE, name],
            check=True,
            capture_output=True,
        ).stdout
        counts: dict[str, int] = {}
        for item in json.loads(out)["nftables"]:
            for element in item.get("set", {}).get("elem", []):
                inner = element["elem"]
                counts[inner["val"]] = inner["counter"]["packets"]
        return counts

    def read_into(self, measurement: Measurement) -> None:
        if not self.available:
            return
        measurement.tls_conns = self._set("tls")
        measurement.web_conns = self._set("web")
        measurement.all_conns = self._set("any")
        out = subprocess.run(
            ["nft", "-j", "list", "counter", "inet", NFT_TABLE, "dns"],
            check=True,
            capture_output=True,
        ).stdout
        for item in json.loads(out)["nftables"]:
            if "counter" in item:
                measurement.dns_queries = item["counter"]["packets"]


# --- processes -------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return found


def _tree(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(_children(pid))
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(resident bytes now, the process image's high-water mark) from /proc/PID/status.

    The high-water mark belongs to the image the process runs now, so a tool
    forked from this (large) Python process and then exec'd is not charged
    for its parent's memory, unlike ``ru_maxrss``.
    """
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return rss, hwm


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time so far of ``pids`` (their own, not their children's)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class _RssSampler(threading.Thread):
    """Samples the tool's process tree: the largest total RSS and the largest process."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_total = 0
        self.peak_process = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while True:
            total = 0
            for pid in _tree(self.root):
                rss, hwm = _memory(pid)
                total += rss
                self.peak_process = max(self.peak_process, hwm)
            self.peak_total = max(self.peak_total, total)
            if self.stop.wait(RSS_SAMPLE_S):
                return


@dataclass
class RunSpec:
    """A tool to run and where its output goes."""

    tool: str
    argv: list[str]
    hosts: int
    output: Path
    note: str = ""
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    timeout_s: float = 3600.0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def logged_since(access_log: Path, since: int) -> bytes:
    """What nginx logged after byte offset ``since``."""
    if not access_log.exists():
        return b""
    with access_log.open("rb") as log:
        log.seek(since)
        return log.read()


def run_measured(
    spec: RunSpec,
    counters: FarmCounters,
    access_log: Path,
    farm_pids: Sequence[int],
) -> Measurement:
    """Run ``spec`` once in isolation and measure it."""
    measurement = Measurement(tool=spec.tool, hosts=spec.hosts, note=spec.note)
    counters.reset()
    log_offset = access_log.stat().st_size if access_log.exists() else 0
    farm_cpu_before = cpu_seconds(farm_pids)
    with spec.output.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            spec.argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            start_new_session=True,
        )
        sampler = _RssSampler(process.pid)
        sampler.start()
        # A tool that hangs is killed with its whole group; the row says so.
        watchdog = threading.Timer(spec.timeout_s, _kill_group, (process.pid,))
        watchdog.start()
        _, status, usage = os.wait4(process.pid, 0)
        measurement.wall_s = time.monotonic() - started
        watchdog.cancel()
        sampler.stop.set()
        sampler.join()
        if measurement.wall_s >= spec.timeout_s:
            measurement.note = (measurement.note + f" KILLED after {spec.timeout_s:g}s").strip()
        process.returncode = os.waitstatus_to_exitcode(status)
    measurement.exit_code = process.returncode
    measurement.cpu_s = usage.ru_utime + usage.ru_stime
    measurement.sys_s = usage.ru_stime
    measurement.largest_rss_mb = sampler.peak_process / 2**20
    measurement.peak_rss_mb = max(sampler.peak_total, sampler.peak_process) / 2**20
    measurement.farm_cpu_s = cpu_seconds(farm_pids) - farm_cpu_before
    measurement.logged = logged_since(access_log, log_offset)
    measurement.http_requests = measurement.logged.count(b"\n")
    counters.read_into(measurement)
    return measurement


def summarise(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0
