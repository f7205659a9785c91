"""`phoneline flows check`: every problem in a flow file, each with its file and line.

Schema problems first (shape and types); when the shape is right, the rules a schema cannot say:
reachability, targets, translations, reserved keys, carrier keywords, E.164 numbers; and the
measured targets (the flow's `limits:`, else the line's defaults in `model.Limits`), checked on
the words the engine really renders, in every language:

- words a caller hears before the first "press 1" of the first menu (25), and of other menus;
- choices per menu (5 on the first besides 0 and 9);
- every voice menu ends by saying how to reach a person (0), every text menu shows it;
- segments per text message per language (English 2, Spanish 3) and messages per reply (2),
  the first reply with its opt-out line in message 1, the text a caller asks for ("press 8")
  and the fixed replies (HELP, STOP, START) included.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from service.flowengine.effects import Menu
from service.flowengine.engine import (
    BACK_KEY,
    LANGUAGE_KEY,
    OPERATOR_KEY,
    REPEAT_KEY,
    step,
)
from service.flowengine.loader import (
    Document,
    FlowError,
    Problem,
    build,
    parse,
    read,
    read_text,
    schema_problem_paths,
)
from service.flowengine.model import Flow, Node, Text
from service.flowengine.phrases import CARRIER_KEYWORDS, PERSON_KEY, SUPPORTED_LANGUAGES, phrase
from service.flowengine.position import DialEnded, DialStatus, Input, Key, Position, Reply, Start
from service.flowengine.render import (
    fixed_reply,
    render_sms,
    render_voice,
    voice_lines_for_menu,
    voice_text_body,
)
from service.flowengine.segments import count_segments, pack

RESERVED_WORDS = frozenset().union(*CARRIER_KEYWORDS.values())
FIXED_REPLIES = ("sms_help", "sms_stopped", "sms_started", "sms_unavailable")
NOT_UNDERSTOOD_PROBE = "purple elephants"
"""A text no menu understands, to measure every menu's "sorry" reply."""
FREE_TEXT_PROBES = (
    "I have chest pain",
    "tengo dolor de pecho",
    "I want to kill myself",
    "me quiero morir",
    "thanks",
    "gracias",
    "who is this?",
    "¿quién es?",
    "quiero hablar con alguien",
)
"""Texts every menu answers without a menu choice (a crisis, courtesy, a question about the
line, words in the other language), to measure those replies too."""
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")

Path_ = Sequence[str | int]
PathProblem = tuple[tuple[str | int, ...], str]
"""A problem and the path of the value it is about (`("nodes", "main", "say", "es")`)."""


def flow_files(folder: Path) -> list[Path]:
    """The flow files of a folder (*.yaml and *.yml), by name."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def check_paths(paths: Sequence[Path]) -> list[Problem]:
    """Every problem in the flow files at these paths (folders: their *.yaml and *.yml files)."""
    problems: list[Problem] = []
    for path in paths:
        files = flow_files(path) if path.is_dir() else [path]
        if not files:
            problems.append(Problem(str(path), 1, "no flow files (*.yaml) here"))
        for file in files:
            try:
                problems.extend(check_document(read(file)))
            except FlowError as error:
                problems.extend(error.problems)
    return problems


def check_warnings(paths: Sequence[Path]) -> list[Problem]:
    """What is allowed but probably not meant, in the flow files that pass the check
    (`warnings_of`)."""
    warnings: list[Problem] = []
    for path in paths:
        files = flow_files(path) if path.is_dir() else [path]
        for file in files:
            try:
                document = read(file)
            except FlowError:
                continue
            warnings.extend(warnings_of(document))
    return warnings


def warnings_of(document: Document) -> list[Problem]:
    """What is allowed but probably not meant in a flow that passes the check: an operator (0)
    with no office hours is put through at any hour, to a closed office at night; a recorded
    prompt whose text changed after it was recorded is not played (the new words are said)."""
    if check_document(document):
        return []
    flow = build(document)
    warnings: list[Problem] = []
    if flow.contacts[flow.operator].hours is None:
        warnings.append(
            Problem(
                document.file,
                document.line(["contacts", flow.operator]),
                f"warning: the operator ({flow.operator}, key 0) keeps no hours: callers "
                "are put through at any hour, to a closed office at night; give it "
                "`hours:` (README, Going live)",
            )
        )
    for node_id, by_language in flow.recordings.items():
        for lang in by_language:
            if flow.is_stale(node_id, lang):
                warnings.append(
                    Problem(
                        document.file,
                        document.line(["recordings", node_id, lang]),
                        f"warning: the {lang} recording of {node_id} says other words than its "
                        "text now: callers hear the text said until it is recorded again",
                    )
                )
    return warnings


def check_document(document: Document) -> list[Problem]:
    found = {
        Problem(document.file, document.line(path), message)
        for path, message in problem_paths(document)
    }
    return sorted(found)


def problem_paths(document: Document) -> list[PathProblem]:
    """Every problem `check_document` finds, each with the path of the value it is about
    instead of its line (a page shows it at that value's field): the schema's, else the
    rules'."""
    found = schema_problem_paths(document)
    if not found:
        found = [(tuple(path), message) for path, message in _rules(build(document), document)]
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=32)
def check_text_paths(text: str, name: str = "flow") -> tuple[PathProblem, ...]:
    """`problem_paths` of a flow's YAML; text that is not YAML has one problem, at the empty
    path (the whole text), saying its line."""
    try:
        document = parse(text, name)
    except FlowError as error:
        return tuple(((), f"line {problem.line}: {problem.message}") for problem in error.problems)
    return tuple(problem_paths(document))


