"""The read-only match index a sweep holds in memory, and the matching itself: pure.

The sweep loads the index once from the database (``vigie.vulns.load_match_index``)
for the products vigie can identify and hands it to the scanner, which never
reads the database. Matching follows the NVD's applicability statements (NVD CVE
API 2.0, ``configurations``: a configuration is a list of nodes joined by its
operator; a node is a list of CPE match criteria joined by its operator; either
may be negated; a criterion with ``vulnerable: false`` names the platform the
vulnerable product runs on, never a vulnerable product itself), and on a
distribution package the distribution's own verdict decides (the version it
fixed the CVE in, per release).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from vigie.vulns._formats import split_cpe
from vigie.vulns._versions import PackageVersion, compare_upstream, installed_vs_fix, upstream_of


@dataclass(frozen=True)
class CveEntry:
    cve_id: str
    cvss: float | None
    cvss_version: str
    summary: str
    configurations: tuple[Any, ...] = ()


@dataclass(frozen=True)
class KevEntry:
    date_added: str
    due_date: str
    name: str
    ransomware: str


@dataclass(frozen=True)
class DistroVerdict:
    release: str
    fixed: str | None
    status: str


@dataclass(frozen=True)
class EolCycle:
    cycle: str
    eol: str  # "true", "false", "" or an ISO date
    latest: str
    release_date: str


@dataclass(frozen=True)
class SourceInfo:
    kind: str
    name: str
    data_date: datetime | None
    imported_at: datetime
    records: int


@dataclass
class MatchIndex:
    """What a sweep matches identified software against (read-only once built)."""

    cves: dict[tuple[str, str], list[CveEntry]] = field(default_factory=dict)
    cve_by_id: dict[str, CveEntry] = field(default_factory=dict)
    kev: dict[str, KevEntry] = field(default_factory=dict)
    epss: dict[str, tuple[float, float]] = field(default_factory=dict)
    # (distro, package) -> CVE -> the distribution's verdict per release
    distro: dict[tuple[str, str], dict[str, list[DistroVerdict]]] = field(default_factory=dict)
    eol: dict[str, list[EolCycle]] = field(default_factory=dict)
    sources: list[SourceInfo] = field(default_factory=list)
    # Verdicts already worked out in this sweep: hosts share a few dozen versions.
    memo: dict[Installed, list[CveMatch]] = field(default_factory=dict, repr=False)
    # The same for what the scanner builds on them (its findings' evidence).
    derived: dict[object, object] = field(default_factory=dict, repr=False)

    @property
    def empty(self) -> bool:
        return not self.sources

    def data_dates(self) -> dict[str, str]:
        """The date of each kind of data loaded (its oldest file), for evidence."""
        dates: dict[str, str] = {}
        for source in self.sources:
            when = (source.data_date or source.imported_at).date().isoformat()
            dates[source.kind] = min(dates.get(source.kind, when), when)
        return dates

    def stale_note(self, now: datetime, max_age_days: int) -> str:
        """Why the data is too old to trust, or '' (``vulns.max_age_days``)."""
        return data_note(self.sources, now, max_age_days, vuln_checks=False)


NO_DATA_NOTE = "no vulnerability data imported: vuln checks were skipped ('vigie vulns import')"


def data_note(
    sources: Sequence[SourceInfo], now: datetime, max_age_days: int, *, vuln_checks: bool
) -> str:
    """What a sweep's summary says of the data it matched against, or ''.

    Nothing imported while vuln checks run: they were skipped; a file older than
    ``vulns.max_age_days``: how old, which one, and how to refresh it.
    """
    if not sources:
        return NO_DATA_NOTE if vuln_checks else ""
    limit = now - timedelta(days=max_age_days)
    old = [s for s in sources if (s.data_date or s.imported_at) < limit]
    if not old:
        return ""
    oldest = min(old, key=lambda s: s.data_date or s.imported_at)
    age = (now - (oldest.data_date or oldest.imported_at)).days
    return (
        f"vulnerability data is {age} days old ({oldest.kind} {oldest.name}; "
        f"limit vulns.max_age_days = {max_age_days}): import fresh files with "
        "'vigie vulns import'"
    )


# --- what is installed --------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """One identified product of a host, as the matcher needs it."""

    cpes: tuple[tuple[str, str], ...]  # (vendor, product) names the NVD uses for it
    version: str
    package: PackageVersion | None = None  # a distribution package, when the banner says so
    packages: tuple[str, ...] = ()  # its source package names in Debian/Ubuntu
    platforms: frozenset[tuple[str, str]] = frozenset()  # known OS CPEs (vendor, product)


class Verdict(str, Enum):
    AFFECTED = "affected"
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class CveMatch:
    cve_id: str
    verdict: Verdict
    cvss: float | None
    fixed: str  # the first fixed version (distribution package or upstream), or ""
    fixed_in: str  # "debian 12", "upstream"...
    kev: KevEntry | None
    epss: tuple[float, float] | None
    reason: str = ""


class Tri(Enum):
    """Three-valued logic: a platform the scan cannot see is neither true nor false."""

    TRUE = 1
    FALSE = 0
    UNKNOWN = 2


def _not(value: Tri) -> Tri:
    return {Tri.TRUE: Tri.FALSE, Tri.FALSE: Tri.TRUE}.get(value, Tri.UNKNOWN)


def _join(values: Iterable[Tri], operator: str) -> Tri:
    values = list(values)
    if operator == "AND":
        if Tri.FALSE in values or not values:
            return Tri.FALSE
        return Tri.UNKNOWN if Tri.UNKNOWN in values else Tri.TRUE
    if Tri.TRUE in values:
        return Tri.TRUE
    return Tri.UNKNOWN if Tri.UNKNOWN in values else Tri.FALSE


@functools.lru_cache(maxsize=32_768)
def _cpe(criteria: str) -> tuple[str, str, str, str, str]:
    parts = split_cpe(criteria) + ["*"] * 13
    return parts[2], parts[3], parts[4], parts[5], parts[6]


_UPDATE_LIKE = frozenset("abcdefghijklmnopqrstuvwxyz")


def version_matches(version: str, match: list[Any]) -> bool:
    """Whether ``version`` is one a CPE match criterion names (CPE 2.3 name matching,
    NIST IR 7696 §6: ANY ``*`` matches every value, NA ``-`` none; plus the NVD's
    versionStart/End Including/Excluding bounds)."""
    criteria, _, start_incl, start_excl, end_incl, end_excl = match
    _, _, _, cpe_version, cpe_update = _cpe(criteria)
    if cpe_version not in ("*", ""):
        if cpe_version == "-" or not version:
            return False
        wanted = cpe_version if cpe_update in ("*", "-", "") else cpe_version + cpe_update
        if compare_upstream(version, wanted) == 0:
            return True
        # "9.2p1" is an update of "9.2" when the criterion leaves the update open.
        rest = (
            version.lower()[len(cpe_version) :] if version.lower().startswith(cpe_version) else ""
        )
        return cpe_update in ("*", "") and bool(rest) and rest[0] in _UPDATE_LIKE
    if not version:
        return not (start_incl or start_excl or end_incl or end_excl)
    if start_incl and compare_upstream(version, start_incl) < 0:
        return False
    if start_excl and compare_upstream(version, start_excl) <= 0:
        return False
    if end_incl and compare_upstream(version, end_incl) > 0:
        return False
    return not (end_excl and compare_upstream(version, end_excl) >= 0)


def _criterion(match: list[Any], installed: Installed) -> Tri:
    part, vendor, product, _, _ = _cpe(match[0])
    if (vendor, product) in installed.cpes:
        return Tri.TRUE if version_matches(installed.version, match) else Tri.FALSE
    if match[1]:
        return Tri.FALSE  # another vulnerable product: not this one
    if part == "o" and installed.platforms:
        return Tri.TRUE if (vendor, product) in installed.platforms else Tri.FALSE
    return Tri.UNKNOWN  # a platform (OS, hardware) the scan cannot see


def applicable(configurations: Iterable[Any], installed: Installed) -> tuple[bool, str]:
    """Whether a CVE's configurations make ``installed`` vulnerable, and its upstream fix.

    True only through a criterion that names this product as vulnerable; a
    platform-only criterion (``vulnerable: false``) can rule a configuration out
    (a known OS that is not the one named) but never rules one in.
    """
    for operator, negate, nodes in configurations:
        results = []
        named = False
        fix = ""
        for node_operator, node_negate, matches in nodes:
            values = []
            for match in matches:
                value = _criterion(match, installed)
                values.append(value)
                if value is Tri.TRUE and match[1] and _cpe(match[0])[1:3] in installed.cpes:
                    named = True
                    fix = fix or match[5] or (f"> {match[4]}" if match[4] else "")
            result = _join(values, node_operator)
            results.append(_not(result) if node_negate else result)
        outcome = _join(results, operator)
        if negate:
            outcome = _not(outcome)
        if named and outcome is not Tri.FALSE:
            return True, fix
    return False, ""


def _distro_decision(
    index: MatchIndex, installed: Installed, cve_id: str
) -> tuple[Verdict | None, str, str, str]:
    """(verdict or None when fixed, fixed version, where, reason) from distribution data."""
    package = installed.package
    assert package is not None
    verdicts: list[DistroVerdict] = []
    for name in installed.packages:
        for verdict in index.distro.get((package.distro, name), {}).get(cve_id, []):
            if not package.release or verdict.release == package.release:
                verdicts.append(verdict)
    if not verdicts:
        return Verdict.UNCONFIRMED, "", "", f"no {package.distro} data for this CVE and package"
    if not package.release:
        # The release that ships this upstream version is the one whose fix has it too.
        same = [
            v
            for v in verdicts
            if v.fixed and v.fixed != "0" and upstream_of(v.fixed) == package.upstream
        ]
        verdicts = same or verdicts
    outcomes: set[str] = set()
    fixed_versions = []
    for verdict in verdicts:
        if verdict.fixed is None:
            outcomes.add("vulnerable" if verdict.status == "open" else "unknown")
            continue
        if verdict.fixed == "0" or verdict.status == "not-affected":
            outcomes.add("fixed")
            continue
        order = installed_vs_fix(package, verdict.fixed)
        fixed_versions.append(verdict)
        outcomes.add("unknown" if order is None else "vulnerable" if order < 0 else "fixed")
    where = f"{package.distro} {package.release or '/'.join(sorted({v.release for v in verdicts}))}"
    fixed = fixed_versions[0].fixed or "" if fixed_versions else ""
    if outcomes == {"fixed"}:
        return None, fixed, where, "fixed"
    if outcomes == {"vulnerable"}:
        return Verdict.AFFECTED, fixed, where, f"older than the {where} fix"
    return Verdict.UNCONFIRMED, fixed, where, f"the {where} data does not settle this revision"


MEMO_LIMIT = 50_000


def match(index: MatchIndex, installed: Installed) -> list[CveMatch]:
    """Every CVE that affects ``installed`` (or may: ``UNCONFIRMED``), by CVE ID.

    Remembered per sweep: the same product, version and platforms get the same answer.
    """
    known = index.memo.get(installed)
    if known is not None:
        return known
    found = _match(index, installed)
    if len(index.memo) < MEMO_LIMIT:
        index.memo[installed] = found
    return found


def _match(index: MatchIndex, installed: Installed) -> list[CveMatch]:
    found: dict[str, CveMatch] = {}
    seen: set[str] = set()
    for key in installed.cpes:
        for entry in index.cves.get(key, ()):
            if entry.cve_id in seen:
                continue
            seen.add(entry.cve_id)
            hit, upstream_fix = applicable(entry.configurations, installed)
            if not hit:
                continue
            verdict: Verdict | None = Verdict.AFFECTED
            fixed, fixed_in, reason = upstream_fix, "upstream", "version in the NVD range"
            if installed.package is not None:
                verdict, distro_fix, where, reason = _distro_decision(
                    index, installed, entry.cve_id
                )
                if distro_fix:
                    fixed, fixed_in = distro_fix, where
            if verdict is None:
                continue
            found[entry.cve_id] = CveMatch(
                entry.cve_id,
                verdict,
                entry.cvss,
                fixed,
                fixed_in,
                index.kev.get(entry.cve_id),
                index.epss.get(entry.cve_id),
                reason,
            )
    if installed.package is not None:
        _distro_only(index, installed, found)
    return sorted(found.values(), key=lambda m: m.cve_id)


def _names_product(entry: CveEntry, installed: Installed) -> bool:
    return any(
        _cpe(match[0])[1:3] in installed.cpes
        for _, _, nodes in entry.configurations
        for _, _, matches in nodes
        for match in matches
    )


def _distro_only(index: MatchIndex, installed: Installed, found: dict[str, CveMatch]) -> None:
    """CVEs the distribution data says this package revision still has, that the NVD
    data does not rule on for this product (no record, or one naming other products)."""
    package = installed.package
    assert package is not None
    for name in installed.packages:
        for cve_id in index.distro.get((package.distro, name), {}):
            entry = index.cve_by_id.get(cve_id)
            if cve_id in found or (entry is not None and _names_product(entry, installed)):
                continue
            verdict, fixed, where, reason = _distro_decision(index, installed, cve_id)
            if verdict is not Verdict.AFFECTED:
                continue
            found[cve_id] = CveMatch(
                cve_id,
                verdict,
                entry.cvss if entry else None,
                fixed,
                where,
                index.kev.get(cve_id),
                index.epss.get(cve_id),
                reason,
            )


# --- end of life --------------------------------------------------------------------


@dataclass(frozen=True)
class LifeCycle:
    product: str
    cycle: EolCycle
    end_of_life: bool
    outdated: bool  # older than the cycle's latest release


def cycle_of(cycles: Iterable[EolCycle], version: str) -> EolCycle | None:
    """The release cycle ``version`` belongs to: the longest cycle it starts with."""
    best: EolCycle | None = None
    lowered = version.lower()
    for cycle in cycles:
        name = cycle.cycle.lower()
        follows = lowered[len(name) : len(name) + 1] if lowered.startswith(name) else "x"
        if follows in (".", "p", "-", "") and (best is None or len(name) > len(best.cycle)):
            best = cycle
    return best


def _without_zeros(version: str) -> str:
    """``6.7.0`` -> ``6.7``: WordPress calls its first release of 6.7 both."""
    while version.endswith(".0") and version.count(".") > 1:
        version = version[:-2]
    return version


def life_cycle(
    index: MatchIndex, names: Iterable[str], version: str, today: date
) -> LifeCycle | None:
    """Where ``version`` stands in its product's release cycles (endoflife.date data)."""
    if not version:
        return None
    for name in names:
        cycle = cycle_of(index.eol.get(name, ()), version)
        if cycle is None:
            continue
        if cycle.eol == "true":
            ended = True
        elif cycle.eol in ("false", ""):
            ended = False
        else:
            try:
                ended = date.fromisoformat(cycle.eol[:10]) <= today
            except ValueError:
                ended = False
        outdated = (
            bool(cycle.latest)
            and compare_upstream(_without_zeros(version), _without_zeros(cycle.latest)) < 0
        )
        return LifeCycle(name, cycle, ended, outdated)
    return None
