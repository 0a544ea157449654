"""Translations of everything users read: check texts, reports, emails.

English is the source language: every msgid is the English text, so English
needs no catalog. Other languages live in gettext ``.po`` files under
``vigie/locale/<language>/LC_MESSAGES/<domain>.po``, one file per domain:

- ``checks``  titles, remediation and "why it matters" of the check catalogue
- ``reports`` HTML/PDF reports and exports
- ``emails``  agency digests and alerts

The ``.po`` files are read at run time with Babel and cached per (language,
domain): there is no compilation step at install time, and a translator's
edit is picked up by the next process. Fuzzy entries (a msgid that changed
since the translation was written) are not used until reviewed; the English
text shows instead. ``scripts/extract_messages.py`` refreshes the files.

French is the default language: CERT staff and most agencies read French.
"""

from __future__ import annotations

import gettext as _stdlib_gettext
import io
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from vigie.catalogue import spec_for
from vigie.errors import VigieError

if TYPE_CHECKING:
    from jinja2 import Environment

LANGUAGES: tuple[str, ...] = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
#: The language the msgids are written in: it needs no catalog.
SOURCE_LANGUAGE = "en"

REPORTS_DOMAIN = "reports"
EMAILS_DOMAIN = "emails"

# What people type in a registry spreadsheet's "language" column, besides codes.
_LANGUAGE_NAMES = {
    "francais": "fr",
    "français": "fr",
    "french": "fr",
    "english": "en",
    "anglais": "en",
}


class MissingCatalogError(VigieError):
    """A language other than English has no ``.po`` file for a domain (a packaging bug)."""


def normalise_language(value: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The supported language ``value`` names (``"fr"``, ``"FR"``, ``"fr_ML"``, ``"en-GB"``,
    ``"Français"``), or ``default`` when it names none."""
    if default not in LANGUAGES:
        raise ValueError(f"default language {default!r} is not one of {LANGUAGES}")
    if not value:
        return default
    cleaned = value.strip().lower()
    if cleaned in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[cleaned]
    primary = cleaned.replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else default


def _locale_root() -> Traversable:
    return resources.files("vigie").joinpath("locale")


def _po_file(language: str, domain: str) -> Traversable:
    return _locale_root().joinpath(language, "LC_MESSAGES", f"{domain}.po")


def available_domains(language: str) -> list[str]:
    """The domains that have a ``.po`` file for ``language``, sorted."""
    messages_dir = _locale_root().joinpath(language, "LC_MESSAGES")
    if not messages_dir.is_dir():
        return []
    return sorted(
        entry.name.removesuffix(".po")
        for entry in messages_dir.iterdir()
        if entry.name.endswith(".po")
    )


def translator(language: str, domain: str) -> _stdlib_gettext.NullTranslations:
    """The translations of ``domain`` into ``language`` (normalised first).

    The result has the standard ``gettext``/``ngettext``/``pgettext`` methods,
    so it plugs into Jinja2 and anything else that takes a translations object.
    Raises ``MissingCatalogError`` when a non-English language lacks the file.
    """
    return _load_translations(normalise_language(language), domain)


@cache
def _load_translations(language: str, domain: str) -> _stdlib_gettext.NullTranslations:
    po_file = _po_file(language, domain)
    if not po_file.is_file():
        if language == SOURCE_LANGUAGE:
            return _stdlib_gettext.NullTranslations()
        raise MissingCatalogError(
            f"no {language} translations for the {domain!r} domain: "
            f"expected vigie/locale/{language}/LC_MESSAGES/{domain}.po"
        )
    return _translations_from_po(po_file, language, domain)


def _translations_from_po(
    po_file: Traversable, language: str, domain: str
) -> _stdlib_gettext.GNUTranslations:
    # Babel writes the parsed catalog as an in-memory .mo, which the standard
    # GNUTranslations reads: plural forms and fallbacks then behave exactly as
    # with compiled catalogs, without a build step.
    with po_file.open("rb") as source:
        catalog = read_po(source, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return _stdlib_gettext.GNUTranslations(compiled)


def gettext(language: str, domain: str, msgid: str) -> str:
    """``msgid`` translated into ``language``; the msgid itself when untranslated."""
    return translator(language, domain).gettext(msgid)


def ngettext(language: str, domain: str, singular: str, plural: str, count: int) -> str:
    """The singular or plural form for ``count``, translated into ``language``."""
    return translator(language, domain).ngettext(singular, plural, count)


def N_(msgid: str) -> str:
    """Mark ``msgid`` for extraction without translating it now (module-level constants)."""
    return msgid


def check_title(check_id: str, language: str) -> str:
    """The short title of a check, in ``language``."""
    return spec_for(check_id).text("title", normalise_language(language))


def check_remediation(check_id: str, language: str) -> str:
    """What to change to fix a check's finding, in ``language``."""
    return spec_for(check_id).text("remediation", normalise_language(language))


def check_why_it_matters(check_id: str, language: str) -> str:
    """One sentence on the risk a check's finding carries, in ``language``."""
    return spec_for(check_id).text("why_it_matters", normalise_language(language))


def install_jinja_i18n(env: Environment, language: str, domain: str) -> None:
    """Make ``{% trans %}``, ``_()``, ``gettext()`` and ``ngettext()`` in ``env``'s
    templates translate into ``language`` from ``domain``.

    Uses Jinja2's new-style gettext, so under autoescaping the values put into a
    message (``{% trans name=x %}...{{ name }}...``) are escaped while the
    translated text itself is trusted. The translations are bound to the
    environment: use one environment per language when rendering concurrently.
    """
    from jinja2.ext import InternationalizationExtension

    if InternationalizationExtension.identifier not in env.extensions:
        env.add_extension(InternationalizationExtension)
    # install_gettext_translations is added to the environment by the extension,
    # so type checkers cannot see it on Environment.
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translator(language, domain), newstyle=True
    )
