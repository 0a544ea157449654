#!/usr/bin/env python3
"""Write docs/checks.md, the repository's list of check IDs, from vigie/data/checks/*.toml.

.venv/bin/python scripts/generate_checks_doc.py          # rewrite docs/checks.md
.venv/bin/python scripts/generate_checks_doc.py --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vigie.catalogue import CATALOGUE  # noqa: E402
from vigie.model import Family  # noqa: E402

TARGET = REPO / "docs" / "checks.md"

_FAMILY_HEADINGS = {
    Family.SERVICE: "Services and ports",
    Family.TLS: "TLS",
    Family.HTTP: "HTTP",
    Family.DNS: "DNS and mail domain",
    Family.MAIL: "Mail transport",
    Family.IPV6: "IPv6",
    Family.SOFTWARE: "Software",
    Family.VULN: "Known vulnerabilities",
    Family.SCAN: "Scan problems",
}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    lines = [
        "# Check catalogue",
        "",
        "Generated from `vigie/data/checks/*.toml` by `python scripts/generate_checks_doc.py`;",
        "do not edit by hand. Check IDs are a public interface: never renamed, a retired ID stays",
        "reserved. Severity scale: `info` < `low` < `medium` < `high` < `critical`; a deployment",
        "may override a default in its configuration.",
    ]
    for family in Family:
        specs = [spec for spec in CATALOGUE.values() if spec.family is family]
        if not specs:
            continue
        lines += [
            "",
            f"## {_FAMILY_HEADINGS[family]} (`{family.value}.*`)",
            "",
            "| check_id | default severity | title (en) | titre (fr) |",
            "|---|---|---|---|",
        ]
        for spec in specs:
            lines.append(
                f"| `{spec.check_id}` | {spec.severity.value} | {_cell(spec.title)} "
                f"| {_cell(spec.text('title', 'fr'))} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current != text:
            print(f"{TARGET} is stale: run scripts/generate_checks_doc.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({len(CATALOGUE)} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
