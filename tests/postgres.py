"""A real PostgreSQL server for the tests, on its own loopback address.

Started once per test session from Debian's binaries, as the ``postgres``
user (PostgreSQL refuses to run as root), with a throw-away data directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import TEST_NET, running

PG_ADDRESS = f"{TEST_NET}.1"
PG_PORT = 55432


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"PostgreSQL's {name} is not installed: run 'bash scripts/setup.sh --test'")
    return path


@contextlib.contextmanager
def running_postgres(address: str, port: int, root: Path | None = None) -> Iterator[str]:
    """A PostgreSQL server on ``address:port`` with a throw-away data directory (or the one
    under ``root``, kept, so that a test can stop and start it again); yields its base URL."""
    keep = root is not None
    root = root or Path(tempfile.mkdtemp(prefix="vigie-pg-"))
    data = root / "data"
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        shutil.chown(root, user="postgres")
    if not data.exists():
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "vigie",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=run_as,
        )
    argv = [
        _pg_bin("postgres"),
        "-D", str(data),
        "-h", address,
        "-p", str(port),
        "-k", str(root),
        "-c", "fsync=off",
        "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off",
        "-c", "max_connections=200",
    ]  # fmt: skip
    try:
        with running(
            argv, listen=(address, port), log=root / "postgres.log", user=run_as, timeout_s=30
        ):
            yield f"postgresql://vigie@{address}:{port}"
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL; yield a base URL without database name."""
    with running_postgres(PG_ADDRESS, PG_PORT) as url:
        yield url


_database_counter = iter(range(1_000_000))


def fresh_database(base_url: str) -> str:
    """Create an empty database on the test server and return its URL."""
    import psycopg

    name = f"vigie_test_{os.getpid()}_{next(_database_counter)}"
    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"
