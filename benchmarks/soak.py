#!/usr/bin/env python3
"""Soak benchmark (not a test): the scheduler's sweep job three times in one process.

On the loopback farm of ``benchmarks/sweep.py`` (one nginx, N web hosts, a Knot
name server, inside a loopback-only network namespace), this process runs the
job the scheduler fires every night (``vigie.scheduler.run_sweep_job``: resume
if needed, then a full sweep, then grades) ``--sweeps`` times in a row, and
measures each sweep:

- peak resident memory during the sweep (VmRSS sampled every 50 ms);
- open file descriptors, live asyncio tasks and threads before and after (what
  a sweep leaves open is listed).

What it checks: the third sweep's peak RSS within 5 % of the second's (memory
does not grow sweep after sweep), and descriptors and tasks back to their
starting count after every sweep. The last line says
``soak rss3_vs_rss2=R fds_back=yes|no tasks_back=yes|no``.

As root, from the repository root (``unshare -n`` and nginx need it):

    .venv/bin/python benchmarks/soak.py                 # 1,000 hosts, 3 sweeps
    .venv/bin/python benchmarks/soak.py --hosts 50      # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(REPO_DIR))

from sweep import (  # noqa: E402
    NETNS_MARK,
    build_farm,
    prepare_netns,
    prepare_vigie,
    raise_file_limit,
    reexec_in_netns,
    stop_farm,
)

RSS_TOLERANCE = 0.05


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> set[str]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:
            continue
    return found


def live_tasks() -> int:
    """asyncio tasks still referenced anywhere and not done (a leak if any survive)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done())


class PeakSampler:
    """Samples VmRSS on a thread while a sweep runs; the peak."""

    def __init__(self, every_s: float = 0.05) -> None:
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass
class SweepFigures:
    number: int
    wall_s: float
    peak_rss_mb: float
    fds_before: int
    fds_after: int
    tasks_before: int
    tasks_after: int
    threads_before: int
    threads_after: int
    hosts: int


def state() -> tuple[int, int, int]:
    gc.collect()
    return open_fds(), live_tasks(), threading.active_count()


def soak(config: Path, sweeps: int) -> list[SweepFigures]:
    from sqlmodel import select

    from vigie.config import load_settings
    from vigie.db.migrate import upgrade_database
    from vigie.db.session import session_scope
    from vigie.db.tables import ScanRun
    from vigie.logs import configure_logging
    from vigie.scheduler import run_sweep_job

    settings = load_settings(config, environ={})
    configure_logging("WARNING")
    upgrade_database(settings)  # the template was made by the installed command
    figures = []
    for number in range(1, sweeps + 1):
        fds, tasks, threads = state()
        targets = fd_targets()
        started = time.monotonic()
        with PeakSampler() as sampler:
            run_ids = run_sweep_job(settings)
        wall = time.monotonic() - started
        fds_after, tasks_after, threads_after = state()
        opened = sorted(fd_targets() - targets)
        if opened:
            print(f"  still open after sweep {number}: {', '.join(opened)}", flush=True)
        with session_scope(settings) as session:
            run = session.exec(select(ScanRun).where(ScanRun.id == run_ids[-1])).one()
            hosts = run.hosts_done
        figures.append(
            SweepFigures(
                number,
                wall,
                sampler.peak / 2**20,
                fds,
                fds_after,
                tasks,
                tasks_after,
                threads,
                threads_after,
                hosts,
            )
        )
        print(row(figures[-1]), flush=True)
    return figures


def row(f: SweepFigures) -> str:
    return (
        f"| {f.number} | {f.hosts} | {f.wall_s:.1f} | {f.peak_rss_mb:.1f} | "
        f"{f.fds_before} -> {f.fds_after} | {f.tasks_before} -> {f.tasks_after} | "
        f"{f.threads_before} -> {f.threads_after} |"
    )


def verdict(figures: list[SweepFigures]) -> str:
    ratio = figures[2].peak_rss_mb / figures[1].peak_rss_mb if len(figures) >= 3 else None
    fds_back = all(f.fds_after <= f.fds_before for f in figures)
    tasks_back = all(f.tasks_after <= f.tasks_before for f in figures)
    shown = f"{ratio:.3f}" if ratio is not None else "n/a"
    within = ratio is not None and ratio <= 1 + RSS_TOLERANCE
    return (
        f"soak rss3_vs_rss2={shown} ({'within' if within else 'NOT within'} 5%) "
        f"fds_back={'yes' if fds_back else 'no'} tasks_back={'yes' if tasks_back else 'no'}"
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    if os.environ.get(NETNS_MARK) != "1":
        return reexec_in_netns(argv, script=Path(__file__).resolve())
    prepare_netns()
    raise_file_limit()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="vigie-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    farm = build_farm(root / "farm", args.hosts)
    try:
        config = prepare_vigie(root / "vigie", farm, [])
        print(f"soak: {args.hosts} hosts, {args.sweeps} sweeps in one process", flush=True)
        print("| sweep | hosts | wall s | peak RSS MB | fds | asyncio tasks | threads |")
        print("|---|---|---|---|---|---|---|", flush=True)
        figures = soak(config, args.sweeps)
    finally:
        stop_farm(farm)
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(verdict(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
