"""What a call leaves behind, as plain values: facts about calls, and how they make the call's row.
No database here (`service.calls.store` writes them), so the rules are easy to read and to test.

A voice webhook or a status callback becomes a few facts. Twilio retries webhooks, repeats
status callbacks and does not order them, and several processes write their batches in any
order, so a call's row is a function of the *set* of its facts, never of the order they arrive
in:

- what a status callback or the call's first webhook says is merged with what is there by rules
  that do not care about order (the earliest start, the highest status, the longest duration;
  where two values compete, a fixed preference);
- everything else (the path, the last menu, the language, the transfer and its result, the
  outcome) is *retold* from the call's stored events, sorted by time, whenever one of them is
  added or the call's status changes (`retell`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from service.flowengine.position import DialStatus
from service.models import CallEventKind, CallOutcome, CallStatus, DialOutcome
from service.spool.codec import register

PATH_MAX = 255
PATH_SEPARATOR = ">"

# Twilio CallStatus, in the order a call goes through them; the rank-3 ones are final.
# "unknown" is the line's own: reconciliation found no final status (Twilio does not know the
# call, or cannot be asked). Any real final status wins over it.
CALL_STATUS_RANK: dict[str, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 0,
    CallStatus.RINGING: 1,
    CallStatus.IN_PROGRESS: 2,
    CallStatus.ANSWERED: 2,
    CallStatus.COMPLETED: 3,
    CallStatus.BUSY: 3,
    CallStatus.NO_ANSWER: 3,
    CallStatus.FAILED: 3,
    CallStatus.CANCELED: 3,
    CallStatus.UNKNOWN: 3,
}
FINAL_CALL_RANK = 3
TWILIO_CALL_STATUSES = frozenset(CallStatus) - {CallStatus.UNKNOWN}
"""The CallStatus values Twilio documents (a status callback may carry any of them)."""
UNKNOWN_STATUS = CallStatus.UNKNOWN
# Twilio sends one final status; should two differ, this one of them stands, whatever came first.
FINAL_PREFERENCE: tuple[str, ...] = (
    CallStatus.COMPLETED,
    CallStatus.CANCELED,
    CallStatus.BUSY,
    CallStatus.NO_ANSWER,
    CallStatus.FAILED,
    CallStatus.UNKNOWN,
)
FAILED_STATUSES = frozenset({CallStatus.BUSY, CallStatus.NO_ANSWER, CallStatus.FAILED})

DIAL_OUTCOME_OF = {
    DialStatus.COMPLETED: DialOutcome.COMPLETED,
    DialStatus.ANSWERED: DialOutcome.COMPLETED,
    DialStatus.BUSY: DialOutcome.BUSY,
    DialStatus.NO_ANSWER: DialOutcome.NO_ANSWER,
    DialStatus.FAILED: DialOutcome.FAILED,
    DialStatus.CANCELED: DialOutcome.CANCELED,
}
"""What a `<Dial>`'s end means for the call's record."""
DIAL_OUTCOMES = frozenset(outcome.value for outcome in DialOutcome)
STORY_KINDS = frozenset(
    {
        CallEventKind.MENU,
        CallEventKind.LANGUAGE,
        CallEventKind.DIAL,
        CallEventKind.DIAL_RESULT,
        CallEventKind.HANGUP,
    }
)
"""The events a call's row is retold from."""
# Within one instant, the order in which one webhook's events happened: a dial result reports
# the dial before it, a key leads to the menu it chose, a menu comes before a dial from it.
KIND_ORDER = {
    CallEventKind.DIAL_RESULT.value: 0,
    CallEventKind.KEY.value: 1,
    CallEventKind.SPEECH.value: 1,
    CallEventKind.CRISIS.value: 1,
    CallEventKind.LANGUAGE.value: 2,
    CallEventKind.MENU.value: 3,
    CallEventKind.TEXT_QUEUED.value: 4,
    CallEventKind.DIAL.value: 5,
    CallEventKind.HANGUP.value: 6,
}

