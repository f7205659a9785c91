"""Golden transcripts: what a caller hears and a texter reads, pinned word for word.

Each scenario is a list of inputs; its transcript (as `phoneline simulate` prints it) lives in
tests/golden/<name>.txt. After a deliberate change of wording, regenerate with
`UPDATE_GOLDEN=1 pytest tests/engine/test_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.flowengine import Flow
from service.simulator import Simulation, run_terminal

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

# name: (channel, language, inputs)
SCENARIOS: dict[str, tuple[str, str | None, list[str]]] = {
    "voice-main-menu": ("voice", None, []),
    "voice-why": ("voice", None, ["1"]),
    "voice-reach-each-contact": ("voice", None, ["2", "1", "#", "2", "#", "3", "#", "4", "#", "5"]),
    "voice-prepare": ("voice", None, ["3"]),
    "voice-disagree-all-steps": ("voice", None, ["4", "1", "1"]),
    "voice-wrong-key": ("voice", None, ["7", "2", "6"]),
    "voice-three-silences": ("voice", None, ["", "", "", "completed"]),
    "voice-zero-from-deep": ("voice", None, ["4", "1", "0", "busy", "8", "#"]),
    "voice-back": ("voice", None, ["2", "3", "#", "#"]),
    "voice-repeat": ("voice", None, ["3", "*"]),
    "voice-spanish": ("voice", None, ["9", "2", "2", "1", "no-answer", "no-answer", "", "", ""]),
    "voice-speech": ("voice", None, ["coordinator please"]),
    "voice-text-me": ("voice", None, ["8"]),
    "voice-call-back": ("voice", None, ["2", "4", "1", "no-answer", "2"]),
    "voice-silence-after-content": ("voice", None, ["2", "5", "", "", ""]),
    "voice-words": ("voice", None, ["the library", "#", "what do I need to bring", "chest pain"]),
    "voice-spanish-content": ("voice", None, ["9", "1", "#", "2", "3", "#", "5", "#", "#", "4"]),
    "voice-spanish-steps": ("voice", "es", ["4", "1", "1", "1", "busy", "no-answer", "2"]),
    "sms-main-menu": ("sms", None, []),
    "sms-why": ("sms", None, ["1"]),
    "sms-reach-each-contact": ("sms", None, ["2", "1", "#", "2", "#", "3", "#", "4", "#", "5"]),
    "sms-prepare": ("sms", None, ["3"]),
    "sms-disagree-all-steps": ("sms", None, ["4", "1", "1"]),
    "sms-wrong-key": ("sms", None, ["7", "what is this"]),
    "sms-zero-from-deep": ("sms", None, ["4", "1", "0"]),
    "sms-back-and-menu": ("sms", None, ["2", "3", "BACK", "#", "2", "menu"]),
    "sms-repeat": ("sms", None, ["3", "*"]),
    "sms-all-numbers": ("sms", None, ["8"]),
    "sms-spanish": ("sms", None, ["9", "1", "#", "2", "8"]),
    "sms-spanish-start": ("sms", "es", ["3", "4", "1", "1"]),
    "sms-spanish-contacts": ("sms", "es", ["2", "1", "#", "2", "#", "3", "#", "4", "#", "5", "#"]),
    "sms-spanish-why-and-numbers": ("sms", "es", ["1", "MENU", "8", "0", "CALL"]),
    "sms-emergency-and-not-understood": (
        "sms",
        None,
        ["I have chest pain", "I was told I have cancer and I am scared", "library", "1"],
    ),
    "sms-keywords": ("sms", None, ["HELP", "stop texting me", "hello", "START", "yes"]),
    "sms-free-text": (
        "sms",
        None,
        ["thanks", "who is this?", "quiero hablar con alguien", "ya no quiero vivir", "LLAMAME"],
    ),
    "sms-plain-stop": ("sms", None, ["2", "STOP please", "2", "I want to die", "START"]),
    "voice-spanish-answers": (
        "voice",
        None,
        ["hola", "quién habla", "gracias", "me duele el pecho"],
    ),
    "voice-call-back-words": ("voice", None, ["0", "no-answer", "call me back"]),
    "voice-message": (
        "voice",
        None,
        ["0", "no-answer", "3", "", "leave a message", "This is Ana, please call me back"],
    ),
    "voice-crisis": ("voice", None, ["2", "I don't want to live anymore", "0"]),
}


def transcript(flow: Flow, channel: str, lang: str | None, inputs: list[str]) -> str:
    lines: list[str] = []
    run_terminal(Simulation(flow, channel, lang), inputs, lines.append)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_transcript_matches_golden(flow: Flow, name: str) -> None:
    channel, lang, inputs = SCENARIOS[name]
    actual = transcript(flow, channel, lang, inputs)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8")
