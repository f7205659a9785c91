"""The structure of a line's flow, changed without YAML (the menus page, `structure.py`): an
option added, removed, moved or given another key; a menu added or removed; a contact's office
hours and numbers. Each change is made on the YAML itself with ruamel's round trip (comments and
layout kept, as `words.with_words` does), text in, text out: the page saves the result as a
draft through the editor's path, where `flows check` judges it.

A change that cannot mean anything (a key that is no phone key, a menu still led to) is refused
with `Refused`, naming the form's field it is about; so is a key the check refuses (reserved,
or taken in that menu), before anything is saved."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from service.flowengine import Flow
from service.flowengine.validate import check_text_paths
from service.staff.flow_yaml import dumped, loaded
from service.staff.names import flow_names
from service.staff.words import MAX_TEXT

PHONE_KEYS = frozenset("0123456789*#")
LEADS = ("goto", "connect", "text")
"""Where an option added on the page leads: a menu, a call put through, a text of numbers."""
MAX_ID = 40


class Refused(ValueError):
    """A change not made: `field` is the form field it is about ("" for the whole form)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Span:
    """One weekly span of office hours as the page's form gives it."""

    days: tuple[str, ...]
    opens: str
    closes: str


def add_option(text: str, node_id: str, key: str, label: Mapping[str, str], leads: str) -> str:
    """A new last option of menu `node_id`; `leads` is "goto:MENU", "connect:CONTACT" or
    "text:CONTACT"."""
    data = loaded(text)
    node = _node(data, node_id)
    kind, _, target = leads.partition(":")
    known = data["nodes"] if kind == "goto" else data["contacts"]
    if kind not in LEADS or target not in known:
        raise Refused("leads", "Choose where the option leads: a menu or a contact.")
    option = CommentedMap()
    option["key"] = _phone_key(key)
    option["label"] = _text_of(
        label, "label", 'Give the option a label: it finishes "To …, press 1".'
    )
    option["label"].fa.set_flow_style()
    if kind == "text":
        option["text"] = _flow_list([target])
    else:
        option[kind] = target
    if node.get("options") is None:
        node["options"] = CommentedSeq()
    options = node["options"]
    last = options[-1] if options else None
    options.append(option)
    _keep_the_end(options, last)
    return _keys_checked(text, dumped(data), node_id)


def remove_option(text: str, node_id: str, index: int) -> str:
    data = loaded(text)
    options = _options(data, node_id, index)
    last = options[-1]
    del options[index]
    _keep_the_end(options, last)
    return dumped(data)


def move_option(text: str, node_id: str, index: int, by: int) -> str:
    """Option `index` said `by` places later (-1: one earlier); at either end, unchanged."""
    data = loaded(text)
    options = _options(data, node_id, index)
    other = index + by
    if not 0 <= other < len(options):
        return text
    last = options[-1]
    options[index], options[other] = options[other], options[index]
    _keep_the_end(options, last)
    return dumped(data)


def change_key(text: str, node_id: str, index: int, key: str) -> str:
    data = loaded(text)
    options = _options(data, node_id, index)
    options[index]["key"] = _phone_key(key)
    return _keys_checked(text, dumped(data), node_id)


def add_menu(text: str, title: str, say: Mapping[str, str]) -> tuple[str, str]:
    """A new menu (its id made from `title`) that says `say`, with no option yet: the YAML and
    the id. Until an option leads to it, the check calls it unreachable."""
    data = loaded(text)
    base = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:MAX_ID] or "menu"
    if not base[0].isalpha():
        base = f"menu_{base}"[:MAX_ID]
    node_id, number = base, 2
    while node_id in data["nodes"] or node_id in data["contacts"]:
        node_id, number = f"{base}_{number}", number + 1
    node = CommentedMap()
    node["say"] = _text_of(say, "say", "Say what a caller hears in this menu.")
    node["options"] = CommentedSeq()
    data["nodes"][node_id] = node
    return dumped(data), node_id


def remove_menu(text: str, flow: Flow, node_id: str) -> str:
    """Refused for the start menu and for a menu an option leads to; its recordings go too."""
    names = flow_names(flow)
    if node_id == flow.start:
        raise Refused("", f"{names.menu(node_id)} is where every call and text begins: it stays.")
    leading = [
        f"{names.menu(node.id)}, key {option.key}"
        for node in flow.nodes.values()
        for option in node.options
        if option.goto == node_id
    ]
    if leading:
        raise Refused(
            "",
            f"Options lead to {names.menu(node_id)} ({'; '.join(leading)}): remove them, or "
            "lead them elsewhere, before the menu.",
        )
    data = loaded(text)
    _node(data, node_id)
    del data["nodes"][node_id]
    recordings = data.get("recordings")
    if recordings is not None and node_id in recordings:  # its recorded words go with it
        del recordings[node_id]
        if not recordings:
            del data["recordings"]
    return dumped(data)


