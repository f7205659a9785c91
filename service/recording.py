"""The recording API: texts and opt-outs (the SMS webhooks and the outbox sender call it), and
calls one write at a time (tests and tools; the voice webhooks hand their facts to the call
writer, `service.calls.writer`, which writes them in batches through the same store).

Recording never gets in a caller's way: every method catches database (and file system) errors,
logs one line without message bodies or phone numbers, counts the error in
`phoneline_db_errors_total` and returns normally. Every method is idempotent on CallSid or
MessageSid, because Twilio retries and repeats callbacks and does not order them.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from service.calls.facts import (
    CallEnded,
    CallEventHappened,
    CallFact,
    CallStarted,
    CallTransferred,
    DialFinished,
    StatusReported,
    duration_of,
)
from service.calls.store import Settled, settle_calls, write_call_facts
from service.db import Database, get_database, upsert
from service.metrics import CALLS, DB_ERRORS, OPT_OUT_CHANGES, TRANSFERS
from service.models import (
    CallEventKind,
    Conversation,
    Direction,
    Message,
    utcnow,
)
from service.phone import to_e164
from service.texts.optouts import default_journal_path, journal_opt_out, set_opt_out

log = logging.getLogger(__name__)

P = ParamSpec("P")

DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, OSError)

# Twilio MessageStatus, in order; a status never moves back to an earlier one.
MESSAGE_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 4,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}


def describe_error(error: BaseException) -> str:
    """A one-line description of a database error without SQL parameters (they hold numbers
    and message bodies): the driver's exception class and the first line of its message."""
    original = getattr(error, "orig", None) or error
    first_line = (str(original).splitlines() or [""])[0][:200]
    return f"{type(original).__name__}: {first_line}"


