"""The handout's facts in all four texts of the shipped flow (voice and text, English and
Spanish): `flows/facts/second-opinion.yaml` names each fact's menu and the words it must say,
qualifiers included; this test fails when a text drops them, and keeps `flows/FACTS.md` (the
table a reviewer reads: each fact beside the sentences that carry it) true. After an intended
change run it with UPDATE_GOLDEN=1 and review the diff of FACTS.md."""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Any

import pytest
from ruamel.yaml import YAML

from service.flowengine import Flow, Position, step
from service.flowengine.position import Key
from service.flowengine.render import render_sms, render_voice
from tests.engine.conftest import ROOT

FACTS_FILE = ROOT / "flows" / "facts" / "second-opinion.yaml"
TABLE = ROOT / "flows" / "FACTS.md"
HANDOUT = ROOT.parent / "shared" / "seed" / "getting-a-second-opinion.txt"
CHANNELS = {"voice": "Voice", "sms": "Text"}
LANGUAGES = {"en": "English", "es": "Spanish"}


@cache
def facts() -> list[dict[str, Any]]:
    loaded: dict[str, Any] = YAML(typ="safe").load(FACTS_FILE.read_text(encoding="utf-8"))
    return list(loaded["facts"])


def text_of(flow: Flow, node: str, channel: str, lang: str) -> str:
    """What a caller hears (or a texter reads) on arriving at `node`."""
    _, effects = step(flow, Position(node, lang, channel), Key("*"))  # type: ignore[arg-type]
    if channel == "sms":
        return render_sms(flow, lang, effects)
    return "\n".join(render_voice(flow, lang, effects).lines)


def key_words(fact: dict[str, Any], channel: str, lang: str) -> list[str]:
    return [*fact[lang], *fact.get(channel, {}).get(lang, [])]


def test_there_is_a_fact_for_each_sentence_of_the_handout(flow: Flow) -> None:
    assert len(facts()) == 24
    for fact in facts():
        assert fact["node"] in flow.nodes, fact["handout"]
        assert set(fact) <= {"handout", "node", "en", "es", "voice", "sms"}
    if not HANDOUT.exists():
        pytest.skip(f"the handout is not beside the repository ({HANDOUT})")
    handout = " ".join(HANDOUT.read_text(encoding="utf-8").replace("\u2019", "'").split()).lower()
    # Longest first: one fact's sentence may hold another's words (the library's number).
    for fact in sorted(facts(), key=lambda fact: len(fact["handout"]), reverse=True):
        sentence = fact["handout"].rstrip(".").lower()
        assert sentence in handout, fact["handout"]
        handout = handout.replace(sentence, "", 1)
    # Nothing of the handout is left over but its headings.
    for heading in ("close", "getting a second opinion", "if you decide to get a second opinion"):
        handout = handout.replace(heading, "")
    assert not re.findall(r"[a-z]+", handout), handout


CASES = [
    pytest.param(index, channel, lang, id=f"{index + 1}-{channel}-{lang}")
    for index in range(24)
    for channel in CHANNELS
    for lang in LANGUAGES
]


@pytest.mark.parametrize(("index", "channel", "lang"), CASES)
def test_each_fact_is_said_with_its_key_words(
    flow: Flow, index: int, channel: str, lang: str
) -> None:
    fact = facts()[index]
    said = text_of(flow, fact["node"], channel, lang).lower()
    missing = [word for word in key_words(fact, channel, lang) if word.lower() not in said]
    assert not missing, f"{channel}/{lang} {fact['node']!r} drops {missing}: {fact['handout']}"


def test_a_text_that_drops_a_qualifier_fails(flow: Flow) -> None:
    fact = next(f for f in facts() if f["handout"].startswith("If they still do not agree"))
    disagree = flow.nodes["disagree"]
    assert disagree.sms is not None
    shortened = disagree.sms["en"].replace("you may want to contact", "contact")
    said = shortened.lower()
    assert any(word.lower() not in said for word in key_words(fact, "sms", "en"))


# -- the table a reviewer reads -----------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n")


def carrying(text: str, words: list[str]) -> str:
    """The sentences of `text` that hold the words (for each word, the first that holds it),
    the words in bold."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    chosen: list[str] = []
    for word in words:
        found = next((s for s in sentences if word.lower() in s.lower()), None)
        if found is not None and found not in chosen:
            chosen.append(found)
    shown = " ".join(sorted(chosen, key=sentences.index))
    spans = sorted(
        (match.start(), match.end())
        for word in words
        for match in re.finditer(re.escape(word), shown, flags=re.IGNORECASE)
    )
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        shown = f"{shown[:start]}**{shown[start:end]}**{shown[end:]}"
    return shown.replace("|", "\\|")


def table(flow: Flow) -> str:
    lines = [
        "# The handout's facts, where the line says them",
        "",
        "Made by `tests/engine/test_facts.py` from `flows/facts/second-opinion.yaml` and",
        "`flows/second-opinion.yaml` (do not edit by hand: change those, then run the test with",
        "`UPDATE_GOLDEN=1`). Each sentence of the handout \"Getting a second opinion\" (two",
        "where a sentence says two things: 24 facts), the menu that carries it, and the",
        "sentences a caller hears and a texter reads there, in English and Spanish; the words",
        "each text must keep are in **bold** (the test fails when a text drops one).",
        "",
        "| # | Handout | Menu |",
        "|---|---|---|",
    ]
    for number, fact in enumerate(facts(), start=1):
        lines.append(f"| [{number}](#fact-{number}) | {fact['handout']} | `{fact['node']}` |")
    for number, fact in enumerate(facts(), start=1):
        lines += ["", f"## Fact {number}", "", f"> {fact['handout']}", ""]
        lines += [f"Menu `{fact['node']}`.", ""]
        lines += ["| | " + " | ".join(LANGUAGES.values()) + " |", "|---|---|---|"]
        for channel, channel_name in CHANNELS.items():
            cells = [
                carrying(text_of(flow, fact["node"], channel, lang), key_words(fact, channel, lang))
                for lang in LANGUAGES
            ]
            lines.append(f"| {channel_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_table_for_reviewers_is_current(flow: Flow) -> None:
    rendered = table(flow)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        TABLE.write_text(rendered, encoding="utf-8")
    assert TABLE.exists(), f"no {TABLE}; run with UPDATE_GOLDEN=1 and review it"
    assert TABLE.read_text(encoding="utf-8") == rendered, "run with UPDATE_GOLDEN=1 and review"
