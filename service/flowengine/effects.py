"""What one step of the engine asks the line to do.

Plain data. The voice channel turns these into TwiML, the SMS channel into a text message, and the
simulator into lines on a terminal; all three go through `render.py`, so the words never drift
apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Say:
    """Words for the caller or texter, already in the conversation's language."""

    text: str


@dataclass(frozen=True)
class NotUnderstood(Say):
    """An apology for words (spoken or texted) the line could not match to any choice: said
    like any `Say`; the SMS line also marks the text for staff to look at."""


@dataclass(frozen=True)
class EmergencyWarning(Say):
    """Words that sounded like a crisis: thoughts of suicide or self-harm (988 first) or a
    medical emergency (911 first); both name 988 and 911 (the line dials neither), then how
    to reach a person. Staff get an urgent follow-up."""

    kind: str = "emergency"
    """"self-harm" or "emergency"."""


@dataclass(frozen=True)
class Courtesy(Say):
    """A friendly answer (to thanks, or to a question about the line): said like any `Say`; a
    text ends with how to go on from anywhere (MENU, 0) rather than the menu's footer."""

    how_to_stop: bool = False
    """A text also says how to stop texts (a question about the line may come from a wrong
    number), unless the opt-in notice of a first reply says it already."""


@dataclass(frozen=True)
class ReadNumber:
    """A contact's numbers given as information: read out slowly and said twice on the phone,
    written out in a text."""

    contact: str
    lead: str = "number_is"
    """The phrase that introduces the number on the phone ("The number is …")."""


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    language: str | None = None
    """Set when the choice is offered in another language ("Para español, oprima 9.")."""
    sms_label: str | None = None
    """How a text menu writes it, when the spoken label does not suit a text."""


@dataclass(frozen=True)
class Menu:
    """Offer these choices and wait for the next input.

    On the phone every menu ends by saying how to reach a person (0); a text menu ends with the
    same in its footer. Those lines are the renderer's, so no menu can leave them out."""

    node: str
    choices: tuple[Choice, ...]
    announce_keys: bool = False
    """Name the keys that work everywhere (star, pound, 0): once, at the start of a call."""
    back: bool = False
    """Say how to go back (a leaf: nothing more to hear below it)."""


@dataclass(frozen=True)
class Connect:
    """Put the caller through to one line of a contact.

    On SMS (0 for a person): give the number and offer a call back.
    """

    contact: str
    line: int = 0


@dataclass(frozen=True)
class PlaceCallBack:
    """SMS only: call the texter now and connect them to this contact (as the CALL keyword does)."""

    contact: str


@dataclass(frozen=True)
class RequestCallBack:
    """Voice only: the caller asked to be called back after `contact` did not answer; staff
    follow it up (the call's record carries it)."""

    contact: str


@dataclass(frozen=True)
class TakeMessage:
    """Voice only: record the caller's message for `contact` (after the words before it: how
    to leave one); the recording's report comes back as a `Recorded` input."""

    contact: str


@dataclass(frozen=True)
class MessageTaken:
    """Voice only: the caller left a message for `contact`; staff listen to it and call back
    (the call's record carries it, the recording reaches the worklist)."""

    contact: str


@dataclass(frozen=True)
class TextContacts:
    """Send these contacts' numbers by text (on SMS: include them in the reply)."""

    contacts: tuple[str, ...]


@dataclass(frozen=True)
class HangUp:
    """End the call after a goodbye; the goodbye is the `Say` just before."""


Effect = (
    Say
    | ReadNumber
    | Menu
    | Connect
    | PlaceCallBack
    | RequestCallBack
    | TakeMessage
    | MessageTaken
    | TextContacts
    | HangUp
)
