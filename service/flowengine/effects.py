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
class ReadNumber:
    """A contact's numbers: read out digit by digit on the phone, written out in a text."""

    contact: str
    lead: str = "number_is"
    """The phrase that introduces the number on the phone ("The number is …")."""


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    language: str | None = None
    """Set when the choice is offered in another language ("Para español, oprima 9.")."""


@dataclass(frozen=True)
class Menu:
    """Offer these choices and wait for the next input."""

    node: str
    choices: tuple[Choice, ...]
    announce_keys: bool = False
    """Name the keys that work everywhere (0, star, pound): once, at the start of a call."""


@dataclass(frozen=True)
class Connect:
    """Put the caller through to one line of a contact.

    On SMS: give the number and offer a call back.
    """

    contact: str
    line: int = 0


@dataclass(frozen=True)
class TextContacts:
    """Send these contacts' numbers by text (on SMS: include them in the reply)."""

    contacts: tuple[str, ...]


@dataclass(frozen=True)
class HangUp:
    """End the call after a goodbye; the goodbye is the `Say` just before."""


Effect = Say | ReadNumber | Menu | Connect | TextContacts | HangUp
