"""Explicit registration of the check families the engine runs.

Host families run once per (domain, address) after the port stage; domain
families run once per registered domain (with ``mail_domain`` telling whether
the registry calls it a mail domain). Adding a family is a two-line diff: an
import and an entry below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from vigie.model import Family, FamilyResult, HostTarget, OpenPort
from vigie.scanner import dns, http, service, software, tls
from vigie.scanner.base import ProbeContext

HostCheck = Callable[[ProbeContext, HostTarget, list[OpenPort]], Awaitable[FamilyResult]]
DomainCheck = Callable[[ProbeContext, str, bool], Awaitable[FamilyResult]]
DerivedCheck = Callable[
    [ProbeContext, HostTarget, list[OpenPort], Mapping[Family, FamilyResult]],
    Awaitable[FamilyResult],
]

HOST_FAMILIES: dict[Family, HostCheck] = {
    Family.SERVICE: service.check_services,
    Family.TLS: tls.check_tls,
    Family.HTTP: http.check_http,
}

DOMAIN_FAMILIES: dict[Family, DomainCheck] = {
    Family.DNS: dns.check_domain,
}

# Run after the host families, in this order, on their results; asking for one
# runs the families it reads (DERIVED_INPUTS) too.
DERIVED_FAMILIES: dict[Family, DerivedCheck] = {
    Family.SOFTWARE: software.check_software,
    Family.VULN: software.check_vulns,
}
DERIVED_INPUTS: frozenset[Family] = frozenset({Family.SERVICE, Family.HTTP})
