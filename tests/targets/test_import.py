"""Registry import: CSV and YAML, all or nothing, idempotent, prune."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import Agency, Contact, Domain, DomainStatus
from vigie.errors import RegistryImportError
from vigie.targets.importer import normalise_domain, parse_registry
from vigie.targets.registry import import_registry

EXAMPLES = Path(__file__).parents[2] / "examples"
HEADER = "agency,agency_email,domain,agency_code,language,tags,operator,operator_email\n"


@pytest.fixture
def settings(database_url: str) -> Iterator[Settings]:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": database_url})
    upgrade_database(settings)
    yield settings
    dispose_engines()


def counts(settings: Settings) -> tuple[int, int, int]:
    with session_scope(settings) as session:
        return (
            len(session.exec(select(Agency)).all()),
            len(session.exec(select(Domain)).all()),
            len(session.exec(select(Contact)).all()),
        )


def test_example_registry_imports_and_reimport_is_idempotent(settings: Settings) -> None:
    entries = parse_registry(EXAMPLES / "registry.csv")
    with session_scope(settings) as session:
        first = import_registry(session, entries)
    assert first.domains_created == 8 and first.agencies_created == 4
    before = counts(settings)
    with session_scope(settings) as session:
        second = import_registry(session, parse_registry(EXAMPLES / "registry.csv"))
    assert second.domains_created == second.agencies_created == second.contacts_created == 0
    assert counts(settings) == before


def test_yaml_example_matches_the_csv_shape() -> None:
    entries = parse_registry(EXAMPLES / "registry.yaml")
    names = {d.name for e in entries for d in e.domains}
    assert "teleservices.men.gouv.example" in names
    operator = next(
        d for e in entries for d in e.domains if d.name == "teleservices.men.gouv.example"
    )
    assert operator.operator_emails == ["support@sahel-hebergement.example"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("Agence A,a@a.gouv.example,not a domain,,,,,\n", "domain"),
        ("Agence A,not-an-email,b.gouv.example,,,,,\n", "agency_email"),
        ("Agence A,a@a.gouv.example,c.gouv.example,,de,,,\n", "language"),
        ("Agence A,a@a.gouv.example,*.gouv.example,,,,,\n", "wildcard"),
        (",a@a.gouv.example,d.gouv.example,,,,,\n", "agency: empty"),
        ("Agence A,a@a.gouv.example,e.gouv.example\n", "fields"),
    ],
)
def test_one_bad_line_names_it_and_imports_nothing(
    settings: Settings, tmp_path: Path, row: str, message: str
) -> None:
    path = tmp_path / "registry.csv"
    good = "Agence A,a@a.gouv.example,ok.gouv.example,,,,,\n"
    path.write_text(HEADER + good + good.replace("ok.", "ok2.") + row, encoding="utf-8")
    with pytest.raises(RegistryImportError) as error:
        parse_registry(path)
    assert f"{path}:4:" in str(error.value)
    assert message in str(error.value)
    assert error.value.exit_code == 2
    assert counts(settings) == (0, 0, 0)


def test_duplicate_domain_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text(
        HEADER
        + "Agence A,a@a.gouv.example,x.gouv.example,,,,,\n"
        + "Agence B,b@b.gouv.example,X.gouv.example.,,,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(
        RegistryImportError, match=r":3: domain: x.gouv.example is listed twice \(first on line 2\)"
    ):
        parse_registry(path)


def test_contradicting_agency_attributes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text(
        HEADER
        + "Agence A,a@a.gouv.example,x.gouv.example,AA,fr,,,\n"
        + "Agence A,a@a.gouv.example,y.gouv.example,AB,fr,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryImportError, match=":3: code"):
        parse_registry(path)


def test_missing_columns_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text("agency,domain\nA,a.gouv.example\n", encoding="utf-8")
    with pytest.raises(RegistryImportError, match="missing required column"):
        parse_registry(path)
    yaml_path = tmp_path / "registry.yaml"
    yaml_path.write_text(
        "agencies:\n  - name: A\n    emails: [a@a.gouv.example]\n    domains: [\n", encoding="utf-8"
    )
    with pytest.raises(RegistryImportError, match=f"{yaml_path}:"):
        parse_registry(yaml_path)


def test_idna_names_are_stored_in_ascii() -> None:
    assert normalise_domain("Santé.Gouv.Example.") == "xn--sant-epa.gouv.example"


def test_prune_deactivates_but_keeps_history(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "registry.csv"
    path.write_text(
        HEADER
        + "A,a@a.gouv.example,one.gouv.example,,,,,\nA,a@a.gouv.example,two.gouv.example,,,,,\n",
        encoding="utf-8",
    )
    with session_scope(settings) as session:
        import_registry(session, parse_registry(path))
    path.write_text(HEADER + "A,a@a.gouv.example,one.gouv.example,,,,,\n", encoding="utf-8")
    with session_scope(settings) as session:
        summary = import_registry(session, parse_registry(path), prune=True)
    assert summary.deactivated == ["two.gouv.example"]
    with session_scope(settings) as session:
        two = session.exec(select(Domain).where(Domain.name == "two.gouv.example")).one()
        assert two.status == DomainStatus.INACTIVE


def test_two_thousand_domains_import_in_seconds(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = [HEADER]
    for index in range(2000):
        agency = index // 10
        lines.append(
            f"Agence {agency},contact{agency}@a{agency}.gouv.example,app{index}.a{agency}.gouv.example,"
            f"A{agency},fr,tag,Hébergeur {agency % 7},noc{agency % 7}@host.example\n"
        )
    path.write_text("".join(lines), encoding="utf-8")
    started = time.perf_counter()
    entries = parse_registry(path)
    with session_scope(settings) as session:
        summary = import_registry(session, entries)
    elapsed = time.perf_counter() - started
    assert summary.domains_created == 2000
    assert summary.agencies_created == 200
    # Not a timing test (benchmarks do that): a generous bound catches a quadratic blow-up.
    assert elapsed < 60
