"""Messages callers leave (`<Record>`), and their audio, kept by the line.

A voicemail row is made by the first report of its recording (the `<Record>` action, or
Twilio's recording status callback, in either order: both are spooled, and merge on
`recording_sid`). The fetcher then copies the audio from Twilio into `voicemail_audio`
(content-addressed: the SHA-256 of the bytes is the key, so a copy made twice is one row), and
deletes it at Twilio once the copy is verified, unless the clinic keeps Twilio's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from service.models.base import Base, utcnow


class VoicemailState(StrEnum):
    WAITING = "waiting"
    """Its audio is at Twilio only (not ready yet, or a download failed and waits its retry)."""
    STORED = "stored"
    """Copied and verified here; still to be deleted at Twilio."""
    DONE = "done"
    """Copied here, and deleted at Twilio (or kept there, as the clinic chose)."""
    ABSENT = "absent"
    """Twilio made no audio of it (too short, or silent): nothing to copy."""


class Voicemail(Base):
    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    """The caller, in E.164 (from the `<Record>` action; NULL until it is reported)."""
    line_id: Mapped[int | None]
    contact: Mapped[str | None] = mapped_column(String(64))
    """The flow's contact the message is for."""
    language: Mapped[str | None] = mapped_column(String(8))
    seconds: Mapped[int | None]
    left_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=VoicemailState.WAITING.value)
    twilio_status: Mapped[str | None] = mapped_column(String(16))
    """Twilio's RecordingStatus (completed, absent, failed), once its callback came."""
    audio_sha256: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("voicemail_audio.sha256")
    )
    fetched_at: Mapped[datetime | None]
    deleted_at_twilio: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    """A fetcher is copying it until then (another takes it over once this has passed)."""
    last_error: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint("state IN ('waiting', 'stored', 'done', 'absent')", name="state"),
        Index("ix_voicemails_call_sid", "call_sid"),
        Index("ix_voicemails_phone_left_at", "phone", "left_at"),
        Index("ix_voicemails_left_at", "left_at"),
        # The fetcher's few rows among many.
        Index(
            "ix_voicemails_to_fetch",
            "next_try_at",
            sqlite_where=text("state IN ('waiting', 'stored')"),
            postgresql_where=text("state IN ('waiting', 'stored')"),
        ),
    )


class VoicemailAudio(Base):
    """A message's audio, by the SHA-256 of its bytes."""

    __tablename__ = "voicemail_audio"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
