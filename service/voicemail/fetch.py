"""Copying messages' audio from Twilio, and deleting Twilio's copy once ours is verified.

A chore of the outbox worker's loop (it talks to Twilio's REST API, never from the spool's
thread or a webhook), wired in by the composition root. One pass (`Fetcher.run`):

1. claims a few due messages (`claimed_until`: a conditional UPDATE, so two workers never copy
   the same one at once; a claim whose worker died passes after `lease`, and another takes it);
2. for one still at Twilio only: downloads its audio (`{TWILIO_API_BASE}/2010-04-01/Accounts/…/
   Recordings/{sid}.mp3` or `.wav`), checks it is audio of that format that lasts (mutagen),
   stores it by its SHA-256 and reads it back: the copy is verified when the stored bytes hash
   to the same digest;
3. then, unless the clinic keeps Twilio's copy, deletes it at Twilio (a 404: gone already).

Every failure (a Twilio 5xx or 404 before the audio is ready, a timeout, a hang, audio that is
not what was asked for, the database away) leaves the message as it was and tries it again
after a backoff (30 s, 1 min, 2 min… at most an hour), for as long as it takes: Twilio keeps
the audio until our copy is verified, so a message is never lost, and a copy made twice is one
row. Log lines name voicemail ids, never phone numbers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from service.audio import MIME_TYPES, NotAudio, audio_of
from service.channels.sender import Audio, SendError, TwilioSender, credentials_configured
from service.chores import FIRST_RETRY, Chore, backoff
from service.config import Settings
from service.db import DATABASE_ERRORS, Database, describe_error, get_database, upsert
from service.metrics import VOICEMAILS
from service.models import Voicemail, VoicemailAudio, VoicemailState, utcnow

log = logging.getLogger(__name__)

FETCH_EVERY_SECONDS = 5.0
BATCH = 5
READY_AFTER = timedelta(seconds=20)
"""A message whose recording status callback has not come is asked for after this (the
callback may be lost; a 404 until the audio is ready is retried)."""
MAX_MESSAGE_SECONDS = 130
"""A message lasts at most two minutes (`<Record maxLength>`), and a little for the beep."""


class RecordingSource(Protocol):
    """Where recordings are (Twilio's Recordings resource: `TwilioSender`)."""

    def fetch_recording(self, recording_sid: str, audio_format: str) -> Audio: ...

    def delete_recording(self, recording_sid: str) -> None: ...


@dataclass(frozen=True)
class Claimed:
    id: int
    recording_sid: str
    state: str
    attempts: int


def verified_audio(content: bytes, audio_format: str) -> float:
    """How long `content` lasts, in seconds, when it is a recording in `audio_format` (mp3,
    wav) of at most a message's length; NotAudio otherwise (empty, cut short, another format,
    an error page served with a 200)."""
    audio = audio_of(content, max_seconds=MAX_MESSAGE_SECONDS)
    if audio.format != audio_format:
        raise NotAudio(f"not {audio_format} ({audio.format})")
    return audio.seconds


class Fetcher:
    """Copies due messages' audio (`run`)."""

    def __init__(
        self,
        source: RecordingSource,
        *,
        audio_format: str = "mp3",
        delete_at_twilio: bool = True,
        lease: timedelta = timedelta(minutes=5),
        first_retry: timedelta = FIRST_RETRY,
        database: Callable[[], Database] = get_database,
    ) -> None:
        self.source = source
        self.audio_format = audio_format
        self.delete_at_twilio = delete_at_twilio
        self.lease = lease
        self.first_retry = first_retry
        self._database = database

    def run(self) -> int:
        """One pass; how many messages it took in hand."""
        try:
            claimed = self._claim(utcnow())
        except DATABASE_ERRORS as error:
            log.warning("voicemails: could not claim: %s", describe_error(error))
            return 0
        for message in claimed:
            try:
                self._handle(message)
            except Exception as error:  # a bug or the database away: this one waits
                log.warning("voicemail %d: %s", message.id, describe_error(error))
                self._retry(message, f"unexpected: {type(error).__name__}")
        return len(claimed)

    def _claim(self, now: datetime) -> list[Claimed]:
        due = (
            Voicemail.state.in_([VoicemailState.WAITING.value, VoicemailState.STORED.value]),
            or_(Voicemail.next_try_at.is_(None), Voicemail.next_try_at <= now),
            or_(Voicemail.claimed_until.is_(None), Voicemail.claimed_until < now),
            or_(Voicemail.twilio_status.is_not(None), Voicemail.left_at <= now - READY_AFTER),
        )
        claimed: list[Claimed] = []
        with self._database().session() as session:
            rows = session.execute(
                select(Voicemail.id, Voicemail.recording_sid, Voicemail.state, Voicemail.attempts)
                .where(*due)
                .order_by(Voicemail.left_at)
                .limit(BATCH)
            ).all()
            for row in rows:
                took = session.execute(
                    update(Voicemail)
                    .where(Voicemail.id == row.id, *due)
                    .values(claimed_until=now + self.lease, attempts=Voicemail.attempts + 1)
                    .execution_options(synchronize_session=False)
                )
                if took.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(Claimed(row.id, row.recording_sid, row.state, row.attempts + 1))
        return claimed

    def _handle(self, message: Claimed) -> None:
        if message.state == VoicemailState.WAITING.value:
            try:
                audio = self.source.fetch_recording(message.recording_sid, self.audio_format)
                seconds = verified_audio(audio.content, self.audio_format)
            except (SendError, NotAudio) as error:
                self._retry(message, f"download: {error}")
                return
            self._keep(message, audio.content)
            VOICEMAILS.labels(event="stored").inc()
            log.info(
                "voicemail %d copied (%.0f s, %d bytes)", message.id, seconds, len(audio.content)
            )
        if not self.delete_at_twilio:
            self._store(message.id, state=VoicemailState.DONE.value)
            return
        try:
            self.source.delete_recording(message.recording_sid)
        except SendError as error:
            self._retry(message, f"delete at Twilio: {error}")
            return
        self._store(message.id, state=VoicemailState.DONE.value, deleted_at_twilio=utcnow())
        VOICEMAILS.labels(event="deleted").inc()
        log.info("voicemail %d deleted at Twilio", message.id)

    def _keep(self, message: Claimed, content: bytes) -> None:
        """Store the audio by its digest, read it back, and only when the stored bytes hash to
        it mark the message stored (so Twilio's copy may go)."""
        digest = hashlib.sha256(content).hexdigest()
        with self._database().session() as session:
            session.execute(
                upsert(session, VoicemailAudio)
                .values(
                    sha256=digest,
                    content_type=MIME_TYPES[self.audio_format],
                    content=content,
                    size=len(content),
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
            )
        with self._database().session() as session:
            stored = session.scalar(
                select(VoicemailAudio.content).where(VoicemailAudio.sha256 == digest)
            )
            if stored is None or hashlib.sha256(stored).hexdigest() != digest:
                raise NotAudio("the stored copy does not match")  # (retried by `run`)
            _mark(
                session,
                message.id,
                audio_sha256=digest,
                fetched_at=utcnow(),
                state=VoicemailState.STORED.value,
                last_error=None,
            )

    def _retry(self, message: Claimed, error: str) -> None:
        VOICEMAILS.labels(event="retry").inc()
        next_try = utcnow() + backoff(message.attempts, self.first_retry)
        log.info("voicemail %d will be tried again (attempt %d): %s", message.id,
                 message.attempts, error)  # fmt: skip
        self._store(message.id, next_try_at=next_try, last_error=error[:255])

    def _store(self, voicemail_id: int, **values: object) -> None:
        """Change the message and let go of its claim (the database away: the claim passes
        by itself, and the message is taken again)."""
        try:
            with self._database().session() as session:
                _mark(session, voicemail_id, **values)
        except DATABASE_ERRORS as error:
            log.warning("voicemail %d: could not store: %s", voicemail_id, describe_error(error))


def _mark(session: Session, voicemail_id: int, **values: object) -> None:
    session.execute(
        update(Voicemail)
        .where(Voicemail.id == voicemail_id)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def voicemail_fetcher(settings: Settings) -> Chore | None:
    """The worker's chore of copying messages, for these settings (None without Twilio's
    credentials: the messages wait at Twilio, and are copied once the credentials are set)."""
    if not credentials_configured(settings):
        return None
    fetcher = Fetcher(
        TwilioSender(settings),
        audio_format=settings.voicemail_format,
        delete_at_twilio=settings.voicemail_delete_at_twilio,
        lease=timedelta(seconds=settings.outbox_stale_seconds),
        first_retry=timedelta(seconds=settings.outbox_first_retry_seconds),
    )
    return Chore(fetcher.run, FETCH_EVERY_SECONDS)
