"""Reading vulnerability data files in their publishers' formats, one record at a time.

Formats, recognised from the content (not the file name):

- NVD CVE JSON 2.0 (the API's and the yearly feeds' shape: ``vulnerabilities[].cve``
  with ``configurations[].nodes[].cpeMatch[]``), read with ``ijson`` so that a
  250,000-CVE file never sits in memory;
- CISA's Known Exploited Vulnerabilities catalogue (JSON: ``catalogVersion``,
  ``vulnerabilities[].cveID``);
- FIRST EPSS CSV (``#model_version:...,score_date:...`` then ``cve,epss,percentile``);
- endoflife.date release cycles (the API's list of ``{"cycle", "eol", "latest"...}``,
  the product named by the file name; the v1 API's ``{"result": {"name", "releases"}}``;
  or an object mapping product names to such lists);
- OSV JSON (one record, a list of records, or a zip of records as osv.dev publishes
  them): Debian and Ubuntu ``affected[].package`` with ``ECOSYSTEM`` ranges;
- the Debian security tracker JSON (package -> CVE -> releases -> status, fixed_version).

Any file may be gzip-compressed. A record that does not have the shape of its
format raises :class:`~vigie.errors.VulnDataError` naming the file and the record.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

import ijson

from vigie.errors import VulnDataError


class Kind(str, Enum):
    NVD = "nvd"
    KEV = "kev"
    EPSS = "epss"
    EOL = "eol"
    OSV = "osv"
    DEBIAN = "debian"


CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,19}$")
_CVE_LIKE = re.compile(r"^(CVE-\d{4}-\d+|TEMP-[\w-]+)$")
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
SUMMARY_CHARS = 300

# Debian code names -> release numbers (the tracker keys releases by code name).
DEBIAN_RELEASES = {
    "buzz": "1.1",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "sid": "sid",
}


# --- records ----------------------------------------------------------------------


@dataclass
class CveRecord:
    cve_id: str
    published: str
    last_modified: str
    cvss: float | None
    cvss_version: str
    summary: str
    configurations: list[Any]  # compact: see compact_configurations
    products: set[tuple[str, str]]  # (vendor, product) named vulnerable


@dataclass
class KevRecord:
    cve_id: str
    date_added: str
    due_date: str
    name: str
    ransomware: str


@dataclass
class EpssRecord:
    cve_id: str
    epss: float
    percentile: float


@dataclass
class EolRecord:
    product: str
    cycle: str
    eol: str
    latest: str
    release_date: str


@dataclass
class DistroFixRecord:
    distro: str
    release: str
    package: str
    cve_id: str
    fixed: str | None
    status: str


Record = CveRecord | KevRecord | EpssRecord | EolRecord | DistroFixRecord


@dataclass
class DataFile:
    """A file being read: its kind, its data date once known, its records (lazily)."""

    path: Path
    kind: Kind
    data_date: datetime | None = None
    notes: list[str] = field(default_factory=list)


# --- opening and detection --------------------------------------------------------


def _open_binary(path: Path) -> IO[bytes]:
    raw = path.open("rb")
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    raw.seek(0)
    return raw


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == _ZIP_MAGIC


def _zip_members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(n for n in archive.namelist() if n.lower().endswith(".json"))


def _first_events(stream: IO[bytes], count: int = 400) -> list[tuple[str, str, Any]]:
    events: list[tuple[str, str, Any]] = []
    try:
        for event in ijson.parse(stream):
            events.append(event)
            if len(events) >= count:
                break
    except ijson.JSONError:
        pass  # the detection uses what could be read; the real parse names the error
    return events


def detect(path: Path) -> Kind:
    """The format of ``path``, from its first bytes; VulnDataError if none fits."""
    if _is_zip(path):
        members = _zip_members(path)
        if not members:
            raise VulnDataError(f"{path}: a zip archive without JSON files")
        with zipfile.ZipFile(path) as archive, archive.open(members[0]) as member:
            kind = _detect_json(_first_events(member))  # type: ignore[arg-type]
        if kind is not Kind.OSV:
            raise VulnDataError(f"{path}: only OSV records are read from zip archives")
        return kind
    with _open_binary(path) as stream:
        head = stream.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"#model_version") or text.lower().startswith(b"cve,epss"):
        return Kind.EPSS
    if text[:1] not in (b"{", b"["):
        raise VulnDataError(f"{path}: not a vulnerability data file vigie knows (JSON or EPSS CSV)")
    with _open_binary(path) as stream:
        kind = _detect_json(_first_events(stream))
    if kind is None:
        raise VulnDataError(
            f"{path}: JSON, but not NVD CVE 2.0, CISA KEV, endoflife.date, OSV or the "
            "Debian security tracker"
        )
    return kind


def _detect_json(events: list[tuple[str, str, Any]]) -> Kind | None:
    top_keys = [value for prefix, event, value in events if event == "map_key" and prefix == ""]
    keys = set(top_keys)
    if not events:
        return None
    if events[0][1] == "start_array":
        item_keys = {v for p, e, v in events if e == "map_key" and p == "item"}
        if "cycle" in item_keys:
            return Kind.EOL
        if "id" in item_keys and ("affected" in item_keys or "modified" in item_keys):
            return Kind.OSV
        return None
    if keys & {"catalogVersion", "dateReleased"}:
        return Kind.KEV
    if keys & {"resultsPerPage", "totalResults", "startIndex"} or any(
        p == "vulnerabilities.item" and e == "map_key" and v == "cve" for p, e, v in events
    ):
        return Kind.NVD
    if any(p == "vulnerabilities.item" and e == "map_key" and v == "cveID" for p, e, v in events):
        return Kind.KEV
    if "result" in keys and "schema_version" in keys:
        return Kind.EOL
    if "id" in keys and keys & {"affected", "modified", "schema_version"}:
        return Kind.OSV
    if top_keys:
        first = top_keys[0]
        second_level = [v for p, e, v in events if e == "map_key" and p == first]
        if second_level and _CVE_LIKE.match(second_level[0]):
            return Kind.DEBIAN
        if any(p == f"{first}.item" and e == "map_key" and v == "cycle" for p, e, v in events):
            return Kind.EOL
    return None


def read(path: Path) -> tuple[DataFile, Iterator[Record]]:
    """The file's kind and its records; the data date is set once the records are read."""
    kind = detect(path)
    data = DataFile(path, kind)
    readers: dict[Kind, Callable[[DataFile], Iterator[Record]]] = {
        Kind.NVD: _read_nvd,
        Kind.KEV: _read_kev,
        Kind.EPSS: _read_epss,
        Kind.EOL: _read_eol,
        Kind.OSV: _read_osv,
        Kind.DEBIAN: _read_debian,
    }
    return data, readers[kind](data)


