"""SMS conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.models.base import Base, utcnow, written_now


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Conversation(Base):
    """One texter's conversation with one of our numbers: where they are in the flow."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    line: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(8))
    node: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(default=written_now, onupdate=written_now)
    """When the row was last written, by the server's clock (NULL: before 2026-12-04)."""
    flow_hash: Mapped[str | None] = mapped_column(String(64))
    line_id: Mapped[int | None]
    """The line the texter is talking to (a keyword on a shared number can choose it)."""
    revision_id: Mapped[int | None]
    """The flow revision the conversation goes on in (for 24 quiet hours)."""

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.created_at, Message.id",
        passive_deletes=True,
    )

    __table_args__ = (
        UniqueConstraint("phone", "line"),
        Index("ix_conversations_last_activity_at", "last_activity_at"),
        Index(  # the staff list of one line (?line=)
            "ix_conversations_line_id_last_activity_at_id", "line_id", "last_activity_at", "id"
        ),
        Index("ix_conversations_stored_at", "stored_at"),
    )


class Message(Base):
    """A text received or sent, keyed by Twilio's MessageSid once it has one."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[str] = mapped_column(String(3))
    phone: Mapped[str | None] = mapped_column(String(20))
    line: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[int] = mapped_column(default=1)
    status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(24))
    line_id: Mapped[int | None]
    """The line the text came to or went from (`lines.id`)."""
    """What an inbound text asked for, as the line understood it: asked_for_person,
    not_understood, emergency, call_back, opt_out, opt_in, help (None: a menu choice)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(default=written_now, onupdate=written_now)
    """When the row was last written, by the server's clock (NULL: before 2026-12-04);
    `updated_at` is the time of the last status it tells of."""

    conversation: Mapped[Conversation | None] = relationship(back_populates="messages")

    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_messages_created_at_id", "created_at", "id"),
        Index("ix_messages_line_id_created_at_id", "line_id", "created_at", "id"),  # ?line=
        Index("ix_messages_stored_at", "stored_at"),
        # The overview's texts per day (texts with a body) and text conversations (those with
        # an inbound text), each a range of an index of its own.
        Index(
            "ix_messages_texts_created_at",
            "created_at",
            sqlite_where=text("body <> ''"),
            postgresql_where=text("body <> ''"),
        ),
        Index(
            "ix_messages_inbound_created_at",
            "created_at",
            "conversation_id",
            sqlite_where=text("direction = 'in'"),
            postgresql_where=text("direction = 'in'"),
        ),
    )
