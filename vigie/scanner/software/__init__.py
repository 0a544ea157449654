"""The software family (what a host runs) and the vuln family (what that exposes).

Check IDs: ``software.identified``, ``software.edge_device.exposed``,
``software.end_of_life``, ``software.cms.outdated``, ``vuln.known_exploited``,
``vuln.cve``, ``vuln.cve_unconfirmed``.

Both are derived families: the engine runs them after the host's service and
HTTP families and hands them those results. Modules: ``_identify`` (banners,
headers and pages -> identifications, pure), ``_edge`` (edge appliances and
OWA, pure), ``_family`` (the family coroutines and the findings they build).
"""

from __future__ import annotations

from vigie.scanner.software._edge import EDGE_DEVICES, identify_edge, identify_owa
from vigie.scanner.software._family import (
    INDEX_KEY,
    check_software,
    check_vulns,
    cvss_severity,
    identify_host,
    identify_response,
    software_findings,
    vuln_findings,
)
from vigie.scanner.software._identify import (
    Identification,
    distro_package,
    identify_greeting,
    identify_mysql,
    identify_page,
    identify_redis,
    identify_server,
    identify_ssh,
)

__all__ = [
    "EDGE_DEVICES",
    "INDEX_KEY",
    "Identification",
    "check_software",
    "check_vulns",
    "cvss_severity",
    "distro_package",
    "identify_edge",
    "identify_greeting",
    "identify_host",
    "identify_mysql",
    "identify_owa",
    "identify_page",
    "identify_redis",
    "identify_response",
    "identify_server",
    "identify_ssh",
    "software_findings",
    "vuln_findings",
]
