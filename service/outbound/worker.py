"""The outbox worker: sends queued texts and places queued call-backs through a `Sender`.

One tick (`Worker.run_once`):
1. reads the opt-outs this machine's spool holds that the database may not have yet;
2. claims due rows (`claim_due`: FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers never
   get the same row; a claim is taken over only when it went stale and the row is still not sent);
3. for each row, checks the opt-out again right before sending (suppressed, never sent), sends,
   and marks it sent with Twilio's SID (when the database does not take the mark, the spool
   keeps it, fsync'd, and writes it later); a retryable failure (5xx, 429, timeout, connection) is
   tried again after an exponential backoff, up to `max_attempts`; a permanent one (4xx) fails
   the row at once; either way the error is kept on the row.

Background sending on SQLite runs in one process only (see `phoneline serve --workers`).
Log lines name outbox row ids, never phone numbers or bodies.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
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
from service.db import DATABASE_ERRORS, Database, describe_error, get_database
from service.flowengine.segments import count_segments, pack
from service.metrics import TEXTS_FAILED, TEXTS_SENT
from service.models import OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.outbound.outbox import (
    DEFAULT_STALE_AFTER,
    OutboxSent,
    claim_due,
    enqueue,
    mark_failed,
    mark_retry,
)
from service.spool.apply import apply_records
from service.spool.spool import Spool
from service.texts.optouts import is_opted_out, opt_out_key
from service.texts.records import MessageSent

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
MAX_SEGMENTS = 4
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
POLL_SECONDS = 2.0


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
        spool: Spool | None = None,
    ) -> None:
        self.sender = sender
        self.settings = settings or get_settings()
        self._database = database
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.first_retry = first_retry
        self.stale_after = stale_after
        self._own_spool = spool is None
        self.spool = spool or Spool(self.settings.spool_dir, self._database_or_default)
        self._pending_opt_outs: dict[str, bool] = {}

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    def _database_or_default(self) -> Database:
        return self.database

    # -- one tick -----------------------------------------------------------------------------

    def run_once(self) -> TickReport:
        report = TickReport()
        self._pending_opt_outs = self.spool.pending_opt_outs()
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
        records: list[OutboxSent | MessageSent] = [OutboxSent(row.id, sid, utcnow())]
        if row.kind == OutboxKind.SMS.value:
            line = row.from_number or self.settings.twilio_from_number or ""
            segments = count_segments(row.body)
            records.append(
                MessageSent(sid, row.to_number, line, row.body, segments, "queued", utcnow())
            )
        if not self._store(apply_records, records, now=utcnow()):
            # Twilio has it: keep the mark (fsync'd) so that no worker sends it again.
            self.spool.submit(records, durable=True)

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
        pending = self._pending_opt_outs.get(opt_out_key(row.to_number))
        if pending is not None:
            return pending
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

    def _store(self, change: Callable[..., object], *args: Any, **kwargs: Any) -> bool:
        try:
            with self.database.session() as session:
                change(session, *args, **kwargs)
        except DATABASE_ERRORS as error:
            log.error("outbox update failed: %s", describe_error(error))
            return False
        return True

    def close(self) -> None:
        """Let go of the spool this worker made for itself (not one it was given)."""
        if self._own_spool:
            self.spool.close()

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


def build_worker(settings: Settings | None = None, spool: Spool | None = None) -> Worker | None:
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
        spool=spool,
    )


@contextmanager
def background_sender(settings: Settings, spool: Spool) -> Iterator[Worker | None]:
    """The outbox worker on a thread of this process (`phoneline serve`, sharing its spool),
    unless RUN_WORKER_IN_SERVER is false or Twilio is not configured."""
    worker = build_worker(settings, spool) if settings.run_worker_in_server else None
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
