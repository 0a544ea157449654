"""Profile one ``vigie scan --all`` with py-spy and say where the time went.

py-spy samples the thread that holds the GIL (``--gil``: a thread waiting for
the GIL would otherwise count as busy, and with sslyze's worker threads most
of them wait) without pausing the sweep (``--nonblocking``), and writes
collapsed stacks; this module folds them into views: by thread kind, by
package area (where the leaf frame lives), by vigie function and by any
function including callees, and by leaf function alone. C code that releases
the GIL is not seen; CPU time that holds it is what limits a sweep on few cores.
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

# Leaf frame file path prefix (as py-spy prints it, relative to site-packages or the
# standard library) -> area; first match wins.
AREAS = (
    ("nassl/", "nassl (TLS handshakes, C)"),
    ("sslyze/", "sslyze"),
    ("httpcore/", "httpx/httpcore/anyio"),
    ("httpx/", "httpx/httpcore/anyio"),
    ("h11/", "httpx/httpcore/anyio"),
    ("anyio/", "httpx/httpcore/anyio"),
    ("sqlalchemy/", "sqlalchemy/sqlmodel"),
    ("sqlmodel/", "sqlalchemy/sqlmodel"),
    ("sqlite3/", "sqlalchemy/sqlmodel"),
    ("cryptography/", "cryptography"),
    ("dns/", "dnspython"),
    ("nmap/", "python-nmap"),
    ("xml/", "xml parsing"),
    ("vigie/", "vigie"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
    ("concurrent/", "thread pools"),
    ("threading.py", "thread pools"),
    ("queue.py", "thread pools"),
    ("ssl.py", "ssl (stdlib, httpx's TLS)"),
    ("socket.py", "socket (stdlib)"),
    ("<frozen importlib", "imports"),
    ("pydantic", "pydantic"),
    ("click/", "click"),
)


def _frames(stack: str) -> list[str]:
    return [
        frame for frame in stack.split(";") if " (" in frame and not frame.startswith("process ")
    ]


def _path(frame: str) -> str:
    return frame.rsplit(" (", 1)[1].rstrip(")").rsplit(":", 1)[0]


def _area(frame: str) -> str:
    path = _path(frame)
    for prefix, area in AREAS:
        if path.startswith(prefix):
            return area
    return "other"


def _short(frame: str) -> str:
    """``check_tls (vigie/scanner/tls/_family.py:40)`` -> ``check_tls (vigie/scanner/tls/_family.py)``."""
    return f"{frame.rsplit(' (', 1)[0]} ({_path(frame)})"


def _percent(part: int, total: int) -> str:
    return f"{100 * part / total:5.1f}%"


def summarise(raw: Path) -> str:
    """Tables from py-spy's raw (collapsed) output: by thread kind, area, function."""
    areas: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    vigie_inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        code = _frames(stack)
        if not code:
            continue
        total += count
        worker = any(f.startswith("Thread._bootstrap ") for f in code)
        threads["worker threads (sslyze/nassl jobs)" if worker else "event loop thread"] += count
        leaves[_short(code[-1])] += count
        areas[_area(code[-1])] += count
        names = {_short(f) for f in code}
        for name in names:
            inclusive[name] += count
            if name.split(" (", 1)[1].startswith("vigie/") and "cli.py" not in name:
                vigie_inclusive[name] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples at {SAMPLE_RATE} Hz of the thread holding the GIL", ""]
    lines += ["by thread:"] + [f"  {_percent(n, total)}  {k}" for k, n in threads.most_common()]
    lines += ["", "by area of the leaf frame (where the CPU is spent):"]
    lines += [f"  {_percent(n, total)}  {area}" for area, n in areas.most_common()]
    lines += ["", f"top {TOP} vigie functions including callees:"]
    lines += [f"  {_percent(n, total)}  {name}" for name, n in vigie_inclusive.most_common(TOP)]
    lines += ["", f"top {TOP} functions including callees:"]
    lines += [f"  {_percent(n, total)}  {name}" for name, n in inclusive.most_common(TOP)]
    lines += ["", f"top {TOP} leaf functions (self time):"]
    lines += [f"  {_percent(n, total)}  {name}" for name, n in leaves.most_common(TOP)]
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
    argv = [
        program,
        "record",
        "--format",
        "raw",
        "--rate",
        str(SAMPLE_RATE),
        "--nonblocking",
        "--gil",
    ]
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
    command = " ".join(spec.argv[spec.argv.index("scan") :])
    report.write_text(f"vigie {command} under py-spy: {elapsed:.1f}s wall\n\n{summary}\n")
    print(f"\n--- profile ({report})\n{report.read_text()}", flush=True)
    return f"profile: {report} ({elapsed:.1f}s wall under py-spy)"


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)
