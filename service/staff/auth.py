"""Staff accounts, sign-in, the session cookie, CSRF tokens and sign-in throttling.

- Passwords: argon2id (argon2-cffi's PasswordHasher), at least 12 characters.
- The session is a cookie signed with SECRET_KEY (itsdangerous): the account id, when it was
  issued and when it was last used. It lapses after 30 idle minutes and 12 hours in all; every
  request re-reads the account, so a disabled account or a changed role takes effect at once,
  and signing out ends every session of the account issued before it (copied cookies too).
- CSRF: a random token kept in its own signed cookie and repeated in a hidden form field.
- Throttling is counted from the audit log (failed sign-ins in the last 15 minutes, per
  username and per client address), so it holds across processes and restarts.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit import record_audit
from service.channels.signature import public_url
from service.config import Settings
from service.models import AuditEntry, StaffRole, StaffUser, utcnow

MIN_PASSWORD_LENGTH = 12
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_ADDRESS = 20

SESSION_COOKIE = "phoneline_staff"
CSRF_COOKIE = "phoneline_csrf"
CSRF_FIELD = "csrf_token"

SIGN_IN = "sign-in"
SIGN_IN_FAILED = "sign-in-failed"
SIGN_OUT = "sign-out"

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified when the username is unknown, so that answering takes as long as for a real one.
_DUMMY_HASH = _hasher.hash("not a password of anyone " + secrets.token_hex(8))


class AccountError(ValueError):
    """A staff account cannot be created or changed as asked (the message says why)."""


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password_rules(password)
    return str(_hasher.hash(password))


def add_staff(
    session: Session, username: str, password: str, role: StaffRole | str = StaffRole.VIEWER
) -> StaffUser:
    name = normalise_username(username)
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise AccountError("a username is 1 to 64 characters without spaces")
    role = StaffRole(role)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise AccountError(f"there is already a staff account named {name!r}")
    user = StaffUser(username=name, password_hash=hash_password(password), role=role.value)
    session.add(user)
    session.flush()
    return user


def list_staff(session: Session) -> Sequence[StaffUser]:
    return session.scalars(select(StaffUser).order_by(StaffUser.username)).all()


def disable_staff(session: Session, username: str) -> StaffUser:
    user = session.scalars(
        select(StaffUser).where(StaffUser.username == normalise_username(username))
    ).one_or_none()
    if user is None:
        raise AccountError(f"there is no staff account named {normalise_username(username)!r}")
    user.disabled = True
    return user


# -- time ----------------------------------------------------------------------------------

Clock = Callable[[], datetime]


def clock_of(request: Request) -> Clock:
    """The app's clock: `app.state.staff_clock` when a test sets one, else the real time."""
    clock: Clock = getattr(request.app.state, "staff_clock", utcnow)
    return clock


def client_address(request: Request) -> str:
    # service.middleware.TrustedProxies puts a trusted proxy's X-Forwarded-For here.
    return request.client.host if request.client else "unknown"


# -- sign-in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInResult:
    user: StaffUser | None
    throttled: bool = False


def _recent_failures(session: Session, since: datetime, **where: Any) -> int:
    query = select(func.count()).where(
        AuditEntry.action == SIGN_IN_FAILED,
        AuditEntry.at >= since,
        *[getattr(AuditEntry, column) == value for column, value in where.items()],
    )
    return session.scalar(query) or 0


def is_throttled(session: Session, username: str, address: str, now: datetime) -> bool:
    """Too many failed sign-ins in the window for this username (since its last success) or
    from this address."""
    since = now - THROTTLE_WINDOW
    last_success = session.scalar(
        select(func.max(AuditEntry.at)).where(
            AuditEntry.action == SIGN_IN, AuditEntry.actor == username, AuditEntry.at >= since
        )
    )
    by_name = _recent_failures(session, max(since, last_success or since), actor=username)
    if by_name >= MAX_FAILURES_PER_USERNAME:
        return True
    return _recent_failures(session, since, client_address=address) >= MAX_FAILURES_PER_ADDRESS


def sign_in(
    session: Session, username: str, password: str, address: str, now: datetime
) -> SignInResult:
    """Check a username and password; every attempt that is not throttled is audited."""
    name = normalise_username(username)[:64]
    if is_throttled(session, name, address, now):
        return SignInResult(None, throttled=True)
    user = session.scalars(select(StaffUser).where(StaffUser.username == name)).one_or_none()
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        verified = bool(_hasher.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        verified = False
    if user is None or not verified or user.disabled:
        reason = "wrong password" if user is not None and not verified else "unknown account"
        if user is not None and verified:
            reason = "account disabled"
        record_audit(session, name or "?", SIGN_IN_FAILED, reason, client_address=address, at=now)
        return SignInResult(None)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now
    record_audit(session, user.username, SIGN_IN, None, client_address=address, at=now)
    return SignInResult(user)


# -- the session cookie ------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffSession:
    user_id: int
    issued: float
    seen: float

    def expired(self, now: datetime) -> bool:
        stamp = now.timestamp()
        return (
            stamp - self.seen > IDLE_TIMEOUT.total_seconds()
            or stamp - self.issued > ABSOLUTE_TIMEOUT.total_seconds()
            or self.seen > stamp + 60  # from the future: not ours
        )


def _serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(settings.resolved_secret_key(), salt=f"phoneline-staff-{purpose}")


def encode_session(settings: Settings, staff_session: StaffSession) -> str:
    payload = {"u": staff_session.user_id, "i": staff_session.issued, "s": staff_session.seen}
    return str(_serializer(settings, "session").dumps(payload))


def decode_session(settings: Settings, cookie: str | None) -> StaffSession | None:
    if not cookie:
        return None
    try:
        payload = _serializer(settings, "session").loads(cookie)
        return StaffSession(int(payload["u"]), float(payload["i"]), float(payload["s"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def is_https(request: Request, settings: Settings) -> bool:
    """Whether the browser reached us over https (X-Forwarded-Proto from trusted proxies)."""
    # PUBLIC_BASE_URL is where Twilio reaches us; staff may come another way, so it is ignored.
    own = settings.model_copy(update={"public_base_url": ""})
    return public_url(request, own).startswith("https://")


def cookie_options(request: Request, settings: Settings) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": is_https(request, settings),
        "path": "/staff",
    }


# -- CSRF ----------------------------------------------------------------------------------------


def read_csrf_cookie(settings: Settings, cookie: str | None) -> str | None:
    if not cookie:
        return None
    try:
        token = _serializer(settings, "csrf").loads(cookie)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def new_csrf_cookie(settings: Settings) -> tuple[str, str]:
    """A fresh (token, cookie value)."""
    token = secrets.token_urlsafe(32)
    return token, str(_serializer(settings, "csrf").dumps(token))


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time; compared as UTF-8 bytes (compare_digest refuses non-ASCII text, and a
    posted form may hold anything)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