def words_before_first_option(flow: Flow, node_id: str, lang: str) -> int | None:
    """The words a caller hears at a menu before its first "press 1", as the check counts
    them; None when the flow's references or translations are broken (nothing can be said)."""
    for check in (_languages, _references, _translations):
        if next(iter(check(flow)), None) is not None:
            return None
    lines, menu = _heard(flow, flow.nodes[node_id], lang)
    return _words_before_first_option(lines, menu, lang)


def load_flow(path: Path) -> Flow:
    """A flow ready to run, or FlowError listing every problem in the file."""
    return flow_of_text(read_text(path), str(path))


@functools.lru_cache(maxsize=32)
def flow_of_text(text: str, name: str) -> Flow:
    """The flow of this text (`name` says where it came from in its problems), or FlowError
    listing every problem. The same text gives the same Flow: an app built again in one process
    (a reload of an unchanged file, a revision served again, every test) does not parse and
    check it again, which costs about 0.3 s of pure-Python YAML a time."""
    document = parse(text, name)
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
        yield from _voice_menus(flow)
        yield from _text_replies(flow)


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
    for each in flow.contacts.values():
        for index, other in enumerate(each.instead):
            where_else: list[str | int] = ["contacts", each.id, "instead", index]
            if other == each.id or other not in flow.contacts:
                yield where_else, f"instead {other!r}: name another contact"
            elif not flow.contacts[other].numbers:
                yield where_else, f"instead {other!r}: that contact has no number to dial"
    for node_id, by_language in flow.recordings.items():
        if node_id not in flow.nodes:
            yield ["recordings", node_id], f"recording of {node_id!r}: there is no such node"
        for lang in by_language:
            if lang not in flow.languages:
                where_said: list[str | int] = ["recordings", node_id, lang]
                yield where_said, f"recording in {lang!r}: that language is not in languages"
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


def _voice_menus(flow: Flow) -> Iterator[tuple[Path_, str]]:
    """How soon a caller hears the first option, how many choices a menu has, and that every
    menu (the retry menus after an unanswered transfer included) ends with a person."""
    limits = flow.limits
    for lang in flow.languages:
        for node in flow.nodes.values():
            at_start = node.id == flow.start
            lines, menu = _heard(flow, node, lang)
            words = _words_before_first_option(lines, menu, lang)
            limit = limits.start_words if at_start else limits.node_words
            if words > limit:
                yield (
                    ["nodes", node.id, "say", lang],
                    (
                        f"{words} words before the first option in {lang!r} (at most {limit}); "
                        "callers forget the start of a long prompt"
                    ),
                )
            offered = [choice for choice in menu.choices if choice.language is None]
            most = limits.first_menu_choices if at_start else limits.menu_choices
            if len(offered) > most:
                which = "the first menu" if at_start else "a menu"
                yield (
                    ["nodes", node.id, "options"],
                    (
                        f"{len(offered)} choices in {lang!r} (at most {most} on {which}, "
                        "besides 0 and 9): a caller cannot keep more in mind"
                    ),
                )
            if not _ends_with_a_person(voice_lines_for_menu(menu, lang), lang):
                yield (
                    ["nodes", node.id],
                    f"the voice menu in {lang!r} does not end by saying how to reach a person (0)",
                )
        yield from _retry_menus(flow, lang)


def _heard(flow: Flow, node: Node, lang: str) -> tuple[tuple[str, ...], Menu]:
    """What a caller hears at `node` (arriving at the first menu, or asking again at any
    other), and the menu it ends with."""
    event: Input = Start() if node.id == flow.start else Key(REPEAT_KEY)
    _, effects = step(flow, Position(node.id, lang, "voice"), event)
    menu = next(effect for effect in effects if isinstance(effect, Menu))
    return render_voice(flow, lang, effects).lines, menu


