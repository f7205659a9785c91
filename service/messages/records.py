"""What the text line leaves behind, as plain values, and how they are written.

The SMS webhooks and the outbox worker spool these (`service.spool`); the spool writes them in
batches through `TEXT_STORE`. Every record is safe to write again (Twilio retries webhooks
and repeats callbacks, unordered): a message with a MessageSid is written once, a status never
moves back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.metrics import TEXT_DELIVERY
from service.models import (
    Conversation,
    Direction,
    Message,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from service.phone import to_e164
from service.spool.codec import Record, register
from service.spool.stores import AfterCommit, Store

# Twilio MessageStatus, in order; a status never moves back to an earlier one. Every value of
# Twilio's Message status enum is here (a status callback may carry any of them).
MESSAGE_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 4,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "partially_delivered": 4,
    "read": 5,
}
FINAL_DELIVERY = frozenset(
    {"delivered", "undelivered", "failed", "canceled", "partially_delivered", "read"}
)


@register("msg_in")
@dataclass(frozen=True, slots=True)
class MessageReceived:
    """An inbound text (Twilio's SMS webhook). `intent`: what the line understood it to ask."""

    sid: str
    phone: str
    line: str
    body: str
    segments: int
    at: datetime
    intent: str | None = None
    line_id: int | None = None
    """The line the text came to."""


@register("msg_out")
@dataclass(frozen=True, slots=True)
class MessageSent:
    """An outbound text: a TwiML reply (no MessageSid) or one the outbox sent."""

    sid: str | None
    phone: str
    line: str
    body: str
    segments: int
    status: str
    at: datetime
    line_id: int | None = None
    """The line it went out for."""


@register("msg_status")
@dataclass(frozen=True, slots=True)
class MessageStatusReported:
    """Twilio's status callback for a text we sent."""

    sid: str
    status: str
    error_code: str | None
    at: datetime
    outbox_id: int | None = None
    """The outbox row the text was (from the callback URL): Twilio took it, so that row is
    sent, even if the worker that sent it died before it could say so."""


TextRecord = MessageReceived | MessageSent | MessageStatusReported
TEXT_RECORDS = (MessageReceived, MessageSent, MessageStatusReported)


def write_text_records(session: Session, records: Sequence[TextRecord]) -> list[str]:
    """Write the records in order, in the session's transaction. Returns the final delivery
    statuses that are new (for phoneline_text_delivery_total, once committed)."""
    delivered: list[str] = []
    for record in records:
        match record:
            case MessageReceived():
                _message(session, record.sid, Direction.IN, record, "received", record.intent)
            case MessageSent():
                _message(session, record.sid, Direction.OUT, record, record.status, None)
            case MessageStatusReported():
                if _status(session, record):
                    delivered.append(record.status.lower())
    return delivered


def _write(session: Session, records: Sequence[Record], now: datetime) -> AfterCommit | None:
    delivered = write_text_records(session, records)
    if not delivered:
        return None
    return lambda: count_delivered(delivered)


def count_delivered(statuses: Sequence[str]) -> None:
    for status in statuses:
        TEXT_DELIVERY.labels(status=status).inc()


def _message(
    session: Session,
    sid: str | None,
    direction: Direction,
    record: MessageReceived | MessageSent,
    status: str,
    intent: str | None,
) -> None:
    phone = to_e164(record.phone) or record.phone[:20]
    line = to_e164(record.line) or record.line[:20]
    conversation_id = session.scalar(
        select(Conversation.id).where(Conversation.phone == phone, Conversation.line == line)
    )
    values = {
        "message_sid": sid,
        "conversation_id": conversation_id,
        "direction": direction.value,
        "phone": phone,
        "line": line,
        "body": record.body,
        "segments": record.segments,
        "status": status[:16],
        "intent": intent[:24] if intent else None,
        "line_id": record.line_id,
        "created_at": record.at,
        "updated_at": record.at,
    }
    if sid is None:
        session.add(Message(**values))
        session.flush()
        return
    insert = upsert(session, Message).values(**values)
    table = Message.__table__
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.message_sid],
            # Only a row a status callback created first (empty body) is filled in.
            set_={
                name: insert.excluded[name]
                for name in (
                    "conversation_id",
                    "phone",
                    "line",
                    "body",
                    "segments",
                    "intent",
                    "line_id",
                    "stored_at",
                )
            },
            where=(table.c.body == "") & (table.c.direction == direction.value),
        )
    )


def _status(session: Session, record: MessageStatusReported) -> bool:
    """Apply a status callback; True when it is the message's first final status."""
    status = record.status.lower()
    if status not in MESSAGE_STATUS_RANK:
        return False
    if record.outbox_id is not None:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == record.outbox_id,
                OutboxMessage.kind == OutboxKind.SMS.value,
                OutboxMessage.twilio_sid.is_(None),
            )
            .values(
                twilio_sid=record.sid,
                status=OutboxStatus.SENT.value,
                sent_at=func.coalesce(OutboxMessage.sent_at, record.at),
                last_error=None,
            )
        )
    inserted = session.scalar(
        upsert(session, Message)
        .values(
            message_sid=record.sid,
            direction=Direction.OUT.value,
            body="",
            segments=1,
            status=status,
            error_code=record.error_code[:16] if record.error_code else None,
            created_at=record.at,
            updated_at=record.at,
        )
        .on_conflict_do_nothing(index_elements=["message_sid"])
        .returning(Message.id)
    )
    if inserted is not None:  # the callback came before the record of the send
        return status in FINAL_DELIVERY
    message = session.scalars(
        select(Message).where(Message.message_sid == record.sid).with_for_update()
    ).one()
    first_final = status in FINAL_DELIVERY and message.status not in FINAL_DELIVERY
    if MESSAGE_STATUS_RANK[status] >= MESSAGE_STATUS_RANK.get(message.status or "", -1):
        message.status = status[:16]
        message.updated_at = record.at
    if record.error_code:
        message.error_code = record.error_code[:16]
    session.flush()
    return first_final


TEXT_STORE = Store("texts", TEXT_RECORDS, _write)
