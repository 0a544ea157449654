"""SQLModel tables: the registry, scan runs, findings with their history, the outbox.

Timestamps are stored as UTC and come back timezone-aware on SQLite and
PostgreSQL alike (:class:`UTCDateTime`). Evidence is JSON.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from vigie.model import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes whatever the backend keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json(default: Any) -> Any:
    return Field(
        default_factory=lambda: default.copy(), sa_column=sa.Column(sa.JSON, nullable=False)
    )


# --- the registry -------------------------------------------------------


class Agency(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    code: str | None = Field(default=None, index=True)
    language: str = "fr"
    tags: list[str] = _json([])
    parent: str | None = None  # the ministry it reports to, for national roll-ups
    active: bool = True
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class ContactRole:
    SECURITY = "security"  # the agency's security contact: receives the digest
    TECHNICAL = "technical"
    OPERATOR = "operator"  # hosting provider or contractor: copied on its applications
    ESCALATION = "escalation"  # e.g. the ministry's CIO: overdue findings, failed delivery

    ALL = (SECURITY, TECHNICAL, OPERATOR, ESCALATION)


class Contact(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("agency_id", "email", "role", "domain_id"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    email: str
    name: str | None = None
    role: str = ContactRole.SECURITY
    domain_id: int | None = Field(default=None, foreign_key="domain.id", index=True)
    healthy: bool = True
    unhealthy_reason: str | None = None
    active: bool = True


class DomainStatus:
    ACTIVE = "active"  # registered: swept
    INACTIVE = "inactive"  # pruned from the registry: history kept, not swept
    CANDIDATE = "candidate"  # discovered, awaiting approval: never swept
    REJECTED = "rejected"


class Domain(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)  # IDNA ASCII form, lower case
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    status: str = Field(default=DomainStatus.ACTIVE, index=True)
    source: str = "registry"  # registry | manual | wordlist | axfr | ct
    tags: list[str] = _json([])
    mail_domain: bool = False
    discovered_from: str | None = None  # the registered domain a candidate was found under
    discovered_addresses: list[str] = _json([])
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class Mandate(SQLModel, table=True):
    """The legal basis under which the CERT may scan an agency's assets."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    legal_basis: str
    reference: str
    domains: list[str] = _json([])  # empty: every registered domain of the agency
    cidrs: list[str] = _json([])
    intrusiveness: str = "active"  # passive (DNS only) | active (probes)
    valid_from: date
    valid_until: date | None = None
    quiet_hours: str | None = None  # "22:00-06:00" local time: no active probes then
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


# --- scans ----------------------------------------------------------------


class RunStatus:
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # crashed or stopped: --resume finishes it
    FAILED = "failed"


class ScanRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    status: str = Field(default=RunStatus.RUNNING, index=True)
    source: str = "cli"  # cli | scheduler | cron | distributed
    families: list[str] = _json([])
    domains: list[str] = _json([])  # what was asked, so a resume knows
    hosts_planned: int = 0
    hosts_done: int = 0
    findings_count: int = 0
    vantage: str = "default"
    distributed: bool = False
    error: str | None = None
    # A sweep of the whole registry (``--all``): such runs exclude each other; runs of
    # named domains or of one agency run beside them (see vigie/db/locks.py).
    full_sweep: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class BatchStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class RunBatch(SQLModel, table=True):
    """One Celery batch of a distributed run, with the lease of the worker scanning it.

    A worker renews ``heartbeat_at`` while it scans; a batch whose lease lapsed
    (its worker was killed) is queued again at once, instead of waiting for the
    broker's visibility timeout. The run completes when every batch is done.
    """

    __table_args__ = (sa.UniqueConstraint("run_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scanrun.id", index=True)
    number: int
    status: str = Field(default=BatchStatus.QUEUED, index=True)
    payload: dict[str, Any] = _json({})  # the task's arguments, to queue it again
    worker: str | None = None
    attempts: int = 0
    queued_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class HostScan(SQLModel, table=True):
    """One finished (domain, address) scan: the audit log and the resume marker."""

    __table_args__ = (
        sa.UniqueConstraint("run_id", "domain", "ip"),
        sa.Index("ix_hostscan_agency_run", "agency", "run_id"),  # an agency's last sweep
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="scanrun.id", index=True)
    domain: str = Field(index=True)
    ip: str = ""  # "" for the per-domain (DNS) scan
    agency: str = ""
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    finished_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    families: list[str] = _json([])
    incomplete_families: list[str] = _json([])
    open_ports: list[int] = _json([])
    findings_count: int = 0
    vantage: str = "default"
    source: str = "cli"


# --- findings -------------------------------------------------------------


class FindingRecord(SQLModel, table=True):
    __tablename__ = "finding"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True, unique=True)
    check_id: str = Field(index=True)
    family: str = Field(index=True)
    severity: str = Field(index=True)
    domain: str = Field(index=True)
    ip: str | None = None
    port: int | None = None
    discriminator: str = ""
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    status: str = Field(index=True)
    first_seen: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_seen: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    resolved_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    status_changed_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    missed_scans: int = 0  # consecutive complete scans without it (flap damping)
    due_date: date | None = None
    evidence: dict[str, Any] = _json({})
    evidence_hash: str = ""
    last_run_id: int | None = Field(default=None, foreign_key="scanrun.id")
    vantage: str = "default"


