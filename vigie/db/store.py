"""The finding lifecycle: upsert by fingerprint, new / open / resolved / reopened.

The store knows nothing of what a check does. It receives a host's results
family by family and applies one rule set:

- seen for the first time: ``new``; seen again: ``open``; seen after being
  resolved: ``reopened``;
- not seen in a *complete* scan of the same (domain, address, family):
  ``missed_scans`` grows; at ``resolve_after_scans`` it becomes ``resolved``;
- an incomplete family (a probe timed out or failed) resolves nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import true
from sqlmodel import Session, col, select

from vigie.catalogue import spec_for
from vigie.db.locks import advisory_key
from vigie.db.tables import FindingEvent, FindingRecord, HostScan
from vigie.model import (
    Family,
    Finding,
    FindingStatus,
    HostResult,
    HostTarget,
    Severity,
    evidence_digest,
    utcnow,
)

DEFAULT_VANTAGE = "default"
ACTIVE_STATUSES = (FindingStatus.NEW.value, FindingStatus.OPEN.value, FindingStatus.REOPENED.value)


@dataclass(frozen=True)
class LifecyclePolicy:
    resolve_after_scans: int = 2
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    due_days: Mapping[Severity, int] = field(default_factory=dict)
    vantage: str = "default"

    def severity_of(self, check_id: str, reported: Severity | None) -> Severity:
        if check_id in self.severity_overrides:
            return self.severity_overrides[check_id]
        return reported or spec_for(check_id).severity

    def due_date(self, severity: Severity, since: datetime) -> date | None:
        days = self.due_days.get(severity)
        return None if days is None else (since + timedelta(days=days)).date()


@dataclass
class RecordOutcome:
    """What one host result changed, for progress displays and urgent alerts."""

    new: list[FindingRecord] = field(default_factory=list)
    reopened: list[FindingRecord] = field(default_factory=list)
    resolved: list[FindingRecord] = field(default_factory=list)
    seen: int = 0


def vantage_fingerprint(fingerprint: str, vantage: str) -> str:
    """The same weakness seen from another vantage point is another finding.

    An application reachable only from inside the government network then has
    its findings from the inside vantage, and its ``scan.unreachable`` from
    the outside one, side by side instead of overwriting each other.
    """
    if vantage == DEFAULT_VANTAGE:
        return fingerprint
    return hashlib.sha256(f"{fingerprint}\x1f{vantage}".encode()).hexdigest()


# Domain families whose findings name addresses (MX hosts, AAAA addresses) though
# they run once per domain: a complete run judges every address it found, so it may
# resolve the domain's records of that family whatever their address.
ANY_ADDRESS_FAMILIES = frozenset({Family.MAIL, Family.IPV6})


def _family_scope_ip(family: Family, ip: str | None) -> str | None:
    return None if family is Family.DNS or not ip else ip


def _address_filter(family: Family, ip: str | None) -> Any:
    if family in ANY_ADDRESS_FAMILIES and not ip:
        return true()
    scope_ip = _family_scope_ip(family, ip)
    return (FindingRecord.ip == scope_ip) if scope_ip else col(FindingRecord.ip).is_(None)


def record_host_result(
    session: Session,
    result: HostResult,
    *,
    run_id: int | None,
    agency_id: int | None,
    policy: LifecyclePolicy,
    source: str = "cli",
    now: datetime | None = None,
) -> RecordOutcome:
    """Apply one host's results to the findings table and log the host scan."""
    now = now or utcnow()
    outcome = RecordOutcome()
    change = _Change(session, run_id, agency_id, policy, now, outcome)
    for family, family_result in result.families.items():
        existing = _family_records(session, result.target, family, policy.vantage)
        seen = change.observe(family_result.findings, existing)
        if family_result.complete:
            change.miss(existing, seen)
    if run_id is not None:
        _log_host_scan(session, result, run_id, outcome, source, policy.vantage, now)
    return outcome


def _family_records(
    session: Session, target: HostTarget, family: Family, vantage: str
) -> dict[str, FindingRecord]:
    """The records a family's result on ``target`` may confirm or resolve, by fingerprint."""
    query = select(FindingRecord).where(
        FindingRecord.domain == target.domain,
        FindingRecord.family == family.value,
        FindingRecord.vantage == vantage,
        _address_filter(family, target.ip),
    )
    return {record.fingerprint: record for record in session.exec(query)}


