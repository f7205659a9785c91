"""What a call leaves behind, as plain values: facts about calls, and how each one changes the
call's row. No database here (`service.calls.store` writes them), so the rules are easy to read
and to test.

A voice webhook or a status callback becomes a few facts. Twilio retries webhooks, repeats
status callbacks and does not order them, so every rule is written to be repeated or reordered
safely: a final status never moves back, a transferred call stays transferred, and the path is
rebuilt from the menu events in time order rather than appended to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from service.models import CallEventKind, CallOutcome, DialOutcome

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

# Twilio's DialCallStatus ("answered" is what some Dial actions report for a bridged call).
DIAL_STATUSES = {
    "completed": DialOutcome.COMPLETED,
    "answered": DialOutcome.COMPLETED,
    "busy": DialOutcome.BUSY,
    "no-answer": DialOutcome.NO_ANSWER,
    "failed": DialOutcome.FAILED,
    "canceled": DialOutcome.CANCELED,
}
CHOICE_KINDS = frozenset({CallEventKind.KEY, CallEventKind.SPEECH})

Normalize = Callable[[str], str | None]
"""A phone number as written by Twilio or a flow, in E.164 (None when it is not a number)."""
Settle = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call reached the line (its first webhook). Safe to repeat: the first values stay."""

    call_sid: str
    at: datetime
    caller: str | None = None
    called: str | None = None
    language: str | None = None
    flow_hash: str | None = None


@dataclass(frozen=True, slots=True)
class CallEventHappened:
    """Something happened in a call. A `menu` event moves the call's path and last menu; a
    `language` event (detail: the language code) changes the call's language."""

    call_sid: str
    at: datetime
    kind: CallEventKind
    node: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """A `<Dial>` to `contact` (the flow's contact id) at `number` started."""

    call_sid: str
    at: datetime
    contact: str
    number: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class DialFinished:
    """The `<Dial>` action callback: Twilio's DialCallStatus. An answered dial makes the call
    `transferred`; any other result is kept in dial_outcome."""

    call_sid: str
    at: datetime
    status: str
    contact: str | None = None
    number: str | None = None
    node: str | None = None


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The flow ended the call (a goodbye, or an error). A transferred call stays transferred."""

    call_sid: str
    at: datetime
    outcome: CallOutcome = CallOutcome.COMPLETED
    node: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class StatusReported:
    """Twilio's call status callback: CallStatus and, once final, CallDuration."""

    call_sid: str
    at: datetime
    status: str
    duration: int | None = None
    caller: str | None = None
    called: str | None = None