Normalize = Callable[[str], str | None]
"""A phone number as written by Twilio or a flow, in E.164 (None when it is not a number)."""


@register("call_started")
@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call reached the line (its first webhook). Safe to repeat."""

    call_sid: str
    at: datetime
    caller: str | None = None
    called: str | None = None
    language: str | None = None
    flow_hash: str | None = None
    line_id: int | None = None
    """The line the called number reaches."""
    revision_id: int | None = None
    """The flow revision the call began on (travels in its action URLs)."""


@register("call_event")
@dataclass(frozen=True, slots=True)
class CallEventHappened:
    """Something happened in a call. A `menu` event moves the call's path and last menu; a
    `language` event (detail: the language code) changes the call's language."""

    call_sid: str
    at: datetime
    kind: CallEventKind
    node: str | None = None
    detail: str | None = None


@register("call_transferred")
@dataclass(frozen=True, slots=True)
class CallTransferred:
    """A `<Dial>` to `contact` (the flow's contact id) at `number` started."""

    call_sid: str
    at: datetime
    contact: str
    number: str
    node: str | None = None


@register("dial_finished")
@dataclass(frozen=True, slots=True)
class DialFinished:
    """The `<Dial>` action callback: Twilio's DialCallStatus for the dial before it."""

    call_sid: str
    at: datetime
    status: str
    contact: str | None = None
    number: str | None = None
    node: str | None = None


@register("call_ended")
@dataclass(frozen=True, slots=True)
class CallEnded:
    """The line ended the call (a goodbye, or an error)."""

    call_sid: str
    at: datetime
    node: str | None = None
    detail: str | None = None


@register("call_status")
@dataclass(frozen=True, slots=True)
class StatusReported:
    """Twilio's call status callback (CallStatus and, once final, CallDuration), or what
    reconciliation learnt about a call that never got one."""

    call_sid: str
    at: datetime
    status: str
    duration: int | None = None
    caller: str | None = None
    called: str | None = None


CallFact = (
    CallStarted | CallEventHappened | CallTransferred | DialFinished | CallEnded | StatusReported
)
CALL_FACTS = (
    CallStarted,
    CallEventHappened,
    CallTransferred,
    DialFinished,
    CallEnded,
    StatusReported,
)


@dataclass(frozen=True, slots=True)
class Event:
    """A `call_events` row: new (to insert) or stored (to retell a call from)."""

    call_id: int
    at: datetime
    kind: str
    node: str | None
    detail: str | None


@dataclass(slots=True)
class CallState:
    """The columns of a `calls` row that facts change (and its id)."""

    id: int
    started_at: datetime
    caller: str | None = None
    called: str | None = None
    flow_hash: str | None = None
    line_id: int | None = None
    revision_id: int | None = None
    status: str | None = None
    outcome: str = CallOutcome.IN_PROGRESS.value
    dial_outcome: str | None = None
    transferred_contact: str | None = None
    transferred_number: str | None = None
    language: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: int | None = None
    path: str | None = None
    last_node: str | None = None
    last_seen_at: datetime | None = None
    retell: bool = field(default=False, compare=False)
    """The call's story changed (a new story event, or its status): retell it from its events."""


