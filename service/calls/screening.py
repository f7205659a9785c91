"""Call screening: an honest "reached a person" for contacts whose phones a machine may answer.

A contact with `screen: true` is dialed with `<Number url=…>`: whoever answers hears who is
calling ("Call from the Second Opinion Line, a caller who speaks Spanish. Press 1 to take it."),
twice, and presses 1 to be put through (`POST /twilio/voice/screen`, in `router`). Twilio
reports a transfer that a machine answered, or that nobody took, as `completed` like any other
(the leg was answered), so the key is what counts: it is kept as a `screen` event of the
caller's call ("taken coordinator"), fsync'd in the spool's durable stream, which every process
of this host reads before the database has it. When the caller's transfer ends `completed`,
the voice webhook asks `was_taken`: a screened transfer nobody took is a transfer not answered
(the caller hears so, then the choices: try again, a call back, a message...), and the call's
record says not answered. When neither the spool nor the database can tell (the database
away), Twilio's word stands: the line fails open to "reached".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import exists, select

from service.calls.facts import CallEventHappened
from service.db import DATABASE_ERRORS, Database, describe_error
from service.flowengine import Flow
from service.flowengine.phrases import phrase
from service.models import Call, CallEvent, CallEventKind
from service.spool.spool import Spool

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {
    "en": {"en": "English", "es": "Spanish"},
    "es": {"en": "inglés", "es": "español"},
}
"""Each language's name, as said in each language (the whisper is in the staff's)."""
TAKE_KEY = "1"
TAKEN = "taken"
NOT_TAKEN = "not-taken"


def whisper(flow: Flow | None, caller_lang: str) -> tuple[str, str]:
    """(words, language) whoever answers hears: in the line's default language (the staff's),
    naming the caller's language when it is another."""
    lang = flow.default_language if flow is not None else "en"
    program = (flow.title.get(lang) if flow is not None else None) or phrase(lang, "program")
    spoken = ""
    language = LANGUAGE_NAMES.get(lang, {}).get(caller_lang)
    if caller_lang != lang and language:
        spoken = phrase(lang, "screen_in_language", language=language)
    return phrase(lang, "screen_whisper", program=program, language=spoken), lang


def screen_event(call_sid: str, at: datetime, contact: str, taken: bool) -> CallEventHappened:
    """The caller's call's record of what whoever answered did."""
    detail = f"{TAKEN if taken else NOT_TAKEN} {contact[:64]}"
    return CallEventHappened(call_sid, at, CallEventKind.SCREEN, None, detail)


def was_taken(spool: Spool, database: Callable[[], Database], call_sid: str) -> bool | None:
    """Whether whoever answered the call's screened transfer pressed 1: True, False, or None
    when it cannot be told (the database away, and this host's spool does not have it)."""
    for record in spool.pending_records():
        if (
            isinstance(record, CallEventHappened)
            and record.call_sid == call_sid
            and record.kind == CallEventKind.SCREEN
            and (record.detail or "").startswith(f"{TAKEN} ")
        ):
            return True
    try:
        with database().session(read_only=True) as session:
            taken = exists().where(
                Call.call_sid == call_sid,
                CallEvent.call_id == Call.id,
                CallEvent.kind == CallEventKind.SCREEN.value,
                CallEvent.detail.like(f"{TAKEN} %"),
            )
            return bool(session.scalar(select(taken)))
    except DATABASE_ERRORS as error:
        log.warning("cannot tell whether a screened transfer was taken: %s", describe_error(error))
        return None
