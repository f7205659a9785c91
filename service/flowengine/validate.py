"""`phoneline flows check`: every problem in a flow file, each with its file and line.

Schema problems first (shape and types); when the shape is right, the rules a schema cannot say:
reachability, targets, translations, reserved keys, carrier keywords, E.164 numbers, SMS length and
how long a caller listens before the first option.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from service.flowengine.effects import Menu
from service.flowengine.engine import BACK_KEY, LANGUAGE_KEY, OPERATOR_KEY, REPEAT_KEY, step
from service.flowengine.loader import Document, FlowError, Problem, build, read, schema_problems
from service.flowengine.model import Flow, Text
from service.flowengine.phrases import CARRIER_KEYWORDS, SUPPORTED_LANGUAGES
from service.flowengine.position import Input, Key, Position, Start
from service.flowengine.render import render_sms, render_voice, voice_lines_for_menu
from service.flowengine.segments import count_segments, pack

RESERVED_WORDS = frozenset().union(*CARRIER_KEYWORDS.values())
DEFAULT_START_WORDS = 45
DEFAULT_NODE_WORDS = 150
DEFAULT_SMS_SEGMENTS = 4
DEFAULT_SMS_MESSAGES = 3
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")

Path_ = Sequence[str | int]


def check_paths(paths: Sequence[Path]) -> list[Problem]:
    """Every problem in the flow files at these paths (folders: their *.yaml and *.yml files)."""
    problems: list[Problem] = []
    for path in paths:
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        if not files:
            problems.append(Problem(str(path), 1, "no flow files (*.yaml) here"))
        for file in files:
            try:
                problems.extend(check_document(read(file)))
            except FlowError as error:
                problems.extend(error.problems)
    return problems


def check_document(document: Document) -> list[Problem]:
    problems = schema_problems(document)
    if problems:
        return problems
    flow = build(document)
    found = [
        Problem(document.file, document.line(path), message)
        for path, message in _rules(flow, document)
    ]
    return sorted(set(found))


def load_flow(path: Path) -> Flow:
    """A flow ready to run, or FlowError listing every problem in the file."""
    document = read(path)
    problems = check_document(document)
    if problems:
        raise FlowError(problems)
    return build(document)


def _rules(flow: Flow, document: Document) -> Iterator[tuple[Path_, str]]:
    references_ok = True
    for check in (_languages, _references, _translations):
        for problem in check(flow):
            references_ok = False
            yield problem
    yield from _keys(flow)
    yield from _numbers(flow)
    yield from _reachability(flow)
    if references_ok:
        limits = document.data.get("limits", {})
        yield from _lengths(flow, limits)


def _languages(flow: Flow) -> Iterator[tuple[Path_, str]]:
    for index, lang in enumerate(flow.languages):
        if lang not in SUPPORTED_LANGUAGES:
            supported = ", ".join(SUPPORTED_LANGUAGES)
            yield (
                ["languages", index],
                f"language {lang!r} is not one the line speaks ({supported})",
            )
    if flow.default_language not in flow.languages:
        yield (
            ["default_language"],
            f"default language {flow.default_language!r} is not in languages",
        )


def _references(flow: Flow) -> Iterator[tuple[Path_, str]]:
    if flow.start not in flow.nodes:
        yield ["start"], f"start node {flow.start!r} does not exist"
    if flow.operator not in flow.contacts:
        yield ["operator"], f"operator {flow.operator!r} is not in contacts"
    elif not flow.contacts[flow.operator].numbers:
        yield ["operator"], f"operator {flow.operator!r} has no number to dial"
    for node in flow.nodes.values():
        if node.contact is not None and node.contact not in flow.contacts:
            yield ["nodes", node.id, "contact"], f"contact {node.contact!r} is not in contacts"
        for index, option in enumerate(node.options):
            where: list[str | int] = ["nodes", node.id, "options", index]
            if option.goto is not None and option.goto not in flow.nodes:
                yield [*where, "goto"], f"goto {option.goto!r}: there is no such node"
            if option.connect is not None and option.connect not in flow.contacts:
                yield (
                    [*where, "connect"],
                    (
                        f"connect {option.connect!r} is not in contacts "
                        "(the line dials only contacts)"
                    ),
                )
            elif option.connect is not None and not flow.contacts[option.connect].numbers:
                yield [*where, "connect"], f"connect {option.connect!r}: that contact has no number"
            for position, contact in enumerate(option.text):
                if contact not in flow.contacts:
                    yield [*where, "text", position], f"text {contact!r} is not in contacts"
            if option.language is not None and option.language not in flow.languages:
                yield [*where, "language"], f"language {option.language!r} is not in languages"


def _translations(flow: Flow) -> Iterator[tuple[Path_, str]]:
    def missing(text: Text | None, path: Path_) -> Iterator[tuple[Path_, str]]:
        if text is None:
            return
        for lang in flow.languages:
            if lang not in text:
                yield path, f"missing {lang!r} translation"
        for lang in text:
            if lang not in flow.languages:
                yield [*path, lang], f"text in {lang!r}, which is not one of the flow's languages"

    yield from missing(flow.title, ["title"])
    for contact in flow.contacts.values():
        yield from missing(contact.name, ["contacts", contact.id, "name"])
        yield from missing(contact.short, ["contacts", contact.id, "short"])
        if contact.hours is not None:
            yield from missing(contact.hours.description, ["contacts", contact.id, "hours"])
    for node in flow.nodes.values():
        yield from missing(node.say, ["nodes", node.id, "say"])
        yield from missing(node.sms, ["nodes", node.id, "sms"])
        for index, option in enumerate(node.options):
            yield from missing(option.label, ["nodes", node.id, "options", index, "label"])


def _keys(flow: Flow) -> Iterator[tuple[Path_, str]]:
    reserved = {
        OPERATOR_KEY: "0 always reaches a person",
        REPEAT_KEY: "star always repeats",
        BACK_KEY: "pound always goes back",
    }
    for node in flow.nodes.values():
        seen: dict[str, int] = {}
        for index, option in enumerate(node.options):
            where: list[str | int] = ["nodes", node.id, "options", index]
            if option.key in seen:
                yield (
                    [*where, "key"],
                    f"duplicate key {option.key} (option {seen[option.key] + 1} uses it too)",
                )
            seen.setdefault(option.key, index)
            if option.key in reserved:
                yield [*where, "key"], f"key {option.key} is reserved: {reserved[option.key]}"
            if option.key == LANGUAGE_KEY and node.id == flow.start and len(flow.languages) > 1:
                yield [*where, "key"], "key 9 is reserved on the first menu for changing language"
            for lang, words in option.words.items():
                for word in words:
                    if word.strip().upper() in RESERVED_WORDS:
                        yield (
                            [*where, "words", lang],
                            (
                                f"{word!r} is a carrier keyword (STOP, HELP, START…); "
                                "texting it must "
                                "keep its meaning"
                            ),
                        )
            for lang, label in option.label.items():
                if label.strip().upper() in RESERVED_WORDS:
                    yield [*where, "label", lang], f"label {label!r} is a carrier keyword"


def _numbers(flow: Flow) -> Iterator[tuple[Path_, str]]:
    for contact in flow.contacts.values():
        for index, number in enumerate(contact.numbers):
            where: list[str | int] = ["contacts", contact.id, "numbers", index, "number"]
            if not E164.match(number):
                yield where, f"{number!r} is not an E.164 number (like +18048287999)"
                continue
            parsed = phonenumbers.parse(number, None)
            if not phonenumbers.is_valid_number(parsed):
                yield where, f"{number} is not a valid phone number"
        if contact.hours is not None:
            try:
                ZoneInfo(contact.hours.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                yield (
                    ["contacts", contact.id, "hours", "timezone"],
                    (f"unknown time zone {contact.hours.timezone!r}"),
                )


def _reachability(flow: Flow) -> Iterator[tuple[Path_, str]]:
    reachable = {flow.start, *flow.parents}
    for node_id in flow.nodes:
        if node_id not in reachable:
            yield ["nodes", node_id], f"node {node_id!r} is unreachable from {flow.start!r}"


def _lengths(flow: Flow, limits: dict[str, int]) -> Iterator[tuple[Path_, str]]:
    start_words = int(limits.get("start_words_before_first_option", DEFAULT_START_WORDS))
    node_words = int(limits.get("words_before_first_option", DEFAULT_NODE_WORDS))
    max_segments = int(limits.get("sms_segments", DEFAULT_SMS_SEGMENTS))
    max_messages = int(limits.get("sms_messages", DEFAULT_SMS_MESSAGES))
    for lang in flow.languages:
        for node in flow.nodes.values():
            voice = Position(node.id, lang, "voice")
            event = Start() if node.id == flow.start else Key(REPEAT_KEY)
            _, effects = step(flow, voice, event)
            lines = render_voice(flow, lang, effects).lines
            menu = next(effect for effect in effects if isinstance(effect, Menu))
            menu_lines = voice_lines_for_menu(menu, lang)
            before = lines[: len(lines) - len(menu_lines)] if menu.choices else lines
            words = sum(len(line.split()) for line in before)
            limit = start_words if node.id == flow.start else node_words
            if words > limit:
                yield (
                    ["nodes", node.id, "say", lang],
                    (
                        f"{words} words before the first option in {lang!r} (at most {limit}); "
                        "callers forget the start of a long prompt"
                    ),
                )
            texter = Position(node.id, lang, "sms")
            replies: list[tuple[Path_, Input]] = [
                (["nodes", node.id, "sms" if node.sms else "say", lang], event)
            ]
            replies += [
                (["nodes", node.id, "options", index], Key(option.key))
                for index, option in enumerate(node.options)
                if option.goto is None  # a goto's reply is its target node, checked there
            ]
            for where, reply_to in replies:
                _, effects = step(flow, texter, reply_to)
                text = render_sms(flow, lang, effects, opt_in_notice=node.id == flow.start)
                messages = pack(text, max_segments)
                if len(messages) > max_messages:
                    segments = sum(count_segments(message) for message in messages)
                    yield (
                        where,
                        (
                            f"SMS reply in {lang!r} takes {len(messages)} messages of up to "
                            f"{max_segments} segments (at most {max_messages}): "
                            f"{segments} segments, "
                            f"{len(text)} characters"
                        ),
                    )
