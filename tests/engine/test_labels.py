"""Every option's own label, said (or texted), chooses that option: at every menu of the shipped
flow, in both languages, on both channels, the menus after an unanswered transfer included,
and the closing lines (go back, talk with a person)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.flowengine import Flow, Position, step
from service.flowengine.effects import Menu
from service.flowengine.engine import BACK_KEY, OPERATOR_KEY
from service.flowengine.phrases import phrase
from service.flowengine.position import DialEnded, Input, Key, Reply, Speech, Start


def menus(flow: Flow) -> Iterator[tuple[Position, Menu]]:
    """Every menu a caller or texter can be in, with the menu they are offered there."""
    for channel in ("voice", "sms"):
        for lang in flow.languages:
            for node in flow.nodes.values():
                here = Position(node.id, lang, channel)  # type: ignore[arg-type]
                arriving: Input = Start() if node.id == flow.start else Key("*")
                position, effects = step(flow, here, arriving)
                yield position, next(e for e in effects if isinstance(e, Menu))
                if channel == "sms":
                    continue
                for option in node.options:
                    if option.connect is None:
                        continue
                    contact = flow.contacts[option.connect]
                    dialing = Position(
                        node.id, lang, state="dialing", contact=contact.id,
                        line=len(contact.numbers) - 1,
                    )  # fmt: skip
                    retry, effects = step(flow, dialing, DialEnded("no-answer"))
                    yield retry, next(e for e in effects if isinstance(e, Menu))


def said_labels(menu: Menu, position: Position) -> Iterator[tuple[str, str]]:
    """(key, words) for each choice of the menu and its closing lines, as the caller hears
    them (a texter reads the text menu's label)."""
    for choice in menu.choices:
        label = choice.sms_label if position.channel == "sms" and choice.sms_label else None
        yield choice.key, label or choice.label
    if menu.back:
        yield BACK_KEY, phrase(position.lang, "back")
    yield OPERATOR_KEY, phrase(position.lang, "operator")


def cases(flow: Flow) -> list[tuple[Position, str, str]]:
    found = []
    for position, menu in menus(flow):
        for key, words in said_labels(menu, position):
            found.append((position, key, words))
    return found


def test_every_menu_and_choice_is_covered(flow: Flow) -> None:
    found = cases(flow)
    retry_menus = {(p.node, p.lang) for p, _, _ in found if p.state == "retry"}
    assert len(retry_menus) >= 10  # every contact's, in both languages
    assert {p.channel for p, _, _ in found} == {"voice", "sms"}
    assert any(words == "ask for a call back" for _, _, words in found)
    assert any(words == "pedir que le devuelvan la llamada" for _, _, words in found)


def test_each_label_said_chooses_its_option(flow: Flow) -> None:
    wrong = []
    for position, key, words in cases(flow):
        said: Input = Reply(words) if position.channel == "sms" else Speech(words)
        by_words = step(flow, position, said)
        by_key = step(flow, position, Key(key))
        if by_words != by_key:
            wrong.append(f"{position.channel} {position.lang} {position.node} "
                         f"({position.state}): {words!r} is not {key}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("lang", "words", "key"),
    [
        ("en", "call back", "2"),
        ("en", "call me back", "2"),
        ("en", "ask for a call back", "2"),
        ("en", "please have someone call me back", "2"),
        ("en", "I want to talk to someone now", "0"),  # a person, in any sentence
        ("en", "back", "#"),
        ("en", "go back", "#"),
        ("en", "try again", "1"),
        ("en", "text me", "8"),
        ("es", "que me devuelvan la llamada", "2"),
        ("es", "llámenme", "2"),
        ("es", "regresar", "#"),
        ("es", "atrás", "#"),
        ("es", "otra vez", "1"),
    ],
)
def test_speech_after_an_unanswered_transfer(flow: Flow, lang: str, words: str, key: str) -> None:
    dialing = Position("coordinator", lang, state="dialing", contact="coordinator")
    retry, _ = step(flow, dialing, DialEnded("no-answer"))
    assert step(flow, retry, Speech(words)) == step(flow, retry, Key(key))
