"""What the line learns of a message, as spooled records, and how they make its row.

A message is reported twice, in either order and perhaps more than once each: by the
`<Record>` action (who left it, for whom, in which language: `VoicemailLeft`) and by Twilio's
recording status callback (whether the audio is ready, or absent: `RecordingReported`). Both
merge into one `voicemails` row, keyed on `RecordingSid`, by rules that do not care about order
(the earliest time, the value there is, the longest duration, a final status over none), so
repeats and reorderings change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, literal, update
from sqlalchemy.orm import Session

from service.db import upsert
from service.models import UTCDateTime, Voicemail, VoicemailState
from service.spool.codec import Record, register
from service.spool.stores import AfterCommit, Store

TWILIO_STATUSES = ("completed", "absent", "failed")
"""Twilio's final RecordingStatus values (`in-progress` says nothing to keep)."""


@register("voicemail_left")
@dataclass(frozen=True, slots=True)
class VoicemailLeft:
    """The `<Record>` action: a caller left a message (perhaps hanging up to end it)."""

    recording_sid: str
    call_sid: str
    at: datetime
    phone: str | None
    line_id: int | None
    contact: str | None
    language: str | None
    seconds: int | None


@register("recording_reported")
@dataclass(frozen=True, slots=True)
class RecordingReported:
    """Twilio's recording status callback: the audio is ready (`completed`), or there is none
    (`absent`: too short or silent; `failed`)."""

    recording_sid: str
    call_sid: str
    at: datetime
    status: str
    seconds: int | None = None


VoicemailRecord = VoicemailLeft | RecordingReported


def write_voicemail_records(
    session: Session, records: Sequence[Record], now: datetime
) -> AfterCommit | None:
    """Merge each report into its message's row (made by whichever report comes first)."""
    for record in records:
        assert isinstance(record, VoicemailLeft | RecordingReported)
        _merge(session, record)
    return None


def _merge(session: Session, record: VoicemailRecord) -> None:
    at = literal(record.at, UTCDateTime())
    session.execute(
        upsert(session, Voicemail)
        .values(
            recording_sid=record.recording_sid,
            call_sid=record.call_sid,
            left_at=record.at,
            state=VoicemailState.WAITING.value,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["recording_sid"])
    )
    changes: dict[str, object] = {
        "left_at": case((Voicemail.left_at > at, at), else_=Voicemail.left_at),
        "seconds": _longest(record.seconds),
    }
    if isinstance(record, VoicemailLeft):
        for column, value in (
            ("phone", record.phone),
            ("line_id", record.line_id),
            ("contact", record.contact),
            ("language", record.language),
        ):
            if value is not None:
                changes[column] = func.coalesce(getattr(Voicemail, column), value)
    elif record.status in TWILIO_STATUSES:
        # A final status over none; of two, `completed` (the audio is there) stands.
        status = record.status
        changes["twilio_status"] = case(
            (Voicemail.twilio_status.is_(None), status),
            (literal(status) == "completed", status),
            else_=Voicemail.twilio_status,
        )
        if status == "completed":  # (after an `absent` that Twilio took back)
            changes["state"] = case(
                (Voicemail.state == VoicemailState.ABSENT.value, VoicemailState.WAITING.value),
                else_=Voicemail.state,
            )
        else:
            changes["state"] = case(
                (
                    (Voicemail.audio_sha256.is_(None)) & (Voicemail.twilio_status.is_(None)),
                    VoicemailState.ABSENT.value,
                ),
                else_=Voicemail.state,
            )
    session.execute(
        update(Voicemail)
        .where(Voicemail.recording_sid == record.recording_sid)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )


def _longest(seconds: int | None) -> object:
    if seconds is None:
        return Voicemail.seconds
    return case(
        (Voicemail.seconds.is_(None), seconds),
        (Voicemail.seconds < seconds, seconds),
        else_=Voicemail.seconds,
    )


VOICEMAIL_STORE = Store(
    "voicemails", (VoicemailLeft, RecordingReported), write_voicemail_records, order_free=True
)
