"""The IPv6 family's check IDs, each with the function(s) that produce it."""

from __future__ import annotations

from vigie.scanner import ipv6
from vigie.scanner.checks_table import ChecksTable

CHECKS: ChecksTable = {
    "ipv6.web.missing": (ipv6.web_findings,),
    "ipv6.web.unreachable": (ipv6.web_findings,),
    "ipv6.ns.missing": (ipv6.ns_findings,),
}
