"""Where a call is in the flow, carried in the query string of the signed action URL.

`/twilio/voice?at=<node>&lang=<en|es>&m=<misses>&s=<state>&c=<contact>&l=<line>&h=<0|1>&r=<rev>`

(`h`: the caller has heard a part of the handout, so silence ends with a goodbye; `l`: which
of a contact's numbers is being dialed; `r`: the flow revision the call began with, so that a
call finishes on it whatever is published meanwhile.)

Twilio signs the whole URL it posts to, so a caller cannot change their position; the URL is
still treated as untrusted (an old URL after the flow file changed, a hand-made request with a
valid signature): decoding never fails, it clamps and drops what it does not understand, and the
engine's own sanitising turns an unknown node or contact into the main menu.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from service.flowengine.position import MAX_MISSES, Position, State

NODE_PARAM = "at"
LANG_PARAM = "lang"
MISSES_PARAM = "m"
STATE_PARAM = "s"
CONTACT_PARAM = "c"
LINE_PARAM = "l"
HEARD_PARAM = "h"
REVISION_PARAM = "r"

STATES: tuple[State, ...] = ("menu", "dialing", "retry", "closed", "message")
MAX_ID_CHARS = 64
MAX_LINE = 9


@lru_cache(maxsize=4096)
def encode(position: Position) -> str:
    """The query string (without "?") that carries `position` (remembered: a flow has a few
    hundred positions, and every answer names one)."""
    return urlencode(
        {
            NODE_PARAM: position.node,
            LANG_PARAM: position.lang,
            MISSES_PARAM: position.misses,
            STATE_PARAM: position.state,
            CONTACT_PARAM: position.contact or "",
            LINE_PARAM: position.line,
            HEARD_PARAM: int(position.heard),
        }
    )


@lru_cache(maxsize=4096)
def decode_query(query: bytes, default_lang: str) -> Position | None:
    """`decode` of a raw query string (remembered, like `encode`: the same few come back)."""
    params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    return decode(params, default_lang)


def decode(params: Mapping[str, Any], default_lang: str) -> Position | None:
    """The position in these query parameters; None when there is none (a call's first webhook).

    Never raises: bad numbers become 0, unknown states "menu", over-long ids are cut (and then
    unknown to the flow, which sends the caller to the main menu).
    """
    node = _text(params.get(NODE_PARAM))
    if not node:
        return None
    state_text = _text(params.get(STATE_PARAM))
    state: State = next((known for known in STATES if known == state_text), "menu")
    contact = _text(params.get(CONTACT_PARAM)) or None
    return Position(
        node=node,
        lang=_text(params.get(LANG_PARAM)) or default_lang,
        channel="voice",
        misses=_small_int(params.get(MISSES_PARAM), MAX_MISSES),
        state=state,
        contact=contact if state != "menu" else None,
        line=_small_int(params.get(LINE_PARAM), MAX_LINE),
        heard=_text(params.get(HEARD_PARAM)) == "1",
    )


def with_revision(query: str, revision_id: int | None) -> str:
    """`query` naming the flow revision the call is on (none for a flow read from a file)."""
    if revision_id is None or revision_id <= 0:
        return query
    return f"{query}&{REVISION_PARAM}={revision_id}"


@lru_cache(maxsize=4096)
def revision_in(query: bytes) -> int | None:
    """The revision id a signed action URL names (None: none, or not a number)."""
    for name, value in parse_qsl(query.decode("latin-1")):
        if name == REVISION_PARAM:
            text = _text(value)
            return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None
    return None


def _text(value: Any) -> str:
    return value.strip()[:MAX_ID_CHARS] if isinstance(value, str) else ""


def _small_int(value: Any, maximum: int) -> int:
    text = _text(value)
    if not text.isascii() or not text.isdigit():
        return 0
    number = int(text)
    return number if number <= maximum else 0