def _never_raises(
    method: Callable[Concatenate[Recorder, P], None],
) -> Callable[Concatenate[Recorder, P], None]:
    operation = method.__name__

    def wrapper(self: Recorder, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(self, *args, **kwargs)
        except DATABASE_ERRORS as error:
            self.failed = True
            DB_ERRORS.labels(operation=operation).inc()
            log.warning("recording %s failed: %s", operation, describe_error(error))

    functools.update_wrapper(wrapper, method)
    return wrapper


class Recorder:
    """Records calls and texts. Build one with a Database, or none to use `get_database()`."""

    def __init__(self, database: Database | None = None, *, journal: Path | None = None) -> None:
        self._database = database
        self._journal = journal
        self.failed = False
        """Set once any recording through this Recorder failed (and was swallowed)."""

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    # -- calls ----------------------------------------------------------------------------

    @_never_raises
    def record_calls(self, facts: Sequence[CallFact]) -> None:
        """Write facts about calls (what one or many voice webhooks did) in one transaction,
        and count what they settled once it is committed."""
        self._write_calls(facts)

    def _write_calls(self, facts: Sequence[CallFact]) -> None:
        with self.database.session() as session:
            write_call_facts(session.connection(), facts)

    def settle(self, now: datetime | None = None, **options: Any) -> Settled:
        """Settle the calls that ended and have been quiet (see `settle_calls`), and count them."""
        with self.database.session() as session:
            settled = settle_calls(session.connection(), now or utcnow(), **options)
        count_settled(settled)
        return settled

    @_never_raises
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
        """A call reached the line (safe to call on every voice webhook of the call)."""
        self._write_calls(
            [CallStarted(call_sid, at or utcnow(), caller, called, language, flow_hash)]
        )

    @_never_raises
    def call_event(
        self,
        call_sid: str,
        kind: CallEventKind | str,
        *,
        node: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Something happened in a call (see `CallEventHappened`)."""
        fact = CallEventHappened(call_sid, at or utcnow(), CallEventKind(kind), node, detail)
        self._write_calls([fact])

    @_never_raises
    def call_transferred(
        self,
        call_sid: str,
        contact: str,
        number: str,
        *,
        node: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """A <Dial> to `contact` (the flow's contact id) at `number` started."""
        self._write_calls([CallTransferred(call_sid, at or utcnow(), contact, number, node)])

    @_never_raises
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
        """The <Dial> action callback (DialCallStatus)."""
        fact = DialFinished(call_sid, at or utcnow(), dial_status, contact, number, node)
        self._write_calls([fact])

    @_never_raises
    def call_ended(
        self,
        call_sid: str,
        *,
        node: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """The flow ended the call (a goodbye, or an error)."""
        fact = CallEnded(call_sid, at or utcnow(), node, detail)
        self._write_calls([fact])

    @_never_raises
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
        """Twilio's status callback (CallStatus, CallDuration); see `StatusReported`."""
        fact = StatusReported(
            call_sid, at or utcnow(), status, duration_of(duration), caller, called
        )
        self._write_calls([fact])

    # -- texts ----------------------------------------------------------------------------

    @_never_raises
    def message_received(
        self,
        message_sid: str,
        phone: str,
        line: str,
        body: str,
        *,
        segments: int = 1,
        at: datetime | None = None,
    ) -> None:
        """An inbound text (Twilio's SMS webhook); a retried webhook is recorded once."""
        self._record_message(message_sid, Direction.IN, phone, line, body, segments, "received", at)

    @_never_raises
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
        """An outbound text handed to Twilio (a TwiML reply has no MessageSid: pass None)."""
        self._record_message(message_sid, Direction.OUT, phone, line, body, segments, status, at)

    @_never_raises
    def message_status(
        self,
        message_sid: str,
        status: str,
        *,
        error_code: str | int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Twilio's message status callback; repeats and late callbacks never move it back."""
        at = at or utcnow()
        status = status.lower()
        with self.database.session() as session:
            session.execute(
                upsert(session, Message)
                .values(
                    message_sid=message_sid,
                    direction=Direction.OUT.value,
                    body="",
                    segments=1,
                    status=status,
                    created_at=at,
                    updated_at=at,
                )
                .on_conflict_do_nothing(index_elements=["message_sid"])
            )
            message = session.scalars(
                select(Message).where(Message.message_sid == message_sid).with_for_update()
            ).one()
            current = MESSAGE_STATUS_RANK.get(message.status or "", -1)
            if MESSAGE_STATUS_RANK.get(status, -1) >= current:
                message.status = status[:16]
                message.updated_at = at
            if error_code not in (None, ""):
                message.error_code = str(error_code)[:16]

    def opt_out(
        self,
        phone: str,
        opted_out: bool,
        keyword: str | None = None,
        *,
        at: datetime | None = None,
    ) -> bool:
        """Record STOP (opted_out=True) or START. Never lost: when the database fails, the
        change goes to a journal under var/ that `replay_journal` applies later. Returns
        whether it reached the database."""
        at = at or utcnow()
        OPT_OUT_CHANGES.labels(change="stop" if opted_out else "start").inc()
        try:
            with self.database.session() as session:
                set_opt_out(session, phone, opted_out, keyword, at=at)
            return True
        except DATABASE_ERRORS as error:
            DB_ERRORS.labels(operation="opt_out").inc()
            log.warning("recording opt_out failed, journaling it: %s", describe_error(error))
        try:
            journal_opt_out(self._journal or default_journal_path(), phone, opted_out, keyword, at)
        except OSError as error:
            log.error("an opt-out could not be journaled either: %s", describe_error(error))
        return False

    # -- helpers --------------------------------------------------------------------------

    def _record_message(
        self,
        message_sid: str | None,
        direction: Direction,
        phone: str,
        line: str,
        body: str,
        segments: int,
        status: str,
        at: datetime | None,
    ) -> None:
        at = at or utcnow()
        phone_e164 = to_e164(phone) or phone[:20]
        line_e164 = to_e164(line) or line[:20]
        with self.database.session() as session:
            conversation_id = session.scalar(
                select(Conversation.id).where(
                    Conversation.phone == phone_e164, Conversation.line == line_e164
                )
            )
            values = {
                "message_sid": message_sid,
                "conversation_id": conversation_id,
                "direction": direction.value,
                "phone": phone_e164,
                "line": line_e164,
                "body": body,
                "segments": segments,
                "status": status,
                "created_at": at,
                "updated_at": at,
            }
            if message_sid is None:
                session.add(Message(**values))
                return
            insert = upsert(session, Message).values(**values)
            table = Message.__table__
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.message_sid],
                    # Only a row a status callback created first (empty body) is filled in.
                    set_={
                        name: insert.excluded[name]
                        for name in ("conversation_id", "phone", "line", "body", "segments")
                    },
                    where=(table.c.body == "") & (table.c.direction == direction.value),
                )
            )


def count_settled(settled: Settled) -> None:
    """Count, once their transaction committed, the calls that settled and their dials."""
    for _, outcome in settled.calls:
        CALLS.labels(outcome=outcome).inc()
    for _, contact, result in settled.transfers:
        TRANSFERS.labels(contact=contact, result=result).inc()
