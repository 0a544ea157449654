"""Importing vulnerability data files into the database, and reading it back.

One transaction per file: a file either comes in whole or not at all (a
malformed record anywhere rolls the whole file back). Re-importing a file of
the same name and kind replaces what it brought the first time (idempotent);
a CVE present in several NVD files takes the most recently imported record.
Records are written in batches through SQLAlchemy Core, so a 250,000-CVE NVD
file streams through in bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from vigie.config import Settings
from vigie.db.session import get_engine, session_scope
from vigie.db.tables import (
    VulnCpe,
    VulnCve,
    VulnDistroFix,
    VulnEol,
    VulnEpss,
    VulnKev,
    VulnSource,
)
from vigie.errors import VulnDataError
from vigie.model import utcnow
from vigie.vulns import _formats as formats
from vigie.vulns._formats import (
    CveRecord,
    DistroFixRecord,
    EolRecord,
    EpssRecord,
    KevRecord,
    Kind,
    Record,
)
from vigie.vulns._index import (
    CveEntry,
    DistroVerdict,
    EolCycle,
    KevEntry,
    MatchIndex,
    SourceInfo,
    data_note,
)
from vigie.vulns.products import all_cpe_products, all_eol_names, all_packages

BATCH = 2_000
# Keyed tables: a record replaces the same key brought by any other file.
_KEYED: dict[Kind, type[Any]] = {Kind.NVD: VulnCve, Kind.KEV: VulnKev, Kind.EPSS: VulnEpss}
_TABLES: dict[Kind, tuple[type[Any], ...]] = {
    Kind.NVD: (VulnCve, VulnCpe),
    Kind.KEV: (VulnKev,),
    Kind.EPSS: (VulnEpss,),
    Kind.EOL: (VulnEol,),
    Kind.OSV: (VulnDistroFix,),
    Kind.DEBIAN: (VulnDistroFix,),
}

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    path: Path
    kind: str
    records: int
    data_date: datetime | None
    replaced: bool  # a file of that name had been imported before
    notes: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(settings: Settings, path: Path, progress: Progress | None = None) -> ImportSummary:
    """Import one data file in one transaction; VulnDataError names what is wrong."""
    if not path.is_file():
        raise VulnDataError(f"{path}: no such file")
    data, records = formats.read(path)
    engine = get_engine(settings)
    with engine.begin() as connection:
        source_table = VulnSource.__table__  # type: ignore[attr-defined]
        previous = connection.execute(
            sa.select(source_table.c.id).where(
                source_table.c.kind == data.kind.value, source_table.c.name == path.name
            )
        ).scalar()
        if previous is not None:
            for table in _TABLES[data.kind]:
                connection.execute(
                    sa.delete(table.__table__).where(table.__table__.c.source_id == previous)
                )
            connection.execute(sa.delete(source_table).where(source_table.c.id == previous))
        inserted = connection.execute(
            sa.insert(source_table).values(
                kind=data.kind.value, name=path.name, imported_at=utcnow(), sha256=_sha256(path)
            )
        ).inserted_primary_key
        assert inserted is not None
        source_id = int(inserted[0])
        count, latest = _write(connection, data.kind, source_id, records, progress)
        data_date = data.data_date or latest
        connection.execute(
            sa.update(source_table)
            .where(source_table.c.id == source_id)
            .values(records=count, data_date=data_date)
        )
    return ImportSummary(path, data.kind.value, count, data_date, previous is not None, data.notes)


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(
    connection: sa.Connection,
    kind: Kind,
    source_id: int,
    records: Iterator[Record],
    progress: Progress | None,
) -> tuple[int, datetime | None]:
    count = 0
    latest: datetime | None = None
    keyed = _KEYED.get(kind)
    for batch in _batches(records):
        rows = [_row(record, source_id) for record in batch]
        if keyed is not None:
            table = keyed.__table__
            ids = list({row["cve_id"] for row in rows})
            connection.execute(sa.delete(table).where(table.c.cve_id.in_(ids)))
            if kind is Kind.NVD:
                cpe = VulnCpe.__table__  # type: ignore[attr-defined]
                connection.execute(sa.delete(cpe).where(cpe.c.cve_id.in_(ids)))
            rows = list({row["cve_id"]: row for row in rows}.values())  # last one wins
        elif kind is Kind.EOL:
            # A release cycle another file brought is replaced by this file's.
            table = VulnEol.__table__  # type: ignore[attr-defined]
            for row in rows:
                connection.execute(
                    sa.delete(table).where(
                        table.c.product == row["product"], table.c.cycle == row["cycle"]
                    )
                )
            rows = list({(row["product"], row["cycle"]): row for row in rows}.values())
        connection.execute(sa.insert(_TABLES[kind][0].__table__), rows)
        if kind is Kind.NVD:
            cpe_rows = [
                {"cve_id": r.cve_id, "source_id": source_id, "vendor": v, "product": p}
                for r in batch
                if isinstance(r, CveRecord)
                for v, p in sorted(r.products)
            ]
            if cpe_rows:
                connection.execute(sa.insert(VulnCpe.__table__), cpe_rows)  # type: ignore[attr-defined]
            for record in batch:
                assert isinstance(record, CveRecord)
                latest = formats._later(latest, record.last_modified)
        count += len(batch)
        if progress is not None:
            progress(count)
    return count, latest


def _row(record: Record, source_id: int) -> dict[str, Any]:
    if isinstance(record, CveRecord):
        return {
            "cve_id": record.cve_id,
            "source_id": source_id,
            "published": record.published,
            "last_modified": record.last_modified,
            "cvss": record.cvss,
            "cvss_version": record.cvss_version,
            "summary": record.summary,
            "configurations": record.configurations,
        }
    if isinstance(record, KevRecord):
        return {
            "cve_id": record.cve_id,
            "source_id": source_id,
            "date_added": record.date_added,
            "due_date": record.due_date,
            "name": record.name,
            "ransomware": record.ransomware,
        }
    if isinstance(record, EpssRecord):
        return {
            "cve_id": record.cve_id,
            "source_id": source_id,
            "epss": record.epss,
            "percentile": record.percentile,
        }
    if isinstance(record, EolRecord):
        return {
            "source_id": source_id,
            "product": record.product,
            "cycle": record.cycle,
            "eol": record.eol,
            "latest": record.latest,
            "release_date": record.release_date,
        }
    assert isinstance(record, DistroFixRecord)
    return {
        "source_id": source_id,
        "distro": record.distro,
        "release": record.release,
        "package": record.package,
        "cve_id": record.cve_id,
        "fixed": record.fixed,
        "status": record.status,
    }


DATA_SUFFIXES = (".json", ".json.gz", ".csv", ".csv.gz", ".zip", ".gz")


def expand(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a folder stands for the data files under it, sorted by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [
                p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(DATA_SUFFIXES)
            ]
            files += sorted(found)
        else:
            files.append(path)
    return files


def import_files(
    settings: Settings, paths: Sequence[Path], progress: Callable[[Path, int], None] | None = None
) -> list[ImportSummary]:
    """Import each file in turn (each its own transaction); a folder's data files too."""
    summaries = []
    for path in expand(paths):
        report: Progress | None = None
        if progress is not None:

            def report(count: int, path: Path = path) -> None:
                progress(path, count)

        try:
            summaries.append(import_file(settings, path, report))
        except sa.exc.IntegrityError as exc:
            raise VulnDataError(
                f"{path}: a record repeats one already imported from another file "
                f"({str(exc.orig)[:200]}); nothing was imported from this file"
            ) from None
    return summaries


