"""Agency emails against a real SMTP server (aiosmtpd with STARTTLS and AUTH) and a real database.

Findings are recorded through the store (``record_host_result``) exactly as a
sweep records them; what is asserted is what the SMTP server received.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import SQLModel, select

from tests.servers import TEST_NET
from tests.smtp_server import Received, SmtpServer, TlsFiles, free_port, running_smtp
from vigie.cli import main
from vigie.config import Settings, load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.queries import FindingView
from vigie.db.session import dispose_engines, get_engine, session_scope
from vigie.db.store import RecordOutcome, record_host_result
from vigie.db.tables import (
    Agency,
    Contact,
    ContactRole,
    Domain,
    FindingNotice,
    OutboxMessage,
    ScanRun,
)
from vigie.model import (
    Family,
    FamilyResult,
    Finding,
    FindingStatus,
    HostResult,
    HostTarget,
    Severity,
    utcnow,
)
from vigie.notify import (
    FAILED,
    QUEUED,
    SENT,
    NotifyLocked,
    backoff,
    deliver_outbox,
    email_for_row,
    export_eml,
    run_notify,
    urgent_alert_hook,
)
from vigie.notify._problems import (
    ACTIVE,
    RESOLVED,
    Notice,
    SelectionRules,
    group_problems,
    select_for_digest,
)
from vigie.sweep import lifecycle_policy

SMTP_IP = f"{TEST_NET}.61"
IMPLICIT_TLS_IP = f"{TEST_NET}.62"
DOWN_IP = f"{TEST_NET}.69"
SILENT_IP = f"{TEST_NET}.68"
CERT = "soc@cert.gouv.ml"
SENDER = "vigie@cert.gouv.ml"
HOSTILE = "nginx/1.18\r\nBcc: attacker@evil.example\r\nSubject: pwned <script>alert(1)</script>"
EXPECTED_HEADERS = {
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "content-language",
    "auto-submitted",
    "x-auto-response-suppress",
    "mime-version",
    "content-type",
}

pytestmark = pytest.mark.network


# --- servers, settings, registry ---------------------------------------------------


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    yield from running_smtp(SMTP_IP, tmp_path_factory.mktemp("smtp"))


@pytest.fixture
def server(smtp: SmtpServer) -> SmtpServer:
    smtp.reset()
    return smtp


def make_settings(
    tmp_path: Path, smtp_environ: dict[str, str], database_url: str | None = None, **extra: str
) -> Settings:
    environ = {
        "VIGIE_DATABASE_URL": database_url or f"sqlite:///{tmp_path}/vigie.db",
        "VIGIE_SMTP_FROM": SENDER,
        "VIGIE_NOTIFY_CERT_EMAIL": CERT,
        **smtp_environ,
        **extra,
    }
    settings = load_settings(environ=environ)
    upgrade_database(settings)
    # Tables added after the initial migration was generated (FindingNotice).
    SQLModel.metadata.create_all(get_engine(settings))
    return settings


@pytest.fixture
def settings(tmp_path: Path, server: SmtpServer) -> Iterator[Settings]:
    yield make_settings(tmp_path, server.environ())
    dispose_engines()


@pytest.fixture
def any_db_settings(tmp_path: Path, server: SmtpServer, database_url: str) -> Iterator[Settings]:
    """Settings on SQLite, then on a real PostgreSQL server: the outbox's claims on both."""
    yield make_settings(tmp_path, server.environ(), database_url)
    dispose_engines()


@dataclass
class Registered:
    agency_id: int
    name: str
    domains: list[str]


def register(
    settings: Settings,
    name: str,
    domains: list[str],
    *,
    language: str = "fr",
    security: tuple[str, ...] = (),
    technical: tuple[str, ...] = (),
    escalation: tuple[str, ...] = (),
    operators: dict[str, str] | None = None,
) -> Registered:
    with session_scope(settings) as session:
        agency = Agency(name=name, language=language)
        session.add(agency)
        session.flush()
        assert agency.id is not None
        domain_ids = {}
        for domain_name in domains:
            domain = Domain(name=domain_name, agency_id=agency.id)
            session.add(domain)
            session.flush()
            domain_ids[domain_name] = domain.id
        for role, addresses in (
            (ContactRole.SECURITY, security),
            (ContactRole.TECHNICAL, technical),
            (ContactRole.ESCALATION, escalation),
        ):
            for address in addresses:
                session.add(Contact(agency_id=agency.id, email=address, role=role))
        for domain_name, address in (operators or {}).items():
            session.add(
                Contact(
                    agency_id=agency.id,
                    email=address,
                    role=ContactRole.OPERATOR,
                    domain_id=domain_ids[domain_name],
                )
            )
        return Registered(agency.id, name, domains)


