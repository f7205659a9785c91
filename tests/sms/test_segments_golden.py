"""Every text the shipped flow can send, in both languages, with its segment count and encoding,
pinned in tests/golden/sms/segments.txt: no English message over 2 segments, no Spanish one over
3 (UCS-2, 67 characters a segment), no reply over 2 messages, and the first reply says how to
opt out in its first message.

What is walked: the first reply of a conversation; at every node, arriving there, every option,
0, #, a wrong key, words not understood, words of an emergency and CALL; the carrier keyword
replies; and the texts the voice line queues for a caller ("press 8"). Run with UPDATE_GOLDEN=1
to rewrite the file after an intended change to the flow or the phrases, and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from service.calls.voice_call import text_body
from service.channels.sms import messages_for
from service.flowengine import Flow, Position
from service.flowengine.segments import segment
from service.texts.dialogue import respond
from service.texts.keywords import keyword_reply

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sms" / "segments.txt"
MAX_SEGMENTS = {"en": 2, "es": 3}
MAX_MESSAGES = 2
OPT_OUT_LINE = {"en": "Reply STOP to opt out", "es": "Responda STOP para cancelar"}


def every_text(flow: Flow) -> Iterator[tuple[str, str, str]]:
    """(what, the text, the language it is written in)."""
    for lang in flow.languages:

        def answer(
            what: str, body: str, here: Position | None, lang: str = lang
        ) -> tuple[str, str, str]:
            turn = respond(flow, body, here, lang=lang)
            return f"{lang} {what}", turn.reply or "", turn.position.lang

        yield answer("first text", "hello there", None)
        for node_id, node in flow.nodes.items():
            here = Position(node_id, lang, "sms")
            yield answer(node_id, "*", here)
            keys = [option.key for option in node.options] + ["0", "#", "7"]
            if node_id == flow.start:
                keys.append("9")
            for key in keys:
                yield answer(f"{node_id} > {key}", key, here)
            yield answer(f"{node_id} > words", "purple", here)
            yield answer(f"{node_id} > emergency", "I have chest pain", here)
            yield answer(f"{node_id} > emergency, es", "me duele el pecho", here)
            yield answer(f"{node_id} > crisis", "I want to kill myself", here)
            yield answer(f"{node_id} > crisis, es", "me quiero morir", here)
            yield answer(f"{node_id} > thanks", "thank you", here)
            yield answer(f"{node_id} > who is this", "who is this?", here)
            yield answer(f"{node_id} > who is this, es", "¿quién es?", here)
            yield answer(f"{node_id} > spanish words", "quiero hablar con alguien", here)
            yield answer(f"{node_id} > CALL", "CALL", here)
            for option in node.options:
                if option.text:
                    body = text_body(flow, lang, option.text)
                    yield f"{lang} voice text {node_id} {option.key}", body, lang
        for name in ("sms_help", "sms_stopped", "sms_started", "sms_unavailable"):
            yield f"{lang} {name}", keyword_reply(flow, lang, name), lang
        yield answer("first text, an emergency", "chest pain", None)
        yield answer("first text, a crisis", "quiero morirme", None)
        yield answer("first text, who is this", "who is this?", None)
        yield answer("first text, who is this, es", "¿quién es?", None)
        yield answer("first text, thanks", "thanks", None)


def describe(text: str) -> str:
    parts = [segment(message) for message in messages_for(text)]
    counts = "+".join(str(part.segments) for part in parts)
    encodings = ",".join(part.encoding for part in parts)
    return f"{len(parts)} message(s), segments {counts}, {encodings}"


def test_every_text_fits_and_its_segments_are_pinned(flow: Flow) -> None:
    lines = []
    for what, text, lang in every_text(flow):
        assert text, what
        messages = messages_for(text)
        for message in messages:
            assert segment(message).segments <= MAX_SEGMENTS[lang], (what, message)
        assert len(messages) <= MAX_MESSAGES, what
        if " first text" in what:
            # After a crisis the opt-out line may follow 988, 911 and a person, in the second
            # message; anywhere else it is in the first.
            crisis = "crisis" in what or "emergency" in what
            assert OPT_OUT_LINE[lang] in messages[-1 if crisis else 0], what
        lines.append(f"{what}: {describe(text)}")
    rendered = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; run with UPDATE_GOLDEN=1 and review it"
    assert rendered == GOLDEN.read_text(encoding="utf-8")


def test_the_walk_covers_every_node_and_option_in_both_languages(flow: Flow) -> None:
    names = {what for what, _, _ in every_text(flow)}
    for lang in ("en", "es"):
        for node_id, node in flow.nodes.items():
            assert f"{lang} {node_id}" in names
            for option in node.options:
                assert f"{lang} {node_id} > {option.key}" in names
