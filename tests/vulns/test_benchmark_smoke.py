"""The vulnerability-data benchmark still runs end to end (``benchmarks/vulns.py``), small.

Smoke only: 1,000 generated CVEs in the NVD 2.0 format, 50 hosts. Timings are
read by hand (benchmarks/RESULTS.md); here only the final line's shape and the
memory bound (far below 400 MB at this size) are checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FINAL = re.compile(
    r"^import_rss_mb=(\d+) \(ok\) import_s=\S+ match_ms_per_host=\S+ "
    r"match_vs_sweep=(\S+) index_load_vs_sweep=\S+$"
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_small_benchmark_prints_its_figures(tmp_path: Path) -> None:
    # Given 1,000 generated CVEs and 50 hosts
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "vulns.py"), "--cves", "1000", "--hosts", "50",
         "--keep", str(tmp_path)],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    # Then the last line carries the figures, the import well under the memory bound
    found = FINAL.match(out.stdout.strip().splitlines()[-1])
    assert found, out.stdout
    assert int(found.group(1)) < 400
    # And the generated NVD file is the official shape (what the import accepted)
    assert (tmp_path / "nvdcve-2.0-generated.json").stat().st_size > 1_000_000