def scan(
    settings: Settings,
    agency: Registered,
    domain: str,
    ip: str,
    findings: list[Finding],
    *,
    families: tuple[Family, ...] = (Family.HTTP,),
    now: datetime | None = None,
) -> RecordOutcome:
    """Store one complete host scan, as the sweep does."""
    with session_scope(settings) as session:
        run = ScanRun()
        session.add(run)
        session.flush()
        return record_host_result(
            session,
            host_result(agency, domain, ip, findings, families),
            run_id=run.id,
            agency_id=agency.agency_id,
            policy=lifecycle_policy(settings),
            now=now,
        )


def host_result(
    agency: Registered, domain: str, ip: str, findings: list[Finding], families: tuple[Family, ...]
) -> HostResult:
    result = HostResult(target=HostTarget(domain, ip, agency.name))
    for family in families:
        result.families[family] = FamilyResult(
            family, [f for f in findings if f.family is family], complete=True
        )
    return result


def hsts_missing(domain: str, ip: str) -> Finding:
    return Finding("http.hsts.missing", domain, ip, 443, evidence={"url": f"https://{domain}/"})


def env_file(domain: str, ip: str) -> Finding:
    return Finding(
        "http.exposed.env_file",
        domain,
        ip,
        443,
        "/.env",
        evidence={"url": f"https://{domain}/.env", "excerpt": "DB_PASSWORD=***"},
    )


def expired_certificate(domain: str, ip: str) -> Finding:
    return Finding(
        "tls.cert.expired", domain, ip, 443, evidence={"not_after": "2024-01-01T00:00:00Z"}
    )


def parts(received: Received) -> tuple[EmailMessage, str, str]:
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    plain, html = list(message.iter_parts())
    assert plain.get_content_type() == "text/plain"  # text first: light for slow links
    assert html.get_content_type() == "text/html"
    assert not any(part.get_filename() for part in message.walk())  # no attachment
    return message, str(plain.get_content()), str(html.get_content())


def outbox(settings: Settings) -> list[OutboxMessage]:
    with session_scope(settings) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- digests as received -----------------------------------------------------------