def _retry_menus(flow: Flow, lang: str) -> Iterator[tuple[Path_, str]]:
    for node in flow.nodes.values():
        for index, option in enumerate(node.options):
            if option.connect is None:
                continue
            contact = flow.contacts[option.connect]
            last = len(contact.numbers) - 1
            dialing = Position(node.id, lang, state="dialing", contact=contact.id, line=last)
            _, effects = step(flow, dialing, DialEnded(DialStatus.NO_ANSWER))
            menu = next(effect for effect in effects if isinstance(effect, Menu))
            if not _ends_with_a_person(voice_lines_for_menu(menu, lang), lang):
                yield (
                    ["nodes", node.id, "options", index],
                    (
                        f"after an unanswered transfer the menu in {lang!r} does not end with "
                        "how to reach a person (0)"
                    ),
                )


def _words_before_first_option(lines: tuple[str, ...], menu: Menu, lang: str) -> int:
    """Words heard before the key of the menu's first option ("… To hear why it matters,"
    before "press 1"): everything said before its line, and its line up to the key."""
    first = next((choice for choice in menu.choices if choice.language is None), None)
    if first is None:
        return sum(len(line.split()) for line in lines)
    menu_lines = voice_lines_for_menu(menu, lang)
    first_line = menu_lines[menu.choices.index(first)]
    index = len(lines) - len(menu_lines) + menu.choices.index(first)
    key_words = len(phrase(lang, "press", label="", key="1").split(",")[-1].split())
    before = sum(len(line.split()) for line in lines[:index])
    return before + len(first_line.split()) - key_words


def _ends_with_a_person(menu_lines: list[str], lang: str) -> bool:
    """The menu's last line names the key for a person ("… press 0.", "… or 0 to talk …")."""
    return bool(menu_lines) and _NAMES_PERSON_KEY.search(menu_lines[-1]) is not None


_NAMES_PERSON_KEY = re.compile(rf"(?<![\w#*]){PERSON_KEY}(?![\w])")


def _text_replies(flow: Flow) -> Iterator[tuple[Path_, str]]:
    """Every reply a texter can get, and the text a caller can ask for, measured in segments
    per message and messages per reply, per language."""
    for lang in flow.languages:
        for node in flow.nodes.values():
            yield from _node_replies(flow, node, lang)
        for name in FIXED_REPLIES:
            yield from _measure(flow, ["title", lang], lang, fixed_reply(flow, lang, name))


def _node_replies(flow: Flow, node: Node, lang: str) -> Iterator[tuple[Path_, str]]:
    texter = Position(node.id, lang, "sms")
    at_start = node.id == flow.start
    here: Path_ = ["nodes", node.id, "sms" if node.sms else "say", lang]
    arriving: Input = Start() if at_start else Key(REPEAT_KEY)
    _, effects = step(flow, texter, arriving)
    text = render_sms(flow, lang, effects, opt_in_notice=at_start)
    yield from _measure(flow, here, lang, text, first_reply=at_start)
    if not _shows_a_person(text):
        yield here, f"the text menu in {lang!r} does not show how to reach a person (0)"
    probes: list[tuple[Path_, Input]] = [(here, Reply(NOT_UNDERSTOOD_PROBE))]
    probes += [(here, Reply(probe)) for probe in FREE_TEXT_PROBES]
    probes += [
        (["nodes", node.id, "options", index], Key(option.key))
        for index, option in enumerate(node.options)
        if option.goto is None and "sms" in option.channels  # a goto's reply is its node's
    ]
    for where, reply_to in probes:
        after, effects = step(flow, texter, reply_to)
        yield from _measure(flow, where, after.lang, render_sms(flow, after.lang, effects))
    for index, option in enumerate(node.options):
        if option.text and "voice" in option.channels:
            body = voice_text_body(flow, lang, option.text)
            where = ["nodes", node.id, "options", index, "text"]
            yield from _measure(flow, where, lang, body, what="The text a caller asks for")


def _shows_a_person(text: str) -> bool:
    """The text's last line (its "how to go on") names the reply for a person: 0."""
    return _NAMES_PERSON_KEY.search(text.rsplit("\n", 1)[-1]) is not None


def _measure(
    flow: Flow,
    where: Path_,
    lang: str,
    text: str,
    *,
    first_reply: bool = False,
    what: str = "SMS reply",
) -> Iterator[tuple[Path_, str]]:
    limits = flow.limits
    most = limits.segments_for(lang)
    messages = pack(text)
    for number, message in enumerate(messages, start=1):
        segments = count_segments(message)
        if segments > most:
            yield (
                where,
                (
                    f"{what} in {lang!r}: message {number} takes {segments} segments (at most "
                    f"{most} in {lang!r}): {len(message)} characters"
                ),
            )
    if len(messages) > limits.sms_messages:
        segments = sum(count_segments(message) for message in messages)
        yield (
            where,
            (
                f"{what} in {lang!r} takes {len(messages)} messages (at most "
                f"{limits.sms_messages}): {segments} segments, {len(text)} characters"
            ),
        )
    notice = phrase(lang, "sms_opt_in")
    if first_reply and notice not in messages[0]:
        yield (
            where,
            f"the first reply in {lang!r} must say how to opt out in its first message",
        )
