"""What a served HTML page declares about its own security: policies in ``<meta>``,
the subresources it loads, its forms.

Only the first :data:`HTML_SCAN_BYTES` of a body are read, with the standard
library's tolerant tokenizer (no tree, no scripts run); a body that is not
markup yields an empty :class:`PageFacts`.

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

from dataclasses import dataclass
from html.parser import HTMLParser

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


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_head = True  # until body content starts (an implied <head> comes first)
        self.text_holder = ""  # an open head element whose text is its own (title, style...)
        self.meta_csp: list[str] = []
        self.meta_referrer: list[str] = []
        self.subresources: list[Subresource] = []
        self.base_href = ""
        self.has_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in reversed(attrs)}
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
            rels = values.get("rel", "").lower().split()
            if "stylesheet" in rels:
                self.subresources.append(
                    Subresource("stylesheet", values["href"].strip(), values.get("integrity", ""))
                )
        elif tag == "base" and "href" in values and not self.base_href:
            self.base_href = values["href"].strip()
        elif tag == "form":
            self.has_form = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
        if tag == self.text_holder:
            self.text_holder = ""

    def handle_data(self, data: str) -> None:
        # Text outside title/style/script/noscript/template starts the body (HTML §13.2.6.4.4).
        if self.in_head and not self.text_holder and data.strip("\t\n\f\r "):
            self.in_head = False

    def _meta(self, values: dict[str, str]) -> None:
        equiv = values.get("http-equiv", "").lower()  # enumerated: matched as is, any case
        if equiv == "content-security-policy" and self.in_head and "content" in values:
            self.meta_csp.append(values["content"])
        if values.get("name", "").lower() == "referrer" and "content" in values:
            self.meta_referrer.append(values["content"])


def looks_like_markup(body: bytes) -> bool:
    return body[:512].lstrip()[:1] == b"<"


def page_facts(body: bytes, content_type: str | None) -> PageFacts:
    """The security-relevant declarations of an HTML body (empty for anything else)."""
    declared_html = "html" in (content_type or "").lower()
    if not body or not (declared_html or looks_like_markup(body)):
        return PageFacts()
    text = body[:HTML_SCAN_BYTES].decode("utf-8", errors="replace")
    collector = _Collector()
    try:
        collector.feed(text)
        collector.close()
    except (AssertionError, ValueError, IndexError):  # the tokenizer's own limits
        pass
    return PageFacts(
        tuple(collector.meta_csp),
        tuple(collector.meta_referrer),
        tuple(collector.subresources),
        collector.base_href,
        collector.has_form,
    )
