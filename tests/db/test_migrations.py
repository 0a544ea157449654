"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import vigie.db.tables  # noqa: F401
from vigie.config import load_settings
from vigie.db.migrate import (
    HEAD_REVISION,
    current_revision,
    ensure_database,
    head_revision,
    stored_revision,
    upgrade_database,
)
from vigie.db.session import dispose_engines, get_engine


def test_migrations_match_the_models(database_url: str) -> None:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": database_url})
    upgrade_database(settings)
    assert current_revision(settings) == head_revision()
    with get_engine(settings).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    dispose_engines()
    assert differences == []


def test_upgrading_twice_is_harmless(tmp_path: object) -> None:
    settings = load_settings(environ={"VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/v.db"})
    upgrade_database(settings)
    upgrade_database(settings)
    assert current_revision(settings) == head_revision()
    dispose_engines()


def test_every_command_knows_the_head_without_alembic(tmp_path: object) -> None:
    # A new migration must move HEAD_REVISION too, or databases would never be upgraded
    assert head_revision() == HEAD_REVISION
    settings = load_settings(environ={"VIGIE_DATABASE_URL": f"sqlite:///{tmp_path}/e.db"})
    assert stored_revision(settings) is None
    ensure_database(settings)
    assert stored_revision(settings) == current_revision(settings) == HEAD_REVISION
    dispose_engines()
