"""Locks the operating system or the database server releases when their holder dies.

- SQLite: an exclusive ``flock`` on a file beside the database
  (``vigie.db`` -> ``vigie.db.locks/<name>.lock``). The kernel drops it when the
  holder's last descriptor closes, which happens when the process exits, even
  when it is killed with ``-9`` and left unreaped (a zombie holds no files).
- PostgreSQL: a session-level ``pg_try_advisory_lock`` taken on a dedicated
  connection. The server drops it when that connection ends: the process died,
  or the machine it ran on is gone (once TCP notices).

Nothing here goes stale on a clock, and nothing guesses from a PID. The
``lock`` table keeps a row per held named lock for people to read (holder,
since, heartbeat); it decides nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from vigie.config import Settings
from vigie.db.session import database_url

# In-memory SQLite databases live in one process: a plain lock is enough there.
_MEMORY_LOCKS: dict[str, threading.Lock] = {}
_MEMORY_GUARD = threading.Lock()


def holder_name() -> str:
    """Who holds a lock, for people: host, PID and a nonce unique to this acquisition."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``, from the lock's name."""
    digest = hashlib.blake2b(f"vigie:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class HeldLock:
    """A lock this process holds until :meth:`release` (or until it dies)."""

    name: str
    holder: str
    _fd: int | None = None
    _connection: sa.Connection | None = None
    _engine: sa.Engine | None = None
    _memory: threading.Lock | None = None
    _path: Path | None = None
    _released: bool = field(default=False, repr=False)

    def release(self, *, forget: bool = False) -> None:
        """Give the lock back; ``forget`` also removes a lock file that will not be used again."""
        if self._released:
            return
        self._released = True
        if self._fd is not None:
            if forget and self._path is not None:
                # Unlinked while still held: a process that opened it before sees a
                # file nobody else can reach, and re-checks what the lock guarded.
                with contextlib.suppress(OSError):
                    self._path.unlink()
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self.name)}
                )
            with contextlib.suppress(Exception):
                self._connection.close()
        if self._engine is not None:
            self._engine.dispose()
        if self._memory is not None:
            self._memory.release()

    def alive(self) -> bool:
        """Whether the lock is still surely held (a PostgreSQL restart drops it)."""
        if self._released:
            return False
        if self._connection is None:
            return True
        try:
            self._connection.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True


def lock_folder(settings: Settings) -> Path | None:
    """The folder of a SQLite database's lock files (None for other databases or memory)."""
    url = database_url(settings)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        return None
    database = Path(url.database).absolute()
    return database.parent / f"{database.name}.locks"


def try_lock(settings: Settings, name: str) -> HeldLock | None:
    """Take lock ``name`` without waiting: the held lock, or None when someone holds it."""
    url = database_url(settings)
    holder = holder_name()
    if url.get_backend_name() == "sqlite":
        folder = lock_folder(settings)
        if folder is None:
            with _MEMORY_GUARD:
                memory = _MEMORY_LOCKS.setdefault(f"{url}:{name}", threading.Lock())
            if not memory.acquire(blocking=False):
                return None
            return HeldLock(name, holder, _memory=memory)
        return _try_file_lock(folder, name, holder)
    return _try_advisory_lock(url, name, holder)


def _try_file_lock(folder: Path, name: str, holder: str) -> HeldLock | None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace(':', '-').replace('/', '-')}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The file may have been removed (``forget``) between open and flock: then
        # this lock guards nothing anyone else can see; take the new file instead.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{holder}\n".encode())
    return HeldLock(name, holder, _fd=fd, _path=path)


def _try_advisory_lock(url: sa.URL, name: str, holder: str) -> HeldLock | None:
    # A connection of its own, outside every pool: the lock lives exactly as long as it.
    engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    connection: sa.Connection | None = None
    try:
        connection = engine.connect()
        connection.execute(
            sa.text("SELECT set_config('application_name', :name, false)"),
            {"name": f"vigie lock {name} {holder}"[:63]},
        )
        taken = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(name)}
        ).scalar_one()
    except BaseException:
        if connection is not None:
            connection.close()
        engine.dispose()
        raise
    if not taken:
        connection.close()
        engine.dispose()
        return None
    return HeldLock(name, holder, _connection=connection, _engine=engine)


def describe(lock: Any) -> str:
    """``holder, since ...`` from a ``Lock`` row, for refusal messages."""
    return f"{lock.holder}, since {lock.acquired_at:%Y-%m-%d %H:%M} UTC"
