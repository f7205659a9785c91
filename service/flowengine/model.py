"""The flow definition: what a loaded, validated flow file holds.

Plain frozen dataclasses; the loader builds them, the engine reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

Text = dict[str, str]
"""Per-language text: {"en": "...", "es": "..."}."""

CHANNELS = ("voice", "sms")


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
class Closure:
    """A day a contact is closed (from `closes_at` to the end of that day; None: all day)."""

    timezone: str
    on: date | None = None
    """One date; or, when None, every year: `month` and `day`, or `month`, `weekday` (0 is
    Monday) and `nth` (1 to 4, or -1 for the last)."""
    month: int | None = None
    day: int | None = None
    weekday: int | None = None
    nth: int | None = None
    closes_at: time | None = None
    message: Text = field(default_factory=dict)
    """What callers and texters are told of it, by language (none: only that it is closed)."""

    def covers(self, day: date) -> bool:
        if self.on is not None:
            return day == self.on
        if day.month != self.month:
            return False
        if self.day is not None:
            return day.day == self.day
        if day.weekday() != self.weekday:
            return False
        if self.nth == -1:
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 + 1 == self.nth

    def closes(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        return self.covers(local.date()) and (
            self.closes_at is None or local.time() >= self.closes_at
        )


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
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Words per language that name this contact ("library"): said or texted from any menu,
    they lead to the part of the flow that gives its number."""
    closures: tuple[Closure, ...] = ()
    """Its closures, kept by staff outside the flow and given with it (none in a flow read from
    its file)."""
    instead: tuple[str, ...] = ()
    """Contacts offered while this one is closed (keys 4 and 5): ones open when it is not."""
    screen: bool = False
    """Whoever answers a transfer hears who is calling and presses 1 to take it: a machine, or
    no key, is not a person reached."""


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
    sms_label: Text | None = None
    """How a text menu writes the option, when the spoken label ("be connected now") does
    not suit a text."""
    channels: tuple[str, ...] = CHANNELS
    """Where the option is offered: a "get this number by text" is for callers only."""


@dataclass(frozen=True)
class Node:
    id: str
    say: Text
    options: tuple[Option, ...]
    sms: Text | None = None
    """Text for SMS when the spoken words do not suit a text message."""
    contact: str | None = None
    """A contact this node presents: its number is read out (voice) or written out (SMS)."""


@dataclass(frozen=True)
class Limits:
    """The measured targets `phoneline flows check` holds a flow to (a flow file may set its
    own under `limits:`; these are the line's)."""

    start_words: int = 25
    """Words a caller hears before the first "press 1" of the first menu (≈10 s), in every
    language (in Spanish, after the caller pressed 9)."""
    node_words: int = 150
    """Words before the first option of any other menu."""
    first_menu_choices: int = 5
    """Choices on the first menu, besides 0 (a person) and 9 (the other language)."""
    menu_choices: int = 6
    """Choices on any other menu, besides the keys that work everywhere."""
    sms_segments: dict[str, int] = field(default_factory=lambda: {"en": 2, "es": 3})
    """Segments one text message may take, per language (Spanish is UCS-2: 67 characters a
    segment, so it gets one more)."""
    sms_messages: int = 2
    """Messages one reply (or the text a caller asks for) may take."""

    def segments_for(self, lang: str) -> int:
        return self.sms_segments.get(lang, min(self.sms_segments.values(), default=2))


@dataclass(frozen=True)
class Recording:
    """A recording of a node's spoken words (`say`) in one language."""

    audio: str
    """Its SHA-256 and format ("3f2a…e1.mp3"): its name at `/prompts/`, and its version."""
    words: str
    """The words as they were when it was recorded."""


@dataclass(frozen=True, eq=False)
class Flow:
    """A loaded flow. Compared and hashed by identity: each text loaded is a version of its own
    (the same text loaded again in one process is the same Flow: `validate.flow_of_text`)."""

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
    limits: Limits = field(default_factory=Limits)
    recordings: dict[str, dict[str, Recording]] = field(default_factory=dict)
    """Node id -> language -> the recording of its `say` in that language."""

    @cached_property
    def played(self) -> dict[tuple[str, str], str]:
        """(language, words) -> the recording played for those words: each recording whose
        words are still the node's (one recorded before its text changed is not played: the
        new words are said until it is recorded again)."""
        return {
            (lang, recording.words): recording.audio
            for node_id, by_language in self.recordings.items()
            for lang, recording in by_language.items()
            if not self.is_stale(node_id, lang)
        }

    def is_stale(self, node_id: str, lang: str) -> bool:
        """Whether the node's recording in `lang` says other words than the node's text now."""
        recording = self.recordings.get(node_id, {}).get(lang)
        node = self.nodes.get(node_id)
        if recording is None or node is None:
            return False
        return " ".join(recording.words.split()) != node.say.get(lang)

    @cached_property
    def keeps_hours(self) -> bool:
        """Whether a contact keeps office hours or has a closure: only then does a step depend
        on the time."""
        return any(
            contact.hours is not None or contact.closures for contact in self.contacts.values()
        )

    @cached_property
    def home_of(self) -> dict[str, str]:
        """Each contact's node: the first, breadth first from the start, that presents it."""
        homes: dict[str, str] = {}
        for node_id in (self.start, *self.parents):
            node = self.nodes.get(node_id)
            if node is not None and node.contact is not None:
                homes.setdefault(node.contact, node_id)
        return homes
