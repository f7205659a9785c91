"""Reading flow files: a safe YAML 1.2 parse that remembers lines, the JSON Schema, then the model.

YAML 1.2 keeps `no`, `yes`, `on` and `off` as the strings they look like (YAML 1.1 made them
booleans, so a Norwegian language code or an answer "No" would silently turn into `False`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from service.flowengine.model import (
    CHANNELS,
    Contact,
    Flow,
    Hours,
    Limits,
    Node,
    OpenHours,
    Option,
    Recording,
    Text,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "flows" / "schema.json"
PACKAGED_SCHEMA = Path(__file__).with_name("schema.json")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FlowError(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class Document:
    """A parsed flow file: its data (ruamel containers, which know their lines) and its hash."""

    file: str
    data: Any
    content_hash: str

    def line(self, path: Sequence[str | int]) -> int:
        """The 1-based line of the value at `path` (or of the nearest parent that has one)."""
        node, line = self.data, 1
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    path = SCHEMA_PATH if SCHEMA_PATH.exists() else PACKAGED_SCHEMA
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def parse(text: str, file: str) -> Document:
    """The document of a flow's YAML; `file` names it in its problems."""
    try:
        data, digest = _read_yaml(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise FlowError([Problem(file, line, f"not valid YAML: {error.problem}")]) from None
    return Document(file, data, digest)


@lru_cache(maxsize=16)
def _read_yaml(text: str) -> tuple[Any, str]:
    """The data of a YAML text and its hash, read once per process for each text (about 0.15 s
    of pure-Python parsing for the shipped flow, 0.5 MB kept): a revision is checked when it is
    saved, run by the line book, shown by the pages and looked into when published, each under
    a name of its own. Nothing changes the data it returns."""
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    data = yaml.load(text)
    return data, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def schema_problems(document: Document) -> list[Problem]:
    problems = {
        Problem(document.file, document.line(path), message)
        for path, message in schema_problem_paths(document)
    }
    return sorted(problems)


def schema_problem_paths(document: Document) -> list[tuple[tuple[str | int, ...], str]]:
    """Each schema problem with the path of the value it is about (a page shows it there)."""
    validator = jsonschema.Draft202012Validator(schema())
    found = []
    for error in validator.iter_errors(_keys_as_strings(document.data)):
        path = list(error.absolute_path)
        found.append((tuple(path), _describe(error, path)))
    return found


def _describe(error: jsonschema.ValidationError, path: list[str | int]) -> str:
    where = ".".join(str(part) for part in path) or "the file"
    if isinstance(error.instance, bool):
        return (
            f"{where} is the YAML boolean {str(error.instance).lower()}; "
            "put it in quotes if you mean the word"
        )
    if error.validator == "oneOf" and path and isinstance(path[-1], int):
        return f"{where}: an option needs exactly one of goto, connect, text, language or hangup"
    if error.validator == "pattern" and path and path[-1] == "key":
        return f"{where}: key {error.instance!r} must be one phone key: 0-9, * or #"
    return f"{where}: {error.message}"


def _keys_as_strings(data: Any) -> Any:
    """Option keys may be written bare (`key: 1`); they are phone keys, so strings."""
    if isinstance(data, Mapping):
        return {
            key: (
                str(value)
                if key == "key" and isinstance(value, int) and not isinstance(value, bool)
                else _keys_as_strings(value)
            )
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_keys_as_strings(item) for item in data]
    return data


def build(document: Document) -> Flow:
    """The model of a schema-valid document."""
    data = _keys_as_strings(document.data)
    languages = tuple(data["languages"])
    contacts = {cid: _contact(cid, raw) for cid, raw in data["contacts"].items()}
    nodes = {nid: _node(nid, raw) for nid, raw in data["nodes"].items()}
    flow = Flow(
        name=data["name"],
        version=str(data["version"]),
        languages=languages,
        default_language=data["default_language"],
        title=dict(data["title"]),
        start=data["start"],
        operator=data["operator"],
        contacts=contacts,
        nodes=nodes,
        content_hash=document.content_hash,
        parents=_parents(data["start"], nodes),
        limits=_limits(data.get("limits", {}), languages),
        recordings={
            node_id: {
                lang: Recording(str(raw["audio"]), " ".join(str(raw["words"]).split()))
                for lang, raw in by_language.items()
            }
            for node_id, by_language in data.get("recordings", {}).items()
        },
    )
    return flow


def _limits(raw: Mapping[str, Any], languages: Sequence[str]) -> Limits:
    """The flow's own `limits:` over the line's defaults (`Limits`)."""
    defaults = Limits()
    segments = raw.get("sms_segments", defaults.sms_segments)
    if isinstance(segments, int):
        segments = dict.fromkeys(languages, segments)
    return Limits(
        start_words=int(raw.get("start_words_before_first_option", defaults.start_words)),
        node_words=int(raw.get("words_before_first_option", defaults.node_words)),
        first_menu_choices=int(raw.get("first_menu_choices", defaults.first_menu_choices)),
        menu_choices=int(raw.get("menu_choices", defaults.menu_choices)),
        sms_segments={**defaults.sms_segments, **{str(k): int(v) for k, v in segments.items()}},
        sms_messages=int(raw.get("sms_messages", defaults.sms_messages)),
    )


def _text(raw: Mapping[str, str]) -> Text:
    return {lang: " ".join(str(value).split()) for lang, value in raw.items()}


def _contact(contact_id: str, raw: Mapping[str, Any]) -> Contact:
    hours = None
    if "hours" in raw:
        spans = tuple(
            OpenHours(
                days=tuple(DAYS.index(day) for day in span["days"]),
                opens=time.fromisoformat(span["from"]),
                closes=time.max if span["to"] == "24:00" else time.fromisoformat(span["to"]),
            )
            for span in raw["hours"]["open"]
        )
        hours = Hours(raw["hours"]["timezone"], spans, _text(raw["hours"]["description"]))
    return Contact(
        id=contact_id,
        name=_text(raw["name"]),
        short=_text(raw["short"]),
        numbers=tuple(str(line["number"]) for line in raw["numbers"]),
        display=tuple(str(line["display"]) for line in raw["numbers"]),
        hours=hours,
        words={lang: tuple(words) for lang, words in raw.get("words", {}).items()},
        instead=tuple(str(other) for other in raw.get("instead", ())),
        screen=bool(raw.get("screen", False)),
    )


def _node(node_id: str, raw: Mapping[str, Any]) -> Node:
    options = tuple(
        Option(
            key=option["key"],
            label=_text(option["label"]),
            goto=option.get("goto"),
            connect=option.get("connect"),
            text=tuple(option.get("text", ())),
            language=option.get("language"),
            hangup=bool(option.get("hangup", False)),
            words={lang: tuple(words) for lang, words in option.get("words", {}).items()},
            sms_label=_text(option["sms_label"]) if "sms_label" in option else None,
            channels=tuple(option.get("channels", CHANNELS)),
        )
        for option in raw.get("options", ())
    )
    return Node(
        id=node_id,
        say=_text(raw["say"]),
        options=options,
        sms=_text(raw["sms"]) if "sms" in raw else None,
        contact=raw.get("contact"),
    )


def _parents(start: str, nodes: Mapping[str, Node]) -> dict[str, str]:
    """Breadth first from the start: each node's parent is the first node that leads to it."""
    parents: dict[str, str] = {}
    queue, seen = [start], {start}
    while queue:
        current = queue.pop(0)
        for option in nodes[current].options if current in nodes else ():
            target = option.goto
            if target is not None and target not in seen and target in nodes:
                seen.add(target)
                parents[target] = current
                queue.append(target)
    return parents


def read_text(path: Path) -> str:
    """A flow file's text, or FlowError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FlowError([Problem(str(path), 1, f"cannot read: {error}")]) from None


def read(path: Path) -> Document:
    return parse(read_text(path), str(path))