class FindingEvent(SQLModel, table=True):
    """Every status change of a finding with the evidence behind it, hashed."""

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", index=True)
    # Indexed for "what changed in the last sweep" (the console's agency page).
    run_id: int | None = Field(default=None, foreign_key="scanrun.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    from_status: str | None = None
    to_status: str
    evidence: dict[str, Any] = _json({})
    evidence_hash: str = ""


class RiskAcceptance(SQLModel, table=True):
    """Comply or explain: an accepted risk, kept forever as an audit trail."""

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", index=True)
    reason: str
    accepted_by: str
    until: date
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


# --- grades, notifications, locks -----------------------------------------


class GradeRecord(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="scanrun.id", index=True)
    computed_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    grade: str
    score: int
    flagged: bool
    policy_version: str
    reasons: list[str] = _json([])


class OutboxMessage(SQLModel, table=True):
    """A message is written here before sending and marked sent only once accepted."""

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    kind: str = "digest"  # digest | alert | escalation | contact_health
    recipients: list[str] = _json([])
    subject: str
    body_text: str
    body_html: str = ""
    message_id: str = Field(index=True, unique=True)
    status: str = Field(default="queued", index=True)  # queued | sent | failed
    attempts: int = 0
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    last_error: str | None = None
    payload: dict[str, Any] = _json({})  # finding ids covered, for the digest bookkeeping
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    sent_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class FindingNotice(SQLModel, table=True):
    """What an agency was last told about a finding: drives digests, recalls and escalation."""

    finding_id: int = Field(foreign_key="finding.id", primary_key=True)
    told_status: str  # active | resolved: what the last message said of it
    first_told_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    # The last announcement or recall: the recall interval runs from here.
    last_told_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    escalated_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    outbox_id: int | None = Field(default=None, foreign_key="outboxmessage.id")


class Lock(SQLModel, table=True):
    """Who holds a named lock, for people to read (holder, since, heartbeat).

    The lock itself is held by the system (``vigie/db/locks.py``: a file lock
    beside SQLite, an advisory lock in PostgreSQL) and dies with its holder; a
    row left behind by a killed process decides nothing.
    """

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    heartbeat_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class ReportRecord(SQLModel, table=True):
    """A report handed out and what it showed, so the next one can say what changed."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # agency | overview | posture
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    generated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    period: str = ""  # the month of a posture pack
    snapshot: dict[str, Any] = _json({})  # {"findings": {id: severity}, "grades": {domain: letter}}


# --- the web console (vigie/web/) ------------------------------------------------


class WebUser(SQLModel, table=True):
    """A CERT account of the console (agency contacts sign in by link, not by account)."""

    __tablename__ = "webuser"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True)
    password_hash: str
    role: str = "analyst"  # admin | analyst
    active: bool = True
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    last_login_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class WebSecret(SQLModel, table=True):
    """The console's signing key when VIGIE_WEB_SECRET is not set: generated once, shared
    by every process on the database (the digest signs links, the console checks them)."""

    __tablename__ = "websecret"

    name: str = Field(primary_key=True)
    value: str
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class AuditEvent(SQLModel, table=True):
    """Who did what, when, from the console (and its sign-in attempts, for throttling)."""

    __tablename__ = "auditevent"
    __table_args__ = (sa.Index("ix_auditevent_action_at", "action", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    actor: str  # "analyst:alice", "agency:12", "anonymous"
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    action: str
    target: str = ""
    client: str = ""  # the client address
    details: dict[str, Any] = _json({})


class AgencyLinkRevocation(SQLModel, table=True):
    """Links of an agency signed before ``revoked_before`` no longer open the console."""

    __tablename__ = "agencylinkrevocation"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    revoked_before: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    revoked_by: str


class Recheck(SQLModel, table=True):
    """A re-check asked from the console: one application swept again now."""

    __tablename__ = "recheck"
    __table_args__ = (sa.Index("ix_recheck_agency_requested", "agency_id", "requested_at"),)

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")
    requested_by: str
    requested_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    status: str = "queued"  # queued | running | completed | interrupted | failed
    run_id: int | None = Field(default=None, foreign_key="scanrun.id")
    finished_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    summary: dict[str, Any] = _json({})
    error: str | None = None


class Explanation(SQLModel, table=True):
    """An agency's proposal to accept a finding's risk, until an analyst decides on it."""

    __tablename__ = "explanation"

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", index=True)
    reason: str
    until: date
    proposed_by: str
    proposed_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    status: str = Field(default="proposed", index=True)  # proposed | approved | refused
    decided_by: str | None = None
    decided_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    decision_note: str = ""
    acceptance_id: int | None = Field(default=None, foreign_key="riskacceptance.id")


class SeverityOverride(SQLModel, table=True):
    """A check's severity changed for this deployment by an analyst, with the reason.

    The live override of a check wins over ``findings.severity_overrides`` in the
    configuration; ending it stamps ``revoked_at`` (the row stays as the record)."""

    __tablename__ = "severityoverride"

    id: int | None = Field(default=None, primary_key=True)
    check_id: str = Field(index=True)
    severity: str
    reason: str
    set_by: str
    set_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


# --- offline vulnerability data (vigie vulns import) ---------------------------


class VulnSource(SQLModel, table=True):
    """One imported data file: what it is, how old its data is, when it came in."""

    __tablename__ = "vuln_source"
    __table_args__ = (sa.UniqueConstraint("kind", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # nvd, kev, epss, eol, osv, debian
    name: str  # the file name (re-importing a file of that name replaces its records)
    data_date: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    imported_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    records: int = 0
    sha256: str = ""


class VulnCve(SQLModel, table=True):
    """An NVD CVE record: its score and its CPE applicability (compact JSON)."""

    __tablename__ = "vuln_cve"

    cve_id: str = Field(primary_key=True)
    source_id: int = Field(index=True)
    published: str = ""
    last_modified: str = ""
    cvss: float | None = None
    cvss_version: str = ""
    summary: str = ""
    configurations: list[Any] = _json([])


class VulnCpe(SQLModel, table=True):
    """Which products a CVE names as vulnerable: the lookup key of the match index."""

    __tablename__ = "vuln_cpe"
    __table_args__ = (sa.Index("ix_vuln_cpe_product", "vendor", "product"),)

    id: int | None = Field(default=None, primary_key=True)
    cve_id: str = Field(index=True)
    source_id: int = Field(index=True)
    vendor: str
    product: str


class VulnKev(SQLModel, table=True):
    """An entry of CISA's Known Exploited Vulnerabilities catalogue."""

    __tablename__ = "vuln_kev"

    cve_id: str = Field(primary_key=True)
    source_id: int = Field(index=True)
    date_added: str = ""
    due_date: str = ""
    name: str = ""
    ransomware: str = ""


class VulnEpss(SQLModel, table=True):
    """FIRST EPSS: the probability of exploitation in the next 30 days."""

    __tablename__ = "vuln_epss"

    cve_id: str = Field(primary_key=True)
    source_id: int = Field(index=True)
    epss: float
    percentile: float


class VulnEol(SQLModel, table=True):
    """A release cycle of a product (endoflife.date shape)."""

    __tablename__ = "vuln_eol"
    __table_args__ = (sa.UniqueConstraint("product", "cycle"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(index=True)
    product: str = Field(index=True)
    cycle: str
    eol: str = ""  # "true", "false" or an ISO date
    latest: str = ""
    release_date: str = ""


class VulnDistroFix(SQLModel, table=True):
    """A distribution's verdict on a CVE for one source package and release."""

    __tablename__ = "vuln_distro_fix"
    __table_args__ = (sa.Index("ix_vuln_distro_fix_package", "distro", "package"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(index=True)
    distro: str  # debian, ubuntu
    release: str  # "12", "22.04"
    package: str
    cve_id: str
    fixed: str | None = None  # the first fixed package version; None: not fixed yet
    status: str = ""
