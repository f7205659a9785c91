"""The outbox worker: sends queued texts and places queued call-backs through a `Sender`.

One tick (`Worker.run_once`):
1. applies journaled opt-outs (a STOP that arrived while the database was down) and journaled
   sends (a send whose `sent` mark could not be stored), so neither is ever forgotten;
2. claims due rows (`claim_due`: FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers never
   get the same row; a claim is taken over only when it went stale and the row is still not sent);
3. for each row, checks the opt-out again right before sending (suppressed, never sent), sends,
   and marks it sent with Twilio's SID; a retryable failure (5xx, 429, timeout, connection) is
   tried again after an exponential backoff, up to `max_attempts`; a permanent one (4xx) fails
   the row at once; either way the error is kept on the row.

Background sending on SQLite runs in one process only (see `phoneline serve --workers`).
Log lines name outbox row ids, never phone numbers or bodies.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.channels.sender import (
    DEFAULT_TIMEOUT_SECONDS,
    Sender,
    SendError,
    TwilioSender,
    credentials_configured,
    status_callback_url,
)
from service.config import Settings, get_settings
from service.db import Database, get_database
from service.flowengine.segments import count_segments, pack
from service.metrics import TEXTS_FAILED, TEXTS_SENT
from service.models import OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.outbound.outbox import (
    DEFAULT_STALE_AFTER,
    claim_due,
    enqueue,
    mark_failed,
    mark_retry,
    mark_sent,
)
from service.recording import DATABASE_ERRORS, Recorder, describe_error
from service.texts.journal import journaled_opt_out, replay_if_pending
from service.texts.optouts import JOURNAL_NAME, is_opted_out

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
MAX_SEGMENTS = 4
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
POLL_SECONDS = 2.0
SENT_JOURNAL_NAME = "outbox-sent-journal.jsonl"


def backoff(attempt: int, first: timedelta = FIRST_RETRY, cap: timedelta = MAX_RETRY) -> timedelta:
    """Wait before attempt `attempt + 1`: first, 2x first, 4x first... at most `cap`."""
    delay: timedelta = first * (2 ** max(0, attempt - 1))
    return min(delay, cap)


def suppress(session: Session, message_id: int) -> None:
    """A row claimed for a number that opted out since: never sent."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status != OutboxStatus.SENT.value)
        .values(status=OutboxStatus.SUPPRESSED.value, last_error="opted out")
    )


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class TickReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.suppressed