def merge(state: CallState, fact: CallFact, new_events: list[Event], normalize: Normalize) -> None:
    """Merge `fact` into `state` (order does not matter), adding its event row to
    `new_events`. Columns retold from events are left for `retell`."""

    def event(kind: CallEventKind, node: str | None, detail: str | None) -> None:
        new_events.append(Event(state.id, fact.at, kind.value, _cut(node, 64), _cut(detail, 255)))
        if kind in STORY_KINDS:
            state.retell = True

    state.started_at = min(state.started_at, fact.at)
    state.last_seen_at = fact.at if state.last_seen_at is None else max(state.last_seen_at, fact.at)
    match fact:
        case CallStarted(caller=caller, called=called, language=language, flow_hash=flow_hash):
            state.caller = _lesser(state.caller, caller and normalize(caller))
            state.called = _lesser(state.called, called and normalize(called))
            state.flow_hash = _lesser(state.flow_hash, flow_hash and flow_hash[:64])
            state.line_id = _least(state.line_id, fact.line_id)
            state.revision_id = _least(state.revision_id, fact.revision_id)
            if language:
                # The language the call started in; a `language` event, when there is one,
                # wins in `retell`.
                state.language = _lesser(state.language, language[:8])
                state.retell = True
        case CallEventHappened(kind=kind, node=node, detail=detail):
            event(kind, node, detail)
        case CallTransferred(contact=contact, number=number, node=node):
            event(CallEventKind.DIAL, node, dial_detail(contact, normalize(number)))
        case DialFinished(status=status, contact=contact, number=number, node=node):
            known = DialStatus.read(status)
            outcome = DialOutcome.FAILED if known is None else DIAL_OUTCOME_OF[known]
            dialed = dial_detail(contact, number and normalize(number)) if contact else None
            detail = outcome.value if dialed is None else f"{outcome.value} {dialed}"
            event(CallEventKind.DIAL_RESULT, node, detail)
        case CallEnded(node=node, detail=detail):
            event(CallEventKind.HANGUP, node, detail)
        case StatusReported(status=status, duration=duration, caller=caller, called=called):
            state.caller = _lesser(state.caller, caller and normalize(caller))
            state.called = _lesser(state.called, called and normalize(called))
            _merge_status(state, status.lower(), duration, fact.at)


def _merge_status(state: CallState, status: str, duration: int | None, at: datetime) -> None:
    rank = CALL_STATUS_RANK.get(status)
    if rank is None:
        return
    current = CALL_STATUS_RANK.get(state.status or "", -1)
    if rank > current or (
        rank == current == FINAL_CALL_RANK
        and FINAL_PREFERENCE.index(status) < FINAL_PREFERENCE.index(state.status or "")
    ):
        state.status = status
        state.retell = True
    if rank == CALL_STATUS_RANK[CallStatus.IN_PROGRESS]:
        state.answered_at = at if state.answered_at is None else min(state.answered_at, at)
    if rank < FINAL_CALL_RANK or status == UNKNOWN_STATUS:
        return
    if duration is not None:
        state.duration_seconds = max(duration, state.duration_seconds or 0)
    state.ended_at = at if state.ended_at is None else min(state.ended_at, at)


def retell(state: CallState, events: Iterable[Event]) -> None:
    """Set the columns that follow from the call's story events (all of them, stored and new):
    path, last menu, language, the transfer, its result and the outcome."""
    story = sorted(events, key=_story_order)
    menus = [e.node for e in story if e.kind == CallEventKind.MENU.value and e.node]
    state.path = path_of(menus) or None
    state.last_node = menus[-1][:64] if menus else None
    languages = [e.detail for e in story if e.kind == CallEventKind.LANGUAGE.value and e.detail]
    if languages:
        state.language = languages[-1][:8]
    dials = Dials.of(story)
    state.transferred_contact = dials.contact
    state.transferred_number = dials.number
    state.dial_outcome = dials.outcome
    hung_up_by_line = any(e.kind == CallEventKind.HANGUP.value for e in story)
    state.outcome = outcome_of(state.status, dials, hung_up_by_line, state.path).value


@dataclass(frozen=True)
class Dials:
    """What a call's transfers came to."""

    tried: bool = False
    reached: bool = False
    pending: bool = False
    """A dial started and no result came after it (yet)."""
    contact: str | None = None
    """The contact that answered, else the last one dialed."""
    number: str | None = None
    outcome: str | None = None
    """`completed` when a transfer was answered, else the last dial's result (None: none yet)."""

    @classmethod
    def of(cls, story: Iterable[Event]) -> Dials:
        tried = reached = pending = False
        contact = number = outcome = None
        answered: tuple[str | None, str | None] | None = None
        for event in story:
            if event.kind == CallEventKind.DIAL.value:
                tried, pending, outcome = True, True, None
                contact, number = _dialed(event.detail)
            elif event.kind == CallEventKind.DIAL_RESULT.value and event.detail:
                result, _, dialed = event.detail.partition(" ")
                if result not in DIAL_OUTCOMES:
                    continue
                if dialed:
                    contact, number = _dialed(dialed)
                tried, pending, outcome = True, False, result
                if result == DialOutcome.COMPLETED.value and answered is None:
                    answered = (contact, number)
        if answered is not None:
            reached = True
            contact, number = answered
            outcome = DialOutcome.COMPLETED.value
        return cls(tried, reached, pending, contact, number, outcome)


