"""People of the console: CERT accounts (argon2 passwords), agency sign-in links, throttles,
and the audit log every action writes to.

Agency contacts have no account: their digest carries a link signed with the
console's secret, expiring after ``web.link_days`` and revocable per agency
(links signed before a revocation stop working). The secret is
``VIGIE_WEB_SECRET`` or, when unset, one generated once and kept in the
database, so the notify run that signs links and the console that checks them
agree without configuration.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session, col, func, select

from vigie.config import Settings
from vigie.db.tables import (
    Agency,
    AgencyLinkRevocation,
    AuditEvent,
    Recheck,
    WebSecret,
    WebUser,
)
from vigie.errors import NotFoundError, UsageError, VigieError
from vigie.model import utcnow

ROLES = ("admin", "analyst")
SECRET_NAME = "web"
LINK_SALT = "vigie.agency-link"
MIN_PASSWORD_CHARS = 12

_hasher = PasswordHasher()
# Verified against when the account does not exist, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("vigie-no-such-account")


class Throttled(VigieError):
    """Too many attempts: try again later."""

    exit_code = 2


@dataclass(frozen=True)
class Principal:
    """Who is signed in: a CERT account or an agency's link."""

    kind: str  # "user" | "agency"
    name: str  # the username, or the agency's name
    role: str  # admin | analyst | agency
    agency_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}" if self.is_staff else f"agency:{self.agency_id}"

    def sees_agency(self, agency_id: int | None) -> bool:
        return self.is_staff or (agency_id is not None and agency_id == self.agency_id)


# --- the secret ---------------------------------------------------------------


def console_secret(session: Session, settings: Settings) -> str:
    """VIGIE_WEB_SECRET, else the generated secret stored in the database."""
    if settings.web.secret is not None:
        return settings.web.secret.get_secret_value()
    row = session.get(WebSecret, SECRET_NAME)
    if row is None:
        row = WebSecret(name=SECRET_NAME, value=secrets.token_urlsafe(48))
        session.add(row)
        session.flush()
    return row.value


# --- accounts -----------------------------------------------------------------


def add_user(session: Session, username: str, password: str, role: str) -> WebUser:
    username = username.strip()
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise UsageError("a username is letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise UsageError(f"--role: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsageError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
    if session.exec(select(WebUser).where(WebUser.username == username)).first() is not None:
        raise UsageError(f"user {username!r} exists")
    user = WebUser(username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[WebUser]:
    return list(session.exec(select(WebUser).order_by(col(WebUser.username))))


def disable_user(session: Session, username: str) -> WebUser:
    user = session.exec(select(WebUser).where(WebUser.username == username)).first()
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    user.active = False
    session.add(user)
    return user


def authenticate(session: Session, username: str, password: str) -> WebUser | None:
    """The active account if the password matches (argon2), else None."""
    user = session.exec(select(WebUser).where(WebUser.username == username.strip())).first()
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    return user


def active_user(session: Session, username: str) -> WebUser | None:
    user = session.exec(select(WebUser).where(WebUser.username == username)).first()
    return user if user is not None and user.active else None


# --- agency links -------------------------------------------------------------


def _link_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=LINK_SALT)


def agency_link_token(session: Session, settings: Settings, agency_id: int) -> str:
    return str(_link_serializer(console_secret(session, settings)).dumps({"agency": agency_id}))


def agency_link(session: Session, settings: Settings, agency_id: int) -> str | None:
    """The sign-in URL for an agency's contacts, when ``web.base_url`` is set."""
    if not settings.web.base_url:
        return None
    return f"{settings.web.base_url}/link/{agency_link_token(session, settings, agency_id)}"


def agency_from_link(session: Session, settings: Settings, token: str) -> Agency | None:
    """The agency a link opens, or None if forged, expired, revoked or the agency is gone."""
    serializer = _link_serializer(console_secret(session, settings))
    try:
        data, signed_at = serializer.loads(
            token, max_age=settings.web.link_days * 86400, return_timestamp=True
        )
    except (BadSignature, SignatureExpired):
        return None
    agency_id = data.get("agency") if isinstance(data, dict) else None
    if not isinstance(agency_id, int):
        return None
    agency = session.get(Agency, agency_id)
    if agency is None or not agency.active:
        return None
    revoked = session.exec(
        select(func.max(AgencyLinkRevocation.revoked_before)).where(
            AgencyLinkRevocation.agency_id == agency_id
        )
    ).first()
    # itsdangerous signs with whole seconds: a link signed in the second of a
    # revocation counts as revoked.
    if revoked is not None and signed_at <= _as_utc(revoked):
        return None
    return agency


def link_signed_at(session: Session, settings: Settings, token: str) -> float:
    """When a (valid) link was signed, as a POSIX timestamp."""
    serializer = _link_serializer(console_secret(session, settings))
    _, signed_at = serializer.loads(token, return_timestamp=True)
    return float(signed_at.timestamp())


def link_still_valid(session: Session, agency_id: int, signed_at: float) -> bool:
    """A session opened by a link ends when the agency's links are revoked."""
    revoked = session.exec(
        select(func.max(AgencyLinkRevocation.revoked_before)).where(
            AgencyLinkRevocation.agency_id == agency_id
        )
    ).first()
    return revoked is None or signed_at > _as_utc(revoked).timestamp()


def revoke_agency_links(session: Session, agency_id: int, by: str) -> AgencyLinkRevocation:
    row = AgencyLinkRevocation(agency_id=agency_id, revoked_before=utcnow(), revoked_by=by)
    session.add(row)
    session.flush()
    return row


def _as_utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- audit and throttles ------------------------------------------------------


def audit(
    session: Session,
    actor: str,
    action: str,
    *,
    target: str = "",
    agency_id: int | None = None,
    client: str = "",
    **details: Any,
) -> AuditEvent:
    event = AuditEvent(
        actor=actor,
        action=action,
        target=target,
        agency_id=agency_id,
        client=client,
        details=details,
    )
    session.add(event)
    return event


def check_login_throttle(
    session: Session, settings: Settings, username: str, client: str, now: datetime | None = None
) -> None:
    """Refuse a sign-in after ``web.login_failures`` failures for the account or the
    address within ``web.login_window_s``."""
    since = (now or utcnow()) - timedelta(seconds=settings.web.login_window_s)
    failures = list(
        session.exec(
            select(AuditEvent.target, AuditEvent.client).where(
                AuditEvent.action == "login_failed", AuditEvent.at >= since
            )
        )
    )
    by_account = sum(1 for target, _ in failures if target == username)
    by_client = sum(1 for _, address in failures if client and address == client)
    if max(by_account, by_client) >= settings.web.login_failures:
        raise Throttled("too many failed sign-ins: wait a few minutes")


def check_recheck_throttle(
    session: Session, settings: Settings, agency_id: int | None, now: datetime | None = None
) -> None:
    """An agency asks for at most ``web.rechecks_per_day`` re-checks in 24 hours."""
    since = (now or utcnow()) - timedelta(days=1)
    count = session.exec(
        select(func.count())
        .select_from(Recheck)
        .where(
            Recheck.agency_id == agency_id,
            Recheck.requested_at >= since,
            col(Recheck.requested_by).startswith("agency:"),
            Recheck.status != "failed",  # refused before scanning (another sweep ran)
        )
    ).one()
    if count >= settings.web.rechecks_per_day:
        raise Throttled(
            f"{settings.web.rechecks_per_day} re-checks a day per agency: the next one tomorrow"
        )
