"""The web console's CERT accounts, as ``vigie users`` manages them."""

from __future__ import annotations

from typing import Any

from vigie.config import Settings
from vigie.db.session import session_scope

USER_COLUMNS = ("username", "role", "active", "created_at", "last_login_at")


def add_account(settings: Settings, username: str, password: str, role: str) -> str:
    """Create an account (password hashed with argon2id); a one-line summary."""
    from vigie.web.accounts import add_user

    with session_scope(settings) as session:
        user = add_user(session, username, password, role)
        return f"user {user.username} ({user.role}) added"


def account_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every account as a row (no password hash)."""
    from vigie.web.accounts import list_users

    with session_scope(settings) as session:
        return [
            {column: getattr(u, column) for column in USER_COLUMNS} for u in list_users(session)
        ]


def disable_account(settings: Settings, username: str) -> None:
    """Disable an account: its sessions end at their next request."""
    from vigie.web.accounts import disable_user

    with session_scope(settings) as session:
        disable_user(session, username)
