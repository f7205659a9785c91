"""What changed between two revisions of a line, as staff read it: by menu and language, the
old and new words side by side (`changes`), and the numbers dialed (`number_changes`). Shown by
the editor before a publish, on a rollback's confirmation, and on each revision's page."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from service.flowengine import Flow, FlowError
from service.flowengine.loader import build, parse, schema_problems
from service.flowengine.model import Recording
from service.staff.headlines import LANGUAGE_NAMES
from service.staff.names import flow_names


@dataclass(frozen=True)
class Change:
    where: str
    language: str
    before: str
    after: str


@dataclass(frozen=True)
class NumberChange:
    contact: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def new(self) -> tuple[str, ...]:
        return tuple(number for number in self.after if number not in self.before)


def changes(before: Flow | None, after: Flow | None) -> list[Change]:
    """What a caller or texter would hear or read differently, by menu and language."""
    if before is None or after is None:
        return []
    names = flow_names(after)
    found: list[Change] = []

    def texts(where: str, old: dict[str, str], new: dict[str, str]) -> None:
        for lang in sorted(set(old) | set(new)):
            if old.get(lang, "") != new.get(lang, ""):
                language = LANGUAGE_NAMES.get(lang, lang)
                found.append(Change(where, language, old.get(lang, ""), new.get(lang, "")))

    texts("Title", before.title, after.title)
    for contact_id in sorted(set(before.contacts) | set(after.contacts)):
        old, new = before.contacts.get(contact_id), after.contacts.get(contact_id)
        name = names.contact(contact_id)
        if old is None or new is None:
            found.append(_presence(f"{name}: the contact", old, new))
            continue
        texts(f"{name}: how it is said", old.name, new.name)
        texts(f"{name}: how a text writes it", old.short, new.short)
        if old.display != new.display:
            found.append(
                Change(
                    f"{name}: numbers as written",
                    "",
                    ", ".join(old.display),
                    ", ".join(new.display),
                )
            )
    for node_id in sorted(set(before.nodes) | set(after.nodes)):
        old_node, new_node = before.nodes.get(node_id), after.nodes.get(node_id)
        menu = names.menu(node_id)
        if old_node is None or new_node is None:
            found.append(_presence(f"{menu}: the menu", old_node, new_node))
            continue
        texts(f"{menu}: what a caller hears", old_node.say, new_node.say)
        texts(f"{menu}: what a texter reads", old_node.sms or {}, new_node.sms or {})
        texts(
            f"{menu}: recording",
            *_recordings(before.recordings.get(node_id, {}), after.recordings.get(node_id, {})),
        )
        old_options = {option.key: option for option in old_node.options}
        new_options = {option.key: option for option in new_node.options}
        for key in sorted(set(old_options) | set(new_options)):
            was, now = old_options.get(key), new_options.get(key)
            texts(
                f"{menu}: option {key}",
                was.label if was is not None else {},
                now.label if now is not None else {},
            )
    return found


def _recordings(
    old: dict[str, Recording], new: dict[str, Recording]
) -> tuple[dict[str, str], dict[str, str]]:
    """Per language whose recording changed, how the change view says it, before and after."""
    said = "none: the words are said"
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for lang in set(old) | set(new):
        was, now = old.get(lang), new.get(lang)
        if (was.audio if was else None) != (now.audio if now else None):
            before[lang] = "a recording" if was is not None else said
            after[lang] = "a new recording" if now is not None else said
    return before, after


def _presence(where: str, old: object | None, new: object | None) -> Change:
    """A contact or a menu that one revision has and the other has not."""
    return Change(where, "", "" if old is None else "there", "" if new is None else "there")


def number_changes(before: Flow | None, after: Flow | None) -> list[NumberChange]:
    """Every contact whose numbers (dialed) differ."""
    if before is None or after is None:
        return []
    found = []
    for contact_id in sorted(set(before.contacts) | set(after.contacts)):
        old = before.contacts[contact_id].numbers if contact_id in before.contacts else ()
        new = after.contacts[contact_id].numbers if contact_id in after.contacts else ()
        if old != new:
            found.append(NumberChange(contact_id, old, new))
    return found


def readable_flow(text: str, name: str = "flow") -> Flow | None:
    """The flow a text describes, for the change view: a draft whose check found problems
    (too many words, a missing translation) still says what it would change, when its shape
    (the schema) is sound; None when it is not. (`name` is kept for callers that say which
    revision they read; nothing of it is in the answer.)"""
    return _readable(text)


@functools.lru_cache(maxsize=32)
def _readable(text: str) -> Flow | None:
    """Remembered by text: an editing page reads the published revision and the draft for
    every answer, and parsing the YAML of a flow takes about 0.15 s."""
    try:
        document = parse(text, "flow")
        if schema_problems(document):
            return None
        return build(document)
    except (FlowError, KeyError, TypeError, ValueError):
        return None
