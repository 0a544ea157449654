"""Profile one ``vigie scan --all`` with py-spy and say where the time went.

py-spy samples every thread of the running process (``--nonblocking``, so the
sweep is not paused for each sample) and writes collapsed stacks; this module
folds them into three views: by package area (where the leaf frame lives),
by function including callees, and by leaf function alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _farm.measure import RunSpec

SAMPLE_RATE = 100
TOP = 25

# Leaf frame file path fragment -> area, first match wins.
AREAS = (
    ("/nassl/", "nassl (TLS handshakes)"),
    ("/sslyze/", "sslyze"),
    ("/httpcore/", "httpcore"),
    ("/httpx/", "httpx"),
    ("/h11/", "h11"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("/sqlmodel/", "sqlalchemy"),
    ("/cryptography/", "cryptography"),
    ("/dns/", "dnspython"),
    ("/nmap/", "python-nmap"),
    ("/vigie/", "vigie"),
    ("/asyncio/", "asyncio"),
    ("/concurrent/", "thread pools"),
    ("/threading.py", "thread pools"),
    ("/ssl.py", "ssl (stdlib)"),
    ("/xml/", "xml parsing"),
    ("/pydantic", "pydantic"),
)


def _frames(stack: str) -> list[str]:
    return [frame for frame in stack.split(";") if frame]


def _area(frame: str) -> str:
    for fragment, area in AREAS:
        if fragment in frame:
            return area
    return "other"


def _short(frame: str) -> str:
    """``check_tls (/x/site-packages/vigie/scanner/tls/_family.py:40)`` -> ``check_tls (vigie/scanner/tls/_family.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarise(raw: Path) -> str:
    """Three tables from py-spy's raw (collapsed) output."""
    areas: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        # Thread names (--threads) come first and are not frames of code.
        code = [f for f in frames if " (" in f]
        if not code:
            continue
        total += count
        leaves[_short(code[-1])] += count
        areas[_area(code[-1])] += count
        for name in {_short(f) for f in code}:
            inclusive[name] += count
    if not total:
        return "no samples"
    lines = [
        f"{total} samples at {SAMPLE_RATE} Hz (active threads only)",
        "",
        "by area of the leaf frame:",
    ]
    lines += [f"  {100 * n / total:5.1f}%  {area}" for area, n in areas.most_common()]
    lines += ["", f"top {TOP} functions including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(TOP)]
    lines += ["", f"top {TOP} leaf functions (self time):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(TOP)]
    return "\n".join(lines)


def py_spy_program() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile_command(spec: RunSpec, work: Path) -> str:
    """Run ``spec`` under py-spy; write the summary next to the outputs; return a note."""
    program = py_spy_program()
    if program is None:
        return "profile: py-spy is not installed (pip install py-spy)"
    raw = work / f"{spec.tool}.raw"
    argv = [program, "record", "--format", "raw", "--rate", str(SAMPLE_RATE), "--nonblocking"]
    argv += ["--subprocesses", "-o", str(raw), "--", *spec.argv]
    started = time.monotonic()
    with spec.output.open("wb") as out:
        code = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**_environ(), **spec.env}
        ).returncode
    elapsed = time.monotonic() - started
    if code != 0 or not raw.exists():
        return f"profile: py-spy exited {code}; see {spec.output}"
    summary = summarise(raw)
    report = work / f"{spec.tool}.txt"
    report.write_text(f"vigie scan --all under py-spy: {elapsed:.1f}s wall\n\n{summary}\n")
    print(f"\n--- profile ({report})\n{report.read_text()}", flush=True)
    return f"profile: {report} ({elapsed:.1f}s wall under py-spy)"


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
