"""Importing vulnerability data files in their publishers' formats.

Oracles: the published JSON schemas (NVD CVE API 2.0, CISA KEV, OSV), copied
under tests/data/schemas from their publishers' repositories, validate the
fixture files with ``jsonschema``; counts come from the files themselves.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from sqlmodel import Session, func, select

from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.db.session import get_engine
from vigie.db.tables import VulnCpe, VulnCve, VulnDistroFix, VulnEol, VulnEpss, VulnKev
from vigie.errors import VulnDataError
from vigie.vulns import _formats as formats
from vigie.vulns.store import import_files, load_match_index, sources

DATA = Path(__file__).parent.parent / "data" / "vulns"
SCHEMAS = Path(__file__).parent.parent / "data" / "schemas"
NVD = DATA / "nvdcve-2.0-fixture.json"
KEV = DATA / "known_exploited_vulnerabilities.json"
EPSS = DATA / "epss_scores-2026-12-01.csv"
OSV = DATA / "osv-debian-ubuntu.json"
TRACKER = DATA / "debian-security-tracker.json"
EOL = [DATA / "nginx.json", DATA / "wordpress.json", DATA / "php.json"]
ALL = [NVD, KEV, EPSS, OSV, TRACKER, *EOL]


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def _nvd_validator() -> jsonschema.protocols.Validator:
    """The NVD schema refers to FIRST's CVSS schemas by their NVD URLs: served from files."""
    base = "https://csrc.nist.gov/schema/nvd/api/2.0/external/"
    registry: Registry[Any] = Registry().with_resources(
        (base + name, Resource.from_contents(_schema(name)))
        for name in ("cvss-v2.0.json", "cvss-v3.0.json", "cvss-v3.1.json", "cvss-v4.0.json")
    )
    schema = _schema("cve_api_json_2.0.schema")
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry)


def test_fixtures_follow_the_published_schemas() -> None:
    # Given the fixture files and the schemas their publishers maintain
    nvd = json.loads(NVD.read_text(encoding="utf-8"))
    kev = json.loads(KEV.read_text(encoding="utf-8"))
    osv = json.loads(OSV.read_text(encoding="utf-8"))
    # Then every file validates (an OSV file here is a list of OSV records)
    _nvd_validator().validate(nvd)
    jsonschema.validate(kev, _schema("kev_schema.json"))
    for record in osv:
        jsonschema.validate(record, _schema("osv_schema.json"))
    # And the validator is not vacuous: a cpeMatch without matchCriteriaId is refused
    broken = json.loads(json.dumps(nvd))
    del broken["vulnerabilities"][0]["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0][
        "matchCriteriaId"
    ]
    with pytest.raises(jsonschema.ValidationError):
        _nvd_validator().validate(broken)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (NVD, formats.Kind.NVD),
        (KEV, formats.Kind.KEV),
        (EPSS, formats.Kind.EPSS),
        (OSV, formats.Kind.OSV),
        (TRACKER, formats.Kind.DEBIAN),
        (DATA / "nginx.json", formats.Kind.EOL),
        (DATA / "php.json", formats.Kind.EOL),
    ],
)
def test_format_is_recognised_from_content(path: Path, kind: formats.Kind, tmp_path: Path) -> None:
    # Given a file renamed so that its name says nothing, and a gzip copy
    anonymous = tmp_path / "data.bin"
    shutil.copy(path, anonymous)
    packed = tmp_path / "data.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    # Then its format is still recognised
    assert formats.detect(anonymous) is kind
    assert formats.detect(packed) is kind


def _count(settings: Settings, table: Any) -> int:
    with Session(get_engine(settings)) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


@pytest.fixture
def settings(database_url: str) -> Settings:
    config = Settings.model_validate({"database": {"url": database_url}})
    ensure_database(config)
    return config


def test_import_is_complete_dated_and_idempotent(settings: Settings) -> None:
    # Given every fixture file
    nvd = json.loads(NVD.read_text(encoding="utf-8"))
    vulnerable_products = {
        (m["criteria"].split(":")[3], m["criteria"].split(":")[4], item["cve"]["id"])
        for item in nvd["vulnerabilities"]
        for config in item["cve"]["configurations"]
        for node in config["nodes"]
        for m in node["cpeMatch"]
        if m["vulnerable"]
    }
    # When they are imported twice
    first = import_files(settings, ALL)
    second = import_files(settings, ALL)
    # Then each file's records are there once, with the file's own date
    counts = {s.path.name: s.records for s in first}
    assert counts[NVD.name] == nvd["totalResults"] == _count(settings, VulnCve)
    assert _count(settings, VulnCpe) == len(vulnerable_products)
    assert _count(settings, VulnKev) == json.loads(KEV.read_text())["count"]
    assert _count(settings, VulnEpss) == len(EPSS.read_text().splitlines()) - 2
    assert _count(settings, VulnEol) == 4 + 3 + 2
    assert _count(settings, VulnDistroFix) == counts[OSV.name] + counts[TRACKER.name]
    assert all(s.replaced for s in second) and not any(s.replaced for s in first)
    dates = {s.path.name: s.data_date for s in first}
    assert dates[NVD.name] is not None and dates[NVD.name].isoformat().startswith("2026-12-01T06")
    assert dates[EPSS.name] is not None and dates[EPSS.name].date().isoformat() == "2026-12-01"
    assert dates[KEV.name] is not None and dates[KEV.name].date().isoformat() == "2026-12-01"
    assert {s.kind for s in sources(settings)} == {"nvd", "kev", "epss", "eol", "osv", "debian"}
    # And the TEMP- entry of the tracker (no CVE yet) is not a record
    tracker = json.loads(TRACKER.read_text())
    cve_entries = sum(
        len(releases["releases"])
        for issues in tracker.values()
        for cve_id, releases in issues.items()
        if cve_id.startswith("CVE-")
    )
    assert counts[TRACKER.name] == cve_entries


