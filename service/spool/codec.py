"""Records as spool lines and back: each record type is a frozen dataclass registered here under
a short tag, and a line is `seq<TAB>[[tag, field, field, ...], ...]` in JSON.

Times go as integer microseconds since the epoch (exact, unlike a float), enums as their
values; on the way back each field is rebuilt from its annotation. A line that does not decode
is reported as such (the spool quarantines it), never guessed at.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

Record = Any
"""A registered record: a frozen dataclass instance."""


class DecodeError(ValueError):
    """A spool line that is not a list of known records."""


@dataclasses.dataclass(frozen=True)
class _Kind:
    tag: str
    build: Callable[..., Record]
    names: tuple[str, ...]
    times: frozenset[int]
    """Positions of datetime fields."""
    enums: tuple[tuple[int, type[Enum]], ...]


_BY_TYPE: dict[type, _Kind] = {}
_BY_TAG: dict[str, _Kind] = {}


def register(tag: str) -> Callable[[type], type]:
    """Class decorator: records of this dataclass may be spooled, tagged `tag`."""

    def decorate(cls: type) -> type:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        times = frozenset(i for i, f in enumerate(fields) if _is(hints[f.name], datetime))
        enums = tuple(
            (i, enum) for i, f in enumerate(fields) if (enum := _enum_of(hints[f.name])) is not None
        )
        if tag in _BY_TAG and _BY_TAG[tag].build is not cls:
            raise ValueError(f"spool tag {tag!r} is taken")
        kind = _Kind(tag, cls, tuple(f.name for f in fields), times, enums)
        _BY_TYPE[cls] = kind
        _BY_TAG[tag] = kind
        return cls

    return decorate


def encode(seq: int, records: Sequence[Record]) -> bytes:
    """One spool line (with its newline) for these records."""
    return b"%d\t%s\n" % (seq, encode_payload(records))


def encode_payload(records: Sequence[Record]) -> bytes:
    """The records part of a spool line (JSON, no newline)."""
    items = []
    for record in records:
        kind = _BY_TYPE[type(record)]
        values: list[Any] = [kind.tag]
        # Not dataclasses.astuple: it deep-copies every value.
        values.extend(getattr(record, name) for name in kind.names)
        for i in kind.times:
            if values[i + 1] is not None:
                values[i + 1] = (values[i + 1] - EPOCH) // MICROSECOND
        items.append(values)
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


def decode(line: bytes) -> tuple[int, list[Record]]:
    """(seq, records) of one spool line (without or with its newline)."""
    try:
        seq_text, _, payload = line.decode().rstrip("\n").partition("\t")
        items = json.loads(payload)
        seq = int(seq_text)
        records = [_build(item) for item in items]
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError) as error:
        raise DecodeError(f"not a spool line: {type(error).__name__}: {error}"[:200]) from error
    return seq, records


def is_registered(record: Record) -> bool:
    return type(record) in _BY_TYPE


def _build(item: list[Any]) -> Record:
    kind = _BY_TAG[item[0]]
    values = item[1:]
    for i in kind.times:
        if values[i] is not None:
            values[i] = EPOCH + values[i] * MICROSECOND
    for i, enum in kind.enums:
        if values[i] is not None:
            values[i] = enum(values[i])
    return kind.build(*values)


def _is(hint: Any, cls: type) -> bool:
    return hint is cls or cls in typing.get_args(hint)


def _enum_of(hint: Any) -> type[Enum] | None:
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None
