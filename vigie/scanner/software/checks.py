"""The software and known-vulnerability families' check IDs, each with the function
that produces it (both families judge what the host's other families observed)."""

from __future__ import annotations

from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.software import _family

SOFTWARE_CHECKS: ChecksTable = {
    "software.identified": (_family.software_findings,),
    "software.end_of_life": (_family.software_findings,),
    "software.edge_device.exposed": (_family.software_findings,),
    "software.cms.outdated": (_family.software_findings,),
}
VULN_CHECKS: ChecksTable = {
    "vuln.known_exploited": (_family.vuln_findings,),
    "vuln.cve": (_family.vuln_findings,),
    "vuln.cve_unconfirmed": (_family.vuln_findings,),
}
