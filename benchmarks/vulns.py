"""Benchmark of the offline vulnerability data: import memory and time, matching cost.

Generates an NVD-sized data set in the official formats (NVD CVE JSON 2.0 with
``configurations``, a CISA KEV catalogue, a FIRST EPSS CSV with its comment
line), imports it with ``vigie vulns import``'s service function in a child
process whose peak RSS is measured, then loads the sweep's match index and
times the identification and matching of ``--hosts`` hosts' observations
(SSH banners with and without Debian revisions, Server and X-Powered-By
headers), against the per-host cost of a full sweep (benchmarks/RESULTS.md).

    python benchmarks/vulns.py                      # 250,000 CVEs, 1,000 hosts
    python benchmarks/vulns.py --cves 1000 --hosts 50   # smoke

The last line is ``import_rss_mb=... import_s=... match_ms_per_host=...
match_vs_sweep=... index_load_s=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A full sweep's CPU per host, all families: 1,000 hosts, run I at f05ddc7 (RESULTS.md).
SWEEP_CPU_S_PER_HOST = 253.5 / 1000
RSS_LIMIT_MB = 400

# (vendor, product, share of the known-product CVEs, versions seen in the wild)
KNOWN = [
    ("openbsd", "openssh", 0.05, ["7.4", "8.4p1", "8.9p1", "9.2p1", "9.6p1"]),
    ("apache", "http_server", 0.10, ["2.4.29", "2.4.49", "2.4.57", "2.4.62"]),
    ("f5", "nginx", 0.03, ["1.18.0", "1.22.1", "1.24.0", "1.27.3"]),
    ("php", "php", 0.20, ["7.4.33", "8.1.2", "8.2.7"]),
    ("oracle", "mysql", 0.30, ["5.7.44", "8.0.36"]),
    ("wordpress", "wordpress", 0.10, ["6.4.2", "6.7.1"]),
    ("fortinet", "fortios", 0.10, ["6.0.4", "7.2.5"]),
    ("microsoft", "exchange_server", 0.07, ["15.2.1118.40"]),
    ("redis", "redis", 0.05, ["6.0.16", "7.0.15"]),
]
KNOWN_SHARE = 0.02  # real NVD: about 5,000 of 250,000 CVEs name these products


def _version(rng: random.Random) -> str:
    return ".".join(str(rng.randint(0, 12)) for _ in range(rng.choice((2, 3))))


def _match(rng: random.Random, vendor: str, product: str, vulnerable: bool = True) -> dict:
    match: dict[str, object] = {
        "vulnerable": vulnerable,
        "criteria": f"cpe:2.3:a:{vendor}:{product}:*:*:*:*:*:*:*:*",
        "matchCriteriaId": f"{rng.getrandbits(128):032X}",
    }
    if rng.random() < 0.7:
        match["versionStartIncluding"] = _version(rng)
    match["versionEndExcluding"] = _version(rng)
    return match


def generate(folder: Path, cves: int, seed: int = 11) -> list[Path]:
    """NVD, KEV and EPSS files of ``cves`` records, written as a stream."""
    rng = random.Random(seed)
    nvd = folder / "nvdcve-2.0-generated.json"
    ids: list[str] = []
    with nvd.open("w", encoding="utf-8") as out:
        out.write(
            f'{{"resultsPerPage": {cves}, "startIndex": 0, "totalResults": {cves}, '
            '"format": "NVD_CVE", "version": "2.0", "timestamp": "2026-12-01T06:00:00.000", '
            '"vulnerabilities": [\n'
        )
        for n in range(cves):
            cve_id = f"CVE-{1999 + n % 28}-{10000 + n}"
            ids.append(cve_id)
            if rng.random() < KNOWN_SHARE:
                vendor, product, _, _ = rng.choices(KNOWN, weights=[k[2] for k in KNOWN])[0]
            else:
                vendor, product = f"vendor{rng.randint(0, 9999)}", f"product{rng.randint(0, 3)}"
            matches = [_match(rng, vendor, product) for _ in range(rng.randint(1, 4))]
            nodes = [{"operator": "OR", "negate": False, "cpeMatch": matches}]
            config: dict[str, object] = {"nodes": nodes}
            if rng.random() < 0.08:
                platform = {
                    "vulnerable": False,
                    "criteria": "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*",
                    "matchCriteriaId": f"{rng.getrandbits(128):032X}",
                }
                nodes.append({"operator": "OR", "negate": False, "cpeMatch": [platform]})
                config["operator"] = "AND"
            score = round(rng.uniform(2.0, 10.0), 1)
            record = {
                "cve": {
                    "id": cve_id,
                    "sourceIdentifier": "cve@mitre.org",
                    "published": "2024-03-01T10:15:07.000",
                    "lastModified": "2026-11-21T08:13:25.000",
                    "vulnStatus": "Analyzed",
                    "descriptions": [
                        {
                            "lang": "en",
                            "value": f"A generated flaw in {product} of {vendor} "
                            + "allows a remote attacker to do harm. " * 5,
                        }
                    ],
                    "metrics": {
                        "cvssMetricV31": [
                            {
                                "source": "nvd@nist.gov",
                                "type": "Primary",
                                "cvssData": {
                                    "version": "3.1",
                                    "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                                    "baseScore": score,
                                    "baseSeverity": "HIGH",
                                },
                                "exploitabilityScore": 3.9,
                                "impactScore": 5.9,
                            }
                        ]
                    },
                    "weaknesses": [
                        {
                            "source": "nvd@nist.gov",
                            "type": "Primary",
                            "description": [{"lang": "en", "value": "CWE-787"}],
                        }
                    ],
                    "configurations": [config],
                    "references": [
                        {
                            "url": f"https://example.org/advisories/{cve_id}",
                            "source": "cve@mitre.org",
                        },
                        {"url": f"https://example.org/patches/{n}", "source": "cve@mitre.org"},
                    ],
                }
            }
            out.write(json.dumps(record, separators=(",", ":")))
            out.write(",\n" if n + 1 < cves else "\n")
        out.write("]}\n")
    kev = folder / "known_exploited_vulnerabilities.json"
    chosen = rng.sample(ids, min(1300, len(ids)))
    kev.write_text(
        json.dumps(
            {
                "title": "CISA Catalog of Known Exploited Vulnerabilities",
                "catalogVersion": "2026.12.01",
                "dateReleased": "2026-12-01T17:02:51.7454Z",
                "count": len(chosen),
                "vulnerabilities": [
                    {
                        "cveID": cve_id,
                        "vendorProject": "Vendor",
                        "product": "Product",
                        "vulnerabilityName": "Generated Vulnerability",
                        "dateAdded": "2025-01-01",
                        "shortDescription": "Generated.",
                        "requiredAction": "Apply updates per vendor instructions.",
                        "dueDate": "2025-01-22",
                        "knownRansomwareCampaignUse": "Unknown",
                        "notes": "",
                        "cwes": [],
                    }
                    for cve_id in chosen
                ],
            }
        ),
        encoding="utf-8",
    )
    epss = folder / "epss_scores.csv"
    with epss.open("w", encoding="utf-8") as out:
        out.write(
            "#model_version:v2025.03.14,score_date:2026-12-01T12:55:00Z\ncve,epss,percentile\n"
        )
        for cve_id in ids:
            out.write(f"{cve_id},{rng.random():.5f},{rng.random():.5f}\n")
    return [nvd, kev, epss]


IMPORT = """
import sys, time, resource
from pathlib import Path
from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.vulns.store import import_files
settings = Settings.model_validate({"database": {"url": sys.argv[1]}})
ensure_database(settings)
started = time.monotonic()
summaries = import_files(settings, [Path(p) for p in sys.argv[2:]])
elapsed = time.monotonic() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{elapsed:.2f} {rss:.1f} " + " ".join(str(s.records) for s in summaries))
"""

MATCH = """
import sys, time, random, resource, gc
from datetime import date
from vigie.config import Settings
from vigie.model import HostTarget
from vigie.vulns.store import load_match_index
from vigie.scanner.software import identify_ssh, identify_server, software_findings, vuln_findings
from vigie.scanner.software._identify import identify_powered_by
settings = Settings.model_validate({"database": {"url": sys.argv[1]}})
hosts = int(sys.argv[2])
started = time.monotonic()
index = load_match_index(settings)
loaded = time.monotonic() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
rng = random.Random(5)
ssh = ["SSH-2.0-OpenSSH_7.4", "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3",
       "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", "SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
       "SSH-2.0-OpenSSH_9.6p1"]
