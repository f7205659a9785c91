"""The recording API the voice and SMS webhooks call.

Recording never gets in a caller's way: every method catches database (and file system) errors,
logs one line without message bodies or phone numbers, counts the error in
`phoneline_db_errors_total` and returns normally. Every method is idempotent on CallSid or
MessageSid, because Twilio retries and repeats callbacks and does not order them.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Concatenate, ParamSpec

from sqlalchemy import case, exists, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.db import Database, get_database, upsert
from service.metrics import CALLS, DB_ERRORS, OPT_OUT_CHANGES, TRANSFERS
from service.models import (
    Call,
    CallEvent,
    CallEventKind,
    CallOutcome,
    Conversation,
    DialOutcome,
    Direction,
    Message,
    utcnow,
)
from service.optouts import default_journal_path, journal_opt_out, set_opt_out
from service.phone import to_e164

log = logging.getLogger(__name__)

P = ParamSpec("P")

DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, OSError)

PATH_MAX = 255
PATH_SEPARATOR = ">"

# Twilio CallStatus, in the order a call goes through them; the last four are final.
CALL_STATUS_RANK = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "answered": 2,
    "completed": 3,
    "busy": 3,
    "no-answer": 3,
    "failed": 3,
    "canceled": 3,
}
FINAL_CALL_RANK = 3

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

# Twilio's DialCallStatus ("answered" is what some Dial actions report for a bridged call).
DIAL_STATUSES = {
    "completed": DialOutcome.COMPLETED,
    "answered": DialOutcome.COMPLETED,
    "busy": DialOutcome.BUSY,
    "no-answer": DialOutcome.NO_ANSWER,
    "failed": DialOutcome.FAILED,
    "canceled": DialOutcome.CANCELED,
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


def _truncate(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


class Recorder:
    """Records calls and texts. Build one with a Database, or none to use `get_database()`."""

    def __init__(self, database: Database | None = None, *, journal: Path | None = None) -> None:
        self._database = database
        self._journal = journal
        self._batch: Session | None = None
        self.failed = False
        """Set once any recording through this Recorder failed (and was swallowed), so that a
        caller with several things to record can stop after the first failure instead of
        waiting on a database that is down once per record."""

    @property
    def database(self) -> Database:
        return self._database if self._database is not None else get_database()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Record several things in one transaction (what one turn of a call did): one commit
        instead of one per record. A failure inside is swallowed and counted like any other, and
        the whole batch is rolled back."""
        try:
            with self.database.session() as session:
                self._batch = session
                yield
                if self.failed:
                    session.rollback()
        except DATABASE_ERRORS as error:
            self.failed = True
            DB_ERRORS.labels(operation="batch").inc()
            log.warning("recording a batch failed: %s", describe_error(error))
        finally:
            self._batch = None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._batch is not None:
            yield self._batch
        else:
            with self.database.session() as session:
                yield session

    # -- calls ----------------------------------------------------------------------------

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
        at = at or utcnow()
        with self._session() as session:
            table = Call.__table__
            insert = upsert(session, Call).values(
                call_sid=call_sid,
                caller=to_e164(caller),
                called=to_e164(called),
                started_at=at,
                language=language,
                flow_hash=flow_hash,
                outcome=CallOutcome.IN_PROGRESS.value,
            )
            new = insert.excluded
            session.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.call_sid],
                    set_={
                        # A status callback may have created the row first.
                        "caller": func.coalesce(table.c.caller, new.caller),
                        "called": func.coalesce(table.c.called, new.called),
                        "language": func.coalesce(table.c.language, new.language),
                        "flow_hash": func.coalesce(table.c.flow_hash, new.flow_hash),
                        "started_at": case(
                            (new.started_at < table.c.started_at, new.started_at),
                            else_=table.c.started_at,
                        ),
                    },
                )
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
        """Something happened in a call. A `menu` event moves the call's last node and path;
        a `language` event (detail = the language code) changes the call's language."""
        at = at or utcnow()
        kind = CallEventKind(kind)
        with self._session() as session:
            call = self._call_for_update(session, call_sid, at)
            session.add(
                CallEvent(
                    call_id=call.id,
                    at=at,
                    kind=kind.value,
                    node=_truncate(node, 64),
                    detail=_truncate(detail, 255),
                )
            )
            if kind is CallEventKind.MENU and node:
                # Webhooks of one call may be recorded out of order (recording runs after each
                # answer), so the path is derived from the menu events in time order.
                session.flush()
                menus = session.scalars(
                    select(CallEvent.node)
                    .where(CallEvent.call_id == call.id, CallEvent.kind == kind.value)
                    .order_by(CallEvent.at, CallEvent.id)
                ).all()
                names = [name for name in menus if name]
                call.path = _path_of(names)
                call.last_node = names[-1][:64]
            elif kind is CallEventKind.LANGUAGE and detail:
                call.language = detail[:8]

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
        at = at or utcnow()
        with self._session() as session:
            call = self._call_for_update(session, call_sid, at)
            call.transferred_contact = contact[:64]
            call.transferred_number = to_e164(number)
            call.dial_outcome = None
            session.add(
                CallEvent(
                    call_id=call.id, at=at, kind=CallEventKind.DIAL.value, node=node, detail=contact
                )
            )

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
        """The <Dial> action callback (DialCallStatus). An answered dial makes the call
        `transferred`; other results are kept in dial_outcome."""
        at = at or utcnow()
        outcome = DIAL_STATUSES.get(dial_status.lower(), DialOutcome.FAILED)
        settled = False
        with self._session() as session:
            call = self._call_for_update(session, call_sid, at)
            if contact:
                call.transferred_contact = contact[:64]
            if number:
                call.transferred_number = to_e164(number)
            call.dial_outcome = outcome.value
            if outcome is DialOutcome.COMPLETED:
                settled = call.outcome == CallOutcome.IN_PROGRESS
                call.outcome = CallOutcome.TRANSFERRED.value
            session.add(
                CallEvent(
                    call_id=call.id,
                    at=at,
                    kind=CallEventKind.DIAL_RESULT.value,
                    node=node,
                    detail=outcome.value,
                )
            )
            dialed = call.transferred_contact or "unknown"
        TRANSFERS.labels(contact=dialed, result=outcome.value).inc()
        if settled:
            CALLS.labels(outcome=CallOutcome.TRANSFERRED.value).inc()

    @_never_raises
    def call_ended(
        self,
        call_sid: str,
        outcome: CallOutcome | str = CallOutcome.COMPLETED,
        *,
        node: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """The flow ended the call (a goodbye, or an error). A transferred call stays
        transferred."""
        at = at or utcnow()
        outcome = CallOutcome(outcome)
        with self._session() as session:
            call = self._call_for_update(session, call_sid, at)
            settled = call.outcome == CallOutcome.IN_PROGRESS
            if call.outcome != CallOutcome.TRANSFERRED:
                call.outcome = outcome.value
            session.add(
                CallEvent(
                    call_id=call.id,
                    at=at,
                    kind=CallEventKind.HANGUP.value,
                    node=node,
                    detail=_truncate(detail, 255),
                )
            )
        if settled and outcome is not CallOutcome.IN_PROGRESS:
            CALLS.labels(outcome=outcome.value).inc()

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
        """Twilio's status callback (CallStatus, CallDuration).

        Repeats change nothing and late, out-of-order callbacks never move a call back: once a
        final status is recorded it stays. A call that ends while still `in-progress` gets an
        outcome: `failed` when Twilio could not connect it; `abandoned` when the caller hung up
        without choosing anything or while an unanswered transfer was pending; else `completed`.
        """
        at = at or utcnow()
        status = status.lower()
        rank = CALL_STATUS_RANK.get(status)
        if rank is None:
            return
        seconds = _seconds(duration)
        with self._session() as session:
            call = self._call_for_update(session, call_sid, at, caller=caller, called=called)
            current_rank = CALL_STATUS_RANK.get(call.status or "", -1)
            if current_rank >= FINAL_CALL_RANK:
                if rank >= FINAL_CALL_RANK and status != call.status:
                    return  # a different final status arrived late: the first one stands
            elif rank >= current_rank:
                call.status = status
            if rank == CALL_STATUS_RANK["in-progress"] and call.answered_at is None:
                call.answered_at = at
            if rank < FINAL_CALL_RANK:
                return
            if seconds is not None:
                call.duration_seconds = seconds
            if call.ended_at is None:
                call.ended_at = at
            if call.outcome != CallOutcome.IN_PROGRESS:
                return
            call.outcome = _final_outcome(session, call, status).value
        CALLS.labels(outcome=call.outcome).inc()

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
        with self._session() as session:
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

    def _call_for_update(
        self,
        session: Session,
        call_sid: str,
        at: datetime,
        *,
        caller: str | None = None,
        called: str | None = None,
    ) -> Call:
        """The call, locked for this transaction; created if its first webhook went unrecorded."""
        locked = (
            select(Call)
            .where(Call.call_sid == call_sid)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        existing = session.scalars(locked).one_or_none()
        if existing is not None:  # the usual case: no insert needed
            return existing
        session.execute(
            upsert(session, Call)
            .values(
                call_sid=call_sid,
                caller=to_e164(caller),
                called=to_e164(called),
                started_at=at,
                outcome=CallOutcome.IN_PROGRESS.value,
            )
            .on_conflict_do_nothing(index_elements=["call_sid"])
        )
        return session.scalars(locked).one()

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
        with self._session() as session:
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


def _seconds(duration: int | str | None) -> int | None:
    if duration is None or duration == "":
        return None
    try:
        return max(0, int(duration))
    except (TypeError, ValueError):
        return None


def _path_of(nodes: Iterable[str]) -> str:
    path = ""
    for node in nodes:
        path = _extend_path(path, node)
    return path


def _extend_path(path: str | None, node: str) -> str:
    """ "main>reach" + "coordinator" -> "main>reach>coordinator"; repeats of the same menu are
    not added again, and a path that would pass PATH_MAX characters stops growing."""
    if not path:
        return node[:PATH_MAX]
    if path.rsplit(PATH_SEPARATOR, 1)[-1] == node:
        return path
    extended = f"{path}{PATH_SEPARATOR}{node}"
    return extended if len(extended) <= PATH_MAX else path


def _final_outcome(session: Session, call: Call, status: str) -> CallOutcome:
    if status in ("busy", "no-answer", "failed"):
        return CallOutcome.FAILED
    if call.dial_outcome is not None and call.dial_outcome != DialOutcome.COMPLETED:
        return CallOutcome.ABANDONED
    chose_something = session.scalar(
        select(
            exists().where(
                CallEvent.call_id == call.id,
                CallEvent.kind.in_([CallEventKind.KEY.value, CallEventKind.SPEECH.value]),
            )
        )
    )
    return CallOutcome.COMPLETED if chose_something else CallOutcome.ABANDONED