def dial_results(story: Iterable[Event]) -> list[tuple[str, str]]:
    """(contact, result) of each finished dial of a call, in time order (for /metrics)."""
    results: list[tuple[str, str]] = []
    contact: str | None = None
    for event in sorted(story, key=_story_order):
        if event.kind == CallEventKind.DIAL.value:
            contact = dialed_contact(event.detail)
        elif event.kind == CallEventKind.DIAL_RESULT.value and event.detail:
            result, _, dialed = event.detail.partition(" ")
            if result in DIAL_OUTCOMES:
                results.append((dialed_contact(dialed) or contact or "unknown", result))
    return results


def outcome_of(
    status: str | None, dials: Dials, hung_up_by_line: bool, path: str | None
) -> CallOutcome:
    """How a call ended, for staff: reached a person; a transfer nobody answered; Twilio could
    not connect it; no final status ever came (unknown); or no transfer at all, in which case
    the caller either went past the first menu (listened) or hung up in it."""
    ended = CALL_STATUS_RANK.get(status or "") == FINAL_CALL_RANK or hung_up_by_line
    if not ended:
        return CallOutcome.IN_PROGRESS
    if dials.reached:
        return CallOutcome.REACHED
    if dials.tried:
        return CallOutcome.NOT_ANSWERED
    if status in FAILED_STATUSES:
        return CallOutcome.FAILED
    if status == UNKNOWN_STATUS and not hung_up_by_line:
        return CallOutcome.UNKNOWN
    if path and PATH_SEPARATOR in path:
        return CallOutcome.LISTENED
    return CallOutcome.HUNG_UP


def path_of(menus: list[str]) -> str:
    """The menus a caller went through, in time order: "main>reach>coordinator". A menu heard
    again right after itself is not added again, and the path stops growing at PATH_MAX."""
    path = ""
    for node in menus:
        if not path:
            path = node[:PATH_MAX]
        elif path.rsplit(PATH_SEPARATOR, 1)[-1] != node:
            extended = f"{path}{PATH_SEPARATOR}{node}"
            path = extended if len(extended) <= PATH_MAX else path
    return path


def dial_detail(contact: str, number: str | None) -> str:
    """A dial event's detail: the contact id, then the number dialed ("coordinator +1804…")."""
    return f"{contact[:64]} {number}" if number else contact[:64]


def dialed_contact(detail: str | None) -> str | None:
    """The contact id in a dial event's detail."""
    return _dialed(detail)[0]


def duration_of(value: int | str | None) -> int | None:
    """Twilio's CallDuration (seconds) as a number; None when missing or not a number."""
    if value is None or value == "":
        return None
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def _dialed(detail: str | None) -> tuple[str | None, str | None]:
    if not detail:
        return None, None
    contact, _, number = detail.partition(" ")
    return contact or None, number or None


def _story_order(event: Event) -> tuple[datetime, int, str, str]:
    return (event.at, KIND_ORDER.get(event.kind, 9), event.node or "", event.detail or "")


def _least(current: int | None, value: int | None) -> int | None:
    """`_lesser` of two ids (a call restarted on a newer revision keeps the one it began on)."""
    if value is None or value <= 0:
        return current
    return value if current is None else min(current, value)


def _lesser(current: str | None, value: str | None) -> str | None:
    """Of two values, the one there is; of two different ones, the lesser (so that the result
    does not depend on which came first)."""
    if not value:
        return current
    if current is None:
        return value
    return min(current, value)


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]
