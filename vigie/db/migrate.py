"""Schema migrations (Alembic), run by ``vigie init`` and before every command
that needs the database, so an upgraded vigie upgrades its database itself."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from vigie.config import Settings
from vigie.db.session import get_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(settings: Settings) -> str | None:
    with get_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(settings: Settings) -> str | None:
    """Create or upgrade the schema to the newest revision; returns it."""
    engine = get_engine(settings)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return head_revision()


def ensure_database(settings: Settings) -> None:
    """Upgrade only when behind: cheap enough to call before every command."""
    if current_revision(settings) != head_revision():
        upgrade_database(settings)


def make_revision(settings: Settings, message: str, rev_id: str) -> None:
    """Developer helper: autogenerate a migration from the models (on an up-to-date database)."""
    engine = get_engine(settings)
    with engine.begin() as connection:
        command.revision(
            _alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id
        )
