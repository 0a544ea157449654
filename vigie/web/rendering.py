"""The console's Jinja environment: the reports' filters and macros, autoescaping always.

Everything a scanned server sent (banners, headers, evidence) reaches the
templates as data and is escaped; no console template marks text safe. The
``web`` translation domain falls back to the reports' catalog, so labels the
reports already translate (severities, statuses, grades) read the same.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

from vigie import i18n
from vigie.reports import evidence_items, format_day, format_moment

WEB_DOMAIN = "web"


@cache
def _translations(language: str) -> gettext.NullTranslations:
    web = i18n.translator(language, WEB_DOMAIN)
    # A copy: the cached catalogs of other domains stay untouched.
    combined = _clone(web)
    combined.add_fallback(i18n.translator(language, i18n.REPORTS_DOMAIN))
    return combined


def _clone(translations: gettext.NullTranslations) -> gettext.NullTranslations:
    if isinstance(translations, gettext.GNUTranslations):
        clone = gettext.GNUTranslations()
        clone._catalog = dict(translations._catalog)  # type: ignore[attr-defined]
        clone.plural = translations.plural  # type: ignore[attr-defined]
        clone._charset = translations._charset  # type: ignore[attr-defined]
        return clone
    return gettext.NullTranslations()


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("vigie", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        _translations(language), newstyle=True
    )
    env.filters.update(
        day=lambda value: format_day(value, language),
        moment=lambda value: format_moment(value, language),
        check_title=lambda check_id: i18n.check_title(check_id, language),
        remediation=lambda check_id: i18n.check_remediation(check_id, language),
        why=lambda check_id: i18n.check_why_it_matters(check_id, language),
        evidence_items=evidence_items,
    )
    env.globals["language"] = language
    env.globals["with_query"] = with_query
    return env


def with_query(query: Mapping[str, str], **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = {k: v for k, v in query.items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None and v != ""})
    return "?" + urlencode(params) if params else "?"


def render(name: str, language: str, context: Mapping[str, Any]) -> str:
    return environment(language).get_template(name).render(**context)


# Texts the templates translate from data (statuses, kinds) and the messages handlers
# show: listed here so scripts/extract_messages.py finds them.
DYNAMIC_TEXTS = (
    i18n.N_("queued"),
    i18n.N_("running"),
    i18n.N_("completed"),
    i18n.N_("interrupted"),
    i18n.N_("failed"),
    i18n.N_("sent"),
    i18n.N_("proposed"),
    i18n.N_("approved"),
    i18n.N_("refused"),
    i18n.N_("active"),
    i18n.N_("inactive"),
    i18n.N_("candidate"),
    i18n.N_("rejected"),
    i18n.N_("passive"),
    i18n.N_("wrong username or password"),
    i18n.N_("form expired: reload the page"),
    i18n.N_("this link has expired or was withdrawn: ask the CERT for a new one"),
    i18n.N_("explanation sent to the CERT"),
    i18n.N_("explanation approved"),
    i18n.N_("explanation refused"),
    i18n.N_("severity changed for this deployment"),
    i18n.N_("sign-in links of this agency withdrawn"),
    i18n.N_("too many failed sign-ins: wait a few minutes"),
    i18n.N_("waiting for the sweep in progress"),
)