def _bad(data: DataFile, where: str, problem: str) -> VulnDataError:
    return VulnDataError(f"{data.path}: {where}: {problem}; nothing was imported from this file")


def _json_error(data: DataFile, where: str, exc: Exception) -> VulnDataError:
    return _bad(data, where, f"malformed JSON ({exc})")


def _parse_datetime(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _later(current: datetime | None, text: str) -> datetime | None:
    parsed = _parse_datetime(text)
    if parsed is None:
        return current
    return parsed if current is None or parsed > current else current


def _file_date(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


# --- NVD CVE JSON 2.0 ---------------------------------------------------------------


def _read_nvd(data: DataFile) -> Iterator[CveRecord]:
    index = -1
    cve_id = ""
    try:
        # The header (format, timestamp) comes before the records in NVD files.
        with _open_binary(data.path) as stream:
            for prefix, event, value in ijson.parse(stream):
                if prefix == "timestamp" and event == "string":
                    data.data_date = _parse_datetime(value)
                elif prefix == "format" and event == "string" and value != "NVD_CVE":
                    raise _bad(data, "header", f"format is {value!r}, not NVD_CVE")
                elif prefix == "vulnerabilities" and event == "start_array":
                    break
        # Records are built by ijson's C backend, one at a time.
        with _open_binary(data.path) as stream:
            for index, item in enumerate(
                ijson.items(stream, "vulnerabilities.item", use_float=True)
            ):
                record = _nvd_record(data, index, item)
                cve_id = record.cve_id
                yield record
    except ijson.JSONError as exc:
        where = f"record {index + 1} (after {cve_id})" if cve_id else f"record {index + 1}"
        raise _json_error(data, where, exc) from None
    if index < 0:
        raise _bad(data, "vulnerabilities", "no CVE record")


def _nvd_record(data: DataFile, index: int, item: Any) -> CveRecord:
    cve = item.get("cve") if isinstance(item, dict) else None
    if not isinstance(cve, dict):
        raise _bad(data, f"record {index}", "no 'cve' object")
    cve_id = cve.get("id")
    where = f"record {index} ({cve_id})"
    if not isinstance(cve_id, str) or not CVE_ID.match(cve_id):
        raise _bad(data, f"record {index}", f"'id' {cve_id!r} is not a CVE ID")
    for key in ("published", "lastModified"):
        if not isinstance(cve.get(key), str):
            raise _bad(data, where, f"'{key}' is missing")
    configurations, products = compact_configurations(cve.get("configurations", []), where, data)
    score, version = _cvss(cve.get("metrics") or {})
    summary = ""
    for description in cve.get("descriptions") or []:
        if isinstance(description, dict) and description.get("lang") == "en":
            summary = str(description.get("value", ""))[:SUMMARY_CHARS]
            break
    return CveRecord(
        cve_id,
        cve["published"],
        cve["lastModified"],
        score,
        version,
        summary,
        configurations,
        products,
    )


def _cvss(metrics: dict[str, Any]) -> tuple[float | None, str]:
    """The NVD's base score: CVSS 4.0, 3.1, 3.0, then 2.0; the Primary source first."""
    for key, version in (
        ("cvssMetricV40", "4.0"),
        ("cvssMetricV31", "3.1"),
        ("cvssMetricV30", "3.0"),
        ("cvssMetricV2", "2.0"),
    ):
        entries = [e for e in metrics.get(key) or [] if isinstance(e, dict)]
        entries.sort(key=lambda e: e.get("type") != "Primary")
        for entry in entries:
            score = (entry.get("cvssData") or {}).get("baseScore")
            if isinstance(score, int | float):
                return float(score), version
    return None, ""


def compact_configurations(
    configurations: Any, where: str, data: DataFile
) -> tuple[list[Any], set[tuple[str, str]]]:
    """NVD configurations as ``[[op, negate, [[op, negate, [match...]]...]]...]``.

    A match is ``[criteria, vulnerable, startIncl, startExcl, endIncl, endExcl]``.
    """
    if not isinstance(configurations, list):
        raise _bad(data, where, "'configurations' is not a list")
    compact: list[Any] = []
    products: set[tuple[str, str]] = set()
    for configuration in configurations:
        nodes = configuration.get("nodes") if isinstance(configuration, dict) else None
        if not isinstance(nodes, list):
            raise _bad(data, where, "a configuration without 'nodes'")
        compact_nodes = []
        for node in nodes:
            if not isinstance(node, dict) or node.get("operator") not in ("AND", "OR"):
                raise _bad(data, where, "a node without operator AND/OR")
            matches = node.get("cpeMatch")
            if not isinstance(matches, list):
                raise _bad(data, where, "a node without 'cpeMatch'")
            compact_matches = []
            for match in matches:
                criteria = match.get("criteria") if isinstance(match, dict) else None
                if not isinstance(criteria, str) or not criteria.startswith("cpe:2.3:"):
                    raise _bad(data, where, f"cpeMatch criteria {criteria!r} is not a CPE 2.3 name")
                vulnerable = match.get("vulnerable")
                if not isinstance(vulnerable, bool):
                    raise _bad(data, where, f"cpeMatch {criteria} has no boolean 'vulnerable'")
                parts = split_cpe(criteria)
                if len(parts) < 6:
                    raise _bad(data, where, f"cpeMatch criteria {criteria!r} is truncated")
                if vulnerable:
                    products.add((parts[3], parts[4]))
                compact_matches.append(
                    [
                        criteria,
                        vulnerable,
                        str(match.get("versionStartIncluding") or ""),
                        str(match.get("versionStartExcluding") or ""),
                        str(match.get("versionEndIncluding") or ""),
                        str(match.get("versionEndExcluding") or ""),
                    ]
                )
            compact_nodes.append(
                [node["operator"], bool(node.get("negate", False)), compact_matches]
            )
        compact.append(
            [
                configuration.get("operator") or "OR",
                bool(configuration.get("negate", False)),
                compact_nodes,
            ]
        )
    return compact, products


_CPE_SPLIT = re.compile(r"(?<!\\):")


def split_cpe(name: str) -> list[str]:
    """The components of a CPE 2.3 formatted string, unescaped and lower-cased.

    ``cpe:2.3:a:joomla:joomla\\!:4.0.0:*:...`` -> ``["cpe", "2.3", "a", "joomla",
    "joomla!", "4.0.0", "*", ...]`` (CPE 2.3 §6.2: ``\\`` quotes the next character).
    """
    return [re.sub(r"\\(.)", r"\1", part).lower() for part in _CPE_SPLIT.split(name)]


# --- CISA KEV -------------------------------------------------------------------------


def _read_kev(data: DataFile) -> Iterator[KevRecord]:
    index = -1
    try:
        with _open_binary(data.path) as stream:
            for prefix, event, value in ijson.parse(stream):
                if prefix == "dateReleased" and event == "string":
                    data.data_date = _parse_datetime(value)
                    break
        with _open_binary(data.path) as stream:
            for index, item in enumerate(ijson.items(stream, "vulnerabilities.item")):
                cve_id = item.get("cveID") if isinstance(item, dict) else None
                if not isinstance(cve_id, str) or not CVE_ID.match(cve_id):
                    raise _bad(data, f"record {index}", f"'cveID' {cve_id!r} is not a CVE ID")
                for key in ("dateAdded", "dueDate", "vulnerabilityName"):
                    if not isinstance(item.get(key), str):
                        raise _bad(data, f"record {index} ({cve_id})", f"'{key}' is missing")
                yield KevRecord(
                    cve_id,
                    item["dateAdded"],
                    item["dueDate"],
                    item["vulnerabilityName"][:200],
                    str(item.get("knownRansomwareCampaignUse", "")),
                )
    except ijson.JSONError as exc:
        raise _json_error(data, f"record {index + 1}", exc) from None


# --- FIRST EPSS -------------------------------------------------------------------------

_EPSS_COMMENT = re.compile(r"score_date:\s*([0-9T:+\-.Z]+)")


def _read_epss(data: DataFile) -> Iterator[EpssRecord]:
    with _open_binary(data.path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        first = text.readline()
        line_number = 1
        if first.startswith("#"):
            found = _EPSS_COMMENT.search(first)
            if found:
                data.data_date = _parse_datetime(found.group(1))
            header_line = text.readline()
            line_number = 2
        else:
            header_line = first
        header = [h.strip().lower() for h in header_line.split(",")]
        if header[:3] != ["cve", "epss", "percentile"]:
            raise _bad(data, f"line {line_number}", "the header is not 'cve,epss,percentile'")
        for row in csv.reader(text):
            line_number += 1
            if not row:
                continue
            try:
                cve_id, epss, percentile = row[0].strip(), float(row[1]), float(row[2])
            except (IndexError, ValueError):
                problem = f"not 'CVE,score,percentile': {row!r}"
                raise _bad(data, f"line {line_number}", problem) from None
            if not CVE_ID.match(cve_id) or not (0 <= epss <= 1 and 0 <= percentile <= 1):
                raise _bad(data, f"line {line_number} ({cve_id})", "invalid CVE ID or score")
            yield EpssRecord(cve_id, epss, percentile)


# --- endoflife.date -----------------------------------------------------------------------


def _read_eol(data: DataFile) -> Iterator[EolRecord]:
    data.data_date = _file_date(data.path)
    data.notes.append("endoflife.date files carry no date: the file's time is used")
    try:
        with _open_binary(data.path) as stream:
            document = _load_small_json(stream)
    except ijson.JSONError as exc:
        raise _json_error(data, "document", exc) from None
    if isinstance(document, list):
        products: dict[str, Any] = {_product_from_name(data.path): document}
    elif isinstance(document, dict) and isinstance(document.get("result"), dict):
        result = document["result"]
        products = {str(result.get("name", "")): result.get("releases")}
    elif isinstance(document, dict):
        products = document
    else:
        raise _bad(data, "document", "not a list of release cycles")
    for product, cycles in products.items():
        if not product or not isinstance(cycles, list):
            raise _bad(data, f"product {product!r}", "no list of release cycles")
        for index, cycle in enumerate(cycles):
            yield _eol_record(data, product, index, cycle)


def _load_small_json(stream: IO[bytes]) -> Any:
    """A whole small JSON document (EOL files are a few kB) through ijson."""
    return next(ijson.items(stream, ""), None)


def _product_from_name(path: Path) -> str:
    """The product an endoflife.date file is about: its name (``nginx.json``), or the
    longest product vigie knows that the name contains (``eol-nginx-2026-12-01.json``)."""
    from vigie.vulns.products import all_eol_names

    name = path.name.lower()
    for suffix in (".gz", ".json"):
        name = name.removesuffix(suffix)
    known = all_eol_names()
    if name in known:
        return name
    words = re.split(r"[^a-z0-9.]+", name)
    found = [k for k in known if k in name and all(w in words for w in re.split(r"[^a-z0-9.]+", k))]
    return max(found, key=len) if found else name


def _eol_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict):  # v1 API: {"name": "1.25.4", "date": ...}
        return str(value.get("name", ""))
    return str(value)


def _eol_record(data: DataFile, product: str, index: int, cycle: Any) -> EolRecord:
    where = f"{product} release {index}"
    if not isinstance(cycle, dict):
        raise _bad(data, where, "not an object")
    name = cycle.get("cycle", cycle.get("name"))
    if not isinstance(name, str | int | float) or isinstance(name, bool):
        raise _bad(data, where, "no 'cycle'")
    eol = cycle.get("eol", cycle.get("eolFrom"))
    if "isEol" in cycle and eol is None:
        eol = bool(cycle["isEol"])
    if eol is not None and not isinstance(eol, bool | str):
        raise _bad(data, f"{product} {name}", "'eol' is neither a date nor a boolean")
    if isinstance(eol, str) and _parse_datetime(eol) is None:
        raise _bad(data, f"{product} {name}", f"'eol' {eol!r} is not a date")
    return EolRecord(
        product.lower(),
        str(name),
        _eol_text(eol),
        _eol_text(cycle.get("latest")),
        _eol_text(cycle.get("releaseDate", cycle.get("releaseDate"))),
    )


# --- OSV ------------------------------------------------------------------------------------

_OSV_ECOSYSTEM = re.compile(r"^(Debian|Ubuntu)(?::(.+))?$", re.IGNORECASE)


def _read_osv(data: DataFile) -> Iterator[DistroFixRecord]:
    if _is_zip(data.path):
        with zipfile.ZipFile(data.path) as archive:
            for name in _zip_members(data.path):
                with archive.open(name) as member:
                    yield from _osv_documents(data, member, name)  # type: ignore[arg-type]
        return
    with _open_binary(data.path) as stream:
        yield from _osv_documents(data, stream, "")


def _osv_documents(data: DataFile, stream: IO[bytes], member: str) -> Iterator[DistroFixRecord]:
    head = stream.read(1)
    while head.isspace():
        head = stream.read(1)
    rest = io.BufferedReader(_Prefixed(head, stream))  # type: ignore[arg-type]
    label = f"{member} " if member else ""
    index = 0
    try:
        items = ijson.items(rest, "item") if head == b"[" else ijson.items(rest, "")
        for index, record in enumerate(items):
            yield from _osv_record(data, record, f"{label}record {index}")
    except ijson.JSONError as exc:
        raise _json_error(data, f"{label}record {index}", exc) from None


class _Prefixed(io.RawIOBase):
    """A stream with a few bytes already read put back in front."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        chunk = self._stream.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


_CVE_IN = re.compile(r"CVE-\d{4}-\d{4,19}")


def _osv_cves(record: dict[str, Any]) -> list[str]:
    """The CVEs an OSV record is about: its ID (``DEBIAN-CVE-2024-6387`` too), aliases,
    upstream and related IDs."""
    names = [record.get("id", "")]
    for key in ("aliases", "upstream", "related"):
        names += [n for n in record.get(key) or [] if isinstance(n, str)]
    return sorted(
        {m.group(0) for n in names if isinstance(n, str) for m in [_CVE_IN.search(n)] if m}
    )


def _osv_record(data: DataFile, record: Any, where: str) -> Iterator[DistroFixRecord]:
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise _bad(data, where, "an OSV record needs a string 'id'")
    where = f"{where} ({record['id']})"
    if not isinstance(record.get("modified"), str):
        raise _bad(data, where, "'modified' is missing")
    data.data_date = _later(data.data_date, record["modified"])
    cves = _osv_cves(record)
    for affected in record.get("affected") or []:
        package = affected.get("package") if isinstance(affected, dict) else None
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            raise _bad(data, where, "an 'affected' entry without package name")
        ecosystem = _OSV_ECOSYSTEM.match(str(package.get("ecosystem", "")))
        if ecosystem is None:
            continue  # other ecosystems (PyPI, npm...) say nothing of servers' packages
        distro = ecosystem.group(1).lower()
        # "Debian:12", "Ubuntu:22.04:LTS", "Ubuntu:Pro:18.04:LTS": the release number.
        numbers = [
            p for p in (ecosystem.group(2) or "").split(":") if re.match(r"^\d+(\.\d+)?$", p)
        ]
        release = numbers[0] if numbers else ""
        fixed: str | None = None
        status = "open"
        for version_range in affected.get("ranges") or []:
            if not isinstance(version_range, dict) or not isinstance(
                version_range.get("events"), list
            ):
                raise _bad(data, where, "a range without 'events'")
            if version_range.get("type") != "ECOSYSTEM":
                continue
            for event in version_range["events"]:
                if isinstance(event, dict) and isinstance(event.get("fixed"), str):
                    fixed, status = event["fixed"], "resolved"
        for cve_id in cves:
            yield DistroFixRecord(distro, release, package["name"], cve_id, fixed, status)


# --- Debian security tracker ------------------------------------------------------------------


def _read_debian(data: DataFile) -> Iterator[DistroFixRecord]:
    data.data_date = _file_date(data.path)
    data.notes.append("the Debian tracker's JSON carries no date: the file's time is used")
    package = ""
    try:
        with _open_binary(data.path) as stream:
            for package, issues in ijson.kvitems(stream, ""):
                if not isinstance(issues, dict):
                    raise _bad(data, f"package {package}", "not an object of CVEs")
                for cve_id, issue in issues.items():
                    if not CVE_ID.match(cve_id):
                        continue  # TEMP- entries have no CVE to match
                    releases = issue.get("releases") if isinstance(issue, dict) else None
                    if not isinstance(releases, dict):
                        raise _bad(data, f"{package} {cve_id}", "no 'releases'")
                    for code_name, verdict in releases.items():
                        if not isinstance(verdict, dict) or "status" not in verdict:
                            raise _bad(data, f"{package} {cve_id} {code_name}", "no 'status'")
                        fixed = verdict.get("fixed_version")
                        yield DistroFixRecord(
                            "debian",
                            DEBIAN_RELEASES.get(code_name) or code_name,
                            package,
                            cve_id,
                            str(fixed) if fixed else None,
                            str(verdict["status"]),
                        )
    except ijson.JSONError as exc:
        raise _json_error(data, f"package after {package!r}", exc) from None
