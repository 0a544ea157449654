"""Explicit registration of the check families the engine runs per host.

Adding a family is a two-line diff: an import and an entry below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vigie.model import Family, FamilyResult, HostTarget, OpenPort
from vigie.scanner import http, service, tls
from vigie.scanner.base import ProbeContext

HostCheck = Callable[[ProbeContext, HostTarget, list[OpenPort]], Awaitable[FamilyResult]]

# Families that run once per (domain, address) after the port stage. The DNS
# family runs once per domain instead: see ``vigie.scanner.dns.check_domain``.
HOST_FAMILIES: dict[Family, HostCheck] = {
    Family.SERVICE: service.check_services,
    Family.TLS: tls.check_tls,
    Family.HTTP: http.check_http,
}
