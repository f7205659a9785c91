"""How many SMS segments a text takes: GSM-7 (with its extension table) or, failing that, UCS-2.

Carriers bill and deliver per segment, and one character outside GSM-7 turns the whole message into
UCS-2 (70 characters a segment instead of 160), so this is counted exactly, never estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTI = {"GSM-7": 153, "UCS-2": 67}


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


def pack(text: str, max_segments: int = 4) -> list[str]:
    """The text as few messages as it takes, each at most `max_segments`, split between lines.

    A line too long for one message on its own is split between words.
    """
    messages: list[str] = []
    current = ""
    for line in _lines_that_fit(text, max_segments):
        candidate = f"{current}\n{line}" if current else line
        if current and count_segments(candidate) > max_segments:
            messages.append(current)
            candidate = line
        current = candidate
    if current:
        messages.append(current)
    return _balanced(messages, max_segments)


def _balanced(messages: list[str], max_segments: int) -> list[str]:
    """Never leave one short line (the "how to go on" footer) alone in the last message."""
    if len(messages) < 2 or "\n" in messages[-1]:
        return messages
    head, _, moved = messages[-2].rpartition("\n")
    tail = f"{moved}\n{messages[-1]}"
    if not head or count_segments(tail) > max_segments:
        return messages
    return [*messages[:-2], head, tail]


def _lines_that_fit(text: str, max_segments: int) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        while count_segments(line) > max_segments:
            words = line.split(" ")
            head = words[0]
            for word in words[1:]:
                if count_segments(f"{head} {word}") > max_segments:
                    break
                head = f"{head} {word}"
            lines.append(head)
            line = line[len(head) :].lstrip()
        if line:
            lines.append(line)
    return lines
