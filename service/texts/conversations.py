"""Where each texter is in the flow, kept per (phone, our number) for 24 hours of quiet.

Services take a session and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import Conversation, utcnow
from service.phone import to_e164

CONVERSATION_TTL = timedelta(hours=24)


def _key(number: str) -> str:
    return to_e164(number) or number[:20]


def load_conversation(
    session: Session,
    phone: str,
    line: str,
    *,
    now: datetime | None = None,
    ttl: timedelta = CONVERSATION_TTL,
) -> Conversation | None:
    """The texter's live conversation, or None when there is none or it has been quiet for
    longer than `ttl` (the next text then starts over at the main menu)."""
    now = now or utcnow()
    conversation = session.scalars(
        select(Conversation).where(
            Conversation.phone == _key(phone), Conversation.line == _key(line)
        )
    ).one_or_none()
    if conversation is None or conversation.last_activity_at < now - ttl:
        return None
    return conversation


def save_conversation(
    session: Session,
    phone: str,
    line: str,
    *,
    node: str | None,
    language: str | None,
    state: dict[str, Any] | None = None,
    flow_hash: str | None = None,
    now: datetime | None = None,
    ttl: timedelta = CONVERSATION_TTL,
    line_id: int | None = None,
    revision_id: int | None = None,
) -> Conversation:
    """Store where the texter is now (one row per phone and our number; safe under concurrent
    texts), on which line and flow revision. A conversation that had expired starts again: its
    started_at becomes `now`."""
    now = now or utcnow()
    table = Conversation.__table__
    insert = upsert(session, Conversation).values(
        phone=_key(phone),
        line=_key(line),
        node=node,
        language=language,
        state=state or {},
        flow_hash=flow_hash,
        line_id=line_id,
        revision_id=revision_id,
        started_at=now,
        last_activity_at=now,
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.phone, table.c.line],
            set_={
                "node": insert.excluded.node,
                "language": insert.excluded.language,
                "state": insert.excluded.state,
                "flow_hash": insert.excluded.flow_hash,
                "line_id": insert.excluded.line_id,
                "revision_id": insert.excluded.revision_id,
                "last_activity_at": insert.excluded.last_activity_at,
                "stored_at": insert.excluded.stored_at,
                "started_at": case(
                    (table.c.last_activity_at < now - ttl, insert.excluded.started_at),
                    else_=table.c.started_at,
                ),
            },
        )
    )
    return session.scalars(
        select(Conversation)
        .where(Conversation.phone == _key(phone), Conversation.line == _key(line))
        .execution_options(populate_existing=True)
    ).one()
