"""Numbers that texted STOP (and whether they came back with START)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow, written_now


class OptOut(Base):
    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    opted_out: Mapped[bool]
    keyword: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(default=written_now, onupdate=written_now)
    """When the row was last written, by the server's clock (NULL: before 2026-12-04)."""

    __table_args__ = (Index("ix_opt_outs_stored_at", "stored_at"),)
