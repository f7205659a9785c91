"""The shipped flow carries the whole handout ("Getting a second opinion"), in English and
Spanish, by voice and by text: each fact below is heard by a caller who walks every menu and read
by a texter who does, in both languages (one test case per fact, language and channel).

The Spanish says what the handout says, in its own words: both steps when the doctors disagree
(discuss the case and try to agree, and only if they still do not, a third doctor), and the
"if your doctor cannot recommend a colleague" that leads to the list of contacts.
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


def both(pattern: str) -> dict[str, str]:
    return {"voice": pattern, "sms": pattern}


def number(name: str, e164: str) -> dict[str, str]:
    """A contact and its number: said in digits, written as people write it."""
    spoken = re.escape(spoken_digits(e164))
    written = re.escape(WRITTEN[e164])
    return {"voice": rf"{name}[^\n]*\n([^\n]*\n)*?[^\n]*{spoken}", "sms": rf"{name}.*{written}"}


# fact: {language: {channel: regex}}: each must be found in what that channel gives.
FACTS: dict[str, dict[str, dict[str, str]]] = {
    "a second opinion is a way to take part in your care": {
        "en": both(r"important way (for you )?to take part in your health care"),
        "es": both(r"manera importante de participar en su atención médica"),
    },
    "some fear hurting their doctor's feelings": {
        "en": both(r"(afraid they will hurt|fear hurting) their doctor's feelings"),
        "es": both(r"(temen|no tema) ofender a su médico"),
    },
    "most doctors will recommend another doctor": {
        "en": both(r"most doctors will (actually )?recommend another doctor for a second opinion"),
        "es": both(r"la mayoría de los médicos le recomendarán a otro médico"),
    },
    "if your doctor cannot recommend a colleague": {
        "en": both(r"If your doctor (cannot|can't) recommend a colleague"),
        "es": both(r"Si su médico no puede recomendarle a un colega"),
    },
    "the patient referral coordinator at VCU Massey, (804) 828-7999": {
        "en": number(r"(patient )?referral coordinator", NUMBERS["coordinator"]),
        "es": number(r"[Cc]oordinación de referidos", NUMBERS["coordinator"]),
    },
    "the Patient Resource Library, (804) 828-8709": {
        "en": number(r"Patient Resource Library", NUMBERS["library (first line)"]),
        "es": number(r"Biblioteca( de Recursos)? para Pacientes", NUMBERS["library (first line)"]),
    },
    "the Patient Resource Library's other line, (804) 828-0450": {
        "en": number(r"Patient Resource Library", NUMBERS["library (second line)"]),
        "es": number(r"Biblioteca( de Recursos)? para Pacientes", NUMBERS["library (second line)"]),
    },
    "the Cancer Information Service at 1-800-4-CANCER": {
        "en": {
            "voice": r"Cancer Information Service is at 1 800, 4 CANCER",
            "sms": r"1-800-4-CANCER",
        },
        "es": {
            "voice": r"Servicio de Información sobre el Cáncer está en el 1 800, 4 CANCER",
            "sms": r"Servicio de Información sobre el Cáncer(, |: )1-800-4-CANCER",
        },
    },
    "the Cancer Information Service's digits, 1-800-422-6237": {
        "en": number(r"Cancer Information Service", NUMBERS["Cancer Information Service"]),
        "es": number(
            r"Servicio de Información sobre el Cáncer", NUMBERS["Cancer Information Service"]
        ),
    },
    "a trained specialist recommends places for second opinions nearby": {
        "en": both(
            r"trained cancer information specialist can recommend places (for you )?to call "
            r"for second opinions in your area"
        ),
        "es": both(r"especialista[^.]* le puede recomendar lugares[^.]*segunda opinión en su área"),
    },
    "the Directory of Medical Specialists at your local library": {
        "en": both(r"local library, ask for the Directory of Medical Specialists"),
        "es": both(r"biblioteca local, pida el \"?Directory of Medical Specialists"),
    },
    "the American Medical Association's Medical Directory": {
        "en": both(r"American Medical Association's Medical Directory"),
        "es": both(r"\"?Medical Directory\"? de la American Medical Association"),
    },
    "the Medicare/Medicaid Hotline, (800) 638-6833": {
        "en": number(r"Medicare", NUMBERS["Medicare/Medicaid hotline"]),
        "es": number(r"Medicare y Medicaid", NUMBERS["Medicare/Medicaid hotline"]),
    },
    "a listing of cancer specialists in your area": {
        "en": both(r"listing of cancer specialists in your area"),
        "es": both(r"lista de especialistas en cáncer de su área"),
    },
    "the second doctor asks about your medical history": {
        "en": both(r"second doctor[^.]* ask about your medical history"),
        "es": both(r"segundo médico[^.]*le preguntará sobre su historial médico"),
    },
    "your current medical reports": {
        "en": both(r"current medical reports"),
        "es": both(r"informes médicos actuales"),
    },
    "any laboratory test results": {
        "en": both(r"any laboratory test results"),
        "es": both(r"análisis de laboratorio"),
    },
    "your doctor may send the records": {
        "en": both(r"your doctor (can|may) send (all of )?these records"),
        "es": both(r"su médico puede enviar(le)? (todos )?estos expedientes"),
    },
    "or you may take them yourself": {
        "en": both(r"you may (be able to )?take (the records to the second doctor|them) yourself"),
        "es": both(r"usted puede llevar(le los expedientes al segundo médico|los)"),
    },
    "ask the two doctors to discuss your case and try to agree": {
        "en": both(r"discuss your case and try to agree on the best treatment"),
        "es": both(r"hablen de su caso y traten de ponerse de acuerdo"),
    },
    "if they still do not agree, a third doctor": {
        "en": both(
            r"If they still (do not|don't) agree, (you may want to )?contact a third doctor"
        ),
        "es": both(r"[Ss]i aún no están de acuerdo, (puede )?consult(ar|e) a un tercer médico"),
    },
    "a simple written opinion from each, with clinical research evidence": {
        "en": both(r"simple[^.]*opinion[^.]*clinical research evidence"),
        "es": both(r"opinión (escrita y )?sencilla[^.]*evidencia de investigación clínica"),
    },
    "ask the doctors to clarify what you do not understand": {
        "en": both(r"ask the doctors to explain (anything|what) you (do not|don't) understand"),
        "es": both(r"pida a los médicos que le expliquen lo que no entienda"),
    },
    "both doctors should answer all your questions": {
        "en": both(r"[Bb]oth (doctors )?should (be willing to )?take the time to answer all"),
        "es": both(r"los dos (médicos )?deben[^.]*contestar todas sus preguntas"),
    },
    "discuss your options with family and friends": {
        "en": both(r"[Tt]alk over your options with (your )?family and friends"),
        "es": both(r"[Hh]able de sus opciones con su familia y sus amigos"),
    },
    "an organization of people who have had your kind of cancer": {
        "en": both(
            r"organization that (can )?puts? you in touch with people who have had your kind"
        ),
        "es": both(
            r"organización que le ponga en contacto con personas que han tenido su mismo tipo"
        ),
    },
    "the Patient Resource Library can suggest which organization": {
        "en": both(
            r"(not sure which organization to call, call the Patient Resource Library"
            r"|Not sure which\? The Patient Resource Library can help)"
        ),
        "es": both(
            r"(Si no sabe a qué organización llamar, llame a la Biblioteca"
            r"|¿No sabe cuál\? La Biblioteca para Pacientes le puede ayudar)"
        ),
    },
}

CASES = [
    pytest.param(fact, lang, channel, id=f"{lang}-{channel}-{fact}")
    for fact in FACTS
    for lang in ("en", "es")
    for channel in ("voice", "sms")
]


@cache
def walked(channel: str, lang: str) -> Walk:
    from service.flowengine import load_flow

    return walk(load_flow(SHIPPED_FLOW), channel, lang)


def test_the_table_holds_the_handout() -> None:
    assert len(FACTS) >= 21
    assert all(set(languages) == {"en", "es"} for languages in FACTS.values())


@pytest.mark.parametrize(("fact", "lang", "channel"), CASES)
def test_every_fact_of_the_handout_is_heard_and_read(fact: str, lang: str, channel: str) -> None:
    pattern = FACTS[fact][lang][channel]
    heard = walked(channel, lang).text
    assert re.search(pattern, heard, re.IGNORECASE), f"{channel}/{lang} never says {fact!r}"


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
