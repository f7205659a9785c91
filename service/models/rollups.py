"""The overview's numbers by the clinic's day and line, kept for the days that are over
(`service/staff/rollup.py`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import LargeBinary, String, Text, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from service.models.base import Base


class OverviewDay(Base):
    """What the overview counts of one day (in the zone named `zone`) and one of the clinic's
    numbers (`line`; '' for what belongs to no line: follow-ups, and calls or texts whose line
    is not known).

    A day rolled up has a row of line '' (with nothing else to hold, its counts are empty):
    a day without one is not rolled up. Every row of a day is written together, with the same
    `written` (a token of that write) and `form`."""

    __tablename__ = "overview_days"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    line: Mapped[str] = mapped_column(String(20), primary_key=True)
    written: Mapped[str] = mapped_column(String(32))
    form: Mapped[str] = mapped_column(String(16))
    """The layout of `counts` and `sets` (`service.staff.rollup.FORMAT`): a row of another
    (an older worker's, during a SIGHUP restart) is not read."""
    until: Mapped[datetime | None]
    """Today's rows count the day up to this time only (None: the whole day)."""
    counts: Mapped[str] = mapped_column(Text)
    """The counts, as JSON."""
    sets: Mapped[bytes] = mapped_column(LargeBinary)
    """The sets (callers, texters) and the follow-ups' waits, serialized one after another."""


class OverviewRollup(Base):
    """How far the rolled-up days of `zone` are known to be current: every change of a row
    stamped before `checked_through` minus the margin is in them."""

    __tablename__ = "overview_rollups"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    checked_through: Mapped[datetime]


def forget_days(session: Session, first: datetime, last: datetime) -> None:
    """Drop the rolled-up days, in every zone, that rows of the times from `first` to `last`
    can fall on (a zone's day is within a day of the UTC one), to be counted again: the purge
    calls it as it deletes calls and texts."""
    session.execute(
        delete(OverviewDay).where(
            OverviewDay.day >= first.astimezone(UTC).date() - timedelta(days=1),
            OverviewDay.day <= last.astimezone(UTC).date() + timedelta(days=1),
        )
    )
