#!/usr/bin/env python3
"""Refresh vigie's translation files from the texts in the code.

    .venv/bin/python scripts/extract_messages.py reports
    .venv/bin/python scripts/extract_messages.py emails --source vigie/notify
    .venv/bin/python scripts/extract_messages.py --all --check      # CI: fail if stale

For each domain it builds the list of English msgids, then merges it into
``vigie/locale/<lang>/LC_MESSAGES/<domain>.po`` for every language other than
English: new texts are added untranslated, changed texts are matched to their
old translation and marked fuzzy (not used until a translator reviews them),
texts that disappeared are dropped. Translators then edit the ``.po`` files
(Poedit, or any text editor); nothing needs compiling.

Where the msgids come from:
The check catalogue's texts are not here: French and English stand side by side in
``vigie/data/checks/*.toml``.

Each domain's msgids come from Babel's extractors over the domain's sources (Python files
  and Jinja2 templates, see ``DOMAIN_SOURCES``). In templates, ``{% trans %}``
  blocks and ``_()``/``gettext()``/``ngettext()`` calls; in Python, calls to
  ``_()``/``N_()``/``gettext()``/``ngettext()`` with a literal text, including
  ``vigie.i18n.gettext(language, domain, "text")`` and
  ``vigie.i18n.ngettext(language, domain, "one", "many", n)``.

``--check`` writes nothing and exits 1 when a file is out of date, or has an
untranslated or fuzzy entry.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vigie.i18n import (  # noqa: E402
    EMAILS_DOMAIN,
    LANGUAGES,
    REPORTS_DOMAIN,
    SOURCE_LANGUAGE,
)

#: Where each domain's texts live, relative to the repository. Edit this table
#: when a module or template directory moves; missing paths are skipped.
DOMAIN_SOURCES: dict[str, tuple[str, ...]] = {
    REPORTS_DOMAIN: (
        "vigie/reports",
        "vigie/templates/reports",
        "vigie/grading.py",
        "vigie/export.py",
    ),
    EMAILS_DOMAIN: ("vigie/notify", "vigie/templates/emails"),
    "web": ("vigie/web", "vigie/templates/web"),
}

_TEMPLATE_METHOD = "jinja2.ext:babel_extract"
METHOD_MAP: list[tuple[str, str]] = [
    ("**.py", "python"),
    ("**.html", _TEMPLATE_METHOD),
    ("**.txt", _TEMPLATE_METHOD),
    ("**.j2", _TEMPLATE_METHOD),
    ("**.jinja", _TEMPLATE_METHOD),
    ("**.svg", _TEMPLATE_METHOD),
]
# Jinja's extractor swallows template syntax errors by default, which would
# silently drop a template's texts: make them fail the extraction instead.
_TEMPLATE_OPTIONS = {"silent": "false", "extensions": "jinja2.ext.do,jinja2.ext.loopcontrols"}

# vigie.i18n.gettext(language, domain, msgid) carries its msgid third and
# ngettext(language, domain, singular, plural, n) its texts third and fourth;
# the one- and three-argument gettext forms keep the usual positions.
KEYWORDS: dict[str, Any] = {
    **DEFAULT_KEYWORDS,
    "gettext": {1: (1,), 3: (3,)},
    "ngettext": {3: (1, 2), 5: (3, 4)},
}
COMMENT_TAGS = ("TRANSLATORS:",)

# Newer CLDR data gives French a third plural form for millions, which gettext
# tools and translators do not expect; keep the form GNU gettext has always used.
PLURAL_FORMS = {"fr": "nplurals=2; plural=(n > 1);"}
# Fixed dates keep regenerated files free of meaningless diffs.
_STABLE_DATE = datetime(2025, 1, 1, tzinfo=UTC)


def template_from_sources(domain: str, sources: Sequence[str]) -> Catalog:
    """The msgids Babel's extractors find in ``sources`` (files or directories)."""
    template = _empty_catalog(domain, locale=None)
    for filename, lineno, message, comments, context in _extract(sources):
        template.add(
            message,
            locations=[(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def _extract(
    sources: Sequence[str],
) -> Iterator[tuple[str, int, str | tuple[str, ...], list[str], str | None]]:
    options = {
        pattern: _TEMPLATE_OPTIONS for pattern, method in METHOD_MAP if method == _TEMPLATE_METHOD
    }
    for source in sources:
        path = (REPO / source).resolve()
        if path.is_dir():
            for filename, lineno, message, comments, context in extract_from_dir(
                path,
                method_map=METHOD_MAP,
                options_map=options,
                keywords=KEYWORDS,
                comment_tags=COMMENT_TAGS,
            ):
                yield _relative(path / filename), lineno, message, comments, context
        elif path.is_file():
            method = _method_for(path)
            for lineno, message, comments, context in extract_from_file(
                method,
                path,
                keywords=KEYWORDS,
                comment_tags=COMMENT_TAGS,
                options=_TEMPLATE_OPTIONS if method == _TEMPLATE_METHOD else None,
            ):
                yield _relative(path), lineno, message, comments, context
        else:
            print(f"extract_messages: skipping {source}: not found", file=sys.stderr)


def _method_for(path: Path) -> str:
    return "python" if path.suffix == ".py" else _TEMPLATE_METHOD


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _empty_catalog(domain: str, locale: str | None) -> Catalog:
    catalog = Catalog(
        locale=locale,
        domain=domain,
        project="vigie",
        version="1",
        msgid_bugs_address="cert@example.invalid",
        copyright_holder="vigie contributors",
        last_translator="vigie contributors",
        language_team=f"vigie {locale or 'templates'}",
        creation_date=_STABLE_DATE,
        revision_date=_STABLE_DATE,
        fuzzy=False,
        header_comment=(
            f"# vigie: translations of the {domain!r} domain.\n"
            "# Copyright (C) vigie contributors\n"
            "# Distributed under the same licence as vigie (AGPL-3.0-or-later).\n"
            "# Refresh with: python scripts/extract_messages.py " + domain + "\n#"
        ),
    )
    if locale in PLURAL_FORMS:
        catalog.mime_headers = [("Plural-Forms", PLURAL_FORMS[locale])]
    return catalog


def po_path(locale_dir: Path, language: str, domain: str) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{domain}.po"


def merged_catalog(template: Catalog, existing: Path, language: str, domain: str) -> Catalog:
    """``existing`` brought up to date with ``template`` (or a new catalog)."""
    if existing.is_file():
        with existing.open("rb") as source:
            catalog = read_po(source, locale=language, domain=domain)
    else:
        catalog = _empty_catalog(domain, locale=language)
    catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
    catalog.obsolete.clear()
    return catalog


def problems_in(catalog: Catalog, template: Catalog, existing: Path) -> list[str]:
    """What a translator or a developer still has to do for this file."""
    problems: list[str] = []
    if not existing.is_file():
        return [f"{existing}: missing"]
    with existing.open("rb") as source:
        on_disk = read_po(source)
    wanted = {message.id for message in template if message.id}
    present = {message.id for message in on_disk if message.id}
    problems += [
        f"{existing}: not extracted yet: {_short(i)}" for i in sorted(wanted - present, key=str)
    ]
    problems += [
        f"{existing}: no longer used: {_short(i)}" for i in sorted(present - wanted, key=str)
    ]
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"{existing}: fuzzy, review it: {_short(message.id)}")
        elif not _translated(message.string):
            problems.append(f"{existing}: untranslated: {_short(message.id)}")
    return problems


def _translated(string: str | Iterable[str] | None) -> bool:
    if string is None or isinstance(string, str):
        return bool(string)
    return all(string)


def _short(msgid: str | Sequence[str]) -> str:
    text = msgid if isinstance(msgid, str) else " | ".join(msgid)
    return text if len(text) <= 70 else text[:67] + "..."


def write_catalog(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as target:
        write_po(target, catalog, width=79, omit_header=False, ignore_obsolete=True)


def refresh(domain: str, sources: Sequence[str] | None, locale_dir: Path, check: bool) -> list[str]:
    """Merge ``domain``'s msgids into each translation; return the problems left."""
    template = template_from_sources(domain, sources or DOMAIN_SOURCES.get(domain, ()))
    problems: list[str] = []
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = po_path(locale_dir, language, domain)
        catalog = merged_catalog(template, path, language, domain)
        if check:
            problems += problems_in(catalog, template, path)
        else:
            write_catalog(catalog, path)
            problems += problems_in(catalog, template, path)
            print(f"extract_messages: wrote {path} ({len(template)} messages)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("domains", nargs="*", help="reports, emails, ...")
    parser.add_argument("--all", action="store_true", help="every domain that has a .po file")
    parser.add_argument(
        "--source", action="append", help="file or directory to extract from (repeatable)"
    )
    parser.add_argument("--locale-dir", type=Path, default=REPO / "vigie" / "locale")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if anything is stale"
    )
    args = parser.parse_args(argv)

    domains = list(args.domains)
    if args.all:
        domains += sorted(
            {path.stem for path in args.locale_dir.glob("*/LC_MESSAGES/*.po")} - set(domains)
        )
    if not domains:
        parser.error("name at least one domain, or --all")
    problems: list[str] = []
    for domain in domains:
        problems += refresh(domain, args.source, args.locale_dir, args.check)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
