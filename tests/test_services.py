"""The service functions the CLI and the console share: the rules that used to live in
the CLI (end of day, --fail-on, domain spelling, agency lookup), on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import idna
import pytest

from vigie.config import load_settings
from vigie.db.migrate import upgrade_database
from vigie.db.queries import FindingView
from vigie.errors import NotFoundError
from vigie.model import FindingStatus, Severity, canonical_domain
from vigie.services import registry
from vigie.services.findings import breaching, end_of_moment, only_domains


def _view(domain: str, severity: Severity, accepted: date | None = None) -> FindingView:
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    return FindingView(
        id=1,
        fingerprint="f",
        check_id="tls.missing",
        severity=severity,
        domain=domain,
        ip=None,
        port=None,
        discriminator="",
        status=FindingStatus.OPEN,
        first_seen=moment,
        last_seen=moment,
        resolved_at=None,
        due_date=None,
        evidence={},
        agency="A",
        agency_id=1,
        vantage="default",
        accepted_until=accepted,
    )


@pytest.mark.parametrize(
    "spelling",
    ["Ministère.Gouv.ML", "ministère.gouv.ml.", " MINISTÈRE.gouv.ml ", "xn--ministre-60a.gouv.ml"],
)
def test_every_spelling_of_a_domain_is_one_name(spelling: str) -> None:
    # Given the idna package's own UTS 46 / IDNA 2008 encoding as the oracle
    expected = idna.encode("ministère.gouv.ml", uts46=True).decode()
    # Then vigie's one normalisation agrees for every spelling an analyst may type
    assert canonical_domain(spelling) == expected


def test_idna_2008_keeps_sharp_s_apart() -> None:
    # IDNA 2003 mapped ß to ss; IDNA 2008 (UTS 46 non-transitional) keeps it
    assert canonical_domain("faß.de") == idna.encode("faß.de", uts46=True).decode()
    assert canonical_domain("faß.de") != "fass.de"


def test_fail_on_selects_unicode_domains_and_ignores_accepted_risks() -> None:
    # Given findings stored under the ASCII form of a Unicode domain
    stored = canonical_domain("ministère.gouv.ml")
    views = [
        _view(stored, Severity.HIGH),
        _view(stored, Severity.HIGH, accepted=date(2027, 1, 1)),
        _view(stored, Severity.LOW),
        _view("other.gouv.ml", Severity.CRITICAL),
    ]
    # When --fail-on high is asked for the domain as the analyst typed it
    selected = only_domains(views, ["Ministère.gouv.ml"])
    # Then the domain's unaccepted high finding breaches, and nothing of the other domain
    assert [v.severity for v in breaching(selected, Severity.HIGH)] == [Severity.HIGH]
    assert {v.domain for v in selected} == {stored}
    assert only_domains(views, []) == views


def test_a_date_means_its_end_and_a_time_is_kept() -> None:
    assert end_of_moment(datetime(2026, 12, 3)) == datetime(
        2026, 12, 3, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert end_of_moment(datetime(2026, 12, 3, 8, 30)) == datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


def test_registry_services_on_a_real_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fresh SQLite database
    monkeypatch.setenv("VIGIE_DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    settings = load_settings(None)
    upgrade_database(settings)
    # When a Unicode domain is registered and a mandate recorded for its agency by code
    name = registry.add_domain(
        settings,
        agency="Santé",
        domain="Ministère.gouv.ml",
        emails=["soc@sante.gouv.ml"],
        language="fr",
        mail_domain=False,
    )
    mandate_id = registry.record_mandate(
        settings,
        agency_name="santé",
        legal_basis="Décret",
        reference="M-1",
        valid_from=date(2026, 1, 1),
        valid_until=None,
        domains=(),
        cidrs=(),
        intrusiveness="active",
        quiet_hours=None,
    )
    # Then the stored name is the canonical one, and the rows say so
    assert name == canonical_domain("ministère.gouv.ml")
    assert [r["domain"] for r in registry.target_rows(settings, "SANTÉ", False)] == [name]
    rows = registry.mandate_rows(settings, date(2026, 12, 3))
    assert [(r["id"], r["agency"], r["valid_today"]) for r in rows] == [(mandate_id, "Santé", True)]
    with pytest.raises(NotFoundError):
        registry.target_rows(settings, "nobody", False)
    assert registry.deactivate_domain(settings, "MINISTÈRE.gouv.ml.") == name