def test_digest_in_each_agency_language_with_both_parts_and_remediation(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a French-speaking agency with an operator, and an English-speaking one
    sante = register(
        settings,
        "Ministère de la Santé",
        ["sante.gouv.ml", "rdv.sante.gouv.ml"],
        security=("rssi@sante.gouv.ml",),
        technical=("dsi@sante.gouv.ml",),
        operators={"rdv.sante.gouv.ml": "noc@hebergeur.ml"},
    )
    ambassade = register(
        settings, "Embassy desk", ["desk.gouv.ml"], language="en", security=("it@desk.gouv.ml",)
    )
    scan(
        settings,
        sante,
        "sante.gouv.ml",
        "41.73.1.10",
        [hsts_missing("sante.gouv.ml", "41.73.1.10")],
    )
    scan(
        settings,
        sante,
        "rdv.sante.gouv.ml",
        "41.73.1.11",
        [env_file("rdv.sante.gouv.ml", "41.73.1.11")],
    )
    scan(
        settings,
        ambassade,
        "desk.gouv.ml",
        "41.73.2.1",
        [hsts_missing("desk.gouv.ml", "41.73.2.1")],
    )

    # When the notify run goes
    report = run_notify(settings)

    # Then three messages were accepted: two digests and the operator's copy
    assert report.delivery is not None and len(report.delivery.sent) == 3
    assert {row.status for row in outbox(settings)} == {SENT}
    (french,) = server.messages_to("rssi@sante.gouv.ml")
    message, text, html = parts(french)
    assert message["From"] == SENDER
    assert message["To"] == "rssi@sante.gouv.ml"
    assert message["Cc"] == "dsi@sante.gouv.ml"
    assert message["Reply-To"] == CERT
    assert message["Bcc"] is None and CERT in french.rcpt_tos  # the CERT in the envelope only
    assert message["Content-Language"] == "fr"
    assert message["Subject"] == (
        "Rapport Vigie pour Ministère de la Santé : nouveaux 2, résolus 0, ouverts 2"
    )
    assert "Nouveaux problèmes" in text and "Nouveaux problèmes" in html
    assert "En-tête HSTS absent" in text  # the French title from the catalogue
    assert "Configuration pour nginx" in text and "Configuration pour IIS" in text
    assert (
        'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;' in text
    )
    assert "Header always set Strict-Transport-Security" in text  # Apache
    assert "Notes de vos applications" in text
    assert re.search(r"rdv\.sante\.gouv\.ml: [A-F]", text)
    assert french.data.count(b"Message-ID:") == 1

    (operator,) = server.messages_to("noc@hebergeur.ml")
    message, text, _ = parts(operator)
    assert "(vos applications)" in str(message["Subject"])
    assert "rdv.sante.gouv.ml" in text and "sante.gouv.ml (41.73.1.10)" not in text  # its own only

    (english,) = server.messages_to("it@desk.gouv.ml")
    message, text, html = parts(english)
    assert message["Content-Language"] == "en"
    assert message["Subject"] == "Vigie digest for Embassy desk: new 1, resolved 0, open 1"
    assert "New problems" in text and "What to do:" in html
    assert "Nouveaux" not in text


def test_nothing_new_means_no_digest_and_resolved_is_told_once(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a digest already sent for two problems
    agency = register(settings, "Douanes", ["douanes.gouv.ml"], security=("rssi@douanes.gouv.ml",))
    ip = "41.73.3.1"
    findings = [hsts_missing("douanes.gouv.ml", ip), expired_certificate("douanes.gouv.ml", ip)]
    scan(settings, agency, "douanes.gouv.ml", ip, findings, families=(Family.HTTP, Family.TLS))
    run_notify(settings)
    assert len(server.received) == 1

    # When nothing changed, no digest; when the certificate is fixed (two clean scans), one
    run_notify(settings)
    assert len(server.received) == 1
    for _ in range(2):
        scan(
            settings,
            agency,
            "douanes.gouv.ml",
            ip,
            findings[:1],
            families=(Family.HTTP, Family.TLS),
        )
    run_notify(settings)
    run_notify(settings)

    # Then the second digest announces the fix, once
    assert len(server.received) == 2
    message, text, _ = parts(server.received[1])
    assert message["Subject"] == "Rapport Vigie pour Douanes : nouveaux 0, résolus 1, ouverts 1"
    assert "Résolus depuis le dernier rapport" in text
    assert "Certificat expiré" in text.split("Résolus depuis le dernier rapport")[1]
    # with the grade's trend since the previous digest
    assert re.search(r"- douanes\.gouv\.ml: [A-F]\+? \(auparavant [A-F]\+?, en progrès\)", text)


def test_recall_follows_the_interval_of_each_severity(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a high (60 days) and a medium (120 days) problem told today
    agency = register(settings, "Justice", ["justice.gouv.ml"], security=("rssi@justice.gouv.ml",))
    ip = "41.73.4.1"
    findings = [hsts_missing("justice.gouv.ml", ip), expired_certificate("justice.gouv.ml", ip)]
    scan(settings, agency, "justice.gouv.ml", ip, findings, families=(Family.HTTP, Family.TLS))
    told = utcnow()
    run_notify(settings, now=told)

    # When 59 days pass, nothing is recalled; at 61 days the high one only
    run_notify(settings, now=told + timedelta(days=59))
    digests = [m for m in server.messages_to("rssi@justice.gouv.ml")]
    assert len(digests) == 1
    run_notify(settings, now=told + timedelta(days=61))

    # Then
    digests = server.messages_to("rssi@justice.gouv.ml")
    assert len(digests) == 2
    _, text, _ = parts(digests[1])
    recalled = text.split("Rappel : problèmes toujours ouverts")[1]
    assert "Certificat expiré" in recalled and "HSTS" not in recalled
    assert "Nouveaux problèmes : 0" in text


def test_one_problem_one_message_for_a_server_behind_many_names(
    settings: Settings, server: SmtpServer
) -> None:
    # Given one web server (one address) answering for three names of the agency
    names = ["www.mines.gouv.ml", "mines.gouv.ml", "intranet.mines.gouv.ml"]
    agency = register(settings, "Mines", names, security=("rssi@mines.gouv.ml",))
    for name in names:
        scan(settings, agency, name, "41.73.5.5", [hsts_missing(name, "41.73.5.5")])

    # When
    run_notify(settings)

    # Then the weakness is reported once, listing the three places
    (received,) = server.received
    message, text, html = parts(received)
    assert message["Subject"] == "Rapport Vigie pour Mines : nouveaux 1, résolus 0, ouverts 1"
    assert text.count("En-tête HSTS absent") == 1
    for name in names:
        assert f"{name} (41.73.5.5) port 443" in text
        assert f"<li>{name} (41.73.5.5) port 443</li>" in html


def test_hostile_evidence_never_reaches_a_header_and_is_escaped_in_html(
    settings: Settings, server: SmtpServer
) -> None:
    # Given evidence from a scanned server crafted to inject headers and script,
    # and an agency name with a line break typed into the registry
    agency = register(
        settings,
        "Agence\r\nBcc: attacker@evil.example",
        ["agence.gouv.ml"],
        security=("rssi@agence.gouv.ml",),
    )
    finding = Finding(
        "http.version_disclosed",
        "agence.gouv.ml",
        "41.73.6.6",
        443,
        "server",
        evidence={"header": "Server", "value": HOSTILE},
    )
    scan(settings, agency, "agence.gouv.ml", "41.73.6.6", [finding])

    # When
    run_notify(settings)

    # Then no header carries it, nobody else got the message, and HTML shows it inert
    (received,) = server.received
    message, text, html = parts(received)
    assert received.rcpt_tos == ["rssi@agence.gouv.ml", CERT]
    assert {name.lower() for name in message} <= EXPECTED_HEADERS
    for name, value in message.items():
        assert "\n" not in value and "\r" not in value, name
        assert "pwned" not in value and "<script>" not in value and "nginx" not in value, name
    headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"pwned" not in headers and b"script" not in headers
    assert message["Subject"].startswith("Rapport Vigie pour Agence Bcc: attacker@evil.example :")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "nginx/1.18\\r\\nBcc: attacker@evil.example\\r\\nSubject: pwned" in text


# --- delivery that loses nothing and sends nothing twice ----------------------------------


def test_451_leaves_messages_queued_and_the_next_run_delivers_each_exactly_once(
    any_db_settings: Settings, server: SmtpServer
) -> None:
    settings = any_db_settings
    # Given two agencies with news, and a server answering 451 to both messages
    first = register(settings, "Énergie", ["energie.gouv.ml"], security=("rssi@energie.gouv.ml",))
    second = register(settings, "Eau", ["eau.gouv.ml"], security=("rssi@eau.gouv.ml",))
    scan(
        settings,
        first,
        "energie.gouv.ml",
        "41.73.7.1",
        [hsts_missing("energie.gouv.ml", "41.73.7.1")],
    )
    scan(settings, second, "eau.gouv.ml", "41.73.7.2", [hsts_missing("eau.gouv.ml", "41.73.7.2")])
    server.script_data("451 4.3.0 try again later", "451 4.3.0 try again later")
    now = utcnow()

    # When the run meets 451
    report = run_notify(settings, now=now)

    # Then nothing was received and both wait their back-off
    assert report.delivery is not None and len(report.delivery.deferred) == 2
    assert server.received == []
    rows = outbox(settings)
    assert [(r.status, r.attempts) for r in rows] == [(QUEUED, 1), (QUEUED, 1)]
    assert all(r.last_error and r.last_error.startswith("451") for r in rows)
    assert all(r.next_attempt_at == now + backoff(settings, 1) for r in rows)

    # When a run comes before the back-off ends, then after it, then once more
    assert deliver_outbox(settings, now=now + timedelta(seconds=10)).sent == []
    later = now + backoff(settings, 1) + timedelta(seconds=1)
    assert len(deliver_outbox(settings, now=later).sent) == 2
    run_notify(settings, now=later)

    # Then each digest arrived exactly once, and no new digest repeated them
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "rssi@eau.gouv.ml",
        "rssi@energie.gouv.ml",
    ]
    assert [r.status for r in outbox(settings)] == [SENT, SENT]


def test_smtp_down_leaves_messages_queued_and_a_later_run_delivers_them(
    tmp_path: Path,
) -> None:
    # Given a configured mail server that is not running yet
    port = free_port(DOWN_IP)
    tls = TlsFiles.make(tmp_path, DOWN_IP)
    later_server = SmtpServer(DOWN_IP, port, tls=tls)
    settings = make_settings(tmp_path, later_server.environ())
    agency = register(
        settings, "Transports", ["transports.gouv.ml"], security=("rssi@transports.gouv.ml",)
    )
    scan(
        settings,
        agency,
        "transports.gouv.ml",
        "41.73.8.1",
        [env_file("transports.gouv.ml", "41.73.8.1")],
    )
    now = utcnow()

    # When the run finds it down
    report = run_notify(settings, now=now)

    # Then the digest is queued, not lost, and not counted as told twice
    assert report.delivery is not None and report.delivery.unavailable is not None
    (row,) = outbox(settings)
    assert (row.status, row.attempts) == (QUEUED, 1)
    assert "ConnectionRefusedError" in (row.last_error or "")

    # When the server is up and the next runs go
    with later_server:
        later = now + timedelta(hours=1)
        run_notify(settings, now=later)
        run_notify(settings, now=later + timedelta(minutes=5))
        received = later_server.received
    dispose_engines()

    # Then it arrived exactly once, with the Message-ID chosen when it was queued
    assert len(received) == 1
    assert received[0].message["Message-ID"] == row.message_id
    assert [r.status for r in outbox(settings)] == [SENT]


def test_a_server_that_never_answers_times_out_and_the_message_waits(tmp_path: Path) -> None:
    # Given a "mail server" that accepts connections and never says a word
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind((SILENT_IP, 0))
    silent.listen(4)
    environ = {
        "VIGIE_SMTP_HOST": SILENT_IP,
        "VIGIE_SMTP_PORT": str(silent.getsockname()[1]),
        "VIGIE_SMTP_TIMEOUT_S": "1",
    }
    try:
        settings = make_settings(tmp_path, environ)
        agency = register(settings, "Météo", ["meteo.gouv.ml"], security=("rssi@meteo.gouv.ml",))
        domain, ip = "meteo.gouv.ml", "41.73.22.1"
        scan(settings, agency, domain, ip, [hsts_missing(domain, ip)])

        # When
        started = time.monotonic()
        report = run_notify(settings)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        dispose_engines()

    # Then the run gave up after the timeout, and the digest waits in the queue
    assert elapsed < 5
    assert report.delivery is not None and "timed out" in (report.delivery.unavailable or "")
    assert [(r.status, r.attempts) for r in outbox(settings)] == [(QUEUED, 1)]


def test_a_lapsed_claim_is_resent_as_the_same_message(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a message claimed by a run that died mid-send
    agency = register(settings, "Plan", ["plan.gouv.ml"], security=("rssi@plan.gouv.ml",))
    scan(settings, agency, "plan.gouv.ml", "41.73.9.1", [hsts_missing("plan.gouv.ml", "41.73.9.1")])
    now = utcnow()
    run_notify(settings, now=now, deliver=False)
    with session_scope(settings) as session:
        row = session.exec(select(OutboxMessage)).one()
        row.status = "sending"
        row.next_attempt_at = now + timedelta(minutes=15)
        session.add(row)
    first_build = export_eml(email_for_row(settings, row))

    # When a run comes while the claim holds, then after it lapsed
    assert deliver_outbox(settings, now=now + timedelta(minutes=1)).sent == []
    assert len(deliver_outbox(settings, now=now + timedelta(minutes=16)).sent) == 1

    # Then the message sent is byte for byte the one first built
    (received,) = server.received
    assert (
        received.data.replace(b"\r\n", b"\n").strip() == first_build.replace(b"\r\n", b"\n").strip()
    )


def test_two_delivery_runs_at_once_send_each_message_once(
    any_db_settings: Settings, server: SmtpServer
) -> None:
    settings = any_db_settings
    # Given six queued digests
    for index in range(6):
        agency = register(
            settings, f"Agence {index}", [f"a{index}.gouv.ml"], security=(f"rssi@a{index}.gouv.ml",)
        )
        scan(
            settings,
            agency,
            f"a{index}.gouv.ml",
            f"41.73.10.{index}",
            [hsts_missing(f"a{index}.gouv.ml", f"41.73.10.{index}")],
        )
    run_notify(settings, deliver=False)

    # When two runs deliver at the same time
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        deliver_outbox(settings)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then each was received exactly once
    received = sorted(r.rcpt_tos[0] for r in server.received)
    assert received == sorted(f"rssi@a{i}.gouv.ml" for i in range(6))
    assert {r.status for r in outbox(settings)} == {SENT}


# --- permanent failures, bounces, escalation ----------------------------------------------


def test_550_on_data_fails_the_digest_records_it_and_escalates(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a digest the server refuses for good
    agency = register(
        settings,
        "Finances",
        ["finances.gouv.ml"],
        security=("rssi@finances.gouv.ml",),
        escalation=("dg@finances.gouv.ml",),
    )
    scan(
        settings,
        agency,
        "finances.gouv.ml",
        "41.73.11.1",
        [env_file("finances.gouv.ml", "41.73.11.1")],
    )
    server.script_data("550 5.7.1 message refused by policy")

    # When
    report = run_notify(settings)

    # Then it is failed with the server's answer, and the escalation contact got it instead
    assert report.delivery is not None and len(report.delivery.failed) == 1
    digest, escalation = outbox(settings)
    assert digest.status == FAILED and (digest.last_error or "").startswith("550 5.7.1")
    assert escalation.kind == "escalation" and escalation.status == SENT
    (received,) = server.received
    message, text, _ = parts(received)
    assert message["To"] == "dg@finances.gouv.ml" and message["Cc"] == CERT
    assert message["Subject"] == "Escalade Vigie pour Finances : un message n'a pas pu être remis"
    assert "550 5.7.1 message refused by policy" in text
    assert "Fichier de configuration contenant des secrets" in text  # the digest itself

    # And 'vigie notify --status' shows the failure
    result = CliRunner().invoke(
        main, ["notify", "--status", "--format", "json"], env=_cli_environ(settings)
    )
    assert result.exit_code == 0, result.output
    assert '"status": "failed"' in result.output and "550 5.7.1" in result.output


def test_550_on_rcpt_marks_the_contact_unhealthy_tells_the_cert_and_escalates_next_time(
    any_db_settings: Settings, server: SmtpServer
) -> None:
    settings = any_db_settings
    # Given an agency whose only security contact's mailbox no longer exists
    agency = register(
        settings,
        "Culture",
        ["culture.gouv.ml"],
        security=("ancien@culture.gouv.ml",),
        escalation=("sg@culture.gouv.ml",),
    )
    scan(
        settings,
        agency,
        "culture.gouv.ml",
        "41.73.12.1",
        [hsts_missing("culture.gouv.ml", "41.73.12.1")],
    )
    server.refuse_recipient(
        "ancien@culture.gouv.ml", "550 5.1.1 <ancien@culture.gouv.ml>: no such user"
    )

    # When the digest goes
    report = run_notify(settings)

    # Then the contact is unhealthy and the CERT was told (the Bcc copy still went)
    assert report.delivery is not None and report.delivery.bounced == ["ancien@culture.gouv.ml"]
    with session_scope(settings) as session:
        contact = session.exec(
            select(Contact).where(Contact.email == "ancien@culture.gouv.ml")
        ).one()
    assert contact.healthy is False and "550 5.1.1" in (contact.unhealthy_reason or "")
    notices = [r for r in server.messages_to(CERT) if r.message["To"] == CERT]
    (notice,) = notices
    message, text, _ = parts(notice)
    assert message["Subject"] == "Vigie : une adresse de contact de Culture est rejetée"
    assert "ancien@culture.gouv.ml" in text and "550 5.1.1" in text

    # When a new problem appears, the digest goes to the escalation contact instead
    scan(
        settings,
        agency,
        "culture.gouv.ml",
        "41.73.12.1",
        [hsts_missing("culture.gouv.ml", "41.73.12.1"), env_file("culture.gouv.ml", "41.73.12.1")],
    )
    run_notify(settings)
    (escalated,) = server.messages_to("sg@culture.gouv.ml")
    message, text, _ = parts(escalated)
    assert message["To"] == "sg@culture.gouv.ml" and message["Cc"] == CERT
    assert "aucun contact sécurité valide" in text
    assert "ancien@culture.gouv.ml" not in escalated.rcpt_tos


def test_overdue_problems_escalate_once_to_the_escalation_contact_and_the_cert(
    settings: Settings, server: SmtpServer
) -> None:
    # Given a critical problem told to the agency (due in 15 days)
    agency = register(
        settings,
        "Intérieur",
        ["interieur.gouv.ml"],
        security=("rssi@interieur.gouv.ml",),
        escalation=("cab@interieur.gouv.ml",),
    )
    scan(
        settings,
        agency,
        "interieur.gouv.ml",
        "41.73.13.1",
        [env_file("interieur.gouv.ml", "41.73.13.1")],
    )
    now = utcnow()
    run_notify(settings, now=now)

    # When it is still open 20 days later, twice
    run_notify(settings, now=now + timedelta(days=20))
    run_notify(settings, now=now + timedelta(days=21))

    # Then one escalation, with the CERT in copy
    (received,) = server.messages_to("cab@interieur.gouv.ml")
    message, text, _ = parts(received)
    assert message["Subject"] == "Escalade Vigie pour Intérieur : problèmes en retard : 1"
    assert message["Cc"] == CERT
    assert "interieur.gouv.ml (41.73.13.1) port 443" in text


# --- TLS and authentication ----------------------------------------------------------------


def test_certificate_verification_is_on(tmp_path: Path, server: SmtpServer) -> None:
    # Given settings that do not trust the test CA
    environ = {k: v for k, v in server.environ().items() if k != "VIGIE_SMTP_CA_FILE"}
    settings = make_settings(tmp_path, environ)
    agency = register(settings, "Sport", ["sport.gouv.ml"], security=("rssi@sport.gouv.ml",))
    scan(
        settings,
        agency,
        "sport.gouv.ml",
        "41.73.14.1",
        [hsts_missing("sport.gouv.ml", "41.73.14.1")],
    )

    # When
    report = run_notify(settings)
    dispose_engines()

    # Then nothing is sent over an unverified connection; the digest waits
    assert report.delivery is not None
    assert "CERTIFICATE_VERIFY_FAILED" in (report.delivery.unavailable or "")
    assert server.received == []
    assert [r.status for r in outbox(settings)] == [QUEUED]


def test_wrong_password_or_no_tls_sends_nothing(tmp_path: Path, server: SmtpServer) -> None:
    wrong = make_settings(tmp_path, {**server.environ(), "VIGIE_SMTP_PASSWORD": "guess"})
    agency = register(wrong, "Pêche", ["peche.gouv.ml"], security=("rssi@peche.gouv.ml",))
    scan(
        wrong, agency, "peche.gouv.ml", "41.73.15.1", [hsts_missing("peche.gouv.ml", "41.73.15.1")]
    )
    report = run_notify(wrong)
    assert report.delivery is not None and "login refused: 535" in (
        report.delivery.unavailable or ""
    )

    in_clear = make_settings(tmp_path, {**server.environ(starttls=False)})
    report = deliver_outbox(in_clear, now=utcnow() + timedelta(days=1))
    assert "password would travel in clear" in (report.unavailable or "")
    dispose_engines()
    assert server.received == []


# The server (not vigie) warns that it takes AUTH without STARTTLS: here the whole connection is TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_delivery(tmp_path: Path) -> None:
    tls = TlsFiles.make(tmp_path, IMPLICIT_TLS_IP)
    with SmtpServer(IMPLICIT_TLS_IP, tls=tls, implicit_tls=True) as implicit:
        settings = make_settings(tmp_path, implicit.environ())
        agency = register(
            settings, "Poste", ["poste.gouv.ml"], language="en", security=("it@poste.gouv.ml",)
        )
        scan(
            settings,
            agency,
            "poste.gouv.ml",
            "41.73.16.1",
            [hsts_missing("poste.gouv.ml", "41.73.16.1")],
        )
        run_notify(settings)
        received = implicit.received
    dispose_engines()
    assert [r.rcpt_tos for r in received] == [["it@poste.gouv.ml", CERT]]


# --- urgent alerts ----------------------------------------------------------------------------


def test_urgent_alert_is_sent_after_the_host_is_stored_and_not_repeated_by_the_digest(
    settings: Settings, server: SmtpServer
) -> None:
    # Given an agency with an operator for the application, and the sweep's hook
    agency = register(
        settings,
        "Éducation",
        ["examens.education.gouv.ml"],
        security=("rssi@education.gouv.ml",),
        operators={"examens.education.gouv.ml": "noc@prestataire.ml"},
    )
    hook = urgent_alert_hook(settings)
    domain, ip = "examens.education.gouv.ml", "41.73.17.1"
    findings = [env_file(domain, ip), hsts_missing(domain, ip)]

    # When a host with a critical finding is stored, as the sweep stores it
    with session_scope(settings) as session:
        run = ScanRun()
        session.add(run)
        session.flush()
        result = host_result(agency, domain, ip, findings, (Family.HTTP,))
        outcome = record_host_result(
            session,
            result,
            run_id=run.id,
            agency_id=agency.agency_id,
            policy=lifecycle_policy(settings),
        )
        hook(session, result, outcome)
        assert server.received == []  # not before the findings are committed

    # Then the alert went at once (by the delivery thread): the critical problem only,
    # the operator in Cc
    assert hook.drain()
    (alert,) = server.received
    message, text, _html = parts(alert)
    assert message["Subject"] == "URGENT, Vigie : problèmes de sécurité urgents pour Éducation : 1"
    assert message["To"] == "rssi@education.gouv.ml"
    assert message["Cc"] == "noc@prestataire.ml"
    assert "Fichier de configuration contenant des secrets" in text and "HSTS" not in text
    assert "Configuration pour nginx" in text

    # And the digest tells only what the alert did not
    run_notify(settings)
    digest = server.received[1]
    _, text, _ = parts(digest)
    assert "Nouveaux problèmes : 1" in text and "En-tête HSTS absent" in text
    assert "Fichier de configuration" not in text.split("Nouveaux problèmes ==")[1]


def test_urgent_alerts_wait_in_the_outbox_when_the_server_is_down(tmp_path: Path) -> None:
    port = free_port(DOWN_IP)
    tls = TlsFiles.make(tmp_path, DOWN_IP)
    later_server = SmtpServer(DOWN_IP, port, tls=tls)
    settings = make_settings(tmp_path, later_server.environ(), VIGIE_NOTIFY_RETRY_BASE_S="0")
    agency = register(
        settings,
        "Santé animale",
        ["vet.gouv.ml", "labo.vet.gouv.ml"],
        security=("rssi@vet.gouv.ml",),
    )
    hook = urgent_alert_hook(settings)
    for domain in agency.domains:
        with session_scope(settings) as session:
            result = host_result(
                agency, domain, "41.73.18.1", [env_file(domain, "41.73.18.1")], (Family.HTTP,)
            )
            outcome = record_host_result(
                session,
                result,
                run_id=None,
                agency_id=agency.agency_id,
                policy=lifecycle_policy(settings),
            )
            hook(session, result, outcome)
        hook.drain()
        assert hook.delivery.server_down  # the alert waits in the outbox
    rows = outbox(settings)
    assert [(r.kind, r.status) for r in rows] == [("alert", QUEUED), ("alert", QUEUED)]
    assert rows[1].attempts == 0  # the hook stopped trying after the first failure

    with later_server:
        run_notify(settings)
        received = later_server.received
    dispose_engines()
    assert [r.message["Subject"] for r in received] == [
        "URGENT, Vigie : problèmes de sécurité urgents pour Santé animale : 1"
    ] * 2


# --- dry run, .eml export, CLI ---------------------------------------------------------------


def _cli_environ(settings: Settings) -> dict[str, str]:
    smtp = settings.smtp
    return {
        "VIGIE_DATABASE_URL": settings.database.url,
        "VIGIE_SMTP_HOST": smtp.host,
        "VIGIE_SMTP_PORT": str(smtp.port),
        "VIGIE_SMTP_STARTTLS": "true",
        "VIGIE_SMTP_USERNAME": smtp.username or "",
        "VIGIE_SMTP_PASSWORD": smtp.password.get_secret_value() if smtp.password else "",
        "VIGIE_SMTP_CA_FILE": str(smtp.ca_file),
        "VIGIE_SMTP_FROM": SENDER,
        "VIGIE_NOTIFY_CERT_EMAIL": CERT,
    }


def test_dry_run_writes_eml_files_and_changes_nothing(
    settings: Settings, server: SmtpServer, tmp_path: Path
) -> None:
    agency = register(
        settings, "Commerce", ["commerce.gouv.ml"], security=("rssi@commerce.gouv.ml",)
    )
    scan(
        settings,
        agency,
        "commerce.gouv.ml",
        "41.73.19.1",
        [hsts_missing("commerce.gouv.ml", "41.73.19.1")],
    )
    out = tmp_path / "eml"

    result = CliRunner().invoke(
        main, ["notify", "--dry-run", "--output", str(out)], env=_cli_environ(settings)
    )

    assert result.exit_code == 0, result.output
    (eml,) = sorted(out.glob("*.eml"))
    assert eml.name == "001-digest-commerce.eml"
    parsed = Received("", [], eml.read_bytes()).message
    assert parsed["Subject"] == "Rapport Vigie pour Commerce : nouveaux 1, résolus 0, ouverts 1"
    assert outbox(settings) == [] and server.received == []
    with session_scope(settings) as session:
        assert session.exec(select(FindingNotice)).all() == []

    # And the real run sends the same digest
    result = CliRunner().invoke(main, ["notify"], env=_cli_environ(settings))
    assert result.exit_code == 0, result.output
    assert "1 queued; 1 sent, 0 deferred, 0 failed" in result.output
    assert server.received[0].message["Subject"] == parsed["Subject"]


# --- what to say (pure) ---------------------------------------------------------------------------


def view(
    finding_id: int,
    *,
    check_id: str = "http.hsts.missing",
    domain: str = "a.gouv.ml",
    ip: str | None = "41.0.0.1",
    port: int | None = 443,
    severity: Severity = Severity.MEDIUM,
    status: FindingStatus = FindingStatus.OPEN,
) -> FindingView:
    now = utcnow()
    return FindingView(
        id=finding_id,
        fingerprint=str(finding_id),
        check_id=check_id,
        severity=severity,
        domain=domain,
        ip=ip,
        port=port,
        discriminator="",
        status=status,
        first_seen=now,
        last_seen=now,
        resolved_at=None,
        due_date=None,
        evidence={},
        agency="A",
        agency_id=1,
        vantage="default",
    )


def test_grouping_links_findings_through_shared_names_and_addresses() -> None:
    views = [
        view(1, domain="a.gouv.ml", ip="41.0.0.1"),
        view(2, domain="b.gouv.ml", ip="41.0.0.1"),  # same server, another name
        view(3, domain="b.gouv.ml", ip="41.0.0.2"),  # same name, another address
        view(4, domain="c.gouv.ml", ip="41.0.0.9"),  # unrelated
        view(5, domain="a.gouv.ml", ip="41.0.0.1", port=8443),  # another port: another problem
    ]
    problems = group_problems(views)
    assert sorted(p.finding_ids for p in problems) == [(1, 2, 3), (4,), (5,)]


def test_selection_by_what_was_told() -> None:
    rules = SelectionRules(Severity.LOW, {Severity.HIGH: 60, Severity.MEDIUM: 120})
    now = utcnow()
    long_ago = now - timedelta(days=90)
    views = [
        view(1),  # never told: new
        view(2, status=FindingStatus.REOPENED),  # never told, reopened
        view(3),  # told resolved, back: reopened
        view(4, severity=Severity.HIGH),  # told 90 days ago, high: recalled
        view(5),  # told 90 days ago, medium: not yet
        view(6, status=FindingStatus.RESOLVED),  # told active: resolved
        view(7, status=FindingStatus.RESOLVED),  # never told: silent
        view(8, severity=Severity.INFO),  # below the minimum
        view(9, check_id="scan.timeout", severity=Severity.HIGH),  # the CERT's business
    ]
    notices = {
        3: Notice(RESOLVED, long_ago),
        4: Notice(ACTIVE, long_ago),
        5: Notice(ACTIVE, long_ago),
        6: Notice(ACTIVE, long_ago),
    }
    selection = select_for_digest(views, notices, rules, now)
    assert [v.id for v in selection.new] == [1]
    assert [v.id for v in selection.reopened] == [2, 3]
    assert [v.id for v in selection.recalled] == [4]
    assert [v.id for v in selection.resolved] == [6]
    assert [v.id for v in selection.still_open] == [1, 2, 3, 4, 5]


def test_two_notify_runs_at_once_queue_each_digest_once(
    settings: Settings, server: SmtpServer
) -> None:
    # Given three agencies with news
    for index in range(3):
        agency = register(
            settings, f"Office {index}", [f"o{index}.gouv.ml"], security=(f"dsi@o{index}.gouv.ml",)
        )
        domain, ip = f"o{index}.gouv.ml", f"41.73.21.{index}"
        scan(settings, agency, domain, ip, [hsts_missing(domain, ip)])

    # When two runs start at the same instant (cron and a person, say)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def notify() -> None:
        barrier.wait()
        try:
            run_notify(settings)
        except NotifyLocked:
            outcomes.append("locked")
        else:
            outcomes.append("ran")

    threads = [threading.Thread(target=notify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then each digest was queued and received once
    assert "ran" in outcomes and len(outcomes) == 2
    assert sorted(r.rcpt_tos[0] for r in server.received) == [f"dsi@o{i}.gouv.ml" for i in range(3)]
    assert len(outbox(settings)) == 3


def test_public_interface_is_complete() -> None:
    import vigie.notify as notify

    public = {
        name
        for name, value in vars(notify).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(notify.__all__) == sorted(public)
