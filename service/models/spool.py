"""How far each spool segment has been written to the database (see `service.spool`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class SpoolCheckpoint(Base):
    """The last seq of `segment` whose records are in the database. Written in the same
    transaction as those records, so a replay after a crash skips exactly what is there."""

    __tablename__ = "spool_checkpoints"

    segment: Mapped[str] = mapped_column(String(160), primary_key=True)
    applied_seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpoolFence(Base):
    """A spool directory (one host's, or one volume's) and whether the opt-outs it holds are in
    the database (`service.spool.fence`). `beat_at` is the database's clock."""

    __tablename__ = "spool_fences"

    directory: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(64))
    clear: Mapped[bool]
    beat_at: Mapped[datetime]
