"""The sweep benchmark still runs end to end (``benchmarks/sweep.py --quick``).

Smoke only: five farm hosts, every tool once. It checks that the harness
builds the farm, runs vigie and each reference tool inside its loopback-only
namespace, and prints its table and final ratio line. Timings are never
checked here: they are read by hand (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FINAL_LINE = re.compile(
    r"^vigie_vs_sslyze=(\S+) vigie_vs_testssl=(\S+) vigie_tls_vs_nmap_ssl_enum=(\S+) "
    r"rss_1000_vs_100=(\S+)$"
)
RATIO = re.compile(r"^\d+\.\d{3}$")


def _needs(program: str) -> None:
    if shutil.which(program) is None and not Path("/usr/sbin", program).exists():
        pytest.fail(f"{program} is not installed: run 'bash scripts/setup.sh --test'")


@pytest.mark.slow
@pytest.mark.network
@pytest.mark.timeout(180)
def test_quick_benchmark_completes_and_prints_the_ratio_line(tmp_path: Path) -> None:
    # Given the farm's programs, root, and network namespaces
    for program in ("nginx", "knotd", "nmap", "unshare", "ip", "nft", "testssl"):
        _needs(program)
    if os.geteuid() != 0:
        pytest.fail("the benchmark runs nginx and a network namespace: it needs root")

    # When the benchmark runs in its CI smoke mode
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "sweep.py"),
            "--quick",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=REPO,
    )

    # Then it succeeds, measured every tool on the 5 hosts, and ends with the ratio line
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    lines = result.stdout.strip().splitlines()
    for tool in ("vigie", "vigie-tls", "sslyze", "nmap-ports", "nmap-ssl-enum", "testssl"):
        assert any(re.match(rf"^\s*{re.escape(tool)}\s+\d+\s", line) for line in lines), output[
            -4000:
        ]
    match = FINAL_LINE.match(lines[-1])
    assert match is not None, lines[-1]
    vs_sslyze, vs_testssl, tls_vs_nmap, rss = match.groups()
    # The first three were measured in this run; the RSS ratio needs 100 and 1,000 hosts.
    for value in (vs_sslyze, vs_testssl, tls_vs_nmap):
        assert RATIO.match(value), lines[-1]
    assert rss == "n/a"
    # And the line before gives the stage ratios; vigie's log gave its nmap runs' time
    assert re.match(r"^\[5 hosts\] vigie_cpu_vs_sslyze_minimal=\S+ .*nmap_runs_vs_nmap=", lines[-2])
    assert re.search(
        r"^\s+vigie: .*its nmap runs \d+\.\d+ s in all, spread over \d+\.\d+ s$",
        result.stdout,
        re.M,
    ), output[-4000:]
