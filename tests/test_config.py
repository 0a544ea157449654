"""Configuration: TOML + environment, validated once, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigie.config import load_settings
from vigie.errors import ConfigError
from vigie.model import Severity
from vigie.services.preflight import check_named_files


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigie.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_work_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.database.url == "sqlite:///./vigie.db"
    assert settings.scan.ports == "top100"
    assert settings.notify.language == "fr"
    assert settings.grading.due_days[Severity.CRITICAL] == 15


def test_file_values_and_environment_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[scope]\nallow = ["198.51.100.0/24"]\n[scan]\nports = [22, 443]\nconcurrency = 8\n'
        '[dns]\nresolvers = ["127.0.0.53", "127.0.0.54:5353"]\n',
    )
    settings = load_settings(
        path, environ={"VIGIE_SCAN_CONCURRENCY": "16", "VIGIE_DATABASE_URL": "sqlite:////tmp/x.db"}
    )
    assert settings.scope.allow == ["198.51.100.0/24"]
    assert settings.scan.ports == [22, 443]
    assert settings.scan.concurrency == 16
    assert settings.database.url == "sqlite:////tmp/x.db"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[scan]\nconcurency = 3\n", "scan.concurency: unknown key"),
        ("[scope]\nallow = ['300.1.2.0/24']\n", "scope.allow"),
        ("[schedule]\nsweep = 'every night'\n", "schedule.sweep"),
        ("[scan]\nports = [0]\n", "scan.ports"),
        ("[notify]\nlanguage = 'de'\n", "notify.language"),
        ("[dns]\nresolvers = ['ns1.example']\n", "dns.resolvers"),
        ("[nosuchsection]\nx = 1\n", "nosuchsection: unknown key"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert named in str(error.value)
    assert error.value.exit_code == 2


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VIGIE_SMTP_PASSWORD"):
        load_settings(write(tmp_path, "[smtp]\npassword = 'hunter2'\n"), environ={})


def test_secrets_from_environment_are_masked() -> None:
    settings = load_settings(
        environ={
            "VIGIE_SMTP_PASSWORD": "s3cr3t-smtp",
            "VIGIE_DATABASE_URL": "postgresql://vigie:s3cr3t-db@127.0.0.1/vigie",
        }
    )
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "s3cr3t-smtp"
    shown = str(settings.masked())
    assert "s3cr3t-smtp" not in shown
    assert "s3cr3t-db" not in shown
    assert "********" in shown


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_environment_values_keep_their_type() -> None:
    settings = load_settings(
        environ={
            "VIGIE_GRADING_POLICY": "2026.1",
            "VIGIE_SCAN_PORTS": "top100",
            "VIGIE_SCOPE_ALLOW": "127.0.0.0/8, 198.51.100.0/24",
            "VIGIE_DNS_RESOLVERS": '["127.0.0.53:5353"]',
            "VIGIE_SMTP_STARTTLS": "true",
            "VIGIE_HTTP_USER_AGENT": "vigie, CERT",
        }
    )
    assert settings.grading.policy == "2026.1"
    assert settings.scan.ports == "top100"
    assert settings.scope.allow == ["127.0.0.0/8", "198.51.100.0/24"]
    assert settings.dns.resolvers == ["127.0.0.53:5353"]
    assert settings.smtp.starttls is True
    assert settings.http.user_agent == "vigie, CERT"


def test_port_list_from_environment() -> None:
    assert load_settings(environ={"VIGIE_SCAN_PORTS": "22,443"}).scan.ports == [22, 443]
    assert load_settings(environ={"VIGIE_SCAN_PORTS": "[8443]"}).scan.ports == [8443]


# --- files the configuration names: read at load, before any packet --------------------------

BROKEN_FILES = {
    # key: (TOML line, file content): what a typing slip or a wrong path leaves behind
    "grading.policy_file": ("[grading]\npolicy_file = '{path}'\n", "[[policy]\nversion = 1\n"),
    "http.paths_file": ("[http]\npaths_file = '{path}'\n", "[[path]]\npath = 42\n"),
    "tls.extra_ca_file": (
        "[tls]\nextra_ca_file = '{path}'\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    ),
    "smtp.ca_file": ("[smtp]\nca_file = '{path}'\n", "not a certificate\n"),
}


@pytest.mark.parametrize("key", sorted(BROKEN_FILES))
def test_a_broken_file_named_by_the_configuration_stops_every_command_at_load(
    tmp_path: Path, key: str
) -> None:
    from click.testing import CliRunner

    from vigie.cli import main

    # Given a configuration naming a file that cannot be used
    line, content = BROKEN_FILES[key]
    named = tmp_path / "named-file"
    named.write_text(content, encoding="utf-8")
    config = write(tmp_path, line.format(path=named))
    # When a sweep is asked for (no registry, no database needed to get this far)
    result = CliRunner().invoke(main, ["--config", str(config), "scan", "--all", "--quiet"])
    # Then it stops with exit status 2, naming the key, and created nothing
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert not (tmp_path / "vigie.db").exists()


def test_a_missing_named_file_is_named_too(tmp_path: Path) -> None:
    config = write(tmp_path, f"[http]\npaths_file = '{tmp_path / 'gone.toml'}'\n")
    with pytest.raises(ConfigError, match=r"http\.paths_file: cannot read"):
        check_named_files(load_settings(config, environ={}))


def test_a_database_password_with_a_sqlite_url_names_both_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(
            environ={
                "VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/vigie.db",
                "VIGIE_DATABASE_PASSWORD": "s3cr3t",
            }
        )
    message = str(refused.value)
    assert "VIGIE_DATABASE_PASSWORD" in message and "database.url" in message
    assert "Invalid SQLite URL" not in message and "s3cr3t" not in message
