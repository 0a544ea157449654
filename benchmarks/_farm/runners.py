"""Reference runs that need a process of their own, so they are measured alone.

``python -m _farm.runners sslyze HOSTS_JSON COMMANDS`` runs sslyze's concurrent
``Scanner`` (its own scheduling, connection limits and thread pools) on every
host's port 443 with the given scan commands, SNI set to the host's name and
no DNS lookup (the address is given).

``python -m _farm.runners httpx REQUESTS_JSON CONCURRENCY`` sends the same
requests an HTTP scan made (read from nginx's log of it) with one bare
``httpx.AsyncClient``: the floor for vigie's HTTP family.

``python -m _farm.runners parallel JOBS_JSON WIDTH`` runs shell-free command
lines WIDTH at a time (testssl.sh's usual "8 in parallel"), each one's output
to its own file, and waits for all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run_sslyze(hosts_file: Path, commands: list[str], per_server: int, servers: int) -> int:
    from sslyze import (
        ScanCommand,
        ScanCommandAttemptStatusEnum,
        Scanner,
        ServerNetworkConfiguration,
        ServerNetworkLocation,
        ServerScanRequest,
        ServerScanStatusEnum,
    )

    hosts = json.loads(hosts_file.read_text())
    wanted = {ScanCommand(name) for name in commands}
    requests = []
    for host in hosts:
        location = ServerNetworkLocation(hostname=host["name"], port=443, ip_address=host["ip"])
        network = ServerNetworkConfiguration(tls_server_name_indication=host["name"])
        requests.append(
            ServerScanRequest(
                server_location=location, network_configuration=network, scan_commands=wanted
            )
        )
    scanner = Scanner(
        per_server_concurrent_connections_limit=per_server,
        concurrent_server_scans_limit=servers,
    )
    started = time.monotonic()
    scanner.queue_scans(requests)
    statuses: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    for result in scanner.get_results():
        if result.scan_status != ServerScanStatusEnum.COMPLETED:
            statuses["connectivity_error"] += 1
            continue
        assert result.scan_result is not None
        for name in sorted(commands):
            attempt = getattr(result.scan_result, name)
            statuses[f"{name}:{attempt.status.value}"] += 1
            if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED and name.endswith(
                "_cipher_suites"
            ):
                accepted[name] += len(attempt.result.accepted_cipher_suites)
    print(f"sslyze: {len(hosts)} hosts in {time.monotonic() - started:.1f}s")
    for key, count in sorted(statuses.items()):
        print(f"  {key}: {count}")
    for key, count in sorted(accepted.items()):
        print(f"  accepted suites {key}: {count}")
    return 0 if statuses["connectivity_error"] == 0 else 1


def run_httpx(requests_file: Path, concurrency: int) -> int:
    """The given requests with one shared ``httpx.AsyncClient``, ``concurrency`` at a time."""
    import asyncio

    import httpx

    requests = json.loads(requests_file.read_text())

    async def sweep() -> Counter[str]:
        outcomes: Counter[str] = Counter()
        slots = asyncio.Semaphore(concurrency)
        timeout = httpx.Timeout(10.0)
        async with httpx.AsyncClient(verify=False, timeout=timeout) as client:

            async def one(request: dict[str, str]) -> None:
                url = f"{request['scheme']}://{request['ip']}:{request['port']}{request['path']}"
                extensions = (
                    {"sni_hostname": request["host"]} if request["scheme"] == "https" else {}
                )
                async with slots:
                    try:
                        response = await client.request(
                            request["method"],
                            url,
                            headers={"Host": request["host"]},
                            extensions=extensions,
                        )
                    except httpx.HTTPError as error:
                        outcomes[type(error).__name__] += 1
                        return
                outcomes[str(response.status_code)] += 1

            await asyncio.gather(*(one(r) for r in requests))
        return outcomes

    started = time.monotonic()
    outcomes = asyncio.run(sweep())
    print(f"httpx: {len(requests)} requests in {time.monotonic() - started:.1f}s: {dict(outcomes)}")
    return 0


def run_parallel(jobs_file: Path, width: int) -> int:
    jobs = json.loads(jobs_file.read_text())

    def run_one(job: dict[str, object]) -> int:
        argv = [str(part) for part in job["argv"]]  # type: ignore[attr-defined]
        with open(str(job["output"]), "wb") as out:
            return subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode

    with ThreadPoolExecutor(max_workers=width) as pool:
        codes = list(pool.map(run_one, jobs))
    # testssl.sh's exit status counts what it found, not whether it worked: report, don't judge.
    print(f"parallel: {len(jobs)} jobs, {width} at a time, exit codes {dict(Counter(codes))}")
    return 0


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "sslyze":
        return run_sslyze(Path(argv[1]), argv[2].split(","), int(argv[3]), int(argv[4]))
    if kind == "httpx":
        return run_httpx(Path(argv[1]), int(argv[2]))
    if kind == "parallel":
        return run_parallel(Path(argv[1]), int(argv[2]))
    raise SystemExit(f"unknown runner {kind!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
