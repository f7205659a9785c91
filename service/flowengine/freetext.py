"""What free text says besides a menu choice, from the lists under `words/`: a crisis (thoughts
of self-harm, a medical emergency), courtesy, a question about the line, a plain request to
stop texts or to be called.

Each answer carries the language the words were in: the one language whose list has them, or,
when both lists do ("911", "ok"), the language the text is written in (`language_of`), or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from service.flowengine.language import language_of
from service.flowengine.wordlists import found, whole

CrisisKind = Literal["self-harm", "emergency"]
CRISIS_LISTS: tuple[tuple[CrisisKind, str], ...] = (
    ("self-harm", "self_harm"),
    ("emergency", "emergency"),
)
"""Self-harm first: a text with both ("I took all my pills") gets 988 first."""


@dataclass(frozen=True)
class Heard:
    """Words of one kind were in the text; `lang` is the language they were in (None: either)."""

    lang: str | None


@dataclass(frozen=True)
class Crisis(Heard):
    kind: CrisisKind = "emergency"


def _heard(languages: tuple[str, ...], text: str) -> Heard | None:
    if not languages:
        return None
    return Heard(languages[0] if len(languages) == 1 else language_of(text))


def crisis_in(text: str) -> Crisis | None:
    """Thoughts of suicide or self-harm (988 first), else a medical emergency (911 first)."""
    for kind, name in CRISIS_LISTS:
        heard = _heard(found(name, text), text)
        if heard is not None:
            return Crisis(heard.lang, kind)
    return None


def courtesy(text: str) -> Heard | None:
    """The whole text is courtesy: thanks, ok, bye, 👍."""
    return _heard(whole("polite", text), text)


def about_the_line(text: str) -> Heard | None:
    """A question about the line itself: who is this, wrong number, hours, anyone there?"""
    return _heard(found("about_line", text), text)


def plain_opt_out(text: str) -> Heard | None:
    """A plain request to stop texts ("please stop", "no me escriban más")."""
    return _heard(whole("opt_out", text) or found("opt_out", text), text)


def call_request(text: str) -> Heard | None:
    """A plain request to be called ("call me please", "llámenme")."""
    return _heard(whole("call_me", text), text)
