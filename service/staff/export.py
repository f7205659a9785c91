"""CSV exports of calls and texts, streamed a batch at a time from a server-side cursor.

Callers' numbers are masked in every row. Text bodies a patient wrote have phone-number-like
runs masked too, and any text that came from outside (bodies, Twilio's SIDs) that a
spreadsheet would read as a formula is prefixed with `'` (`safe_cell`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
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
    """`value`, prefixed with `'` if a spreadsheet could take it for a formula."""
    if value[:1] in ("\t", "\r") or value.lstrip()[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def call_row(call: Any, contact_names: Mapping[str, str], zone: tzinfo = UTC) -> list[str]:
    """A CSV row from a Call or a row of `CSV_CALL_COLUMNS`."""
    contact = call.transferred_contact
    return [
        safe_cell(call.call_sid),
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
        safe_cell(message.message_sid or ""),
        local_stamp(message.created_at, zone),
        message.direction,
        mask(message.phone),
        message.line or "",
        language or "",
        message.status or "",
        str(message.segments),
        safe_cell(body),
    ]


class _Lines:
    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

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
            lines.writer.writerow(call_row(call, contact_names, filters.zone))
            if count % ROWS_PER_CHUNK == 0:
                yield lines.take()
    yield lines.take()


def messages_csv(database: Database, filters: MessageFilters) -> Iterator[str]:
    lines = _Lines()
    lines.writer.writerow(MESSAGE_COLUMNS)
    yield lines.take()
    with database.session(read_only=True) as session:
        for count, (message, language) in enumerate(stream_messages(session, filters), start=1):
            lines.writer.writerow(message_row(message, language, filters.zone))
            if count % ROWS_PER_CHUNK == 0:
                yield lines.take()
    yield lines.take()