def set_hours(
    text: str,
    contact_id: str,
    timezone: str,
    spans: Sequence[Span],
    description: Mapping[str, str],
) -> str:
    """A contact's weekly office hours; no span: no hours (put through at any hour)."""
    data = loaded(text)
    contact = _contact(data, contact_id)
    if not spans:
        contact.pop("hours", None)
        return dumped(data)
    hours = contact.get("hours")
    if not isinstance(hours, CommentedMap):
        hours = contact["hours"] = CommentedMap()
    hours["timezone"] = timezone
    spans_seq = CommentedSeq()
    for span in spans:
        each = CommentedMap()
        each["days"] = _flow_list(span.days)
        each["from"] = DoubleQuotedScalarString(span.opens)
        each["to"] = DoubleQuotedScalarString(span.closes)
        each.fa.set_flow_style()
        spans_seq.append(each)
    hours["open"] = spans_seq
    hours["description"] = _text_of(
        description, "description", "Say the hours in words: callers hear it when it is closed."
    )
    return dumped(data)


def set_numbers(text: str, contact_id: str, numbers: Sequence[tuple[str, str]]) -> str:
    """A contact's numbers (E.164, and how each is written), tried in this order."""
    data = loaded(text)
    contact = _contact(data, contact_id)
    lines = contact.get("numbers")
    if not isinstance(lines, CommentedSeq):
        lines = contact["numbers"] = CommentedSeq()
    for index, (number, display) in enumerate(numbers):
        if index == len(lines):
            lines.append(CommentedMap())
        lines[index]["number"] = DoubleQuotedScalarString(number)
        lines[index]["display"] = display
    while len(lines) > len(numbers):
        lines.pop()
    lines.fa.set_block_style()
    return dumped(data)


def _phone_key(key: str) -> int | str:
    """A key as the flow files write it: a digit bare, star and pound quoted."""
    key = key.strip()
    if len(key) != 1 or key not in PHONE_KEYS:
        raise Refused("key", "A key is one phone key: a digit from 1 to 8.")
    return int(key) if key.isdigit() else key


def _keys_checked(before: str, after: str, node_id: str) -> str:
    """`after`, unless the check finds a key problem in the menu that `before` did not have
    (a reserved key, one another option of the menu has): refused with its message."""
    keys = f"{node_id}.options."

    def key_problems(text: str) -> set[str]:
        return {
            message
            for path, message in check_text_paths(text)
            if path[-1:] == ("key",) and ".".join(map(str, path)).startswith(f"nodes.{keys}")
        }

    new = key_problems(after) - key_problems(before)
    if new:
        raise Refused("key", "; ".join(sorted(new)).capitalize() + ".")
    return after


def _keep_the_end(options: Any, last: Any) -> None:
    """What follows a menu's last option in the file (the blank line before the next menu)
    stays after its last option when the options change."""
    if not options or last is None or options[-1] is last or not last:
        return
    after = last.ca.items.pop(list(last)[-1], None)
    if after is not None:
        options[-1].ca.items[list(options[-1])[-1]] = after


def _node(data: Any, node_id: str) -> Any:
    if node_id not in data["nodes"]:
        raise Refused("", f"There is no menu {node_id!r}: reload the page.")
    return data["nodes"][node_id]


def _options(data: Any, node_id: str, index: int) -> Any:
    options = _node(data, node_id).get("options") or []
    if not 0 <= index < len(options):
        raise Refused("", "That option is not there any more: reload the page.")
    return options


def _contact(data: Any, contact_id: str) -> Any:
    if contact_id not in data["contacts"]:
        raise Refused("", f"There is no contact {contact_id!r}: reload the page.")
    return data["contacts"][contact_id]


def _text_of(by_language: Mapping[str, str], field: str, refusal: str) -> CommentedMap:
    """The languages that have words (a blank one is left out: the check says it is missing)."""
    text = CommentedMap()
    for lang, words in by_language.items():
        if " ".join(words.split()):
            text[lang] = " ".join(words.split())[:MAX_TEXT]
    if not text:
        raise Refused(f"{field}-{next(iter(by_language), 'en')}", refusal)
    return text


def _flow_list(items: Sequence[str]) -> CommentedSeq:
    listed = CommentedSeq(items)
    listed.fa.set_flow_style()
    return listed
