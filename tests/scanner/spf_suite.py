"""The openspf.org RFC 7208 test suite (release 2014.04, tests/data/spf) as vigie lookups.

The suite (written by the SPF council, shipped with pyspf; BSD licence in
rfc7208-tests.LICENSE) gives, per scenario, a zone and the result each
(client address, MAIL FROM, HELO) must get. This driver turns the zone
into the lookup function ``evaluate_spf`` takes, following the suite's own
driver conventions: SPF-type records stand in for TXT when a name has no
TXT, ``TIMEOUT`` is a resolver timeout, names under ``error.`` time out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vigie.scanner.resolve import Answer, Lookup

SUITE = Path(__file__).parent.parent / "data" / "spf" / "rfc7208-tests.yml"


@dataclass(frozen=True)
class SuiteCase:
    scenario: str
    name: str
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]  # any of these is right
    spec: str
    zone: dict[str, list[tuple[str, Any]]]


def _records(entries: list[Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
    for entry in entries:
        if entry == "TIMEOUT":
            rows.append(("TIMEOUT", None))
            continue
        for rdtype, value in entry.items():
            if rdtype in ("TXT", "SPF") and isinstance(value, str):
                value = [value]
            if value == ["NONE"]:
                continue
            rows.append((rdtype, value))
            if rdtype == "SPF" and not has_txt:
                rows.append(("TXT", value))
    return rows


def load_cases() -> list[SuiteCase]:
    cases: list[SuiteCase] = []
    with SUITE.open(encoding="utf-8") as handle:
        for scenario in yaml.safe_load_all(handle):
            if not scenario:
                continue
            zone = {name.lower(): _records(rows) for name, rows in scenario["zonedata"].items()}
            for name, test in scenario["tests"].items():
                result = test["result"]
                results = tuple(result) if isinstance(result, list) else (result,)
                cases.append(
                    SuiteCase(
                        scenario["description"],
                        name,
                        str(test["host"]),
                        str(test.get("mailfrom", "")),
                        str(test.get("helo", "")),
                        results,
                        str(test.get("spec", "")),
                        zone,
                    )
                )
    return cases


def _text(rdtype: str, value: Any) -> str:
    if rdtype in ("TXT", "SPF"):
        return "".join(value)
    if rdtype == "MX":
        return f"{value[0]} {value[1]}."
    if rdtype == "AAAA":
        return str(ipaddress.ip_address(value))
    return str(value)


def lookup_function(
    zone: dict[str, list[tuple[str, Any]]],
) -> Callable[[str, str], Awaitable[Lookup]]:
    """The suite's zone answered the way ``Resolver.lookup`` answers."""

    async def lookup(name: str, rdtype: str, cnames: tuple[str, ...] = ()) -> Lookup:
        key = name.lower().rstrip(".")
        labels = key.split(".")
        if any(len(label) > 63 for label in labels) or "" in labels or len(key) > 253:
            return Lookup(name, rdtype, Answer.SERVFAIL, detail="not a valid DNS name")
        rows = zone.get(key)
        if rows is None:
            if key.startswith("error."):
                return Lookup(name, rdtype, Answer.TIMEOUT, detail="timeout")
            return Lookup(name, rdtype, Answer.NXDOMAIN, cnames=cnames)
        if ("TIMEOUT", None) in rows and not any(t == rdtype for t, _ in rows):
            return Lookup(name, rdtype, Answer.TIMEOUT, detail="timeout")
        if any(t == rdtype and v == "TIMEOUT" for t, v in rows):
            return Lookup(name, rdtype, Answer.TIMEOUT, detail="timeout")
        found = tuple(_text(t, v) for t, v in rows if t == rdtype)
        if found:
            return Lookup(name, rdtype, Answer.OK, records=found, cnames=cnames)
        alias = [v for t, v in rows if t == "CNAME"]
        if alias and len(cnames) < 8:
            return await lookup(str(alias[0]), rdtype, (*cnames, str(alias[0])))
        return Lookup(name, rdtype, Answer.NODATA, cnames=cnames)

    async def entry(name: str, rdtype: str) -> Lookup:
        return await lookup(name, rdtype)

    return entry
