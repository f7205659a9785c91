"""Where a call or conversation is in a flow, and what wakes the engine."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

Channel = Literal["voice", "sms"]
State = Literal["menu", "dialing", "retry", "closed", "message"]

MAX_MISSES = 3
"""Silences or wrong keys in a row before the call moves on: a caller who has heard nothing yet
is put through to a person, one who has heard a part of the handout gets the number and a
goodbye."""


@dataclass(frozen=True)
class Position:
    node: str
    lang: str
    channel: Channel = "voice"
    misses: int = 0
    state: State = "menu"
    contact: str | None = None
    """The contact being dialed (state `dialing`), that did not answer (state `retry`), that
    is closed (state `closed`), or for whom the caller is leaving a message (state `message`)."""
    line: int = 0
    heard: bool = False
    """The caller has heard a part of the handout (a menu below the first, or a number)."""

    def at(self, node: str) -> Position:
        return replace(self, node=node, misses=0, state="menu", contact=None, line=0)


@dataclass(frozen=True)
class Start:
    """A new call or conversation."""


@dataclass(frozen=True)
class Key:
    """One key pressed (or a reply that is one key: "1", "0", "*", "#")."""

    key: str


@dataclass(frozen=True)
class Speech:
    text: str


@dataclass(frozen=True)
class Reply:
    """A text message: digits, a word like MENU or BACK, or free text."""

    text: str


@dataclass(frozen=True)
class Silence:
    """The caller said and pressed nothing before the menu timed out."""


class DialStatus(StrEnum):
    """How a `<Dial>` ended: Twilio's DialCallStatus ("answered" is what some Dial actions
    report for a bridged call). The one list of them."""

    COMPLETED = "completed"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    CANCELED = "canceled"

    @classmethod
    def read(cls, value: str | None) -> DialStatus | None:
        """The status Twilio sent (any case), or None for one it does not document."""
        try:
            return cls((value or "").strip().lower())
        except ValueError:
            return None


@dataclass(frozen=True)
class DialEnded:
    status: DialStatus


@dataclass(frozen=True)
class Recorded:
    """The caller left a message (`<Record>` reported a recording of `seconds`). An empty
    recording is not reported: Twilio goes on with the next verb, which asks again with
    nothing (a `Silence`)."""

    seconds: int


Input = Start | Key | Speech | Reply | Silence | DialEnded | Recorded
