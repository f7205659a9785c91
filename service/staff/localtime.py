"""The clinic's local time on staff pages (TIMEZONE, an IANA name; zoneinfo)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2 import pass_context

from service.config import DEFAULT_TIMEZONE, zone_named


def zone_of(request: Request) -> ZoneInfo:
    return zone_named(str(getattr(request.app.state.settings, "timezone", DEFAULT_TIMEZONE)))


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The moment `day` begins in `zone` (an aware datetime)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def local_day_end(day: date, zone: ZoneInfo) -> datetime:
    """The moment the day after `day` begins in `zone`."""
    return local_day_start(day + timedelta(days=1), zone)


def format_local(value: datetime | None, zone: ZoneInfo, pattern: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime(pattern)


@pass_context
def local_filter(context: Any, value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """`{{ call.started_at | local }}`: the time in the clinic's zone."""
    request: Request = context["request"]
    return format_local(value, zone_of(request), pattern)


@pass_context
def zone_label(context: Any, value: datetime | None = None) -> str:
    """The zone's abbreviation at `value` (or now): "EST", "+14"."""
    zone = zone_of(context["request"])
    return (value or datetime.now(zone)).astimezone(zone).strftime("%Z")
