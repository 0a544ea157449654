"""Known-vulnerable and end-of-life software, matched offline.

``vigie.vulns.store`` imports the data files (NVD, CISA KEV, FIRST EPSS,
endoflife.date, OSV, Debian tracker) into the database and loads the sweep's
read-only :class:`MatchIndex`; ``_index`` matches against it and ``_versions``
orders versions (both pure: the scanner imports them, never the database).
Import the store explicitly: this package's top level stays free of the database.
"""

from __future__ import annotations

from vigie.vulns._index import (
    MEMO_LIMIT,
    CveMatch,
    Installed,
    MatchIndex,
    Verdict,
    data_note,
    life_cycle,
    match,
)
from vigie.vulns._versions import PackageVersion, compare_package, compare_upstream

__all__ = [
    "MEMO_LIMIT",
    "CveMatch",
    "Installed",
    "MatchIndex",
    "PackageVersion",
    "Verdict",
    "compare_package",
    "compare_upstream",
    "data_note",
    "life_cycle",
    "match",
]