servers = ["Apache/2.4.49 (Unix)", "Apache/2.4.57 (Debian)", "nginx/1.22.1", "nginx/1.18.0",
           "Apache/2.4.62 (Ubuntu)", "Microsoft-IIS/10.0", "nginx"]
powered = ["PHP/7.4.33", "PHP/8.2.7", "", ""]
today = date(2026, 12, 3)
# Cold: each distinct identification matched once against the whole index (no memo).
distinct = [i.at(22) for b in ssh for i in identify_ssh(b)]
distinct += [i.at(443) for v in servers for i in identify_server(v)]
distinct += [i.at(443) for v in powered if v for i in identify_powered_by(v)]
cold_cpu = time.process_time()
for ident in distinct:
    vuln_findings(HostTarget("cold.example.gov.ml", "192.0.2.1"), [ident], index)
cold = (time.process_time() - cold_cpu) / len(distinct)
index.memo.clear()
index.derived.clear()
cpu = time.process_time()
findings = 0
for n in range(hosts):
    target = HostTarget(f"h{n}.example.gov.ml", f"192.0.2.{n % 250}")
    ids = [i.at(22) for i in identify_ssh(rng.choice(ssh))]
    ids += [i.at(443) for i in identify_server(rng.choice(servers))]
    value = rng.choice(powered)
    if value:
        ids += [i.at(443) for i in identify_powered_by(value)]
    findings += len(software_findings(target, ids, index, today))
    findings += len(vuln_findings(target, ids, index))
