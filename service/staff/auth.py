"""Staff accounts, sign-in, the session cookie, CSRF tokens and sign-in throttling.

- Passwords: argon2id (argon2-cffi's PasswordHasher), at least 12 characters. An administrator
  may give an account a temporary password (`temporary_password`, shown to them once); the
  account then chooses its own (`change_password`) before it reaches any other staff page.
- The session is a cookie signed with SECRET_KEY (itsdangerous): the account id, when it was
  issued and when it was last used. It lapses after 30 idle minutes and 12 hours in all; every
  request re-reads the account, so a disabled account or a changed role takes effect at once,
  and signing out ends every session of the account issued before it (copied cookies too).
- CSRF: each browser keeps a random secret in its own signed cookie; a form carries an HMAC of
  that secret and the session the page was rendered for (`bound_csrf_token`), so a token is good
  only beside the very cookies it was made for: another browser's secret, or the same secret next
  to another session's cookie (an anonymous visitor's pair beside an administrator's session),
  is refused.
- Over https both cookies are named with the `__Host-` prefix (Secure, Path=/, no Domain), which
  a browser only accepts from this very host over https: a sibling subdomain or a page over plain
  http cannot plant one (cookie tossing). Over plain http (`make run`) they keep plain names.
- Throttling is counted from the audit log, so it holds across processes and restarts (the
  attempts of one address are checked one at a time, so that many sent at once cannot all pass
  before their failures are written), and it slows guessing without letting a stranger lock the
  owner out (OWASP's credential-stuffing guidance): a (username, client address) pair with 5
  failures in the last hour (since that pair's last success), or an address with 20 failures for
  any usernames, waits 1 minute after its latest failure, twice as long after each further one,
  at most 15 minutes. The right password from another address is never refused for what happened
  elsewhere. During a flood (100 failures from all addresses in 5 minutes) one failure is enough
  to make a pair wait: every address still gets its first try, and the flood is logged and
  counted in /metrics.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.orm import Session
from starlette.requests import Request

from service.audit import record_audit
from service.channels.signature import public_url
from service.config import Settings
from service.lines.revisions import LineError, line_ids_named
from service.metrics import SIGN_INS_THROTTLED
from service.models import AuditEntry, Line, StaffLine, StaffRole, StaffUser, utcnow

MIN_PASSWORD_LENGTH = 12
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(hours=1)
FAILURES_PER_PAIR = 5  # for one username from one address
FAILURES_PER_ADDRESS = 20  # for any usernames from one address
FIRST_DELAY = timedelta(minutes=1)
LONGEST_DELAY = timedelta(minutes=15)
FLOOD_WINDOW = timedelta(minutes=5)
FLOOD_FAILURES = 100  # from all addresses: then FAILURES_PER_PAIR_IN_A_FLOOD applies
FAILURES_PER_PAIR_IN_A_FLOOD = 1

SESSION_COOKIE = "phoneline_staff"
CSRF_COOKIE = "phoneline_csrf"
HOST_PREFIX = "__Host-"
CSRF_FIELD = "csrf_token"

SIGN_IN = "sign-in"
SIGN_IN_FAILED = "sign-in-failed"
SIGN_OUT = "sign-out"
PASSWORD_CHANGED = "change-password"

# Temporary passwords are read aloud or copied by hand: lowercase letters and digits without
# the look-alikes (0 and o, 1, l and i), in groups of four: 16 of 31 characters, about 79 bits.
TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_GROUPS = 4
TEMPORARY_GROUP_LENGTH = 4

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so that answering takes as long as for a real
    one. Made by `prepare_sign_in` when a web process starts, not when the module is imported
    (a hash takes 0.15 s, and every process, the CLI's too, imports this)."""
    return str(_hasher.hash("not a password of anyone " + secrets.token_hex(8)))


def prepare_sign_in() -> None:
    """Before the first sign-in: so that it takes as long as every other."""
    _dummy_hash()


class AccountError(ValueError):
    """A staff account cannot be created or changed as asked (the message says why)."""


class AccountExists(AccountError):
    """There is already a staff account by that name."""


def normalise_username(username: str) -> str:
    return username.strip().lower()


def is_username(name: str) -> bool:
    """Whether a (normalised) name can be a username: 1 to 64 printable characters, no spaces.
    Anything else is never looked up (PostgreSQL refuses text with NUL in it)."""
    return 0 < len(name) <= 64 and name.isprintable() and not any(c.isspace() for c in name)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password_rules(password)
    return str(_hasher.hash(password))


