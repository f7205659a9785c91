"""The shipped flow carries the whole handout, in English and Spanish, by voice and by text."""

from __future__ import annotations

import re

import pytest

from service.flowengine import Flow
from service.flowengine.render import spoken_digits
from tests.engine.walk import walk

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

# Each fact of SPEC.md section 1, as the words a caller hears and a texter reads (regexes).
FACTS: dict[str, dict[str, list[str]]] = {
    "en": {
        "a way to take part in your care": [r"take part in your health care"],
        "doctors' feelings are not hurt": [r"doctor's feelings"],
        "most doctors recommend a colleague": [
            r"most doctors will (actually )?recommend another doctor"
        ],
        "coordinator is the referral contact": [r"patient referral coordinator"],
        "Patient Resource Library": [r"Patient Resource Library"],
        "CIS specialist recommends places": [
            r"trained cancer information specialist can recommend places"
        ],
        "CIS is 4-CANCER": [r"4[ -]CANCER"],
        "directories at the local library": [
            r"local library",
            r"Directory of Medical Specialists",
            r"American Medical Association's Medical Directory",
        ],
        "Medicare lists cancer specialists": [r"list(ing)? of cancer specialists in your area"],
        "second doctor asks for history, reports, lab results": [
            r"medical history",
            r"current medical reports",
            r"(laboratory|lab) test results",
        ],
        "records sent by your doctor or carried": [r"your doctor (can|may) send", r"yourself"],
        "ask the doctors to discuss your case": [r"discuss your case"],
        "a third doctor": [r"third doctor"],
        "a simple written opinion with evidence": [r"simple", r"clinical research evidence"],
        "ask them to clarify and answer questions": [
            r"explain (anything|what) you (do not|don't) understand",
            r"all (of )?your questions",
        ],
        "discuss with family and friends": [r"family and friends"],
        "people who had your kind of cancer": [
            r"people who have had your kind of cancer",
            r"Patient Resource Library( at VCU Massey)? can",
        ],
    },
    "es": {
        "a way to take part in your care": [
            r"(participar en su atención médica|parte de cuidar su salud)"
        ],
        "doctors' feelings are not hurt": [
            r"(herir los sentimientos de su médico|no tema herir a su médico)"
        ],
        "most doctors recommend a colleague": [
            r"la mayoría .*recomendar(á|án) a (otro médico|un colega)"
        ],
        "coordinator is the referral contact": [r"coordinación de referidos"],
        "Patient Resource Library": [r"Biblioteca"],
        "CIS specialist recommends places": [
            r"especialista .*recomienda lugares|especialista .*recomendar lugares"
        ],
        "CIS is 4-CANCER": [r"4[ -]CANCER"],
        "directories at the local library": [
            r"biblioteca local",
            r"Directorio de Especialistas Médicos",
            r"Directorio Médico",
        ],
        "Medicare lists cancer specialists": [r"lista de especialistas en cáncer en su área"],
        "second doctor asks for history, reports, lab results": [
            r"historial",
            r"informes (médicos )?actuales",
            r"análisis de laboratorio",
        ],
        "records sent by your doctor or carried": [r"su médico puede enviar", r"llevarlos"],
        "ask the doctors to discuss your case": [r"hablen de su caso"],
        "a third doctor": [r"tercer médico"],
        "a simple written opinion with evidence": [r"sencilla", r"evidencia"],
        "ask them to clarify and answer questions": [
            r"expliquen lo que no entienda",
            r"todas sus preguntas",
        ],
        "discuss with family and friends": [r"familia y (sus )?amigos"],
        "people who had your kind of cancer": [
            r"personas que han tenido su tipo de cáncer",
            r"Biblioteca",
        ],
    },
}


@pytest.mark.parametrize("channel", ["voice", "sms"])
@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_fact_of_the_handout_is_reachable(flow: Flow, channel: str, lang: str) -> None:
    heard = walk(flow, channel, lang).text
    missing = [
        f"{fact}: /{pattern}/"
        for fact, patterns in FACTS[lang].items()
        for pattern in patterns
        if not re.search(pattern, heard, re.IGNORECASE)
    ]
    assert not missing, f"{channel}/{lang} never says:\n" + "\n".join(missing)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_number_is_read_aloud_and_dialable(flow: Flow, lang: str) -> None:
    result = walk(flow, "voice", lang)
    assert result.dialed == set(NUMBERS.values())
    for number in NUMBERS.values():
        assert spoken_digits(number) in result.text


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_number_can_be_texted(flow: Flow, lang: str) -> None:
    by_voice = walk(flow, "voice", lang)
    assert by_voice.texted_contacts == set(flow.contacts)
    by_text = walk(flow, "sms", lang).text
    for written in WRITTEN.values():
        assert written in by_text


def test_only_contacts_are_ever_dialed(flow: Flow) -> None:
    contact_numbers = {number for contact in flow.contacts.values() for number in contact.numbers}
    for lang in flow.languages:
        assert walk(flow, "voice", lang).dialed <= contact_numbers


@pytest.mark.parametrize("channel", ["voice", "sms"])
def test_every_node_is_visited(flow: Flow, channel: str) -> None:
    for lang in flow.languages:
        assert walk(flow, channel, lang).visited == set(flow.nodes)


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


def test_greeting_offers_spanish_and_warns_about_emergencies_within_45_words(flow: Flow) -> None:
    from service.flowengine import Position, step
    from service.flowengine.position import Start
    from service.flowengine.render import render_voice

    _, effects = step(flow, Position(flow.start, "en"), Start())
    lines = render_voice(flow, "en", effects).lines
    first_option = next(i for i, line in enumerate(lines) if re.search(r"(press|oprima) \d", line))
    assert lines[first_option] == "Para español, oprima 9."
    before = " ".join(lines[:first_option])
    assert "emergency" in before and "9 1 1" in before
    assert len(before.split()) <= 45
