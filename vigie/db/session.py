"""Engine and sessions. SQLite runs in WAL mode with a busy timeout, so a sweep
and a report can run at the same time; PostgreSQL is used as it is."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from vigie.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(settings: Settings) -> sa.URL:
    """The configured URL, with the password from the environment merged in."""
    url = make_url(settings.database.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if settings.database.password is not None and url.password is None:
        url = url.set(password=settings.database.password.get_secret_value())
    return url


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_ENGINES: dict[str, sa.Engine] = {}


def _create_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(settings: Settings) -> sa.Engine:
    """One engine (and connection pool) per database URL, per process."""
    url = database_url(settings)
    key = url.render_as_string(hide_password=False)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = _create_engine(url)
    return engine


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def dispose_engines() -> None:
    """Close pooled connections (tests, forked Celery workers)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()


def _forget_engines_in_child() -> None:
    """A forked child (a Celery pool process) must not use its parent's connections: it
    drops them without closing them (closing would end the parent's sessions too)."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)
