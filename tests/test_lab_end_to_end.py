"""The independent-lab rehearsal: real misconfigured servers, swept through the real CLI.

``vigie init``, ``vigie targets import`` and ``vigie scan --all`` (twice) run
against the lab of ``tests/e2e_lab.py``; the findings stored in SQLite are
compared with the lab's exact expectations: every finding above ``info``
must be there and nothing else (recall and precision 100% per family, the
table printed on failure), no packet may reach the tripwire outside scope,
probes may fail only on the hostile hosts, the second sweep must turn every
finding ``open`` without flapping, a weakness fixed between sweeps is
resolved, and discovered names are never swept before approval.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests import e2e_lab as lab_module
from tests.e2e_lab import (
    EXPECTED,
    EXPECTED_PROBLEMS,
    LAB_PORTS,
    MUST_NOT,
    E2eLab,
    running_e2e_lab,
)
from vigie.cli import main
from vigie.db.session import dispose_engines
from vigie.scanner.ports import REQUIRED_PORTS

pytestmark = [pytest.mark.network, pytest.mark.xdist_group("e2e-lab")]

SCANNED_PORTS = tuple(sorted(set(LAB_PORTS) | REQUIRED_PORTS))
FAMILIES = ("service", "tls", "http", "dns")
# A sweep of this lab takes a few seconds; far more means a probe waits out timeouts.
SWEEP_BUDGET_S = 30.0

Key = tuple[str, str, int | None]  # (domain, check_id, port)


@dataclass(frozen=True)
class Sweeps:
    config: Path
    durations: tuple[float, ...]
    after_first: list[tuple[object, ...]]  # finding rows after the first sweep

    def rows(self, query: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.config.parent / "vigie.db") as connection:
            return connection.execute(query).fetchall()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eLab]:
    folder = tmp_path_factory.mktemp("e2e-lab")
    with running_e2e_lab(folder, SCANNED_PORTS) as running:
        yield running


def _invoke(config: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    dispose_engines()
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def sweeps(lab: E2eLab, tmp_path_factory: pytest.TempPathFactory) -> Sweeps:
    folder = tmp_path_factory.mktemp("e2e-sweep")
    config = folder / "vigie.toml"
    config.write_text(lab.config_text(f"sqlite:///{folder / 'vigie.db'}"), encoding="utf-8")
    _invoke(config, "init")
    _invoke(config, "targets", "import", str(lab.registry))
    durations, after_first = [], []
    for _ in range(2):
        started = time.monotonic()
        _invoke(config, "scan", "--all", "--quiet")
        durations.append(time.monotonic() - started)
        if not after_first:
            with sqlite3.connect(folder / "vigie.db") as connection:
                after_first = connection.execute(
                    "select fingerprint, check_id, status from finding"
                ).fetchall()
    print(f"\nlab sweeps: {', '.join(f'{d:.1f}s' for d in durations)}")
    return Sweeps(config, tuple(durations), after_first)


# --- comparing with the lab's expectations ----------------------------------------------


def found_above_info(sweeps: Sweeps) -> set[Key]:
    rows = sweeps.rows(
        "select domain, check_id, port from finding where severity != 'info' "
        "and check_id not like 'scan.%'"
    )
    return {
        (str(domain), str(check), port if port is None else int(str(port)))
        for domain, check, port in rows
    }


def expected_keys() -> set[Key]:
    return {(domain, check, port) for domain, pairs in EXPECTED.items() for check, port in pairs}


def score_table(expected: set[Key], found: set[Key]) -> tuple[dict[str, tuple[float, float]], str]:
    """Recall and precision per family, and a readable report of every difference."""
    scores: dict[str, tuple[float, float]] = {}
    lines = [f"{'family':8} {'expected':>8} {'found':>6} {'recall':>7} {'precision':>9}"]
    for family in FAMILIES:
        wanted = {k for k in expected if k[1].startswith(f"{family}.")}
        got = {k for k in found if k[1].startswith(f"{family}.")}
        hits = len(wanted & got)
        recall = hits / len(wanted) if wanted else 1.0
        precision = hits / len(got) if got else 1.0
        scores[family] = (recall, precision)
        lines.append(f"{family:8} {len(wanted):8} {len(got):6} {recall:7.1%} {precision:9.1%}")
    for label, keys in (("MISSED", expected - found), ("UNEXPECTED", found - expected)):
        for domain, check, port in sorted(keys, key=str):
            traps = MUST_NOT.get(domain, ())
            hint = f"  (traps here: {', '.join(traps)})" if traps and label == "UNEXPECTED" else ""
            lines.append(f"{label:10} {domain} {check} port={port}{hint}")
    return scores, "\n".join(lines)


def test_the_sweep_finds_exactly_what_the_lab_holds(sweeps: Sweeps) -> None:
    # Given the lab swept through the CLI
    # When the stored findings above info are compared with the lab's expectations
    # (less the TLS deviations its owner has yet to fix, tested below)
    expected = expected_keys()
    found = found_above_info(sweeps)
    scores, table = score_table(expected, found)
    # Then every family has full recall and precision
    perfect = all(recall == 1.0 and precision == 1.0 for recall, precision in scores.values())
    assert perfect, "\n" + table


def test_no_tls_probe_fails_in_the_lab(sweeps: Sweeps) -> None:
    # The old server accepting NULL-SHA too: sslyze's vulnerability probes are handed a
    # suite nassl can offer, so its TLS family completes
    assert not sweeps.rows(
        "select 1 from finding where check_id = 'scan.error' and discriminator like 'tls:%'"
    )


def test_nothing_is_sent_out_of_scope_and_the_scope_is_recorded(
    lab: E2eLab, sweeps: Sweeps
) -> None:
    # Not one connection or datagram reached the tripwire, though two names and a name
    # server resolve to it and a site redirects to it (by name and by address)
    assert lab.tripwire.connections == []
    out_of_scope = set(
        sweeps.rows("select domain, ip from finding where check_id = 'scan.out_of_scope'")
    )
    assert out_of_scope == lab_module.OUT_OF_SCOPE
    # And the dead host is recorded as unreachable, nothing more
    unreachable = sweeps.rows("select domain, ip from finding where check_id = 'scan.unreachable'")
    assert unreachable == [(lab_module.UNREACHABLE, lab_module.DEAD)]


def test_probes_fail_only_on_the_hostile_hosts(sweeps: Sweeps) -> None:
    # Every failed probe is one the lab provoked, and each sweep still completes
    rows = sweeps.rows(
        "select domain, check_id, port, discriminator from finding "
        "where check_id in ('scan.timeout', 'scan.error')"
    )
    problems: dict[str, set[tuple[str, int | None, str]]] = {}
    for domain, check, port, probe in rows:
        port_number = None if port is None else int(str(port))
        problems.setdefault(str(domain), set()).add((str(check), port_number, str(probe)))
    assert problems == {domain: set(found) for domain, found in EXPECTED_PROBLEMS.items()}
    # And only their families are incomplete (nothing of them is resolved on that basis)
    incomplete = sweeps.rows("select domain from hostscan where incomplete_families != '[]'")
    assert {str(domain) for (domain,) in incomplete} == set(EXPECTED_PROBLEMS)
    assert sweeps.rows("select status from scanrun") == [("completed",), ("completed",)]


def test_a_second_sweep_turns_every_finding_open_without_flapping(sweeps: Sweeps) -> None:
    # Every finding of the first sweep was new
    assert {status for _, _, status in sweeps.after_first} == {"new"}
    # And after the second, the same findings are all open: none resolved, none added
    after_second = sweeps.rows("select fingerprint, check_id, status from finding")
    assert {f for f, _, _ in after_second} == {f for f, _, _ in sweeps.after_first}
    assert {status for _, _, status in after_second} == {"open"}
    events = sweeps.rows("select to_status, count(*) from findingevent group by to_status")
    assert dict(events) == {"new": len(after_second), "open": len(after_second)}


def test_open_ports_are_named_from_what_they_speak(sweeps: Sweeps) -> None:
    rows = sweeps.rows(
        "select domain, port, evidence from finding where check_id = 'service.open_port'"
    )
    seen = {
        (str(domain), int(str(port))): json.loads(str(evidence)) for domain, port, evidence in rows
    }

    def named(label: str, port: int) -> tuple[str, bool]:
        evidence = seen[(lab_module.name(label), port)]
        return evidence["service"], evidence["tls"]

    # Non-standard web ports reach the HTTP and TLS families with the right scheme
    assert named("app", 8080) == ("http", False)
    assert named("app", 8443) == ("http", True)
    assert named("intranet", 4443) == ("http", True)
    assert named("vieux", 443) == ("http", True)
    # Services are named from their answers, wherever they listen
    assert named("file", 6380) == ("redis", False)
    assert named("cache", 11211) == ("memcached", False)
    assert named("smtp", 587) == ("smtp", False)
    assert named("base", 5432) == ("postgresql", False)


def test_the_whole_lab_is_swept_quickly(sweeps: Sweeps) -> None:
    assert max(sweeps.durations) < SWEEP_BUDGET_S, sweeps.durations


# Names in the open zone that resolve to no address: a name with only an MX, the
# dangling alias, the CNAME loop. Discovery stores them as candidates without address.
ADDRESSLESS = frozenset(
    {lab_module.name("courrier"), lab_module.name("ancien"), lab_module.name("tourne")}
)


@pytest.fixture(scope="module")
def discovered(lab: E2eLab, tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """Only the apex registered; discovery (zone transfer) then a sweep: (candidates, swept)."""
    folder = tmp_path_factory.mktemp("e2e-discover")
    config = folder / "vigie.toml"
    config.write_text(lab.config_text(f"sqlite:///{folder / 'vigie.db'}"), encoding="utf-8")
    registry = folder / "apex.csv"
    registry.write_text(
        f"agency,agency_email,domain,mail_domain\nAgence E2E,rssi@{lab_module.ZONE},"
        f"{lab_module.ZONE},yes\n",
        encoding="utf-8",
    )
    _invoke(config, "init")
    _invoke(config, "targets", "import", str(registry))
    _invoke(config, "targets", "discover", "--no-wordlist")
    _invoke(config, "scan", "--all", "--quiet")
    with sqlite3.connect(folder / "vigie.db") as connection:
        candidates = {
            str(n)
            for (n,) in connection.execute(
                "select name from domain where status = 'candidate' and source = 'axfr'"
            )
        }
        swept = {str(d) for (d,) in connection.execute("select distinct domain from hostscan")}
    return candidates, swept


def test_discovered_names_are_candidates_never_swept_before_approval(
    lab: E2eLab, discovered: tuple[set[str], set[str]]
) -> None:
    candidates, swept = discovered
    # The open zone transfer gives the unregistered names away: they become candidates
    in_zone = {d for d in EXPECTED if d.endswith(f".{lab_module.ZONE}")}
    assert in_zone - ADDRESSLESS <= candidates
    # And only the registered apex was swept; nothing reached the tripwire
    assert swept == {lab_module.ZONE}
    assert lab.tripwire.connections == []


def test_a_dangling_alias_found_by_discovery_is_a_candidate(
    discovered: tuple[set[str], set[str]],
) -> None:
    candidates, _ = discovered
    assert lab_module.name("ancien") in candidates


def test_a_fixed_weakness_is_resolved_and_nothing_else_moves(
    lab: E2eLab, sweeps: Sweeps, tmp_path: Path
) -> None:
    # Given a copy of the twice-swept registry, resolving after one clean scan
    with (
        sqlite3.connect(sweeps.config.parent / "vigie.db") as source,
        sqlite3.connect(tmp_path / "vigie.db") as copy,
    ):
        source.backup(copy)  # the WAL's pages too, which a file copy would miss
    config = tmp_path / "vigie.toml"
    config.write_text(
        lab.config_text(f"sqlite:///{tmp_path / 'vigie.db'}", resolve_after_scans=1),
        encoding="utf-8",
    )
    before = dict(_statuses(tmp_path))
    # When portail stops serving its .env and is scanned again
    portail = lab_module.name("portail")
    env_file = lab.bad_site_root / ".env"
    served = env_file.read_bytes()
    env_file.unlink()
    try:
        _invoke(config, "scan", portail, "--quiet")
    finally:
        env_file.write_bytes(served)
    # Then that finding alone is resolved; every other one stays open
    after = dict(_statuses(tmp_path))
    changed = {key: status for key, status in after.items() if before[key] != status}
    assert changed == {(portail, "http.exposed.env_file", 80, "/.env"): "resolved"}


def _statuses(folder: Path) -> list[tuple[tuple[object, ...], str]]:
    """(domain, check_id, port, discriminator) -> status, for every stored finding."""
    with sqlite3.connect(folder / "vigie.db") as connection:
        rows = connection.execute(
            "select domain, check_id, port, discriminator, status from finding"
        ).fetchall()
    return [
        ((domain, check, port, discriminator), str(status))
        for *key, status in rows
        for domain, check, port, discriminator in [key]
    ]
