"""API tokens: made by an administrator (`phoneline api-token create`, or at /staff/admin),
shown once, kept as a SHA-256 hash, revocable, with a role (viewer or editor) and optionally
limited to some lines. A token is `plt_` and 43 URL-safe characters (256 random bits)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.lines.revisions import LineError, line_ids_named
from service.models import ApiRole, ApiToken, ApiTokenLine, Line, utcnow

TOKEN_PREFIX = "plt_"
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
TOKEN = re.compile(r"plt_[A-Za-z0-9_-]{43}")


class TokenError(ValueError):
    """A token cannot be made or changed as asked (the message says why)."""


@dataclass(frozen=True)
class Client:
    """Who is calling the API: a token's name, role and lines (None: every line)."""

    name: str
    role: str
    line_ids: frozenset[int] | None

    @property
    def actor(self) -> str:
        """As the audit log names it."""
        return f"api:{self.name}"

    @property
    def may_edit(self) -> bool:
        return self.role == ApiRole.EDITOR.value

    def may_see(self, line_id: int | None) -> bool:
        return self.line_ids is None or line_id in self.line_ids


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, name: str, role: str, *, by: str, lines: Sequence[str] = ()
) -> tuple[ApiToken, str]:
    """A new token (returned once, in the clear, to be shown once)."""
    name = name.strip().lower()
    if not NAME.fullmatch(name):
        raise TokenError("a token's name is 1 to 40 of a-z, 0-9, '.', '_' and '-'")
    if role not in tuple(ApiRole):
        raise TokenError("the role is viewer or editor")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise TokenError(f"there is already a token named {name!r}")
    try:
        found = line_ids_named(session, lines)
    except LineError as error:
        raise TokenError(str(error)) from None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=ApiRole(role).value,
        token_hash=_hash(secret),
        prefix=secret[:10],
        created_by=by[:64],
    )
    session.add(token)
    session.flush()
    session.add_all(ApiTokenLine(token_id=token.id, line_id=line_id) for line_id in found.values())
    session.flush()
    return token, secret


def revoke_token(session: Session, name: str, now: datetime | None = None) -> ApiToken:
    token = session.scalars(
        select(ApiToken).where(ApiToken.name == name.strip().lower())
    ).one_or_none()
    if token is None:
        raise TokenError(f"there is no token named {name.strip()[:40]!r}")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
    return token


def list_tokens(session: Session) -> list[tuple[ApiToken, list[str]]]:
    """Every token (revoked ones too) with the slugs of its lines (none: every line)."""
    slugs: dict[int, list[str]] = {}
    for token_id, slug in session.execute(
        select(ApiTokenLine.token_id, Line.slug)
        .join(Line, Line.id == ApiTokenLine.line_id)
        .order_by(Line.slug)
    ):
        slugs.setdefault(token_id, []).append(slug)
    tokens = session.scalars(select(ApiToken).order_by(ApiToken.name)).all()
    return [(token, slugs.get(token.id, [])) for token in tokens]


def client_of(session: Session, presented: str, now: datetime | None = None) -> Client | None:
    """The client a presented token names (and its use noted), or None: not a token, unknown,
    or revoked."""
    if not TOKEN.fullmatch(presented):
        return None
    token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == _hash(presented))
    ).one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    token.last_used_at = now or utcnow()
    lines = frozenset(
        session.scalars(select(ApiTokenLine.line_id).where(ApiTokenLine.token_id == token.id))
    )
    return Client(token.name, token.role, lines or None)
