"""How many SMS segments a text takes: GSM-7 (with its extension table) or, failing that, UCS-2.

Carriers bill and deliver per segment, and one character outside GSM-7 turns the whole message into
UCS-2 (70 characters a segment instead of 160), so this is counted exactly, never estimated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}

SENTENCE_ENDS = (".", "?", "!", ";", ":")
MESSAGE_SEGMENTS = {"GSM-7": 2, "UCS-2": 3}
"""The most segments one message of the line takes: English is written in GSM-7 and gets 2
(306 characters); Spanish needs UCS-2 for its accents and gets 3 (201 characters). `flows
check` holds every English and Spanish text of a flow to these, so a message packed by its
encoding is packed as its language allows."""


@dataclass(frozen=True)
class Segmentation:
    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    segments: int


def encoding_of(text: str) -> Literal["GSM-7", "UCS-2"]:
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        return "GSM-7"
    return "UCS-2"


def _unit_sizes(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def segment(text: str) -> Segmentation:
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units <= SINGLE[encoding]:
        return Segmentation(encoding, units, 1 if units else 0)
    # An escape pair or surrogate pair is never split between two segments.
    per_segment, segments, used = MULTI[encoding], 1, 0
    for size in sizes:
        if used + size > per_segment:
            segments, used = segments + 1, 0
        used += size
    return Segmentation(encoding, units, segments)


def count_segments(text: str) -> int:
    return segment(text).segments


def fits(text: str, max_segments: int | None = None) -> bool:
    """Whether `text` is one message: at most `max_segments`, or the line's limit for its
    encoding (`MESSAGE_SEGMENTS`)."""
    found = segment(text)
    limit = MESSAGE_SEGMENTS[found.encoding] if max_segments is None else max_segments
    return found.segments <= limit


def pack(text: str, max_segments: int | None = None) -> list[str]:
    """The text as few messages as it takes, split between lines; each message at most
    `max_segments`, or (None) the line's limit for its encoding: 2 segments of GSM-7, 3 of
    UCS-2.

    A line too long for one message on its own is split between words.
    """
    messages: list[str] = []
    current = ""
    for line in _lines_that_fit(text, max_segments):
        candidate = f"{current}\n{line}" if current else line
        if current and not fits(candidate, max_segments):
            messages.append(current)
            candidate = line
        current = candidate
    if current:
        messages.append(current)
    return _menus_whole(_balanced(messages, max_segments), max_segments)


MENU_LINE = re.compile(r"^[0-9*#] \S")
"""A line of a text menu ("2 Find another doctor")."""


def _menus_whole(messages: list[str], max_segments: int | None) -> list[str]:
    """A menu cut in two by a message break starts the next message instead, when it fits
    there: "title" and "1 … 9, how to go on" rather than "title, 1 … 8" and "9, how to go on"."""
    for index in range(len(messages) - 1):
        lines = messages[index].split("\n")
        if not MENU_LINE.match(messages[index + 1]) or not MENU_LINE.match(lines[-1]):
            continue
        start = len(lines)
        while start > 0 and MENU_LINE.match(lines[start - 1]):
            start -= 1
        moved = "\n".join([*lines[start:], messages[index + 1]])
        if start > 0 and fits(moved, max_segments):
            messages[index] = "\n".join(lines[:start])
            messages[index + 1] = moved
    return messages


def _balanced(messages: list[str], max_segments: int | None) -> list[str]:
    """Never leave one short line (the "how to go on" footer) alone in the last message."""
    if len(messages) < 2 or "\n" in messages[-1]:
        return messages
    head, _, moved = messages[-2].rpartition("\n")
    tail = f"{moved}\n{messages[-1]}"
    if not head or not fits(tail, max_segments):
        return messages
    return [*messages[:-2], head, tail]


def _lines_that_fit(text: str, max_segments: int | None) -> list[str]:
    """The lines of `text`, a line too long for one message split in pieces that fit: at the
    end of a sentence when one fits, else between words."""
    lines: list[str] = []
    for line in text.split("\n"):
        while not fits(line, max_segments):
            head = _longest_head(line, max_segments)
            lines.append(head)
            line = line[len(head) :].lstrip()
        if line:
            lines.append(line)
    return lines


def _longest_head(line: str, max_segments: int | None) -> str:
    words = line.split(" ")
    head = words[0]
    sentence = ""
    for word in words[1:]:
        if not fits(f"{head} {word}", max_segments):
            break
        head = f"{head} {word}"
        if head.endswith(SENTENCE_ENDS):
            sentence = head
    return sentence or head
