"""Numbers that texted STOP (and whether they came back with START), per number of the line's
they texted: `number` is the service's number the change was texted to, or "*" for all of
them (STOPALL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow

EVERY_NUMBER = "*"
"""`OptOut.number` of a change that applies to every number of the service (STOPALL)."""


class OptOut(Base):
    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    number: Mapped[str] = mapped_column(
        String(20), primary_key=True, default=EVERY_NUMBER, server_default=EVERY_NUMBER
    )
    opted_out: Mapped[bool]
    keyword: Mapped[str | None] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