class Worker:
    def __init__(
        self,
        sender: Sender,
        settings: Settings | None = None,
        *,
        database: Database | None = None,
        worker_id: str | None = None,
        batch_size: int = 10,
        max_attempts: int = MAX_ATTEMPTS,
        first_retry: timedelta = FIRST_RETRY,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        journal: Path | None = None,
    ) -> None:
        self.sender = sender
        self.settings = settings or get_settings()
        self._database = database
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.first_retry = first_retry
        self.stale_after = stale_after
        self.journal = journal or self.settings.var_dir / JOURNAL_NAME
        self.sent_journal = self.settings.var_dir / SENT_JOURNAL_NAME

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    # -- one tick -----------------------------------------------------------------------------

    def run_once(self) -> TickReport:
        report = TickReport()
        if not replay_if_pending(self.database, self.journal) or not self._replay_sent():
            return report  # the database is down: nothing is claimed, nothing is sent
        try:
            with self.database.session() as session:
                rows = claim_due(
                    session, self.worker_id, self.batch_size, self.stale_after, now=utcnow()
                )
        except DATABASE_ERRORS as error:
            log.warning("outbox claim failed: %s", describe_error(error))
            return report
        for row in rows:
            self._handle(row, report)
        return report

    def _handle(self, row: OutboxMessage, report: TickReport) -> None:
        try:
            if self._opted_out(row):
                self._store(suppress, row.id)
                report.suppressed += 1
                log.info("outbox %d suppressed: the number opted out", row.id)
                return
        except DATABASE_ERRORS as error:
            # Cannot tell whether the number opted out: do not send now; the stale claim
            # hands the row out again later.
            log.warning("outbox %d: opt-out check failed: %s", row.id, describe_error(error))
            return
        if not self._split_if_long(row):
            return
        try:
            sid = self._already_sent(row) or self._send(row)
        except SendError as error:
            self._failed(row, error, report)
            return
        report.sent += 1
        if row.kind == OutboxKind.SMS.value:
            TEXTS_SENT.labels(via="api").inc()
        log.info("outbox %d sent (%s)", row.id, row.kind)
        if not self._store(mark_sent, row.id, sid):
            self._journal_sent(row.id, sid)
        if row.kind == OutboxKind.SMS.value:
            Recorder(self.database).message_sent(
                sid,
                row.to_number,
                row.from_number or self.settings.twilio_from_number or "",
                row.body,
                segments=count_segments(row.body),
            )

    def _split_if_long(self, row: OutboxMessage) -> bool:
        """A text over 4 segments (a Spanish list of numbers is UCS-2) is split between lines:
        this row keeps the first message and each further one becomes a row of its own, queued
        now, so every row is still one send. False when the split could not be stored."""
        if row.kind != OutboxKind.SMS.value:
            return True
        parts = pack(row.body, max_segments=MAX_SEGMENTS)
        if len(parts) <= 1:
            return True
        key = row.dedupe_key or f"outbox:{row.id}"
        try:
            with self.database.session() as session:
                session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == row.id).values(body=parts[0])
                )
                for number, part in enumerate(parts[1:], start=2):
                    enqueue(
                        session,
                        OutboxKind.SMS,
                        row.to_number,
                        part,
                        from_number=row.from_number,
                        dedupe_key=f"{key[:120]}#{number}",
                    )
        except DATABASE_ERRORS as error:
            log.warning("outbox %d: could not split a long text: %s", row.id, describe_error(error))
            return False
        row.body = parts[0]
        log.info(
            "outbox %d split into %d texts of at most %d segments", row.id, len(parts), MAX_SEGMENTS
        )
        return True

    def _opted_out(self, row: OutboxMessage) -> bool:
        if row.kind != OutboxKind.SMS.value:
            return False
        if journaled_opt_out(row.to_number, self.journal):
            return True
        with self.database.session(read_only=True) as session:
            return is_opted_out(session, row.to_number)

    def _already_sent(self, row: OutboxMessage) -> str | None:
        """Before sending a text again (an earlier attempt timed out, or its worker died between
        Twilio's answer and the `sent` mark), ask Twilio whether it has it already, so a patient
        never gets it twice. A lookup that fails raises SendError: retried later, not sent."""
        if row.kind != OutboxKind.SMS.value or row.attempts <= 1:
            return None
        sid = self.sender.find_sent(
            row.to_number,
            row.from_number or self.settings.twilio_from_number or None,
            row.body,
            row.created_at,
        )
        if sid:
            log.info("outbox %d was already taken by Twilio (%s): not sent again", row.id, sid)
        return sid

    def _send(self, row: OutboxMessage) -> str:
        if row.kind == OutboxKind.CALL.value:
            return self.sender.place_call(row.to_number, row.from_number, row.body)
        return self.sender.send_sms(
            row.to_number, row.from_number, row.body, status_callback_url(self.settings)
        )

    def _failed(self, row: OutboxMessage, error: SendError, report: TickReport) -> None:
        message = str(error)
        report.errors.append(message)
        final = not error.retryable or row.attempts >= self.max_attempts
        if row.kind == OutboxKind.SMS.value:
            TEXTS_FAILED.labels(final="true" if final else "false").inc()
        if final:
            reason = message if not error.retryable else f"gave up after {row.attempts}: {message}"
            self._store(mark_failed, row.id, reason)
            report.failed += 1
            log.warning("outbox %d failed for good (status %s)", row.id, error.status)
            return
        next_at = utcnow() + backoff(row.attempts, self.first_retry)
        self._store(mark_retry, row.id, message, next_at)
        report.retried += 1
        log.info(
            "outbox %d will be retried (attempt %d, status %s)", row.id, row.attempts, error.status
        )

    def _store(self, change: Callable[..., None], *args: Any) -> bool:
        try:
            with self.database.session() as session:
                change(session, *args)
        except DATABASE_ERRORS as error:
            log.error("outbox update failed: %s", describe_error(error))
            return False
        return True

    # -- sends whose `sent` mark was not stored ------------------------------------------------

    def _journal_sent(self, message_id: int, sid: str) -> None:
        """The send happened but the database did not take the mark: keep it on disk, so the
        row is marked sent before any worker could claim it again."""
        self.sent_journal.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": message_id, "sid": sid, "at": utcnow().isoformat()}) + "\n"
        fd = os.open(self.sent_journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _replay_sent(self) -> bool:
        if not self.sent_journal.exists():
            return True
        entries = []
        for line in self.sent_journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                entries.append(
                    (int(entry["id"]), str(entry["sid"]), datetime.fromisoformat(entry["at"]))
                )
            except (ValueError, KeyError, TypeError):
                continue
        try:
            with self.database.session() as session:
                for message_id, sid, at in entries:
                    mark_sent(session, message_id, sid, at=at)
        except DATABASE_ERRORS as error:
            log.warning("sent journal not replayed yet: %s", describe_error(error))
            return False
        self.sent_journal.unlink(missing_ok=True)
        return True

    # -- running ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        """Tick until `stop` is set; a full batch is followed at once by the next tick."""
        log.info("outbox worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("outbox worker tick failed")
                report = TickReport()
            if report.handled < self.batch_size:
                stop.wait(poll_seconds)
        log.info("outbox worker %s stopped", self.worker_id)


def build_worker(settings: Settings | None = None) -> Worker | None:
    """The worker for these settings, or None (with a log line) when Twilio is not configured."""
    settings = settings or get_settings()
    if not credentials_configured(settings):
        log.warning(
            "outbox worker not started: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set "
            "(queued texts wait in the outbox)"
        )
        return None
    return Worker(
        TwilioSender(settings),
        settings,
        stale_after=timedelta(seconds=settings.outbox_stale_seconds),
    )


@contextmanager
def background_sender(settings: Settings) -> Iterator[Worker | None]:
    """The outbox worker on a thread of this process (`phoneline serve`), unless
    RUN_WORKER_IN_SERVER is false or Twilio is not configured. Journaled opt-outs are applied at
    start either way."""
    replay_if_pending(get_database(), settings.var_dir / JOURNAL_NAME)
    worker = build_worker(settings) if settings.run_worker_in_server else None
    if worker is None:
        yield None
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_forever, args=(stop,), name="outbox-worker", daemon=True
    )
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=DEFAULT_TIMEOUT_SECONDS + 5)
