"""Lines (a program's phone line: its numbers and its flow) and their flow revisions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class Line(Base):
    """A program's line: `second-opinion`, `clinical-trials`. Calls and texts to its numbers
    hear its published revision; a number nobody assigned reaches the default line."""

    __tablename__ = "lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    keyword: Mapped[str | None] = mapped_column(String(20), unique=True)
    """A first text of this word, to any number, starts this line's menu (a shared number)."""
    is_default: Mapped[bool] = mapped_column(default=False)
    published_revision_id: Mapped[int | None]
    """Its published revision (a FlowRevision of this line; no foreign key: the two tables
    would refer to each other)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LineNumber(Base):
    """A Twilio number (voice and SMS) and the line it reaches; a number reaches one line."""

    __tablename__ = "line_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_line_numbers_line_id", "line_id"),)


class LineTestNumber(Base):
    """A staff phone that hears the line's draft (its newest revision, once its check passes)
    when it calls or texts one of the line's numbers; everyone else hears the published one."""

    __tablename__ = "line_test_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(20))
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("line_id", "number"),)


class FlowRevision(Base):
    """One version of a line's flow, its YAML exactly as written (comments and all). Numbered
    per line; published ones have `published_at`; a rollback publishes a copy."""

    __tablename__ = "flow_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    number: Mapped[int]
    yaml: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The flow check's result when it was saved (empty: it passed)."""
    published_at: Mapped[datetime | None]
    published_by: Mapped[str | None] = mapped_column(String(64))
    copied_from: Mapped[int | None]
    """The revision number this one copies (a rollback)."""

    __table_args__ = (UniqueConstraint("line_id", "number"),)


class LineBookVersion(Base):
    """One row: a counter every change of lines, numbers or published revisions moves, so
    that every process sees a change by reading one number (`service.lines.book`)."""

    __tablename__ = "line_book_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactClosure(Base):
    """A day a line's contact is closed (a holiday, an early closing, a snow day), kept by staff
    outside the flow: one date, or every year on a date or on the nth weekday of a month; all
    day, or from `closes_at` ("HH:MM", the clinic's time) to the end of the day."""

    __tablename__ = "contact_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    contact: Mapped[str] = mapped_column(String(64))
    on_date: Mapped[date | None]
    month: Mapped[int | None]
    day: Mapped[int | None]
    weekday: Mapped[int | None]
    """0 is Monday."""
    nth: Mapped[int | None]
    """1 to 4, or -1: the last."""
    closes_at: Mapped[str | None] = mapped_column(String(5))
    message_en: Mapped[str | None] = mapped_column(Text)
    message_es: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_contact_closures_line_id", "line_id"),)