# --- status --------------------------------------------------------------------


def sweep_data_note(settings: Settings, *, vuln_checks: bool) -> str:
    """The summary note on the data a sweep matches against, from the import records alone
    (the distributed front says it without loading the index its workers load)."""
    with Session(get_engine(settings)) as session:
        infos = _source_infos(session)
    return data_note(infos, utcnow(), settings.vulns.max_age_days, vuln_checks=vuln_checks)


def _source_infos(session: Session) -> list[SourceInfo]:
    """What each imported file is (kind, name, data date), without its records."""
    return [
        SourceInfo(s.kind, s.name, s.data_date, s.imported_at, s.records)
        for s in session.exec(select(VulnSource))
    ]


def sources(settings: Settings) -> list[VulnSource]:
    with session_scope(settings) as session:
        return list(
            session.exec(select(VulnSource).order_by(col(VulnSource.kind), col(VulnSource.name)))
        )


# --- the match index ----------------------------------------------------------


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_match_index(settings: Settings) -> MatchIndex:
    """Everything a sweep matches against, for the products vigie identifies."""
    index = MatchIndex()
    with Session(get_engine(settings)) as session:
        index.sources = _source_infos(session)
        if not index.sources:
            return index
        _load_cves(session, index)
        _load_distro(session, index)
        wanted = sorted(index.cve_by_id)
        for chunk in _chunks(wanted):
            for kev in session.exec(select(VulnKev).where(col(VulnKev.cve_id).in_(chunk))):
                index.kev[kev.cve_id] = KevEntry(
                    kev.date_added, kev.due_date, kev.name, kev.ransomware
                )
            for epss in session.exec(select(VulnEpss).where(col(VulnEpss.cve_id).in_(chunk))):
                index.epss[epss.cve_id] = (epss.epss, epss.percentile)
        for eol in session.exec(
            select(VulnEol).where(col(VulnEol.product).in_(sorted(all_eol_names())))
        ):
            index.eol.setdefault(eol.product, []).append(
                EolCycle(eol.cycle, eol.eol, eol.latest, eol.release_date)
            )
    return index


