"""CSV exports of calls and texts, streamed a batch at a time from a server-side cursor.

Callers' numbers are masked in every row, and text bodies a patient wrote have
phone-number-like runs masked too. Every cell a spreadsheet would read as a formula (a body, a
SID) or turn into a number (the clinic's own `+1…` numbers, which Excel shows as `1.8E+10`) is
prefixed with `'` (`safe_cell`), whatever column it is in: the rows are guarded where they are
written (`_Lines.row`), not column by column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from service.db import Database
from service.models import Message
from service.phone import mask
from service.staff.queries import (
    CallFilters,
    MessageFilters,
    is_inbound,
    redact_numbers,
    stream_calls,
    stream_messages,
)

CALL_COLUMNS = (
    "call_sid",
    "started_at",
    "duration_seconds",
    "caller",
    "language",
    "outcome",
    "path",
    "transferred_to",
    "transferred_number",
    "dial_outcome",
)
MESSAGE_COLUMNS = (
    "message_sid",
    "created_at",
    "direction",
    "phone",
    "line",
    "language",
    "status",
    "segments",
    "body",
)
ROWS_PER_CHUNK = 200


def utc_stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def local_stamp(value: datetime | None, zone: tzinfo) -> str:
    """ISO 8601 in the clinic's zone, with its offset ("2026-11-24T09:00:00-05:00"); UTC as Z."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    if not local.utcoffset():
        return utc_stamp(value)
    return local.isoformat(timespec="seconds")


# What makes a spreadsheet read a cell as a formula (OWASP, CSV injection): these characters,
# their full-width forms (which some spreadsheets fold to them), first or after leading
# whitespace; and a leading tab or carriage return.
FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")


def safe_cell(value: str) -> str:
    """`value`, prefixed with `'` if a spreadsheet could take it for a formula (or, for a
    `+` number, a number to round)."""
    if value[:1] in ("\t", "\r") or value.lstrip()[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def file_name(kind: str, date_from: date | None, date_to: date | None, today: date) -> str:
    """The download's name: the days it covers, in the clinic's zone, both ends included
    (`calls-2026-11-01_2026-11-30.csv`); without a start, everything until the end
    (`calls-until-2026-12-06.csv`); without an end, until today's clinic date."""
    last = date_to or max(today, date_from or today)
    if date_from is None:
        return f"{kind}-until-{last.isoformat()}.csv"
    return f"{kind}-{date_from.isoformat()}_{last.isoformat()}.csv"


def call_row(call: Any, contact_names: Mapping[str, str], zone: tzinfo = UTC) -> list[str]:
    """A CSV row from a Call or a row of `CSV_CALL_COLUMNS`."""
    contact = call.transferred_contact
    return [
        call.call_sid,
        local_stamp(call.started_at, zone),
        "" if call.duration_seconds is None else str(call.duration_seconds),
        mask(call.caller),
        call.language or "",
        call.outcome,
        call.path or "",
        contact_names.get(contact, contact) if contact else "",
        call.transferred_number or "",
        call.dial_outcome or "",
    ]


def message_row(message: Message, language: str | None, zone: tzinfo = UTC) -> list[str]:
    body = redact_numbers(message.body) if is_inbound(message) else message.body
    return [
        message.message_sid or "",
        local_stamp(message.created_at, zone),
        message.direction,
        mask(message.phone),
        message.line or "",
        language or "",
        message.status or "",
        str(message.segments),
        body,
    ]


class _Lines:
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def row(self, cells: list[str]) -> None:
        self.writer.writerow([safe_cell(cell) for cell in cells])

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def calls_csv(
    database: Database, filters: CallFilters, contact_names: Mapping[str, str]
) -> Iterator[str]:
    lines = _Lines()
    lines.writer.writerow(CALL_COLUMNS)
    yield lines.take()
    with database.session(read_only=True) as session:
        for count, call in enumerate(stream_calls(session, filters), start=1):
            lines.row(call_row(call, contact_names, filters.zone))
            if count % ROWS_PER_CHUNK == 0:
                yield lines.take()
    yield lines.take()


def messages_csv(database: Database, filters: MessageFilters) -> Iterator[str]:
    lines = _Lines()
    lines.writer.writerow(MESSAGE_COLUMNS)
    yield lines.take()
    with database.session(read_only=True) as session:
        for count, (message, language) in enumerate(stream_messages(session, filters), start=1):
            lines.row(message_row(message, language, filters.zone))
            if count % ROWS_PER_CHUNK == 0:
                yield lines.take()
    yield lines.take()
