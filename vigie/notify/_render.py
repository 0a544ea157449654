"""Email texts: Jinja templates in the agency's language, text and HTML.

HTML templates (``emails/*.html.j2``) autoescape everything; the text
templates (``emails/*.txt.j2``) are plain. Evidence reaches both only through
:func:`vigie.notify._safety.evidence_lines`. Subjects are built here from
fixed text, the agency name (flattened to one line) and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

from babel.dates import format_date
from jinja2 import Environment, PackageLoader, StrictUndefined

from vigie import i18n
from vigie.catalogue import SNIPPET_STACKS, remediation_snippets
from vigie.i18n import EMAILS_DOMAIN, N_
from vigie.model import Severity
from vigie.notify._problems import Place, Problem
from vigie.notify._safety import evidence_lines, header_text

MAX_SNIPPETS = 3  # the common web stacks come first in SNIPPET_STACKS: nginx, Apache, IIS
AGENCY_IN_SUBJECT_CHARS = 80

SEVERITY_LABELS: dict[Severity, str] = {
    Severity.CRITICAL: N_("critical"),
    Severity.HIGH: N_("high"),
    Severity.MEDIUM: N_("medium"),
    Severity.LOW: N_("low"),
    Severity.INFO: N_("info"),
}

TREND_LABELS: dict[str, str] = {
    "better": N_("improving"),
    "worse": N_("worsening"),
    "same": N_("unchanged"),
    "first": N_("first grade"),
}


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("vigie", "templates"),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    i18n.install_jinja_i18n(env, language, EMAILS_DOMAIN)
    env.filters.update(
        day=lambda value: format_day(value, language),
        severity=lambda value: translate(language, SEVERITY_LABELS[Severity(value)]),
    )
    env.globals["language"] = language
    return env


def translate(language: str, msgid: str) -> str:
    return i18n.gettext(language, EMAILS_DOMAIN, msgid)


def format_day(value: date | datetime | None, language: str) -> str:
    if value is None:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, format="long", locale=language)


def render_parts(kind: str, language: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(text, html) of ``emails/<kind>.txt.j2`` and ``emails/<kind>.html.j2``."""
    env = environment(language)
    text = env.get_template(f"emails/{kind}.txt.j2").render(**context)
    html = env.get_template(f"emails/{kind}.html.j2").render(**context)
    return text, html


# --- what templates receive -----------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    stack: str
    code: str


@dataclass(frozen=True)
class ProblemItem:
    """A problem as the templates show it: every text already in the reader's language."""

    check_id: str
    title: str
    severity: str
    places: tuple[str, ...]
    evidence: tuple[tuple[str, str], ...]
    remediation: str
    snippets: tuple[Snippet, ...]
    due_date: date | None
    reopened: bool


def describe_place(place: Place, language: str) -> str:
    text = place.domain
    if place.ip:
        text += f" ({place.ip})"
    if place.port is not None:
        text += " " + i18n.gettext(language, EMAILS_DOMAIN, "port") + f" {place.port}"
    return text


def problem_item(problem: Problem, language: str, *, with_fix: bool) -> ProblemItem:
    snippets: tuple[Snippet, ...] = ()
    if with_fix:
        snippets = tuple(
            Snippet(SNIPPET_STACKS.get(stack, stack), code)
            for stack, code in list(remediation_snippets(problem.check_id).items())[:MAX_SNIPPETS]
        )
    return ProblemItem(
        check_id=problem.check_id,
        title=i18n.check_title(problem.check_id, language),
        severity=problem.severity.value,
        places=tuple(describe_place(p, language) for p in problem.places),
        evidence=tuple(evidence_lines(problem.evidence)) if with_fix else (),
        remediation=i18n.check_remediation(problem.check_id, language),
        snippets=snippets,
        due_date=problem.due_date,
        reopened=problem.reopened,
    )


def problem_items(
    problems: Iterable[Problem], language: str, *, with_fix: bool, limit: int
) -> tuple[list[ProblemItem], int]:
    """The first ``limit`` problems as items, and how many were left out."""
    problems = list(problems)
    shown = [problem_item(p, language, with_fix=with_fix) for p in problems[:limit]]
    return shown, max(0, len(problems) - limit)


@dataclass(frozen=True)
class GradeLine:
    domain: str
    letter: str
    previous: str | None
    trend: str  # a key of TREND_LABELS


@dataclass
class DigestContext:
    agency: str
    language: str
    today: date
    since: datetime | None
    new: list[ProblemItem]
    reopened: list[ProblemItem]
    recalled: list[ProblemItem]
    resolved: list[ProblemItem]
    omitted: int
    open_count: int
    overdue_count: int
    accepted_count: int
    grades: list[GradeLine]
    reply_to: str | None
    operator_copy: bool = False
    escalated: bool = False  # sent to the escalation contact: the agency has no working one
    open_by_severity: list[tuple[str, int]] = field(default_factory=list)
    console_link: str | None = None  # signed sign-in link to the web console (web.base_url)
    link_days: int = 14

    def as_template_context(self) -> dict[str, Any]:
        context = dict(vars(self))
        context["trend_labels"] = {k: translate(self.language, v) for k, v in TREND_LABELS.items()}
        return context


# --- subjects -------------------------------------------------------------------


def display_name(name: str) -> str:
    """A registry name on one line, for bodies as for subjects."""
    return header_text(name, 200)


def subject_agency(name: str) -> str:
    return header_text(name, AGENCY_IN_SUBJECT_CHARS)


def digest_subject(
    language: str, agency: str, *, new: int, resolved: int, open_count: int, operator_copy: bool
) -> str:
    template = (
        N_(
            "Vigie digest for %(agency)s (your applications): new %(new)d, resolved %(resolved)d, open %(open)d"
        )
        if operator_copy
        else N_("Vigie digest for %(agency)s: new %(new)d, resolved %(resolved)d, open %(open)d")
    )
    return header_text(
        translate(language, template)
        % {"agency": subject_agency(agency), "new": new, "resolved": resolved, "open": open_count},
        200,
    )


def alert_subject(language: str, agency: str, count: int) -> str:
    template = N_("URGENT, Vigie: urgent security problems for %(agency)s: %(count)d")
    return header_text(
        translate(language, template) % {"agency": subject_agency(agency), "count": count}, 200
    )


def notice_subject(language: str, msgid: str, agency: str, count: int = 0) -> str:
    return header_text(
        translate(language, msgid) % {"agency": subject_agency(agency), "count": count}, 200
    )


SUBJECT_OVERDUE = N_("Vigie escalation for %(agency)s: overdue problems: %(count)d")
SUBJECT_UNDELIVERED = N_("Vigie escalation for %(agency)s: a message could not be delivered")
SUBJECT_BOUNCE = N_("Vigie: a contact address of %(agency)s bounces")


def severity_counts(severities: Sequence[Severity]) -> list[tuple[str, int]]:
    counts: dict[Severity, int] = {}
    for severity in severities:
        counts[severity] = counts.get(severity, 0) + 1
    return [(s.value, counts[s]) for s in sorted(counts, key=lambda s: -s.rank)]
