"""Exports other tools take: SARIF 2.1.0 (OASIS) for findings.

A network finding has no source file, so each result is located by a URI
(``tcp://domain:port`` or ``dns:domain``) plus a logical location naming the
agency, domain and address. Accepted risks become SARIF suppressions with
their justification; the lifecycle status becomes ``baselineState``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from vigie import __version__, i18n
from vigie.db.queries import FindingView
from vigie.model import FindingStatus, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}

# The scale code-scanning tools read from rule properties ("security-severity").
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}

BASELINE_STATE = {
    FindingStatus.NEW: "new",
    FindingStatus.REOPENED: "new",
    FindingStatus.OPEN: "unchanged",
    FindingStatus.RESOLVED: "absent",
}


def findings_to_sarif(
    views: Sequence[FindingView], language: str = "fr", today: date | None = None
) -> dict[str, Any]:
    """One SARIF log with one run holding every finding of ``views``."""
    today = today or date.today()
    check_ids = sorted({v.check_id for v in views})
    rule_index = {check_id: index for index, check_id in enumerate(check_ids)}
    worst = _worst_severity_per_check(views)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vigie",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(c, worst[c], language) for c in check_ids],
                    }
                },
                "language": language,
                "columnKind": "unicodeCodePoints",
                "results": [_result(v, rule_index[v.check_id], language, today) for v in views],
            }
        ],
    }


def _worst_severity_per_check(views: Sequence[FindingView]) -> dict[str, Severity]:
    worst: dict[str, Severity] = {}
    for view in views:
        if view.check_id not in worst or view.severity > worst[view.check_id]:
            worst[view.check_id] = view.severity
    return worst


def _rule(check_id: str, severity: Severity, language: str) -> dict[str, Any]:
    title = i18n.check_title(check_id, language)
    rule: dict[str, Any] = {
        "id": check_id,
        "name": check_id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "defaultConfiguration": {"level": SARIF_LEVEL[severity]},
        "properties": {
            "tags": ["security", check_id.split(".", 1)[0]],
            "security-severity": SECURITY_SEVERITY[severity],
            "severity": severity.value,
        },
    }
    remediation = i18n.check_remediation(check_id, language)
    if remediation:
        rule["help"] = {"text": remediation}
    return rule


def _result(view: FindingView, index: int, language: str, today: date) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": view.check_id,
        "ruleIndex": index,
        "kind": "fail",
        "level": SARIF_LEVEL[view.severity],
        "message": {"text": _message(view, language)},
        "locations": [_location(view)],
        "partialFingerprints": {"vigieFingerprint/v1": view.fingerprint},
        "baselineState": BASELINE_STATE[view.status],
        "properties": _properties(view, today),
    }
    if view.accepted_until is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": view.accepted_reason or "",
                "properties": {"until": view.accepted_until.isoformat()},
            }
        ]
    return result


def _message(view: FindingView, language: str) -> str:
    where = view.domain
    if view.ip:
        where += f" ({view.ip})"
    if view.port is not None:
        where += f" port {view.port}"
    return f"{i18n.check_title(view.check_id, language)}: {where}"


def _location(view: FindingView) -> dict[str, Any]:
    host = quote(view.domain, safe=".-")
    uri = f"dns:{host}" if view.port is None else f"tcp://{host}:{view.port}"
    address = view.ip or ""
    if address and ":" in address:
        address = f"[{address}]"
    qualified = "/".join(part for part in (view.agency, view.domain) if part)
    if address:
        qualified += f"/{address}" + (f":{view.port}" if view.port is not None else "")
    return {
        "physicalLocation": {"artifactLocation": {"uri": uri}},
        "logicalLocations": [
            {"name": view.domain, "fullyQualifiedName": qualified, "kind": "resource"}
        ],
    }


def _properties(view: FindingView, today: date) -> dict[str, Any]:
    return {
        "agency": view.agency,
        "domain": view.domain,
        "ip": view.ip,
        "port": view.port,
        "severity": view.severity.value,
        "status": view.status.value,
        "firstSeen": view.first_seen.isoformat(),
        "lastSeen": view.last_seen.isoformat(),
        "dueDate": view.due_date.isoformat() if view.due_date else None,
        "overdue": view.overdue(today),
        "evidence": view.evidence,
        "findingId": view.id,
    }
