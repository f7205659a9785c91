"""The flow definition: what a loaded, validated flow file holds.

Plain frozen dataclasses; the loader builds them, the engine reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from functools import cached_property

Text = dict[str, str]
"""Per-language text: {"en": "...", "es": "..."}."""


@dataclass(frozen=True)
class OpenHours:
    """One span of office hours on some weekdays (0 = Monday)."""

    days: tuple[int, ...]
    opens: time
    closes: time


@dataclass(frozen=True)
class Hours:
    timezone: str
    spans: tuple[OpenHours, ...]
    description: Text


@dataclass(frozen=True)
class Contact:
    id: str
    name: Text
    """How the line says it: "the patient referral coordinator at VCU Massey"."""
    short: Text
    """How a text message writes it: "Referral coordinator, VCU Massey"."""
    numbers: tuple[str, ...]
    """E.164 numbers, tried in order when the first does not answer."""
    display: tuple[str, ...]
    """How each number is written for people, e.g. "(804) 828-7999"."""
    hours: Hours | None = None


@dataclass(frozen=True)
class Option:
    key: str
    label: Text
    goto: str | None = None
    connect: str | None = None
    text: tuple[str, ...] = ()
    language: str | None = None
    hangup: bool = False
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra words per language a caller may say (or text) to choose this option."""


@dataclass(frozen=True)
class Node:
    id: str
    say: Text
    options: tuple[Option, ...]
    sms: Text | None = None
    """Text for SMS when the spoken words do not suit a text message."""
    contact: str | None = None
    """A contact this node presents: its number is read out (voice) or written out (SMS)."""


@dataclass(frozen=True, eq=False)
class Flow:
    """A loaded flow. Compared and hashed by identity: each load is a version of its own."""

    name: str
    version: str
    languages: tuple[str, ...]
    default_language: str
    title: Text
    start: str
    operator: str
    """The contact that `0` reaches from anywhere."""
    contacts: dict[str, Contact]
    nodes: dict[str, Node]
    content_hash: str
    parents: dict[str, str] = field(default_factory=dict)
    """Each node's parent for `#`: the node it is first reached from, breadth first from start."""

    @cached_property
    def keeps_hours(self) -> bool:
        """Whether a contact keeps office hours: only then does a step depend on the time."""
        return any(contact.hours is not None for contact in self.contacts.values())
