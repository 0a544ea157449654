"""Subdomain discovery: inputs (unit), discovery against a real Knot server, candidates in the registry.

Knot serves three zones on 127.0.9.20 (the configured resolver and the zones'
name server): ``disc.test`` refuses AXFR, ``leaky.test`` allows it and
``wild.test`` has a wildcard.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from tests.dns_server import ZoneServer, free_port, start_zone_server
from vigie.cli import main
from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import Domain, DomainStatus
from vigie.errors import NotFoundError, UsageError
from vigie.scanner.probe_context import ProbeContext
from vigie.targets.discover import (
    DiscoveredName,
    DiscoveryPlan,
    DiscoveryReport,
    approve_candidates,
    default_wordlist,
    discover,
    is_application_name,
    is_under,
    is_wildcard_answer,
    parse_ct_export,
    parse_wordlist,
    store_candidates,
)
from vigie.targets.registry import add_target, list_targets

KNOT = "127.0.9.20"
SOA = "@ SOA ns hostmaster 1 3600 600 86400 300\n@ NS ns\nns A 127.0.9.20\n"


def zone(origin: str, body: str) -> str:
    return f"$ORIGIN {origin}.\n$TTL 300\n{SOA}{body}"


ZONES = {
    "disc.test": zone(
        "disc.test",
        "www A 127.0.9.40\n"
        "intranet A 127.0.9.41\n"
        "vpn A 192.0.2.10\n"  # outside the scope: recorded, flagged, never scanned
        "hidden-app A 127.0.9.42\n"  # in no wordlist, and AXFR is refused
        "payroll-2024 A 127.0.9.48\n"
        "portail-rh A 127.0.9.47\n"
        '_dmarc TXT "v=DMARC1; p=reject"\n',
    ),
    "leaky.test": zone(
        "leaky.test",
        'secret-portal A 127.0.9.43\nwww A 127.0.9.49\n_dmarc TXT "v=DMARC1; p=reject"\n',
    ),
    "wild.test": zone("wild.test", "* A 127.0.9.44\nmail A 127.0.9.45\n"),
}
WORDLIST = ("www", "intranet", "vpn", "mail", "portal", "nothere")
CT_EXPORT = [
    {
        "name_value": "payroll-2024.disc.test\n*.portail-rh.disc.test",
        "common_name": "payroll-2024.disc.test",
    },
    {"name_value": "gone.disc.test"},
    {"name_value": "www.disc.test\nadmin@disc.test"},
    {"name_value": "unrelated.example"},
]


@dataclass(frozen=True)
class World:
    knot: ZoneServer
    port: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    port = free_port([KNOT])
    with start_zone_server(
        tmp_path_factory.mktemp("discover"), KNOT, port, ZONES, axfr_allowed={"leaky.test"}
    ) as knot:
        yield World(knot, port)


def dns_settings(world: World, **dns: object) -> Settings:
    return Settings.model_validate(
        {
            "dns": {
                "resolvers": [world.knot.resolver],
                "nameserver_port": world.port,
                "timeout_s": 0.3,
                "lifetime_s": 1.0,
                "discovery_rate_per_s": 1000.0,
                **dns,
            },
            "scope": {"allow": ["127.0.9.0/24"]},
        }
    )


def run_discover(settings: Settings, plan: DiscoveryPlan) -> DiscoveryReport:
    async def run() -> DiscoveryReport:
        ctx = ProbeContext.from_settings(settings)
        try:
            return await discover(ctx, plan)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def by_name(report: DiscoveryReport) -> dict[str, DiscoveredName]:
    return {n.name: n for n in report.names}


# --- inputs --------------------------------------------------------------------------------


def test_ct_export_names_are_split_unwildcarded_and_deduplicated() -> None:
    names = parse_ct_export(json.dumps(CT_EXPORT))
    assert names == [
        "payroll-2024.disc.test",
        "portail-rh.disc.test",
        "gone.disc.test",
        "www.disc.test",
        "unrelated.example",
    ]


def test_ct_export_as_json_lines() -> None:
    text = "\n".join(json.dumps(entry) for entry in CT_EXPORT[:2])
    assert parse_ct_export(text) == [
        "payroll-2024.disc.test",
        "portail-rh.disc.test",
        "gone.disc.test",
    ]


def test_ct_export_that_is_not_json_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_ct_export("<html>rate limited</html>")


def test_wordlist_parsing_and_the_built_in_list() -> None:
    assert parse_wordlist("# comment\nwww\n\nWWW\nbad label\nmail # trailing\n-bad\n") == [
        "www",
        "mail",
    ]
    built_in = default_wordlist()
    assert 200 <= len(built_in) <= 1000
    assert {"www", "intranet", "vpn", "webmail", "portail"} <= set(built_in)


def test_name_predicates() -> None:
    assert is_under("a.b.example", "b.example") and not is_under("b.example", "b.example")
    assert not is_under("xb.example", "b.example")
    assert not is_application_name("_dmarc.b.example") and not is_application_name("*.b.example")
    assert is_application_name("www.b.example")
    assert is_wildcard_answer(["192.0.2.1"], ["192.0.2.1", "192.0.2.2"])
    assert not is_wildcard_answer(["192.0.2.3"], ["192.0.2.1"])
    assert not is_wildcard_answer(["192.0.2.1"], [])


# --- discovery against the real server ----------------------------------------------------------


@pytest.mark.network
def test_wordlist_and_ct_candidates_with_scope_flags(world: World) -> None:
    # Given disc.test is registered with www, AXFR is refused, and a CT export names more
    plan = DiscoveryPlan(
        parents=("disc.test",),
        wordlist=WORDLIST,
        ct_names=tuple(parse_ct_export(json.dumps(CT_EXPORT))),
        known=frozenset({"disc.test", "www.disc.test"}),
    )
    # When discovering
    report = run_discover(dns_settings(world), plan)
    # Then the wordlist and CT names that resolve are candidates, flagged by scope
    found = by_name(report)
    assert {name: n.source for name, n in found.items()} == {
        "intranet.disc.test": "wordlist",
        "vpn.disc.test": "wordlist",
        "payroll-2024.disc.test": "ct",
        "portail-rh.disc.test": "ct",
        "gone.disc.test": "ct",
    }
    assert found["intranet.disc.test"].addresses == ("127.0.9.41",)
    assert found["intranet.disc.test"].in_scope
    assert found["vpn.disc.test"].addresses == ("192.0.2.10",)
    assert not found["vpn.disc.test"].in_scope
    assert all(n.parent == "disc.test" for n in report.names)
    # ... the CT name that does not resolve is a candidate without address, listed apart too,
    # and a name no source knows stays hidden
    assert report.unresolved == ["gone.disc.test"]
    assert found["gone.disc.test"].addresses == () and not found["gone.disc.test"].in_scope
    assert "hidden-app.disc.test" not in found
    assert report.wildcards == {} and report.problems == []


@pytest.mark.network
def test_a_zone_transfer_gives_away_its_names(world: World) -> None:
    plan = DiscoveryPlan(
        parents=("leaky.test",), wordlist=WORDLIST, known=frozenset({"leaky.test"})
    )
    report = run_discover(dns_settings(world), plan)
    # The zone's own name server is a host of the agency too
    assert {n.name: n.source for n in report.names} == {
        "ns.leaky.test": "axfr",
        "secret-portal.leaky.test": "axfr",
        "www.leaky.test": "axfr",
    }


@pytest.mark.network
def test_a_refused_zone_transfer_gives_nothing_away(world: World) -> None:
    plan = DiscoveryPlan(parents=("disc.test",), known=frozenset({"disc.test"}))
    report = run_discover(dns_settings(world), plan)
    assert report.names == []


@pytest.mark.network
def test_wildcard_answers_do_not_flood_the_list(world: World) -> None:
    plan = DiscoveryPlan(parents=("wild.test",), wordlist=WORDLIST, known=frozenset({"wild.test"}))
    report = run_discover(dns_settings(world), plan)
    assert [(n.name, n.source) for n in report.names] == [("mail.wild.test", "wordlist")]
    assert report.wildcards == {"wild.test": ("127.0.9.44",)}
    assert report.wildcard_hits == len(WORDLIST) - 1


@pytest.mark.network
def test_the_built_in_wordlist_runs_against_a_zone(world: World) -> None:
    plan = DiscoveryPlan(parents=("disc.test",), wordlist=tuple(default_wordlist()), axfr=False)
    report = run_discover(dns_settings(world), plan)
    assert {n.name for n in report.names} == {
        "ns.disc.test",
        "www.disc.test",
        "intranet.disc.test",
        "vpn.disc.test",
    }


@pytest.mark.network
def test_wordlist_lookups_respect_the_rate_bound(world: World) -> None:
    labels = tuple(f"absent{i}" for i in range(10))
    plan = DiscoveryPlan(parents=("disc.test",), wordlist=labels, axfr=False)
    started = time.monotonic()
    report = run_discover(dns_settings(world, discovery_rate_per_s=20.0), plan)
    elapsed = time.monotonic() - started
    # 2 wildcard probes + 10 names, one NXDOMAIN lookup each, at 20 per second
    assert elapsed >= 11 / 20 - 0.05
    assert report.names == []


# --- candidates in the registry -------------------------------------------------------------------


@pytest.fixture
def db_settings(database_url: str) -> Iterator[Settings]:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": database_url})
    upgrade_database(settings)
    yield settings
    dispose_engines()


def test_candidates_are_stored_then_approved_one_by_one_or_by_source(db_settings: Settings) -> None:
    found = [
        DiscoveredName("intranet.disc.test", "wordlist", ("127.0.9.41",), True, "disc.test"),
        DiscoveredName("vpn.disc.test", "wordlist", ("192.0.2.10",), False, "disc.test"),
        DiscoveredName("secret.disc.test", "axfr", ("127.0.9.43",), True, "disc.test"),
        DiscoveredName("www.disc.test", "wordlist", ("127.0.9.40",), True, "disc.test"),
    ]
    with session_scope(db_settings) as session:
        agency_id = add_target(
            session,
            agency_name="DGI",
            domain_name="disc.test",
            emails=["security@dgi.gouv.example"],
        ).agency_id
        add_target(session, agency_name="DGI", domain_name="www.disc.test")
        summary = store_candidates(session, found)
    assert summary.added == ["intranet.disc.test", "vpn.disc.test", "secret.disc.test"]
    with session_scope(db_settings) as session:
        rows = {d.name: d for d in session.exec(select(Domain))}
        # Candidates carry their source, parent, agency and addresses; the registered name is untouched
        vpn = rows["vpn.disc.test"]
        assert (vpn.status, vpn.source, vpn.discovered_from, vpn.agency_id) == (
            DomainStatus.CANDIDATE,
            "wordlist",
            "disc.test",
            agency_id,
        )
        assert vpn.discovered_addresses == ["192.0.2.10"]
        assert rows["www.disc.test"].status == DomainStatus.ACTIVE
        assert rows["www.disc.test"].source == "manual"
        # ... and they are not registered targets (what the sweep takes) until approved
        assert {r.domain for r in list_targets(session)} == {"disc.test", "www.disc.test"}
    with session_scope(db_settings) as session:
        again = store_candidates(session, found[:1])
        assert again.updated == ["intranet.disc.test"] and again.added == []
        assert approve_candidates(session, name="intranet.disc.test") == ["intranet.disc.test"]
        assert approve_candidates(session, source="wordlist") == ["vpn.disc.test"]
        with pytest.raises(NotFoundError):
            approve_candidates(session, name="www.disc.test")
    with session_scope(db_settings) as session:
        active = {r.domain for r in list_targets(session)}
        assert active == {"disc.test", "www.disc.test", "intranet.disc.test", "vpn.disc.test"}
        assert (
            session.exec(select(Domain).where(Domain.name == "secret.disc.test")).one().status
            == "candidate"
        )


# --- the command line --------------------------------------------------------------------------------


@pytest.fixture
def cli(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("VIGIE_DATABASE_URL", f"sqlite:///{tmp_path}/v.db")
    monkeypatch.setenv("VIGIE_DNS_RESOLVERS", json.dumps([world.knot.resolver]))
    monkeypatch.setenv("VIGIE_DNS_NAMESERVER_PORT", str(world.port))
    monkeypatch.setenv("VIGIE_DNS_TIMEOUT_S", "0.3")
    monkeypatch.setenv("VIGIE_DNS_LIFETIME_S", "1.0")
    monkeypatch.setenv("VIGIE_SCOPE_ALLOW", json.dumps(["127.0.9.0/24"]))
    yield CliRunner()
    dispose_engines()


@pytest.mark.network
def test_cli_discover_stores_candidates_that_scan_refuses_until_approved(
    cli: CliRunner, tmp_path: Path
) -> None:
    for domain in ("disc.test", "leaky.test"):
        added = cli.invoke(
            main,
            ["targets", "add", domain, "--agency", "DGI", "--email", "security@dgi.gouv.example"],
        )
        assert added.exit_code == 0, added.output
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join(WORDLIST), encoding="utf-8")
    ct_file = tmp_path / "ct.json"
    ct_file.write_text(json.dumps(CT_EXPORT), encoding="utf-8")

    result = cli.invoke(
        main,
        [
            "targets",
            "discover",
            "--wordlist",
            str(wordlist),
            "--ct-file",
            str(ct_file),
            "--format",
            "json",
        ],
    )

    assert result.exit_code == 0, result.output
    rows = {row["domain"]: row for row in json.loads(result.stdout)}
    assert {name: row["source"] for name, row in rows.items()} == {
        "intranet.disc.test": "wordlist",
        "vpn.disc.test": "wordlist",
        "www.disc.test": "wordlist",
        "payroll-2024.disc.test": "ct",
        "portail-rh.disc.test": "ct",
        "gone.disc.test": "ct",  # resolves to nothing: a candidate without address
        "ns.leaky.test": "axfr",
        "secret-portal.leaky.test": "axfr",
        "www.leaky.test": "axfr",
    }
    assert rows["vpn.disc.test"]["in_scope"] is False
    assert rows["gone.disc.test"]["addresses"] == "" and rows["gone.disc.test"]["in_scope"] is False
    listed = json.loads(cli.invoke(main, ["targets", "list", "--all", "--format", "json"]).stdout)
    assert {
        r["domain"]: r["status"] for r in listed if r["status"] == "candidate"
    }.keys() == rows.keys()
    # A candidate is not scanned: the sweep refuses it before anything is sent
    refused = cli.invoke(main, ["scan", "secret-portal.leaky.test"])
    assert refused.exit_code == 2
    assert "not active" in refused.output
    # Approval makes them registered domains
    approved = cli.invoke(main, ["targets", "approve", "--all-from", "axfr"])
    assert approved.exit_code == 0, approved.output
    assert "approved secret-portal.leaky.test" in approved.output
    one = cli.invoke(main, ["targets", "approve", "intranet.disc.test"])
    assert one.exit_code == 0
    active = json.loads(cli.invoke(main, ["targets", "list", "--format", "json"]).stdout)
    assert {r["domain"] for r in active} == {
        "disc.test",
        "leaky.test",
        "ns.leaky.test",
        "secret-portal.leaky.test",
        "www.leaky.test",
        "intranet.disc.test",
    }
    missing = cli.invoke(main, ["targets", "approve", "nothere.disc.test"])
    assert missing.exit_code == 2