def _verified(stored_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def temporary_password() -> str:
    """A new random password for an administrator to hand over, e.g. `k7pe-3mvx-q2ta-hn9c`."""
    return "-".join(
        "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(TEMPORARY_GROUP_LENGTH))
        for _ in range(TEMPORARY_GROUPS)
    )


def add_staff(
    session: Session,
    username: str,
    password: str,
    role: StaffRole | str = StaffRole.VIEWER,
    *,
    temporary: bool = False,
) -> StaffUser:
    """Create an account. `temporary`: the password is one an administrator was shown, and the
    account must choose its own at its first sign-in."""
    name = normalise_username(username)
    if not is_username(name):
        raise AccountError("a username is 1 to 64 printable characters without spaces")
    if role not in tuple(StaffRole):
        raise AccountError("the role is viewer, navigator, editor or admin")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise AccountExists(f"there is already a staff account named {name!r}")
    user = StaffUser(
        username=name,
        password_hash=hash_password(password),
        role=StaffRole(role).value,
        must_change_password=temporary,
    )
    session.add(user)
    session.flush()
    return user


def account_lines(session: Session, user: StaffUser) -> frozenset[int] | None:
    """The lines an account is limited to; None: every line (none chosen, or an administrator)."""
    if user.role == StaffRole.ADMIN.value:
        return None
    ids = frozenset(
        session.scalars(select(StaffLine.line_id).where(StaffLine.user_id == user.id)).all()
    )
    return ids or None


def line_slugs_of(session: Session, user: StaffUser) -> list[str]:
    """The slugs of the lines an account is limited to (none: every line)."""
    return list(
        session.scalars(
            select(Line.slug)
            .join(StaffLine, StaffLine.line_id == Line.id)
            .where(StaffLine.user_id == user.id)
            .order_by(Line.slug)
        )
    )


def limit_to_lines(session: Session, username: str, slugs: Sequence[str]) -> StaffUser:
    """Limit an account to these lines (none: every line). Refused for an administrator (who
    manages every account, and so sees every line) and for a slug no line has."""
    user = account(session, username)
    if any(slug.strip() for slug in slugs) and user.role == StaffRole.ADMIN.value:
        raise AccountError("an administrator sees every line; choose another role to limit it")
    try:
        found = line_ids_named(session, slugs)
    except LineError as error:
        raise AccountError(str(error)) from None
    session.execute(delete(StaffLine).where(StaffLine.user_id == user.id))
    session.add_all(StaffLine(user_id=user.id, line_id=line_id) for line_id in found.values())
    session.flush()
    return user


def list_staff(session: Session) -> Sequence[StaffUser]:
    return session.scalars(select(StaffUser).order_by(StaffUser.username)).all()


class NoSuchAccount(AccountError):
    """There is no staff account by that name."""


def account(session: Session, username: str) -> StaffUser:
    """The account by this name, or NoSuchAccount."""
    name = normalise_username(username)
    user = (
        session.scalars(select(StaffUser).where(StaffUser.username == name)).one_or_none()
        if is_username(name)
        else None
    )
    if user is None:
        raise NoSuchAccount(f"there is no staff account named {name[:64]!r}")
    return user


def disable_staff(session: Session, username: str, *, by: str | None = None) -> StaffUser:
    """Disable an account (`by`: the admin doing it, None for the command line). Refused for
    the admin's own account and for the last active admin, so the dashboard always keeps one
    administrator who can sign in."""
    user = account(session, username)
    if by is not None and user.username == normalise_username(by):
        raise AccountError("you cannot disable your own account; ask another administrator")
    if user.role == StaffRole.ADMIN.value and not user.disabled:
        # Locked in one order (PostgreSQL; SQLite writes one at a time anyway), so that two
        # admins disabling each other at once cannot both succeed and leave none.
        active_admins = session.scalars(
            select(StaffUser.id)
            .where(StaffUser.role == StaffRole.ADMIN.value, StaffUser.disabled.is_(False))
            .order_by(StaffUser.id)
            .with_for_update()
        ).all()
        if not set(active_admins) - {user.id}:
            raise AccountError(
                f"{user.username} is the last active administrator; add or enable another "
                "administrator first"
            )
    user.disabled = True
    return user


def enable_staff(session: Session, username: str, now: datetime) -> StaffUser:
    """Let a disabled account sign in again. Its sessions from before `now` stay ended (a
    cookie from before it was disabled does not come back to life)."""
    user = account(session, username)
    user.disabled = False
    user.sessions_valid_after = now
    return user


def set_temporary_password(
    session: Session, username: str, now: datetime, *, by: str | None = None
) -> tuple[StaffUser, str]:
    """Give an account a new temporary password, returned to be shown once: the account's
    sessions end everywhere, and it must choose its own password at its next sign-in. Refused
    for the admin's own account (`by`), which has its current password to change it with."""
    user = account(session, username)
    if by is not None and user.username == normalise_username(by):
        raise AccountError(
            "you cannot give your own account a temporary password; change your password at "
            "/staff/password"
        )
    password = temporary_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.sessions_valid_after = now
    return user, password


class PasswordThrottled(AccountError):
    """Too many wrong passwords: the form is refused unchecked until `throttle.until`."""

    def __init__(self, throttle: Throttle) -> None:
        super().__init__("too many wrong passwords from here")
        self.throttle = throttle


def change_password(
    session: Session,
    user_id: int,
    current: str,
    new: str,
    new_again: str,
    now: datetime,
    address: str,
) -> StaffUser:
    """An account choosing its own password: `current` is its password now (a temporary one,
    usually), `new` follows the password rules, is typed twice alike and differs from `current`.
    Every session of the account issued before `now` ends (whoever else saw a temporary
    password may have signed in with it too): the caller gives its browser a new one.

    A wrong `current` is a failed sign-in (audited, `sign-in-failed`), and the sign-in limits
    apply to the form as to sign-in, so that a browser holding someone's session cannot guess
    their password here faster than at the sign-in page."""
    user = session.get(StaffUser, user_id)
    if user is None or user.disabled:
        raise NoSuchAccount("this account no longer exists or is disabled")
    throttle = throttle_for(session, user.username, address[:64], now)
    if throttle is not None:
        raise PasswordThrottled(throttle)
    if not _verified(user.password_hash, current):
        record_audit(
            session,
            user.username,
            SIGN_IN_FAILED,
            "wrong current password",
            client_address=address,
            at=now,
        )
        raise AccountError("the current password is not right")
    if new != new_again:
        raise AccountError("the two new passwords differ")
    if new == current:
        raise AccountError("the new password must differ from the current one")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.sessions_valid_after = now
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
class Throttle:
    """Why a sign-in attempt is refused unchecked, and until when."""

    limit: str  # "pair" (this username from this address) or "address"
    until: datetime
    flood: bool = False

    def seconds_left(self, now: datetime) -> int:
        return max(1, math.ceil((self.until - now).total_seconds()))

    def minutes_left(self, now: datetime) -> int:
        return math.ceil(self.seconds_left(now) / 60)


@dataclass(frozen=True)
class SignInResult:
    user: StaffUser | None
    throttle: Throttle | None = None


def _failures(
    session: Session, since: datetime, *where: ColumnElement[bool]
) -> tuple[int, datetime | None]:
    """How many failed sign-ins match since `since`, and when the latest was."""
    count, latest = session.execute(
        select(func.count(), func.max(AuditEntry.at)).where(
            AuditEntry.action == SIGN_IN_FAILED, AuditEntry.at >= since, *where
        )
    ).one()
    return int(count or 0), latest


def wait_after(failures: int, threshold: int) -> timedelta | None:
    """How long to wait after the latest failure: none below `threshold`, then FIRST_DELAY,
    doubling with each further failure, at most LONGEST_DELAY."""
    if failures < threshold:
        return None
    doublings = min(failures - threshold, 10)  # 2**10 minutes is past the cap already
    wait: timedelta = min(FIRST_DELAY * (2**doublings), LONGEST_DELAY)
    return wait


def is_flooded(session: Session, now: datetime) -> bool:
    """Whether failed sign-ins from everywhere are at the flood ceiling."""
    count, _ = _failures(session, now - FLOOD_WINDOW)
    return count >= FLOOD_FAILURES


_ATTEMPTS_LOCK = 728_140  # pg_advisory_xact_lock namespace: one checked attempt per address


def _one_attempt_at_a_time(session: Session, address: str) -> None:
    """Hold the attempts of one client address to one at a time until this transaction ends,
    so that concurrent attempts cannot all pass the limits before any of their failures is
    written. PostgreSQL: an advisory lock on the address; SQLite: a write transaction already
    begins with BEGIN IMMEDIATE, one at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:address))"),
            {"namespace": _ATTEMPTS_LOCK, "address": address},
        )


def throttle_for(session: Session, username: str, address: str, now: datetime) -> Throttle | None:
    """The limit this attempt is under, if any (see the module docstring), counted in /metrics:
    the caller refuses the attempt unchecked. The attempts of one address are checked one at a
    time: until the caller's transaction ends (and writes its failure, if any), the next waits
    here."""
    _one_attempt_at_a_time(session, address)
    since = now - THROTTLE_WINDOW
    pair_success = session.scalar(
        select(func.max(AuditEntry.at)).where(
            AuditEntry.action == SIGN_IN,
            AuditEntry.actor == username,
            AuditEntry.client_address == address,
            AuditEntry.at >= since,
        )
    )
    flood = is_flooded(session, now)
    pair_count, pair_latest = _failures(
        session,
        max(since, pair_success or since),
        AuditEntry.actor == username,
        AuditEntry.client_address == address,
    )
    address_count, address_latest = _failures(session, since, AuditEntry.client_address == address)
    pair_threshold = FAILURES_PER_PAIR_IN_A_FLOOD if flood else FAILURES_PER_PAIR
    limits = (
        ("pair", pair_count, pair_latest, pair_threshold),
        ("address", address_count, address_latest, FAILURES_PER_ADDRESS),
    )
    for limit, count, latest, threshold in limits:
        wait = wait_after(count, threshold)
        if wait is not None and latest is not None and now < latest + wait:
            SIGN_INS_THROTTLED.labels(limit=limit, flood=str(flood).lower()).inc()
            return Throttle(limit, latest + wait, flood=flood)
    return None


def sign_in(
    session: Session, username: str, password: str, address: str, now: datetime
) -> SignInResult:
    """Check a username and password. Every attempt that is checked is audited (a failure as
    `sign-in-failed`, with the reason); a throttled one is refused unchecked and counted in
    /metrics instead, so that a flood cannot fill the audit log faster than the limits allow."""
    name = normalise_username(username)[:64]
    actor = name if is_username(name) else "?"
    throttle = throttle_for(session, actor, address[:64], now)
    if throttle is not None:
        return SignInResult(None, throttle)
    user = (
        session.scalars(select(StaffUser).where(StaffUser.username == name)).one_or_none()
        if is_username(name)
        else None
    )
    verified = _verified(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not verified or user.disabled:
        reason = "wrong password" if user is not None and not verified else "unknown account"
        if user is not None and verified:
            reason = "account disabled"
        record_audit(session, actor, SIGN_IN_FAILED, reason, client_address=address, at=now)
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

    @property
    def identity(self) -> str:
        """The same for every cookie of one sign-in (`seen` moves with each request)."""
        return f"{self.user_id}:{self.issued!r}"


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


@dataclass(frozen=True)
class StaffCookies:
    """The staff cookies' names and attributes for the scheme the browser came by."""

    session: str
    csrf: str
    options: dict[str, Any]


def staff_cookies(request: Request, settings: Settings) -> StaffCookies:
    """Over https, `__Host-` names (the prefix requires Secure, Path=/ and no Domain); over
    plain http the plain names, sent to /staff only. A cookie is read only under the name of
    the scheme the request came by, so a plain one planted beside an https session is ignored."""
    if is_https(request, settings):
        return StaffCookies(
            HOST_PREFIX + SESSION_COOKIE,
            HOST_PREFIX + CSRF_COOKIE,
            {"httponly": True, "samesite": "lax", "secure": True, "path": "/"},
        )
    return StaffCookies(
        SESSION_COOKIE,
        CSRF_COOKIE,
        {"httponly": True, "samesite": "lax", "secure": False, "path": "/staff"},
    )


# -- CSRF ----------------------------------------------------------------------------------------


def read_csrf_cookie(settings: Settings, cookie: str | None) -> str | None:
    """The browser's CSRF secret, if its cookie is one we signed."""
    if not cookie:
        return None
    try:
        token = _serializer(settings, "csrf").loads(cookie)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def new_csrf_cookie(settings: Settings) -> tuple[str, str]:
    """A fresh (secret, cookie value)."""
    secret = secrets.token_urlsafe(32)
    return secret, str(_serializer(settings, "csrf").dumps(secret))


def bound_csrf_token(settings: Settings, secret: str, staff_session: StaffSession | None) -> str:
    """The token a form carries: an HMAC of the browser's CSRF secret and the session (none
    before signing in) the form was made for."""
    identity = staff_session.identity if staff_session is not None else ""
    message = f"phoneline-staff-csrf\0{secret}\0{identity}".encode()
    return hmac.new(settings.resolved_secret_key().encode(), message, hashlib.sha256).hexdigest()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time; compared as UTF-8 bytes (compare_digest refuses non-ASCII text, and a
    posted form may hold anything)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))