def _cve_rows(session: Session, ids: Sequence[str]) -> Iterable[Any]:
    """(cve_id, cvss, cvss_version, summary, configurations) rows, through SQLAlchemy Core."""
    table = VulnCve.__table__  # type: ignore[attr-defined]
    columns = (table.c.cve_id, table.c.cvss, table.c.cvss_version, table.c.summary)
    for chunk in _chunks(ids):
        query = sa.select(*columns, table.c.configurations).where(table.c.cve_id.in_(chunk))
        yield from session.connection().execute(query)


def _entry(row: Any) -> CveEntry:
    return CveEntry(row[0], row[1], row[2], row[3], tuple(row[4] or ()))


def _load_cves(session: Session, index: MatchIndex) -> None:
    pairs = sorted(all_cpe_products())
    cpe = VulnCpe.__table__  # type: ignore[attr-defined]
    by_cve: dict[str, set[tuple[str, str]]] = {}
    query = sa.select(cpe.c.cve_id, cpe.c.vendor, cpe.c.product).where(
        sa.tuple_(cpe.c.vendor, cpe.c.product).in_(pairs)
    )
    for cve_id, vendor, product in session.connection().execute(query):
        by_cve.setdefault(cve_id, set()).add((vendor, product))
    for row in _cve_rows(session, sorted(by_cve)):
        entry = _entry(row)
        index.cve_by_id[entry.cve_id] = entry
        for pair in by_cve[entry.cve_id]:
            index.cves.setdefault(pair, []).append(entry)


def _load_distro(session: Session, index: MatchIndex) -> None:
    packages = sorted(all_packages())
    missing: set[str] = set()
    for fix in session.exec(select(VulnDistroFix).where(col(VulnDistroFix.package).in_(packages))):
        verdicts = index.distro.setdefault((fix.distro, fix.package), {})
        verdicts.setdefault(fix.cve_id, []).append(
            DistroVerdict(fix.release, fix.fixed, fix.status)
        )
        if fix.cve_id not in index.cve_by_id:
            missing.add(fix.cve_id)
    for row in _cve_rows(session, sorted(missing)):
        index.cve_by_id[row[0]] = _entry(row)
