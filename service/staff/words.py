"""The words of a line, edited without YAML (`/staff/lines/{slug}/words`): menu by menu, every
text a caller hears and a texter reads, English and Spanish side by side, each option's label,
and each contact's names. A save changes those values in the newest revision's YAML (comments
and layout kept, with ruamel's round trip) and becomes a draft through the same path as the
YAML editor: checked as `flows check` checks, refused when stale, never a number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.flowengine import Flow
from service.flowengine.segments import segment
from service.flowengine.validate import words_before_first_option
from service.staff.flow_yaml import dumped, loaded

MAX_TEXT = 2000
WORDS_PER_SECOND = 2.5
"""How fast the line speaks, near enough: the limit's 25 words before "press 1" are about 10 s."""


@dataclass(frozen=True)
class Field:
    """One text of the flow: where it is in the YAML, and what it is called on the page."""

    path: tuple[str | int, ...]
    label: str
    language: str
    value: str
    long: bool = False

    @property
    def name(self) -> str:
        return "w:" + ".".join(str(part) for part in self.path)


@dataclass(frozen=True)
class Group:
    title: str
    fields: list[Field]
    path: tuple[str, ...] = ()
    """The menu or contact in the YAML (`("nodes", "main")`): its problems are shown here."""

    @property
    def paths(self) -> list[tuple[str | int, ...]]:
        return [field.path for field in self.fields]


LANGUAGE_WORDS = {"en": "English", "es": "Spanish"}


def groups(flow: Flow, menu_names: dict[str, str]) -> list[Group]:
    """The page's sections: each menu (what a caller hears, what a texter reads, each option's
    label), then each contact (how it is said, how a text writes it)."""
    found: list[Group] = []
    for node in flow.nodes.values():
        fields: list[Field] = []
        for lang in flow.languages:
            said = _in(lang)
            fields.append(said(("nodes", node.id, "say"), "What a caller hears", node.say, True))
            if node.sms:
                fields.append(
                    said(("nodes", node.id, "sms"), "What a texter reads", node.sms, True)
                )
            for index, option in enumerate(node.options):
                label = ("nodes", node.id, "options", index, "label")
                fields.append(said(label, f"Option {option.key}", option.label))
        found.append(Group(menu_names.get(node.id, node.id), fields, ("nodes", node.id)))
    for contact in flow.contacts.values():
        fields = []
        for lang in flow.languages:
            said = _in(lang)
            fields.append(said(("contacts", contact.id, "name"), "How it is said", contact.name))
            short = ("contacts", contact.id, "short")
            fields.append(said(short, "How a text writes it", contact.short))
        title = contact.short.get(flow.default_language, contact.id)
        found.append(Group(f"Contact: {title}", fields, ("contacts", contact.id)))
    return found


def measures(flow: Flow, found: list[Group]) -> dict[str, str]:
    """What the check measures, said under a field (by `Field.name`): each text a texter reads,
    in segments against the flow's limit; each text of the first menu, in words and seconds
    before the first "press 1"."""
    said: dict[str, str] = {}
    for field in (field for group in found for field in group.fields):
        kind, node_id = field.path[2], field.path[1]
        if field.path[0] != "nodes" or kind not in ("say", "sms"):
            continue
        language = LANGUAGE_WORDS.get(field.language, field.language)
        if kind == "sms":
            cut = segment(" ".join(field.value.split()))
            most = flow.limits.segments_for(field.language)
            said[field.name] = (
                f"{cut.units} characters: {cut.segments} segment(s) of {cut.encoding} on its "
                f"own; a text message may take {most} in {language}, the menu's choices "
                "included."
            )
        elif node_id == flow.start:
            words = words_before_first_option(flow, str(node_id), field.language)
            if words is not None:
                seconds = round(words / WORDS_PER_SECOND)
                said[field.name] = (
                    f'{words} words before "press 1", about {seconds} seconds (at most '
                    f"{flow.limits.start_words} words)."
                )
    return said


def _in(lang: str) -> Callable[..., Field]:
    """A maker of the fields of one language: the text at `path` + the language."""
    language = LANGUAGE_WORDS.get(lang, lang)

    def field(
        path: tuple[str | int, ...], label: str, text: dict[str, str], long: bool = False
    ) -> Field:
        return Field((*path, lang), f"{label} ({language})", lang, text.get(lang, ""), long)

    return field


def with_words(text: str, flow: Flow, form: dict[str, str]) -> str:
    """`text` with the words of `form` (fields named by `Field.name`) put in their places; a
    field whose value did not change, or that is not one of the flow's texts, is left alone."""
    data = loaded(text)
    known = {field.name: field for group in groups(flow, {}) for field in group.fields}
    changed = False
    for name, value in form.items():
        field = known.get(name)
        if field is None:
            continue
        words = " ".join(value.split())[:MAX_TEXT]
        if words == " ".join(field.value.split()):
            continue
        _set(data, field.path, words)
        changed = True
    if not changed:
        return text
    return dumped(data)


def _set(data: Any, path: tuple[str | int, ...], value: str) -> None:
    node = data
    for part in path[:-1]:
        key: Any = part
        if isinstance(node, dict) and key not in node and str(key).isdigit():
            key = int(key)
        node = node[key]
    node[path[-1]] = value
