"""Every text the shipped flow can send, in both languages, with its segment count and encoding,
pinned in tests/golden/sms/segments.txt; no message is ever over 4 segments.

What is walked: the first reply of a conversation; at every node, arriving there, every option,
0, #, a wrong key, words not understood and CALL; the carrier keyword replies; and the texts the
voice line queues for a caller ("press 8"). Run with UPDATE_GOLDEN=1 to rewrite the file after an
intended change to the flow or the phrases, and review the diff.
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
MAX_SEGMENTS = 4


def every_text(flow: Flow) -> Iterator[tuple[str, str]]:
    for lang in flow.languages:
        yield f"{lang} first text", respond(flow, "hello there", None, lang=lang).reply or ""
        for node_id, node in flow.nodes.items():
            here = Position(node_id, lang, "sms")
            yield f"{lang} {node_id}", respond(flow, "*", here).reply or ""
            keys = [option.key for option in node.options] + ["0", "#", "7"]
            if node_id == flow.start:
                keys.append("9")
            for key in keys:
                yield f"{lang} {node_id} > {key}", respond(flow, key, here).reply or ""
            yield f"{lang} {node_id} > words", respond(flow, "purple", here).reply or ""
            yield f"{lang} {node_id} > CALL", respond(flow, "CALL", here).reply or ""
            for option in node.options:
                if option.text:
                    yield (
                        f"{lang} voice text {node_id} {option.key}",
                        text_body(flow, lang, option.text),
                    )
        for name in ("sms_help", "sms_stopped", "sms_started", "sms_unavailable"):
            yield f"{lang} {name}", keyword_reply(flow, lang, name)


def describe(text: str) -> str:
    parts = [segment(message) for message in messages_for(text)]
    counts = "+".join(str(part.segments) for part in parts)
    encodings = ",".join(part.encoding for part in parts)
    return f"{len(parts)} message(s), segments {counts}, {encodings}"


def test_every_text_fits_and_its_segments_are_pinned(flow: Flow) -> None:
    lines = []
    for what, text in every_text(flow):
        assert text, what
        for message in messages_for(text):
            assert segment(message).segments <= MAX_SEGMENTS, (what, message)
        lines.append(f"{what}: {describe(text)}")
    rendered = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; run with UPDATE_GOLDEN=1 and review it"
    assert rendered == GOLDEN.read_text(encoding="utf-8")


def test_the_walk_covers_every_node_and_option_in_both_languages(flow: Flow) -> None:
    names = {what for what, _ in every_text(flow)}
    for lang in ("en", "es"):
        for node_id, node in flow.nodes.items():
            assert f"{lang} {node_id}" in names
            for option in node.options:
                assert f"{lang} {node_id} > {option.key}" in names
