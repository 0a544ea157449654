"""What a served HTML page declares about its own security: policies in ``<meta>``,
the subresources it loads, its forms.

Only the first :data:`HTML_SCAN_BYTES` of a body are read, by a tokenizer that
follows the WHATWG rules for tags, attributes, comments and raw-text elements
(HTML §13.2.5) in one linear pass: no tree, no scripts run, and no input
makes it slower than its length (the standard library's ``html.parser`` is
quadratic on unterminated tags: ``"<a " * 60000`` took minutes). A body that
is not markup yields an empty :class:`PageFacts`.

- ``<meta http-equiv="Content-Security-Policy" content=...>`` counts only
  inside ``<head>`` (HTML §4.2.5.3, "Content security policy" state: "If the
  meta element is not a child of a head element, return");
- ``<meta name="referrer" content=...>`` anywhere (HTML §4.2.5.1, the
  ``referrer`` metadata name), the last one processed wins;
- ``<script src>`` and ``<link rel~=stylesheet href>`` with their
  ``integrity`` attribute (Subresource Integrity §3.8, §3.9);
- ``<base href>``: the first one sets the document base URL (HTML §4.2.3);
- whether the page has a ``<form>``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# A page's <head> and the links that matter are at its start; a huge body is not parsed whole.
HTML_SCAN_BYTES = 262_144
# No page needs more than this many subresources listed in evidence or judged.
MAX_RESOURCES = 500
# The start tags a document's head may hold; any other one starts the body
# (HTML §13.2.6.4.4 and §13.2.6.4.6, the "in head" and "after head" insertion modes).
_HEAD_TAGS = frozenset(
    {
        "html",
        "head",
        "meta",
        "link",
        "script",
        "style",
        "title",
        "base",
        "noscript",
        "template",
        "basefont",
        "bgsound",
    }
)

_TEXT_HOLDERS = frozenset({"title", "style", "script", "noscript", "template"})


@dataclass(frozen=True)
class Subresource:
    """A script or stylesheet the page loads: the URL as written and its integrity."""

    kind: str  # "script" or "stylesheet"
    url: str
    integrity: str


@dataclass(frozen=True)
class PageFacts:
    meta_csp: tuple[str, ...] = ()
    meta_referrer: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    base_href: str = ""
    has_form: bool = False


class _Collector:
    """Reacts to the tokens: start tags, end tags and text."""

    def __init__(self) -> None:
        self.in_head = True  # until body content starts (an implied <head> comes first)
        self.text_holder = ""  # an open head element whose text is its own (title, style...)
        self.meta_csp: list[str] = []
        self.meta_referrer: list[str] = []
        self.subresources: list[Subresource] = []
        self.base_href = ""
        self.has_form = False

    def start(self, tag: str, values: dict[str, str]) -> None:
        if tag not in _HEAD_TAGS:
            self.in_head = False
        elif tag in _TEXT_HOLDERS:
            self.text_holder = tag
        if tag == "meta":
            self._meta(values)
        elif tag == "script" and "src" in values and len(self.subresources) < MAX_RESOURCES:
            self.subresources.append(
                Subresource("script", values["src"].strip(), values.get("integrity", ""))
            )
        elif tag == "link" and "href" in values and len(self.subresources) < MAX_RESOURCES:
            rels = re.split(r"[\t\n\f\r ]+", values.get("rel", "").lower())
            if "stylesheet" in rels:
                self.subresources.append(
                    Subresource("stylesheet", values["href"].strip(), values.get("integrity", ""))
                )
        elif tag == "base" and "href" in values and not self.base_href:
            self.base_href = values["href"].strip()
        elif tag == "form":
            self.has_form = True

    def end(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
        if tag == self.text_holder:
            self.text_holder = ""

    def text(self, data: str) -> None:
        # Text outside title/style/script/noscript/template starts the body (HTML §13.2.6.4.4).
        if self.in_head and not self.text_holder and data.strip("\t\n\f\r "):
            self.in_head = False

    def _meta(self, values: dict[str, str]) -> None:
        equiv = values.get("http-equiv", "").lower()  # enumerated: matched as is, any case
        if equiv == "content-security-policy" and self.in_head and "content" in values:
            self.meta_csp.append(values["content"])
        if values.get("name", "").lower() == "referrer" and "content" in values:
            self.meta_referrer.append(values["content"])


# HTML §13.2.5: a tag name runs to whitespace, "/" or ">"; an attribute name to
# whitespace, "/", ">" or "=" (its first character may be "="); values are quoted or
# run to whitespace or ">". Each pattern is anchored and consumes what it matches.
_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)")
_ATTRIBUTE = re.compile(
    r"[\t\n\f\r /]*(?:(?P<name>=?[^\t\n\f\r />=]*)[\t\n\f\r ]*"
    r"(?:=[\t\n\f\r ]*(?P<value>\"[^\"]*\"?|'[^']*'?|[^\t\n\f\r >]*))?)?"
)
# Elements whose content is text up to their own end tag (HTML §13.2.5.2-§13.2.5.3).
_RAW_TEXT = frozenset({"script", "style", "title", "textarea", "xmp", "iframe", "noembed"})


def _attributes(text: str, position: int) -> tuple[dict[str, str], int]:
    """The attributes from ``position`` to the tag's ">" (first of a name wins), and
    the index after it; -1 when the text ends inside the tag (the tag is dropped)."""
    values: dict[str, str] = {}
    length = len(text)
    while position < length:
        if text[position] == ">":
            return values, position + 1
        match = _ATTRIBUTE.match(text, position)
        if match is None or match.end() == position:
            position += 1  # a lone "/" or the like: skipped, as the tokenizer does
            continue
        name = (match.group("name") or "").lower()
        if name:
            raw = match.group("value") or ""
            if raw[:1] in ("'", '"'):
                raw = raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
            values.setdefault(name, html.unescape(raw))
        position = match.end()
    return values, -1


def _tokenize(text: str, collector: _Collector) -> None:
    """One pass over ``text``: every index is consumed once (linear time)."""
    lowered = text.lower()
    position = 0
    length = len(text)
    while position < length:
        opening = text.find("<", position)
        if opening < 0:
            collector.text(text[position:])
            return
        if opening > position:
            collector.text(text[position:opening])
        if text.startswith("<!--", opening):
            close = text.find("-->", opening + 4)
            if close < 0:
                return
            position = close + 3
            continue
        if text.startswith(("<!", "<?"), opening) or text.startswith("</>", opening):
            close = text.find(">", opening + 2)  # a bogus comment ends at the first ">"
            if close < 0:
                return
            position = close + 1
            continue
        tag = _TAG_OPEN.match(text, opening)
        if tag is None:
            collector.text("<")
            position = opening + 1
            continue
        name = tag.group(2).lower()
        values, position = _attributes(text, tag.end())
        if position < 0:
            return
        if tag.group(1):
            collector.end(name)
            continue
        collector.start(name, values)
        if name in _RAW_TEXT:
            close = lowered.find(f"</{name}", position)
            if close < 0:
                return
            position = close  # the raw text is no markup; its end tag comes next


def looks_like_markup(body: bytes) -> bool:
    return body[:512].lstrip()[:1] == b"<"


def page_facts(body: bytes, content_type: str | None) -> PageFacts:
    """The security-relevant declarations of an HTML body (empty for anything else)."""
    declared_html = "html" in (content_type or "").lower()
    if not body or not (declared_html or looks_like_markup(body)):
        return PageFacts()
    text = body[:HTML_SCAN_BYTES].decode("utf-8", errors="replace")
    collector = _Collector()
    _tokenize(text, collector)
    return PageFacts(
        tuple(collector.meta_csp),
        tuple(collector.meta_referrer),
        tuple(collector.subresources),
        collector.base_href,
        collector.has_form,
    )
