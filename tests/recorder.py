"""Recording one thing at a time, at once: the records the webhooks spool (`service.spool`),
written straight to the database through the same stores. For tests, tools and fixtures; the
running line spools instead.

Every method is idempotent where the record is (on CallSid or MessageSid), catches database
errors (logged without numbers or bodies, counted in `phoneline_db_errors_total`, `failed`
set) and returns normally.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from service.calls.facts import (
    CallEnded,
    CallEventHappened,
    CallStarted,
    CallTransferred,
    DialFinished,
    StatusReported,
    duration_of,
)
from service.calls.store import Settled, settle_calls
from service.db import DATABASE_ERRORS, Database, describe_error, get_database
from service.messages.records import MessageReceived, MessageSent, MessageStatusReported
from service.metrics import DB_ERRORS
from service.models import CallEventKind, utcnow
from service.models.opt_outs import EVERY_NUMBER
from service.optouts.store import OptOutChanged
from service.spool.codec import Record
from service.stores import write_records

log = logging.getLogger(__name__)


class Recorder:
    """Writes records now. Build one with a Database, or none to use `get_database()`."""

    def __init__(self, database: Database | None = None) -> None:
        self._database = database
        self.failed = False
        """Set once any recording through this Recorder failed (and was swallowed)."""

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    def record(self, *records: Record) -> bool:
        """Write these records in one transaction; False (logged, counted) when that failed."""
        try:
            with self.database.session() as session:
                applied = write_records(session, records, now=utcnow())
        except DATABASE_ERRORS as error:
            self.failed = True
            operation = type(records[0]).__name__ if records else "record"
            DB_ERRORS.labels(operation=operation).inc()
            log.warning("recording %s failed: %s", operation, describe_error(error))
            return False
        applied.count()
        return True

    def settle(self, now: datetime | None = None, **options: Any) -> Settled:
        """Settle the calls that ended and have been quiet (see `settle_calls`), and count them."""
        with self.database.session() as session:
            settled = settle_calls(session.connection(), now or utcnow(), **options)
        settled.count()
        return settled

    # -- calls ----------------------------------------------------------------------------

    def call_started(
        self,
        call_sid: str,
        caller: str | None,
        called: str | None,
        *,
        language: str | None = None,
        flow_hash: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(CallStarted(call_sid, at or utcnow(), caller, called, language, flow_hash))

    def call_event(
        self,
        call_sid: str,
        kind: CallEventKind | str,
        *,
        node: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(CallEventHappened(call_sid, at or utcnow(), CallEventKind(kind), node, detail))

    def call_transferred(
        self,
        call_sid: str,
        contact: str,
        number: str,
        *,
        node: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(CallTransferred(call_sid, at or utcnow(), contact, number, node))

    def dial_result(
        self,
        call_sid: str,
        dial_status: str,
        *,
        contact: str | None = None,
        number: str | None = None,
        node: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(DialFinished(call_sid, at or utcnow(), dial_status, contact, number, node))

    def call_ended(
        self,
        call_sid: str,
        *,
        node: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(CallEnded(call_sid, at or utcnow(), node, detail))

    def call_status(
        self,
        call_sid: str,
        status: str,
        *,
        duration: int | str | None = None,
        caller: str | None = None,
        called: str | None = None,
        at: datetime | None = None,
    ) -> None:
        fact = StatusReported(
            call_sid, at or utcnow(), status, duration_of(duration), caller, called
        )
        self.record(fact)

    # -- texts ----------------------------------------------------------------------------

    def message_received(
        self,
        message_sid: str,
        phone: str,
        line: str,
        body: str,
        *,
        segments: int = 1,
        intent: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.record(
            MessageReceived(message_sid, phone, line, body, segments, at or utcnow(), intent)
        )

    def message_sent(
        self,
        message_sid: str | None,
        phone: str,
        line: str,
        body: str,
        *,
        segments: int = 1,
        status: str = "queued",
        at: datetime | None = None,
    ) -> None:
        self.record(MessageSent(message_sid, phone, line, body, segments, status, at or utcnow()))

    def message_status(
        self,
        message_sid: str,
        status: str,
        *,
        error_code: str | int | None = None,
        at: datetime | None = None,
    ) -> None:
        code = str(error_code) if error_code not in (None, "") else None
        self.record(MessageStatusReported(message_sid, status, code, at or utcnow()))

    def opt_out(
        self,
        phone: str,
        opted_out: bool,
        keyword: str | None = None,
        *,
        at: datetime | None = None,
        number: str = EVERY_NUMBER,
    ) -> bool:
        """Record STOP (opted_out=True) or START texted to `number` (every number: STOPALL);
        whether it reached the database."""
        return self.record(OptOutChanged(phone, opted_out, keyword, at or utcnow(), number))

