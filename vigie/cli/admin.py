"""``vigie init``, ``vigie config show`` and ``vigie health``: the database and the settings."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from vigie.cli._common import State, console, err_console, pass_state
from vigie.render import to_json


@click.command()
@pass_state
def init(state: State) -> None:
    """Create or upgrade the database."""
    from vigie.config import mask_url_password
    from vigie.db.migrate import upgrade_database

    settings = state.settings
    revision = upgrade_database(settings)
    console.print(
        f"database ready at {mask_url_password(settings.database.url)} (schema {revision})"
    )


@click.group()
def config() -> None:
    """Inspect the effective configuration."""


@config.command("show")
@click.option(
    "--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True
)
@pass_state
def config_show(state: State, fmt: str) -> None:
    """Print the effective configuration, secrets masked."""
    data = state.settings.masked()
    if fmt == "json":
        click.echo(to_json(data))
        return
    click.echo(as_toml(data))


def as_toml(data: dict[str, Any]) -> str:
    """The masked settings as TOML (unset keys as comments)."""
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (not set)")
            elif isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, dict):
                inner = ", ".join(
                    f"{json.dumps(str(k))} = {json.dumps(v)}" for k, v in value.items()
                )
                lines.append(f"{key} = {{ {inner} }}")
            else:
                lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


@click.command()
@pass_state
def health(state: State) -> None:
    """Exit 0 when the database answers and its schema is current (container health check)."""
    from vigie.db.migrate import current_revision, head_revision

    current = current_revision(state.settings)
    if current != head_revision():
        err_console.print(f"database schema {current} is not {head_revision()}: run 'vigie init'")
        sys.exit(1)
    console.print("ok")
