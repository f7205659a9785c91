"""Daily counts that outlive the rows `phoneline purge` deletes."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"


class Metric(StrEnum):
    CALLS = "calls"  # key ''
    OUTCOME = "outcome"  # key: the call's outcome
    TRANSFERS = "transfers"  # key: the contact id a call was transferred (dialed) to
    DIAL_OUTCOME = "dial_outcome"  # key: completed, busy, no-answer, failed, canceled
    MESSAGES_IN = "messages_in"  # key ''
    MESSAGES_OUT = "messages_out"  # key ''


class DailyAggregate(Base):
    """count of `metric` (for `key`) on `day` (UTC) in `channel`, from purged rows."""

    __tablename__ = "daily_aggregates"

    day: Mapped[date] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    count: Mapped[int] = mapped_column(default=0)
