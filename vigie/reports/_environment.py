"""The Jinja environment of reports: autoescaping always, gettext by language.

Everything a server sent (banners, headers, certificate names) reaches the
templates as data; ``autoescape=True`` for every template, whatever its name,
so none of it can become markup. No template marks scanned text safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from babel.dates import format_date, format_datetime
from jinja2 import Environment, PackageLoader, StrictUndefined

from vigie import i18n
from vigie.model import LANGUAGES

REPORTS_DOMAIN = "reports"
DEFAULT_LANGUAGE = "fr"
EVIDENCE_VALUE_CHARS = 240  # what a report shows of each evidence value (untrusted text)
EVIDENCE_ITEMS = 8


def report_language(wanted: str | None) -> str:
    """A language vigie speaks: the agency's if known, French otherwise."""
    return i18n.normalise_language(wanted, DEFAULT_LANGUAGE)


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("vigie", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.install_jinja_i18n(env, language, REPORTS_DOMAIN)
    env.filters.update(
        day=lambda value: format_day(value, language),
        moment=lambda value: format_moment(value, language),
        check_title=lambda check_id: i18n.check_title(check_id, language),
        remediation=lambda check_id: i18n.check_remediation(check_id, language),
        evidence_items=evidence_items,
    )
    env.globals["language"] = language
    return env


def render_template(name: str, language: str, context: Mapping[str, Any]) -> str:
    return environment(language).get_template(name).render(**context)


def format_day(value: date | datetime | None, language: str) -> str:
    if value is None:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, format="medium", locale=language)


def format_moment(value: datetime | None, language: str) -> str:
    if value is None:
        return ""
    return format_datetime(value, format="medium", tzinfo=value.tzinfo, locale=language)


def evidence_items(evidence: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A few (key, value) pairs of evidence, each value cut short: plain text for the template."""
    items = []
    for key, value in list((evidence or {}).items())[:EVIDENCE_ITEMS]:
        text = value if isinstance(value, str) else _compact(value)
        if len(text) > EVIDENCE_VALUE_CHARS:
            text = text[:EVIDENCE_VALUE_CHARS] + "…"
        items.append((str(key)[:60], text))
    return items


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
