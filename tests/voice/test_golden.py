"""Golden TwiML: the exact answers of a few turns, under tests/golden/voice/.

Run with UPDATE_GOLDEN=1 to rewrite them after an intended change, and review the diff.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from xml.sax.saxutils import quoteattr

import pytest

from tests.support import AppClient
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER, Caller, Heard, parse
from tests.voice.conftest import REPO_ROOT

GOLDEN = REPO_ROOT / "tests" / "golden" / "voice"


def fallback(caller: Caller) -> Heard:
    response = caller.client.twilio(
        "/twilio/fallback", {"CallSid": caller.call_sid, "From": CALLER_NUMBER, "To": LINE_NUMBER}
    )
    return parse(response.text)


def steps(*entries: str) -> Callable[[Caller], Heard]:
    def play(caller: Caller) -> Heard:
        heard = caller.call()
        for entry in entries:
            heard = caller.act(entry)
        return heard

    return play


TURNS: dict[str, Callable[[Caller], Heard]] = {
    "call-start": steps(),
    "spanish-main-menu": steps("9"),
    "wrong-key": steps("7"),
    "silence": steps(""),
    "dial-coordinator": steps("0"),
    "library-second-line": steps("2", "2", "1", "no-answer"),
    "transfer-busy": steps("2", "4", "1", "busy"),
    "transfer-answered": steps("0", "completed"),
    "press-8-texts": steps("2", "8"),
    "call-back-asked": steps("2", "2", "1", "no-answer", "no-answer", "2"),
    "coordinator-unanswered": steps("0", "no-answer"),
    "leave-a-message": steps("0", "no-answer", "3"),
    "fallback": fallback,
}


def pretty(xml: str) -> str:
    """The TwiML one verb a line; a `<Say>` (with any SSML in it) kept whole on its line, so
    the pinned file shows exactly the words and pauses."""
    root = ET.fromstring(xml)
    lines = ['<?xml version="1.0" ?>']

    def show(element: ET.Element, depth: int) -> None:
        pad = "  " * depth
        attributes = "".join(
            f" {name}={quoteattr(value)}" for name, value in element.attrib.items()
        )
        if element.tag == "Say" or len(element) == 0:
            alone = ET.Element(element.tag, element.attrib)
            alone.text, alone[:] = element.text, list(element)
            body = ET.tostring(alone, encoding="unicode", short_empty_elements=True)
            lines.append(pad + body)
            return
        lines.append(f"{pad}<{element.tag}{attributes}>")
        for child in element:
            show(child, depth + 1)
        lines.append(f"{pad}</{element.tag}>")

    show(root, 0)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(TURNS))
def test_golden_twiml(client: AppClient, name: str) -> None:
    got = pretty(TURNS[name](Caller(client)).xml)
    path = GOLDEN / f"{name}.xml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8"), f"TwiML changed: {path.relative_to(REPO_ROOT)}"


def test_every_golden_file_is_checked() -> None:
    assert {path.stem for path in GOLDEN.glob("*.xml")} == set(TURNS)


def test_golden_files_are_nothing_but_twiml() -> None:
    for path in GOLDEN.glob("*.xml"):
        parse(path.read_text(encoding="utf-8"))
