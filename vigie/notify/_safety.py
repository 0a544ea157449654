"""Keeping untrusted text where it belongs.

Anything a scanned server sent (banners, headers, certificate names) is
evidence: it may reach an email body, shortened and with its control
characters made visible, and never a header. Header values are built from
fixed text, registry names and counts, and even those pass through
:func:`header_text`, so a CR/LF typed into an agency name cannot add a header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from typing import Any

# C0 and C1 controls, DEL and the Unicode line and paragraph separators: any of
# them can end a header line in some mail software.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_VISIBLE = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")

HEADER_TEXT_CHARS = 120
EVIDENCE_VALUE_CHARS = 240
EVIDENCE_ITEMS = 6


def header_text(value: str, limit: int = HEADER_TEXT_CHARS) -> str:
    """``value`` on one line: controls become spaces, runs of spaces one, cut at ``limit``."""
    flat = " ".join(_CONTROLS.sub(" ", value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def valid_address(value: str) -> bool:
    """A bare address (no display name) safe to put in a header and an envelope."""
    if _CONTROLS.search(value) or len(value) > 254:
        return False
    name, address = parseaddr(value)
    return not name and address == value and bool(_ADDRESS.match(value))


def clean_addresses(values: Iterable[str]) -> tuple[str, ...]:
    """Valid addresses in first-seen order, each once (case-insensitively)."""
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        address = value.strip()
        if not valid_address(address) or address.casefold() in seen:
            continue
        seen.add(address.casefold())
        kept.append(address)
    return tuple(kept)


def visible_text(value: Any, limit: int = EVIDENCE_VALUE_CHARS) -> str:
    """Untrusted ``value`` as one short line of text: controls shown as escapes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _CONTROLS.sub(lambda m: _VISIBLE.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_lines(evidence: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A few (key, value) pairs of a finding's evidence, each made visible and short."""
    return [
        (visible_text(str(key), 60), visible_text(value))
        for key, value in list((evidence or {}).items())[:EVIDENCE_ITEMS]
    ]