CallFact = (
    CallStarted | CallEventHappened | CallTransferred | DialFinished | CallEnded | StatusReported
)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A `call_events` row to insert."""

    call_id: int
    at: datetime
    kind: CallEventKind
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
    chose_something: bool = False
    """Whether the caller pressed a key or spoke (a call that ends without is abandoned)."""
    menus_changed: bool = field(default=False, compare=False)
    """A menu event was added: the path is rebuilt from the menu events."""


@dataclass
class Changes:
    """What applying facts did: rows to add, and what to count once they are committed."""

    events: list[NewEvent] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    """Outcomes of calls that left `in-progress` (phoneline_calls_total)."""
    transfers: list[tuple[str, str]] = field(default_factory=list)
    """(contact, dial outcome) of finished dials (phoneline_transfers_total)."""


def apply(state: CallState, fact: CallFact, changes: Changes, normalize: Normalize) -> None:
    """Change `state` as `fact` says, adding its event row and its counts to `changes`."""

    def event(kind: CallEventKind, node: str | None, detail: str | None) -> None:
        changes.events.append(NewEvent(state.id, fact.at, kind, _cut(node, 64), _cut(detail, 255)))

    def settle(outcome: str) -> None:
        if state.outcome == CallOutcome.IN_PROGRESS and outcome != CallOutcome.IN_PROGRESS:
            changes.settled.append(outcome)
        state.outcome = outcome

    state.started_at = min(state.started_at, fact.at)
    match fact:
        case CallStarted(caller=caller, called=called, language=language, flow_hash=flow_hash):
            # A status callback may have created the row first: fill in, keep what is there.
            state.caller = _first(state.caller, caller and normalize(caller))
            state.called = _first(state.called, called and normalize(called))
            state.language = _first(state.language, language and language[:8])
            state.flow_hash = _first(state.flow_hash, flow_hash and flow_hash[:64])
        case CallEventHappened(kind=kind, node=node, detail=detail):
            event(kind, node, detail)
            if kind is CallEventKind.MENU and node:
                state.menus_changed = True
            elif kind is CallEventKind.LANGUAGE and detail:
                state.language = detail[:8]
            elif kind in CHOICE_KINDS:
                state.chose_something = True
        case CallTransferred(contact=contact, number=number, node=node):
            state.transferred_contact = contact[:64]
            state.transferred_number = normalize(number)
            state.dial_outcome = None
            event(CallEventKind.DIAL, node, contact)
        case DialFinished(status=status, contact=contact, number=number, node=node):
            outcome = DIAL_STATUSES.get(status.lower(), DialOutcome.FAILED)
            if contact:
                state.transferred_contact = contact[:64]
            if number:
                state.transferred_number = normalize(number)
            state.dial_outcome = outcome.value
            if outcome is DialOutcome.COMPLETED:
                settle(CallOutcome.TRANSFERRED.value)
            event(CallEventKind.DIAL_RESULT, node, outcome.value)
            changes.transfers.append((state.transferred_contact or "unknown", outcome.value))
        case CallEnded(outcome=outcome, node=node, detail=detail):
            if state.outcome != CallOutcome.TRANSFERRED:
                settle(CallOutcome(outcome).value)
            event(CallEventKind.HANGUP, node, detail)
        case StatusReported(status=status, duration=duration, caller=caller, called=called):
            state.caller = _first(state.caller, caller and normalize(caller))
            state.called = _first(state.called, called and normalize(called))
            _status_reported(state, status.lower(), duration, fact.at, settle)


def _status_reported(
    state: CallState, status: str, duration: int | None, at: datetime, settle: Settle
) -> None:
    """Repeats change nothing and late, out-of-order callbacks never move a call back: once a
    final status is recorded it stays. A call that ends while still `in-progress` gets an
    outcome: `failed` when Twilio could not connect it; `abandoned` when the caller hung up
    without choosing anything or while an unanswered transfer was pending; else `completed`."""
    rank = CALL_STATUS_RANK.get(status)
    if rank is None:
        return
    current_rank = CALL_STATUS_RANK.get(state.status or "", -1)
    if current_rank >= FINAL_CALL_RANK:
        if rank >= FINAL_CALL_RANK and status != state.status:
            return  # a different final status arrived late: the first one stands
    elif rank >= current_rank:
        state.status = status
    if rank == CALL_STATUS_RANK["in-progress"] and state.answered_at is None:
        state.answered_at = at
    if rank < FINAL_CALL_RANK:
        return
    if duration is not None:
        state.duration_seconds = max(0, duration)
    if state.ended_at is None:
        state.ended_at = at
    if state.outcome == CallOutcome.IN_PROGRESS:
        settle(_final_outcome(state, status).value)


def _final_outcome(state: CallState, status: str) -> CallOutcome:
    if status in ("busy", "no-answer", "failed"):
        return CallOutcome.FAILED
    if state.dial_outcome is not None and state.dial_outcome != DialOutcome.COMPLETED:
        return CallOutcome.ABANDONED
    return CallOutcome.COMPLETED if state.chose_something else CallOutcome.ABANDONED


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


def duration_of(value: int | str | None) -> int | None:
    """Twilio's CallDuration (seconds) as a number; None when missing or not a number."""
    if value is None or value == "":
        return None
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return None


def _first(current: str | None, value: str | None) -> str | None:
    """The value already recorded, else the new one (an empty one is no value)."""
    return current if current is not None else (value or None)


def _cut(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]
