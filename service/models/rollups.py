"""The overview's counts by the clinic's day, kept for the days that are over
(`service/staff/rollup.py`)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class OverviewDayCount(Base):
    """`count` of `measure` for (`key`, `detail`) on `day`, a day in the zone named `zone`.

    Each rolled-up day has a row of measure 'day' (count 0): a day without it is not rolled up.
    The distinct callers of a day and language (measure 'callers') are `member_ids`, the E.164
    numbers' digits as a serialized roaring bitmap, and `members`, any other caller (a JSON
    list): see `service.staff.rollup.Callers`."""

    __tablename__ = "overview_day_counts"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    measure: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    detail: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    count: Mapped[int] = mapped_column(default=0)
    member_ids: Mapped[bytes | None] = mapped_column(LargeBinary)
    members: Mapped[str | None] = mapped_column(Text)


class OverviewRollup(Base):
    """How far the rolled-up days of `zone` are known to be current: every change of a call
    with `updated_at` before `checked_through` minus the margin is in them."""

    __tablename__ = "overview_rollups"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    checked_through: Mapped[datetime]