@dataclass
class _Change:
    """One host result going into the findings table: new, confirmed, reopened, missed."""

    session: Session
    run_id: int | None
    agency_id: int | None
    policy: LifecyclePolicy
    now: datetime
    outcome: RecordOutcome

    def observe(
        self, findings: Sequence[Finding], existing: Mapping[str, FindingRecord]
    ) -> set[str]:
        """Record a family's findings (one observation per fingerprint); the fingerprints seen."""
        observed = [
            (vantage_fingerprint(finding.fingerprint, self.policy.vantage), finding)
            for finding in findings
        ]
        # Records kept under another address or scope: one query for the family (the
        # session first flushes what earlier families and hosts added).
        unknown = {fingerprint for fingerprint, _ in observed if fingerprint not in existing}
        elsewhere = (
            {r.fingerprint: r for r in findings_by_fingerprint(self.session, unknown)}
            if unknown
            else {}
        )
        created: list[FindingRecord] = []
        seen: set[str] = set()
        for fingerprint, finding in observed:
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            self.outcome.seen += 1
            record = existing.get(fingerprint) or elsewhere.get(fingerprint)
            if record is None:
                created.append(self._create(fingerprint, finding))
            else:
                self._confirm(record, finding)
        if created:
            self.session.flush()  # once for the family: the events need the new records' ids
            for record in created:
                _log_event(self.session, record, None, self.run_id, self.now)
        return seen

    def _create(self, fingerprint: str, finding: Finding) -> FindingRecord:
        severity = self.policy.severity_of(finding.check_id, finding.severity)
        evidence = dict(finding.evidence)
        record = FindingRecord(
            fingerprint=fingerprint,
            check_id=finding.check_id,
            family=finding.family.value,
            severity=severity.value,
            domain=finding.domain,
            ip=finding.ip,
            port=finding.port,
            discriminator=finding.discriminator,
            agency_id=self.agency_id,
            status=FindingStatus.NEW.value,
            first_seen=self.now,
            last_seen=self.now,
            status_changed_at=self.now,
            due_date=self.policy.due_date(severity, self.now),
            evidence=evidence,
            evidence_hash=evidence_digest(evidence),
            last_run_id=self.run_id,
            vantage=self.policy.vantage,
        )
        self.session.add(record)
        self.outcome.new.append(record)
        return record

    def _confirm(self, record: FindingRecord, finding: Finding) -> None:
        severity = self.policy.severity_of(finding.check_id, finding.severity)
        evidence = dict(finding.evidence)
        digest = evidence_digest(evidence)
        previous = record.status
        if previous == FindingStatus.RESOLVED.value:
            record.status = FindingStatus.REOPENED.value
            record.resolved_at = None
            record.status_changed_at = self.now
            record.due_date = self.policy.due_date(severity, self.now)
            self.outcome.reopened.append(record)
        elif previous == FindingStatus.NEW.value and record.last_run_id != self.run_id:
            record.status = FindingStatus.OPEN.value
            record.status_changed_at = self.now
        record.last_seen = self.now
        record.missed_scans = 0
        record.last_run_id = self.run_id
        record.severity = severity.value
        record.agency_id = self.agency_id if self.agency_id is not None else record.agency_id
        evidence_changed = digest != record.evidence_hash
        record.evidence = evidence
        record.evidence_hash = digest
        self.session.add(record)
        if record.status != previous or evidence_changed:
            _log_event(self.session, record, previous, self.run_id, self.now)

    def miss(self, existing: Mapping[str, FindingRecord], seen: set[str]) -> None:
        """A complete family did not see these records: count the miss, resolve after enough."""
        for fingerprint, record in existing.items():
            if fingerprint in seen or record.status not in ACTIVE_STATUSES:
                continue
            if record.last_run_id == self.run_id and self.run_id is not None:
                continue  # seen earlier in this same run (another path to it)
            record.missed_scans += 1
            if record.missed_scans >= self.policy.resolve_after_scans:
                previous = record.status
                record.status = FindingStatus.RESOLVED.value
                record.resolved_at = self.now
                record.status_changed_at = self.now
                _log_event(self.session, record, previous, self.run_id, self.now)
                self.outcome.resolved.append(record)
            self.session.add(record)


def _log_event(
    session: Session,
    record: FindingRecord,
    previous: str | None,
    run_id: int | None,
    now: datetime,
) -> None:
    assert record.id is not None
    session.add(
        FindingEvent(
            finding_id=record.id,
            run_id=run_id,
            at=now,
            from_status=previous,
            to_status=record.status,
            evidence=record.evidence,
            evidence_hash=record.evidence_hash,
        )
    )


def _log_host_scan(
    session: Session,
    result: HostResult,
    run_id: int,
    outcome: RecordOutcome,
    source: str,
    vantage: str,
    now: datetime,
) -> None:
    target = result.target
    existing = session.exec(
        select(HostScan).where(
            HostScan.run_id == run_id, HostScan.domain == target.domain, HostScan.ip == target.ip
        )
    ).first()
    row = existing or HostScan(run_id=run_id, domain=target.domain, ip=target.ip)
    row.agency = target.agency
    row.started_at = result.started_at
    row.finished_at = result.finished_at or now
    row.families = sorted(f.value for f in result.families)
    row.incomplete_families = sorted(f.value for f, r in result.families.items() if not r.complete)
    row.open_ports = sorted(p.port for p in result.open_ports)
    row.findings_count = outcome.seen
    row.vantage = vantage
    row.source = source
    session.add(row)


def serialise_hosts(session: Session, domains: Iterable[str]) -> None:
    """Make this transaction the only one recording these domains until it ends.

    Two processes may store the same host at the same moment (an analyst's scan
    during the nightly sweep). Each reads a finding's state and writes the next
    one: interleaved, both would log the same reopening, or one would overwrite
    the other's count of missed scans. PostgreSQL: a transaction-level advisory
    lock per domain, taken in sorted order (no deadlock between two batches).
    SQLite allows one writer at a time: the caller's first statement is a write,
    which takes the database's write lock for the whole transaction.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for domain in sorted(set(domains)):
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(f"domain:{domain}")}
        )


def finished_hosts(session: Session, run_id: int) -> dict[str, set[str]]:
    """{domain: {addresses done}} of a run ("" = the domain's DNS scan), for resuming."""
    done: dict[str, set[str]] = {}
    for domain, ip in session.exec(
        select(HostScan.domain, HostScan.ip).where(HostScan.run_id == run_id)
    ):
        done.setdefault(domain, set()).add(ip)
    return done


def findings_by_fingerprint(session: Session, fingerprints: Iterable[str]) -> list[FindingRecord]:
    return list(
        session.exec(
            select(FindingRecord).where(col(FindingRecord.fingerprint).in_(list(fingerprints)))
        )
    )