spent = time.process_time() - cpu
print(f"{loaded:.2f} {rss:.1f} {spent / hosts * 1000:.3f} {findings} {len(index.cve_by_id)} "
      f"{cold * 1000:.3f} {len(distinct)}")
"""


def child(code: str, *args: str) -> tuple[list[str], float]:
    """Run ``code`` in a child Python; its output words and its own peak RSS (MB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return out.stdout.split(), float(out.stdout.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cves", type=int, default=250_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="Folder to keep the data in.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        files = generate(folder, args.cves)
        generated = time.monotonic() - started
        sizes = {f.name: f.stat().st_size / 1e6 for f in files}
        url = f"sqlite:///{folder}/vulns.db"
        words, nvd_rss = child(IMPORT, url, str(files[0]))
        nvd_s = float(words[0])
        words2, rest_rss = child(IMPORT, url, str(files[1]), str(files[2]))
        rest_s = float(words2[0])
        match, match_rss = child(MATCH, url, str(args.hosts))
    load_s, per_host_ms = float(match[0]), float(match[2])
    ratio = per_host_ms / 1000 / SWEEP_CPU_S_PER_HOST
    print(
        f"generated {args.cves} CVEs in {generated:.1f}s: "
        + ", ".join(f"{name} {size:.1f} MB" for name, size in sizes.items())
    )
    print("| step | wall s | peak RSS MB |\n|---|---:|---:|")
    print(
        f"| import NVD ({words[2]} CVEs, {sizes[files[0].name]:.0f} MB) | {nvd_s:.1f} | {nvd_rss:.0f} |"
    )
    print(f"| import KEV ({words2[2]}) + EPSS ({words2[3]}) | {rest_s:.1f} | {rest_rss:.0f} |")
    print(f"| load the sweep's match index ({match[4]} CVEs) | {load_s:.2f} | {match_rss:.0f} |")
    print(
        f"matching: {per_host_ms:.3f} ms CPU per host over {args.hosts} hosts "
        f"({match[3]} findings); a full sweep: {SWEEP_CPU_S_PER_HOST * 1000:.0f} ms CPU per host"
    )
    print(
        f"cold: {float(match[5]):.3f} ms CPU per distinct identification "
        f"({match[6]} distinct), before the sweep's memo holds it"
    )
    index_share = load_s / (SWEEP_CPU_S_PER_HOST * args.hosts)
    print(f"index load over a {args.hosts}-host sweep: {index_share:.4f} of its CPU")
    verdict = "ok" if nvd_rss < RSS_LIMIT_MB else f"OVER {RSS_LIMIT_MB} MB"
    print(
        f"import_rss_mb={max(nvd_rss, rest_rss):.0f} ({verdict}) import_s={nvd_s + rest_s:.1f} "
        f"match_ms_per_host={per_host_ms:.3f} match_vs_sweep={ratio:.4f} "
        f"index_load_vs_sweep={index_share:.4f}"
    )


if __name__ == "__main__":
    main()
