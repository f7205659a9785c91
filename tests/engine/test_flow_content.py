"""The shipped flow, walked as a caller and as a texter in both languages: every node is
reached, every number is read aloud twice and can be texted, only contacts are dialed, and the
Spanish is whole. (Each fact of the handout, in all four texts, is `test_facts.py`'s.)
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from service.flowengine import Flow, Position, step
from service.flowengine.position import Start
from service.flowengine.render import render_voice, spoken_digits
from tests.engine.conftest import SHIPPED_FLOW
from tests.engine.walk import Walk, walk

NUMBERS = {
    "coordinator": "+18048287999",
    "library (first line)": "+18048288709",
    "library (second line)": "+18048280450",
    "Cancer Information Service": "+18004226237",
    "Medicare/Medicaid hotline": "+18006386833",
}
WRITTEN = {
    "+18048287999": "(804) 828-7999",
    "+18048288709": "(804) 828-8709",
    "+18048280450": "(804) 828-0450",
    "+18004226237": "1-800-422-6237",
    "+18006386833": "(800) 638-6833",
}


@cache
def walked(channel: str, lang: str) -> Walk:
    from service.flowengine import load_flow

    return walk(load_flow(SHIPPED_FLOW), channel, lang)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_number_is_read_aloud_twice_and_dialable(lang: str) -> None:
    result = walked("voice", lang)
    assert result.dialed == set(NUMBERS.values())
    for e164 in NUMBERS.values():
        digits = spoken_digits(e164)
        again = {"en": f"Again, that's {digits}.", "es": f"Repito: {digits}."}[lang]
        assert digits in result.text and again in result.heard


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_number_can_be_texted(flow: Flow, lang: str) -> None:
    by_voice = walked("voice", lang)
    assert by_voice.texted_contacts == set(flow.contacts)
    by_text = walked("sms", lang).text
    for written in WRITTEN.values():
        assert written in by_text


def test_only_contacts_are_ever_dialed(flow: Flow) -> None:
    contact_numbers = {number for contact in flow.contacts.values() for number in contact.numbers}
    for lang in flow.languages:
        assert walked("voice", lang).dialed <= contact_numbers


@pytest.mark.parametrize("channel", ["voice", "sms"])
def test_every_node_is_visited(flow: Flow, channel: str) -> None:
    for lang in flow.languages:
        assert walked(channel, lang).visited == set(flow.nodes)


def test_every_node_has_spanish(flow: Flow) -> None:
    for node in flow.nodes.values():
        assert node.say.get("es"), node.id
        assert node.say["es"] != node.say["en"], node.id
        if node.sms is not None:
            assert node.sms.get("es"), node.id
        for option in node.options:
            assert option.label.get("es"), (node.id, option.key)
    for contact in flow.contacts.values():
        assert contact.name.get("es") and contact.short.get("es"), contact.id


def test_spanish_says_segunda_opinion_and_mensaje_de_texto() -> None:
    """One word for each thing: never "otra opinión", never "por texto" alone."""
    everything = walked("voice", "es").text + "\n" + walked("sms", "es").text
    assert "otra opinión" not in everything
    assert not re.search(r"por texto", everything)
    assert "segunda opinión" in everything and "mensaje de texto" in everything


@pytest.mark.parametrize(
    ("lang", "offer", "first_option"),
    [
        ("en", "Para español, oprima 9.", "To hear why it matters, press 1."),
        ("es", "For English, press 9.", "Para saber por qué es importante, oprima 1."),
    ],
)
def test_the_first_press_1_comes_within_25_words_after_the_emergency_line(
    flow: Flow, lang: str, offer: str, first_option: str
) -> None:
    """The English greeting offers Spanish at once; the Spanish one (heard after pressing 9)
    leaves English for the end, so a Spanish caller hears "oprima 1" as soon."""
    _, effects = step(flow, Position(flow.start, lang), Start())
    lines = render_voice(flow, lang, effects).lines
    first = lines.index(first_option)
    before = " ".join(lines[:first])
    assert re.search("emergenc", before, re.IGNORECASE) and "9 1 1" in before
    words = len(before.split()) + len(first_option.split()) - 2  # up to "press 1"
    assert words <= 25
    assert offer in lines
    assert (lines.index(offer) < first) == (lang == "en")
    assert lines[-1].endswith(("0 to talk with a person.", "0 para hablar con una persona."))
