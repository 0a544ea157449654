"""Urgent alerts go out beside the sweep, never on its event loop: a mail server that
accepts and then stalls for 30 s leaves the sweep's duration as it is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from tests.lab import LAB_DOMAINS, Lab, prepare_lab_database, running_lab
from tests.servers import TEST_NET
from tests.smtp_server import SmtpServer, TlsFiles
from vigie.config import Settings, load_settings
from vigie.db.session import dispose_engines, session_scope
from vigie.db.tables import OutboxMessage
from vigie.notify import urgent_alert_hook
from vigie.sweep import SweepRequest, run_sweep

pytestmark = pytest.mark.network

SMTP_IP = f"{TEST_NET}.64"
STALL_S = 30.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab"), LAB_DOMAINS) as lab:
        yield lab


def lab_settings(lab: Lab, folder: Path, server: SmtpServer) -> Settings:
    folder.mkdir()
    config = prepare_lab_database(
        lab, folder / "vigie.toml", lab.config_text(f"sqlite:///{folder}/vigie.db")
    )
    environ = {**server.environ(), "VIGIE_SMTP_TIMEOUT_S": str(STALL_S + 10)}
    environ["VIGIE_NOTIFY_CERT_EMAIL"] = "cert@cert.gouv.example"
    return load_settings(config, environ=environ)


def timed_sweep(settings: Settings, hook: object = None) -> float:
    started = time.monotonic()
    summary = run_sweep(settings, SweepRequest(all_domains=True), None, hook)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert summary.status == "completed"
    dispose_engines()
    return elapsed


def test_a_stalling_mail_server_does_not_hold_the_sweep(lab: Lab, tmp_path: Path) -> None:
    tls = TlsFiles.make(tmp_path, SMTP_IP)
    with SmtpServer(SMTP_IP, tls=tls) as server:
        # Given a mail server that takes every message and then says nothing for 30 s
        server.handler.stall_s = STALL_S
        # And the lab swept once without alerts, for its usual duration
        quiet = lab_settings(lab, tmp_path / "quiet", server)
        baseline = timed_sweep(quiet)
        # When the same sweep runs with urgent alerts (the open Redis is critical)
        loud = lab_settings(lab, tmp_path / "loud", server)
        hook = urgent_alert_hook(loud)
        with_alerts = timed_sweep(loud, hook)
        # Then it did not wait for the stalled conversation: it ended long before the stall
        # could have ended (a margin of half the stall absorbs a loaded machine)
        assert with_alerts < baseline + STALL_S / 2, (baseline, with_alerts)
        # And the alert went to the server, which still holds it: the outbox keeps it
        with session_scope(loud) as session:
            alerts = list(session.exec(select(OutboxMessage).where(OutboxMessage.kind == "alert")))
        dispose_engines()
        assert len(alerts) == 1
        assert alerts[0].status in ("queued", "sending")  # claimed: the claim lapses if we die
        assert hook.delivery._pending == 1  # still in the stalled conversation
        assert server.received == []