def test_malformed_file_names_the_record_and_imports_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    # Given an NVD file whose third record has a cpeMatch criteria that is not a CPE name
    nvd = json.loads(NVD.read_text(encoding="utf-8"))
    third = nvd["vulnerabilities"][2]["cve"]
    third["configurations"][0]["nodes"][0]["cpeMatch"][0]["criteria"] = "openssh 9.5"
    bad = tmp_path / "nvd-bad.json"
    bad.write_text(json.dumps(nvd), encoding="utf-8")
    # When it is imported
    with pytest.raises(VulnDataError) as raised:
        import_files(settings, [bad])
    # Then the error names the file and the record, and nothing came in
    message = str(raised.value)
    assert str(bad) in message and "record 2" in message and third["id"] in message
    assert _count(settings, VulnCve) == 0 and sources(settings) == []


def test_truncated_json_and_bad_csv_are_refused(settings: Settings, tmp_path: Path) -> None:
    # Given a truncated NVD file and an EPSS file with a score out of range
    text = NVD.read_text(encoding="utf-8")
    truncated = tmp_path / "nvd-truncated.json"
    truncated.write_text(text[: len(text) * 2 // 3], encoding="utf-8")
    epss = tmp_path / "epss-bad.csv"
    epss.write_text(EPSS.read_text().replace("0.9384", "9.384"), encoding="utf-8")
    # Then both are refused whole, each naming where
    with pytest.raises(VulnDataError, match=r"nvd-truncated\.json: record"):
        import_files(settings, [truncated])
    with pytest.raises(VulnDataError, match=r"epss-bad.csv: line 3 \(CVE-2011-2523\)"):
        import_files(settings, [epss])
    assert _count(settings, VulnCve) == 0 and _count(settings, VulnEpss) == 0


def test_match_index_holds_the_identifiable_products(settings: Settings) -> None:
    # Given every fixture file imported
    import_files(settings, ALL)
    # When the sweep's index is loaded
    index = load_match_index(settings)
    # Then it has the CVEs of products vigie identifies, by their NVD names
    assert {e.cve_id for e in index.cves[("openbsd", "openssh")]} == {
        "CVE-2023-38408",
        "CVE-2024-6387",
        "CVE-2023-48795",
        "CVE-2023-51385",
    }
    assert set(index.kev) == {"CVE-2021-41773", "CVE-2021-42013", "CVE-2018-13379"}
    assert index.epss["CVE-2024-6387"] == (0.38466, 0.97174)
    assert {c.cycle for c in index.eol["php"]} == {"8.4", "7.4"}
    bookworm = index.distro[("debian", "openssh")]["CVE-2024-6387"]
    assert {(v.release, v.fixed) for v in bookworm} >= {("12", "1:9.2p1-2+deb12u3"), ("11", "0")}


def test_osv_zip_and_gzip_files_import(tmp_path: Path) -> None:
    # Given the OSV records as osv.dev publishes them (a zip of one JSON file per record)
    # and the NVD file gzip-compressed, as the NVD feeds come
    import zipfile

    archive = tmp_path / "Debian.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for record in json.loads(OSV.read_text(encoding="utf-8")):
            out.writestr(f"{record['id']}.json", json.dumps(record))
    packed = tmp_path / "nvdcve-2.0-fixture.json.gz"
    packed.write_bytes(gzip.compress(NVD.read_bytes()))
    config = Settings.model_validate({"database": {"url": f"sqlite:///{tmp_path}/v.db"}})
    ensure_database(config)
    # When they are imported
    summaries = import_files(config, [archive, packed])
    # Then every record came in, as from the plain files
    assert [s.kind for s in summaries] == ["osv", "nvd"]
    assert summaries[0].records == 7 and summaries[1].records == 12


def test_a_folder_stands_for_its_data_files(tmp_path: Path) -> None:
    # Given a folder of OSV records, one file each, as an extracted osv.dev dump
    folder = tmp_path / "osv"
    folder.mkdir()
    for record in json.loads(OSV.read_text(encoding="utf-8")):
        (folder / f"{record['id']}.json").write_text(json.dumps(record), encoding="utf-8")
    (folder / "README.txt").write_text("not data")
    config = Settings.model_validate({"database": {"url": f"sqlite:///{tmp_path}/v.db"}})
    ensure_database(config)
    # When the folder is imported, Then each record file came in, the rest was left
    summaries = import_files(config, [folder])
    assert sorted(s.path.name for s in summaries) == sorted(
        f"{r['id']}.json" for r in json.loads(OSV.read_text(encoding="utf-8"))
    )
    assert sum(s.records for s in summaries) == 7
