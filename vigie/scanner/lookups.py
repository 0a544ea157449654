"""DNS names and lookups as findings show them, shared by the DNS, mail and IPv6 families.

- :func:`bare`: the form names take in findings (lower case, no trailing dot);
- :func:`clip`: evidence keeps at most ``MAX_TEXT`` characters of what a server sent;
- :func:`probe_failed` and :func:`lookup_failed`: the ``scan.timeout`` or
  ``scan.error`` finding of a DNS probe that got no usable answer (a failure is
  never read as a negative answer).
"""

from __future__ import annotations

from vigie.model import Finding, HostTarget
from vigie.scanner.probe_context import scan_problem
from vigie.scanner.resolve import Answer, Lookup

MAX_TEXT = 512  # anything a server sent is untrusted text: evidence keeps this much


def clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def bare(name: str) -> str:
    """``NS1.Example.ml.`` -> ``ns1.example.ml``: how names appear in findings."""
    return name.lower().rstrip(".")


def probe_failed(domain: str, probe: str, timed_out: bool, detail: str) -> Finding:
    """A ``scan.timeout`` or ``scan.error`` finding for one DNS probe of ``domain``."""
    check_id = "scan.timeout" if timed_out else "scan.error"
    return scan_problem(HostTarget(domain=domain, ip=""), check_id, probe, clip(detail))


def lookup_failed(domain: str, probe: str, lookup: Lookup) -> Finding:
    """The scan problem for a lookup that timed out or failed (never a negative answer)."""
    detail = lookup.detail
    if lookup.cname_loop:
        detail = f"CNAME loop or overlong chain: {detail}"
    elif lookup.refused:
        detail = f"the resolvers refused the query: {detail}"
    return probe_failed(domain, probe, lookup.outcome is Answer.TIMEOUT, detail)
