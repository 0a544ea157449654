"""Schema migrations (Alembic), run by ``vigie init`` and before every command
that needs the database, so an upgraded vigie upgrades its database itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from vigie.config import Settings
from vigie.db.session import get_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions (a test keeps it equal to Alembic's
# head). Every command compares the database to it; Alembic itself, a fifth of a
# second of imports, is loaded only when the database is behind.
HEAD_REVISION = "0005"


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(settings: Settings) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(settings: Settings) -> str | None:
    """Create or upgrade the schema to the newest revision; returns it."""
    from alembic import command

    engine = get_engine(settings)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    return head_revision()


def stored_revision(settings: Settings) -> str | None:
    """The revision the database is at (None for an empty one), without Alembic."""
    engine = get_engine(settings)
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_database(settings: Settings) -> None:
    """Upgrade only when behind: cheap enough to call before every command."""
    if stored_revision(settings) != HEAD_REVISION:
        upgrade_database(settings)


def make_revision(settings: Settings, message: str, rev_id: str) -> None:
    """Developer helper: autogenerate a migration from the models (on an up-to-date database)."""
    from alembic import command

    engine = get_engine(settings)
    with engine.begin() as connection:
        command.revision(
            _alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id
        )
