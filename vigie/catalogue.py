"""The check catalogue: every check ID with its default severity, its texts in
French and English (title, remediation, why it matters) and its configuration
snippets.

The catalogue is data: one TOML file per family in ``vigie/data/checks/``
(``http.toml`` holds the ``http.*`` checks), read and validated once by
:func:`load_catalogue`. Adding a check is one table there plus the function
that produces it (see CONTRIBUTING.md); ``docs/checks.md`` is generated from
these files by ``python scripts/generate_checks_doc.py``.

Check IDs are a public interface: never rename one; a retired check keeps its
ID reserved here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from vigie.errors import ConfigError, NotFoundError
from vigie.model import LANGUAGES, Family, Severity, family_of

#: The texts every check carries in every language.
TEXT_FIELDS: tuple[str, ...] = ("title", "remediation", "why_it_matters")


@dataclass(frozen=True)
class CheckTexts:
    """What readers see of a check in one language."""

    title: str
    remediation: str
    why_it_matters: str = ""


@dataclass(frozen=True)
class CheckSpec:
    """One check: its public ID, default severity and texts per language."""

    check_id: str
    severity: Severity
    texts: Mapping[str, CheckTexts] = field(default_factory=dict)
    snippets: Mapping[str, str] = field(default_factory=dict)

    @property
    def family(self) -> Family:
        return family_of(self.check_id)

    # English is the source language: these read its texts.
    @property
    def title(self) -> str:
        return self.texts["en"].title

    @property
    def remediation(self) -> str:
        return self.texts["en"].remediation

    @property
    def why_it_matters(self) -> str:
        return self.texts["en"].why_it_matters

    def text(self, field_name: str, language: str) -> str:
        """``title``/``remediation``/``why_it_matters`` in ``language`` (English if unknown)."""
        texts = self.texts.get(language) or self.texts["en"]
        return str(getattr(texts, field_name))


# --- Remediation snippets -----------------------------------------------------

#: How each stack of ``remediation_snippets.toml`` is named to a reader, in the
#: order reports and emails show them. Configuration lines are not translated.
SNIPPET_STACKS: dict[str, str] = {
    "nginx": "nginx",
    "apache": "Apache httpd",
    "iis": "IIS",
    "php": "PHP (php.ini)",
    "openssh": "OpenSSH (sshd_config)",
    "vsftpd": "vsftpd",
    "postfix": "Postfix",
    "dovecot": "Dovecot",
    "redis": "Redis",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL / MariaDB",
    "mongodb": "MongoDB",
    "elasticsearch": "Elasticsearch",
    "memcached": "memcached",
    "certbot": "certbot (Let's Encrypt)",
    "openssl": "OpenSSL",
    "bind": "BIND",
    "knot": "Knot DNS",
    "windows_dns": "Windows DNS",
    "zone": "DNS zone file",
    "security_txt": "security.txt",
}


def _ordered_stacks(by_stack: dict[str, str]) -> dict[str, str]:
    # The file's order is an editing accident; readers get the stacks in SNIPPET_STACKS order.
    rank = {stack: index for index, stack in enumerate(SNIPPET_STACKS)}
    ordered = sorted(by_stack.items(), key=lambda item: rank.get(item[0], len(rank)))
    return {stack: snippet.strip("\n") + "\n" for stack, snippet in ordered}


class CatalogueError(ConfigError):
    """A catalogue data file that does not validate: the file and the entry are named."""


_CHECKS_DIR = ("data", "checks")


def _spec_from_table(check_id: str, table: Mapping[str, Any], where: str) -> CheckSpec:
    known = {"severity", "snippets", *LANGUAGES}
    unknown = sorted(set(table) - known)
    if unknown:
        raise CatalogueError(f"{where}: [{check_id}] unknown keys {unknown}")
    try:
        severity = Severity(table.get("severity"))
    except ValueError:
        raise CatalogueError(
            f"{where}: [{check_id}] bad severity {table.get('severity')!r}"
        ) from None
    texts: dict[str, CheckTexts] = {}
    for language in LANGUAGES:
        raw = table.get(language)
        if not isinstance(raw, Mapping):
            raise CatalogueError(f"{where}: [{check_id}] has no {language!r} texts")
        extra = sorted(set(raw) - set(TEXT_FIELDS))
        if extra:
            raise CatalogueError(f"{where}: [{check_id}.{language}] unknown keys {extra}")
        values = {name: raw.get(name, "") for name in TEXT_FIELDS}
        if not all(isinstance(value, str) for value in values.values()):
            raise CatalogueError(f"{where}: [{check_id}.{language}] texts must be strings")
        if not values["title"].strip() or not values["remediation"].strip():
            raise CatalogueError(
                f"{where}: [{check_id}.{language}] needs a title and a remediation"
            )
        texts[language] = CheckTexts(**values)
    snippets = table.get("snippets", {})
    if not isinstance(snippets, Mapping) or not all(
        isinstance(stack, str) and isinstance(text, str) for stack, text in snippets.items()
    ):
        raise CatalogueError(f"{where}: [{check_id}.snippets] must map stacks to text")
    unknown_stacks = sorted(set(snippets) - set(SNIPPET_STACKS))
    if unknown_stacks:
        raise CatalogueError(f"{where}: [{check_id}.snippets] unknown stacks {unknown_stacks}")
    return CheckSpec(
        check_id=check_id,
        severity=severity,
        texts=MappingProxyType(texts),
        snippets=MappingProxyType(_ordered_stacks(dict(snippets))),
    )


def parse_family_file(family: Family, text: str, where: str) -> list[CheckSpec]:
    """The checks of one family file; raises ``CatalogueError`` naming ``where``."""
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{where}: not valid TOML: {exc}") from None
    specs = []
    for check_id, table in parsed.items():
        if not isinstance(table, Mapping):
            raise CatalogueError(f"{where}: {check_id!r} is not a table")
        try:
            owner = family_of(check_id)
        except ValueError:
            raise CatalogueError(f"{where}: {check_id!r} names no known family") from None
        if owner is not family:
            raise CatalogueError(f"{where}: {check_id!r} belongs in {owner.value}.toml")
        specs.append(_spec_from_table(check_id, table, where))
    return specs


@cache
def load_catalogue() -> tuple[CheckSpec, ...]:
    """Every check of every family file, validated once (``CatalogueError`` otherwise)."""
    folder = resources.files("vigie").joinpath(*_CHECKS_DIR)
    specs: list[CheckSpec] = []
    for family in Family:
        entry = folder.joinpath(f"{family.value}.toml")
        if entry.is_file():
            where = f"vigie/data/checks/{family.value}.toml"
            specs.extend(parse_family_file(family, entry.read_text(encoding="utf-8"), where))
    return tuple(specs)


_SPECS: tuple[CheckSpec, ...] = load_catalogue()
CATALOGUE: Mapping[str, CheckSpec] = MappingProxyType({spec.check_id: spec for spec in _SPECS})


class UnknownCheckError(NotFoundError, KeyError):
    """A check ID that is not in the catalogue (a typo in code or configuration)."""


def spec_for(check_id: str) -> CheckSpec:
    try:
        return CATALOGUE[check_id]
    except KeyError:
        raise UnknownCheckError(check_id) from None


def checks_in(family: Family) -> list[CheckSpec]:
    return [spec for spec in _SPECS if spec.family is family]


def _all_snippets() -> MappingProxyType[str, Mapping[str, str]]:
    """Every check's snippets, keyed by check ID (checks without any are left out)."""
    return MappingProxyType({spec.check_id: spec.snippets for spec in _SPECS if spec.snippets})


def remediation_snippets(check_id: str) -> dict[str, str]:
    """Configuration snippets fixing ``check_id``, keyed by stack (see ``SNIPPET_STACKS``).

    Empty when no configuration line fixes the check (for example an expired
    domain). Raises ``UnknownCheckError`` for an ID that is not in the catalogue.
    """
    return dict(spec_for(check_id).snippets)
