"""Small text-to-value rules shared by every parser of untrusted input.

``str.isdigit()`` is true for ``"³"`` and ``"٣"``, and ``int()`` accepts Arabic-Indic
digits but refuses superscripts: a parser that checks with one and converts with
the other raises on text a hostile server chose. Protocols (RFC 5234 ``DIGIT``,
ABNF core rules, Appendix B.1) mean ASCII ``0``-``9`` only.
"""

from __future__ import annotations

DEFAULT_MAX_DIGITS = 18  # fits a signed 64-bit integer; far beyond any protocol field here


def is_ascii_digits(text: str) -> bool:
    """One or more of RFC 5234's DIGIT (%x30-39), nothing else."""
    return bool(text) and text.isascii() and text.isdigit()


def ascii_int(text: str, *, max_digits: int = DEFAULT_MAX_DIGITS) -> int | None:
    """The integer ``text`` spells in ASCII digits, or None (empty, other characters, too long)."""
    if not is_ascii_digits(text) or len(text) > max_digits:
        return None
    return int(text)
