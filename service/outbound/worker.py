"""The outbox worker: sends queued texts and places queued call-backs through a `Sender`.

One tick (`Worker.run_once`):
1. waits while the spool's fence is held (another host's spool may hold opt-outs the database
   lacks: `service.spool.fence`);
2. claims due rows (`claim_due`: FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers never
   get the same row; a claim is taken over only when it went stale and the row is still not sent);
3. for each row, checks the opt-out right before sending, in the database and among the
   opt-outs this host's spool holds that the database may not have yet (suppressed, never
   sent), sends,
   and marks it sent with Twilio's SID (when the database does not take the mark, the spool
   keeps it, fsync'd, and writes it later); a retryable failure (5xx, 429, timeout, connection) is
   tried again after an exponential backoff, up to `max_attempts`; a permanent one (4xx) fails
   the row at once; either way the error is kept on the row. Anything unexpected while handling
   one row (a socket error the HTTP client does not wrap, a bug) is a retryable failure of that
   row alone: the rest of the batch still goes, and the retry asks Twilio first whether it has
   the text already.

Background sending on SQLite runs in one process only (see `phoneline serve --workers`).
Log lines name outbox row ids, never phone numbers or bodies.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.channels.sender import (
    DEFAULT_TIMEOUT_SECONDS,
    OUTBOX_MARK,
    Sender,
    SendError,
    TwilioSender,
    call_back_urls,
    credentials_configured,
    status_callback_url,
)
from service.chores import FIRST_RETRY, backoff
from service.config import Settings
from service.db import DATABASE_ERRORS, Database, describe_error, get_database
from service.flowengine.segments import count_segments, pack
from service.messages.records import MessageSent
from service.metrics import FENCE_HELD, TEXTS_FAILED, TEXTS_SENT
from service.models import OutboxKind, OutboxMessage, OutboxStatus, utcnow
from service.optouts.store import opted_out_now, pending_changes
from service.outbound.limits import PART_MARK
from service.outbound.outbox import (
    DEFAULT_DEAD_AFTER,
    DEFAULT_STALE_AFTER,
    HEARTBEAT_EVERY,
    OutboxSent,
    beat,
    claim_due,
    enqueue,
    mark_failed,
    mark_retry,
    retire,
)
from service.spool.spool import Spool

log = logging.getLogger(__name__)

Hold = Callable[[OutboxMessage], datetime | None]
"""Whether a row due now must wait, and until when (None: send it)."""

MAX_ATTEMPTS = 6
POLL_SECONDS = 2.0


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
    postponed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.suppressed + self.postponed


class Worker:
    def __init__(
        self,
        sender: Sender,
        settings: Settings,
        spool: Spool,
        *,
        database: Database | None = None,
        worker_id: str | None = None,
        batch_size: int = 10,
        max_attempts: int = MAX_ATTEMPTS,
        first_retry: timedelta = FIRST_RETRY,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        dead_after: timedelta = DEFAULT_DEAD_AFTER,
        chores: Sequence[Callable[[], object]] = (),
        hold: Hold | None = None,
    ) -> None:
        self.sender = sender
        self.hold = hold
        """When a call-back due now must wait (its contact closed: `service.texts.opening`)."""
        self.settings = settings
        self._database = database
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.first_retry = first_retry
        self.stale_after = stale_after
        self.dead_after = dead_after
        self.chores = tuple(chores)
        """Work done after each tick (calls reconciled with Twilio: `service.calls.reconcile`)."""
        self.spool = spool
        """This process's spool: the opt-outs it holds are read before each send, and it
        keeps the sent marks the database does not take."""
        self._held = False

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    # -- one tick -----------------------------------------------------------------------------

    def run_once(self) -> TickReport:
        report = TickReport()
        try:
            with self.database.session() as session:
                now = utcnow()
                beat(session, self.worker_id, now)
                if self._fence_held(session):
                    return report
                rows = claim_due(
                    session,
                    self.worker_id,
                    self.batch_size,
                    self.stale_after,
                    now=now,
                    dead_after=self.dead_after,
                    pending=lambda: pending_changes(self.spool.pending_records()),
                )
        except DATABASE_ERRORS as error:
            log.warning("outbox claim failed: %s", describe_error(error))
            return report
        for row in rows:
            try:
                self._handle(row, report)
            except Exception as error:  # a bug or a broken socket: this row waits, no other does
                log.exception("outbox %d: unexpected failure", row.id)
                unexpected = SendError(f"unexpected: {type(error).__name__}", retryable=True)
                self._failed(row, unexpected, report)
        for chore in self.chores:
            try:
                chore()
            except Exception:  # a chore's bug must not stop the sending
                log.exception("outbox worker chore failed")
        return report

    def _fence_held(self, session: Session) -> bool:
        """Whether another host's spool may hold opt-outs the database lacks (then nothing is
        sent this tick)."""
        holders = self.spool.fence().holding(session)
        if holders and not self._held:
            log.warning(
                "sending waits: the spool of %s may hold opt-outs the database lacks",
                ", ".join(holder.host for holder in holders),
            )
        if holders:
            FENCE_HELD.labels(what="send").inc()
        elif self._held:
            log.info("sending goes on: every host's opt-outs are in the database")
        self._held = bool(holders)
        return self._held

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
        until = self.hold(row) if self.hold is not None and row.kind == OutboxKind.CALL else None
        if until is not None:
            reason = "waits for its contact to open"
            self._store(mark_retry, row.id, reason, until, attempt=False)
            report.postponed += 1
            log.info("outbox %d postponed until its contact opens", row.id)
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
                MessageSent(
                    sid, row.to_number, line, row.body, segments, "queued", utcnow(), row.line_id
                )
            )
        if not self._store(self.spool.write, records, now=utcnow()):
            # Twilio has it: keep the mark (fsync'd) so that no worker sends it again.
            self.spool.submit(records, durable=True)

    def _split_if_long(self, row: OutboxMessage) -> bool:
        """A text longer than one message (2 segments of GSM-7, 3 of UCS-2: a Spanish list of
        numbers is UCS-2; see `segments.MESSAGE_SEGMENTS`) is split between lines:
        this row keeps the first message and each further one becomes a row of its own, queued
        now, so every row is still one send. False when the split could not be stored."""
        if row.kind != OutboxKind.SMS.value:
            return True
        parts = pack(row.body)
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
                        dedupe_key=f"{key[:120]}{PART_MARK}{number}",
                        further_part=True,
                        language=row.language,
                        line_id=row.line_id,
                    )
        except DATABASE_ERRORS as error:
            log.warning("outbox %d: could not split a long text: %s", row.id, describe_error(error))
            return False
        row.body = parts[0]
        log.info("outbox %d split into %d texts", row.id, len(parts))
        return True

    def _opted_out(self, row: OutboxMessage) -> bool:
        """Whether the row's number is opted out now, as the database and this host's spool
        say (read right before the send)."""
        if row.kind != OutboxKind.SMS.value:
            return False
        pending = pending_changes(self.spool.pending_records())
        with self.database.session(read_only=True) as session:
            number = row.from_number or self.settings.twilio_from_number or None
            return opted_out_now(session, row.to_number, number, pending)

    def _already_sent(self, row: OutboxMessage) -> str | None:
        """Before sending a text again (an earlier attempt timed out, or its worker died between
        Twilio's answer and the `sent` mark), ask Twilio whether it has it already, so a patient
        never gets it twice. A lookup that fails raises SendError: retried later, not sent.

        The text is this row's, not an identical one's: Twilio's status callback names the row
        (its URL carries the row's id) and puts the SID on it; failing that, Twilio is asked for
        a text with this body to this number since the row was queued that no other row has
        (and two rows with the same body to one number are never sent at the same time)."""
        if row.kind != OutboxKind.SMS.value or row.attempts <= 1:
            return None
        if row.twilio_sid:
            log.info("outbox %d: Twilio reported it took it (%s)", row.id, row.twilio_sid)
            return row.twilio_sid
        try:
            with self.database.session(read_only=True) as session:
                others = frozenset(
                    sid
                    for sid in session.scalars(
                        select(OutboxMessage.twilio_sid).where(
                            OutboxMessage.to_number == row.to_number,
                            OutboxMessage.id != row.id,
                            OutboxMessage.twilio_sid.is_not(None),
                        )
                    )
                    if sid
                )
        except DATABASE_ERRORS as error:
            raise SendError(f"cannot tell which texts are sent: {error}", retryable=True) from error
        sid = self.sender.find_sent(
            row.to_number,
            row.from_number or self.settings.twilio_from_number or None,
            row.body,
            row.created_at,
            others,
        )
        if sid:
            log.info("outbox %d was already taken by Twilio (%s): not sent again", row.id, sid)
        return sid

    def _send(self, row: OutboxMessage) -> str:
        if row.kind == OutboxKind.CALL.value:
            status_callback, _ = call_back_urls(self.settings)
            return self.sender.place_call(
                row.to_number,
                row.from_number,
                row.body.replace(OUTBOX_MARK, str(row.id)),
                status_callback and status_callback.replace(OUTBOX_MARK, str(row.id)),
            )
        return self.sender.send_sms(
            row.to_number, row.from_number, row.body, status_callback_url(self.settings, row.id)
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

    # -- running ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        """Tick until `stop` is set; a full batch is followed at once by the next tick. A
        heartbeat goes on beside it (a slow send must not look like a dead worker)."""
        log.info("outbox worker %s started", self.worker_id)
        heart = threading.Thread(
            target=self._beat_until, args=(stop,), name="outbox-heartbeat", daemon=True
        )
        heart.start()
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("outbox worker tick failed")
                report = TickReport()
            if report.handled < self.batch_size:
                stop.wait(poll_seconds)
        heart.join(timeout=5)
        self._store(retire, self.worker_id)
        log.info("outbox worker %s stopped", self.worker_id)

    def _beat_until(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_EVERY.total_seconds()):
            try:
                with self.database.session() as session:
                    beat(session, self.worker_id)
            except DATABASE_ERRORS as error:
                log.warning("outbox heartbeat failed: %s", describe_error(error))


def build_worker(
    settings: Settings,
    spool: Spool,
    chores: Sequence[Callable[[], object]] = (),
    hold: Hold | None = None,
) -> Worker | None:
    """The worker for these settings, or None (with a log line) when Twilio is not configured."""
    if not credentials_configured(settings):
        log.warning(
            "outbox worker not started: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set "
            "(queued texts wait in the outbox)"
        )
        return None
    return Worker(
        TwilioSender(settings),
        settings,
        spool,
        stale_after=timedelta(seconds=settings.outbox_stale_seconds),
        dead_after=timedelta(seconds=settings.worker_dead_seconds),
        first_retry=timedelta(seconds=settings.outbox_first_retry_seconds),
        chores=chores,
        hold=hold,
    )


@contextmanager
def background_sender(
    settings: Settings,
    spool: Spool,
    chores: Sequence[Callable[[], object]] = (),
    hold: Hold | None = None,
) -> Iterator[Worker | None]:
    """The outbox worker on a thread of this process (`phoneline serve`, sharing its spool),
    unless RUN_WORKER_IN_SERVER is false or Twilio is not configured."""
    worker = build_worker(settings, spool, chores, hold) if settings.run_worker_in_server else None
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
