"""The command line through click's CliRunner: exit codes, formats, secrets."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from vigie.cli import main
from vigie.db.session import dispose_engines

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("VIGIE_DATABASE_URL", f"sqlite:///{tmp_path}/v.db")
    yield CliRunner()
    dispose_engines()


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "targets", "scan", "findings", "config"):
        assert command in result.output


def test_init_import_list_json(runner: CliRunner) -> None:
    assert runner.invoke(main, ["init"]).exit_code == 0
    imported = runner.invoke(main, ["targets", "import", str(EXAMPLES / "registry.csv")])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(main, ["targets", "list", "--format", "json"])
    rows = json.loads(listed.output)
    assert {r["domain"] for r in rows} >= {"men.gouv.example", "teleservices.men.gouv.example"}
    csv_out = runner.invoke(main, ["targets", "list", "--format", "csv", "--agency", "DGI"])
    assert csv_out.output.splitlines()[0].startswith("agency,agency_code,domain")
    assert len(csv_out.output.splitlines()) == 3


def test_bad_registry_line_exits_2_and_leaves_the_database_unchanged(
    runner: CliRunner, tmp_path: Path
) -> None:
    runner.invoke(main, ["targets", "import", str(EXAMPLES / "registry.csv")])
    database = tmp_path / "v.db"
    before = sqlite3.connect(database).execute("select count(*) from domain").fetchone()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "agency,agency_email,domain\nA,a@a.gouv.example,new1.gouv.example\nA,broken-email,new2.gouv.example\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["targets", "import", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3:" in result.output
    after = sqlite3.connect(database).execute("select count(*) from domain").fetchone()
    assert before == after


def test_config_show_masks_secrets(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIE_SMTP_PASSWORD", "p4ss-w0rd-smtp")
    result = runner.invoke(main, ["config", "show"])
    assert result.exit_code == 0
    assert "p4ss-w0rd-smtp" not in result.output
    assert "********" in result.output


def test_bad_configuration_key_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "vigie.toml"
    config.write_text("[scan]\nconcurency = 3\n", encoding="utf-8")
    result = runner.invoke(main, ["--config", str(config), "config", "show"])
    assert result.exit_code == 2
    assert "scan.concurency: unknown key" in result.output


def test_scan_of_unregistered_domain_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["scan", "unknown.gouv.example"])
    assert result.exit_code == 2
    assert "not in the registry" in result.output


def test_targets_add_remove_and_mandates(runner: CliRunner) -> None:
    added = runner.invoke(
        main,
        [
            "targets",
            "add",
            "portail.sante.gouv.example",
            "--agency",
            "Santé",
            "--email",
            "rssi@sante.gouv.example",
        ],
    )
    assert added.exit_code == 0, added.output
    mandate = runner.invoke(
        main,
        [
            "targets", "mandate", "add", "--agency", "Santé", "--legal-basis", "Décret 2026-001 art. 4",
            "--reference", "CERT/2026/17", "--from", "2026-01-01", "--quiet-hours", "22:00-06:00",
        ],
    )  # fmt: skip
    assert mandate.exit_code == 0, mandate.output
    listed = json.loads(
        runner.invoke(main, ["targets", "mandate", "list", "--format", "json"]).output
    )
    assert listed[0]["reference"] == "CERT/2026/17"
    assert listed[0]["valid_today"] is True
    assert runner.invoke(main, ["targets", "mandate", "revoke", "1"]).exit_code == 0
    listed = json.loads(
        runner.invoke(main, ["targets", "mandate", "list", "--format", "json"]).output
    )
    assert listed[0]["valid_today"] is False
    removed = runner.invoke(main, ["targets", "remove", "portail.sante.gouv.example"])
    assert removed.exit_code == 0
    rows = json.loads(runner.invoke(main, ["targets", "list", "--format", "json"]).output)
    assert rows == []


def test_secrets_reach_neither_the_database_nor_the_logs(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "Zx9-very-secret-smtp-password"
    monkeypatch.setenv("VIGIE_SMTP_PASSWORD", secret)
    outputs = []
    for args in (
        ["-vv", "init"],
        ["-vv", "targets", "import", str(EXAMPLES / "registry.csv")],
        ["-vv", "config", "show", "--format", "json"],
        ["-vv", "notify", "--dry-run"],
        ["-vv", "notify", "--status"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert all(secret not in output for output in outputs)
    for path in tmp_path.glob("v.db*"):
        assert secret.encode() not in path.read_bytes()
