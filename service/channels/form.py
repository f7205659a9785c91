"""Reading what Twilio posts: the form, a field of it, and the outbox row named in a callback's
URL."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

from starlette.requests import Request


class TwilioForm(dict[str, str]):
    """What Twilio posted: name -> value (the last one, when a name repeats, as Starlette's form
    gives it), and `getall`, every value of a name, as twilio's RequestValidator reads a
    multi-dict. A file in a multipart form is the empty string (no webhook takes one)."""

    __slots__ = ("_repeated",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        super().__init__(pairs)
        self._repeated: dict[str, list[str]] | None = None
        if len(self) != len(pairs):
            self._repeated = {}
            for name, value in pairs:
                self._repeated.setdefault(name, []).append(value)

    def getall(self, name: str) -> list[str]:
        if self._repeated is None:
            return [self[name]]
        return self._repeated[name]


def parse_urlencoded(body: str, max_fields: int) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(body, keep_blank_values=True, max_num_fields=max_fields)`, pair
    for pair (a property test holds it to that), in a third of its time: a name or value with
    no "+" and no "%" is taken as it is. Over `max_fields` fields: ValueError, as parse_qsl."""
    if body.count("&") >= max_fields:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for part in body.split("&"):
        if part:
            name, _, value = part.partition("=")
            if "%" in value or "+" in value:
                value = _unquote(value)
            if "%" in name or "+" in name:
                name = _unquote(name)
            pairs.append((name, value))
    return pairs


def _unquote(text: str) -> str:
    text = text.replace("+", " ")
    if text.count("%") == text.count("%2B"):  # a phone number's "+": most of what Twilio sends
        return text.replace("%2B", "+")
    return unquote(text, errors="replace")


def form_field(form: TwilioForm, name: str) -> str:
    """A field of Twilio's form, stripped and at most 64 characters ("" when absent)."""
    return form.get(name, "").strip()[:64]


def outbox_id_of(request: Request) -> int | None:
    """The outbox row a status callback or a dial action is about (`?outbox=N` in its URL,
    which the line wrote when it sent the text or placed the call), or None."""
    value = request.query_params.get("outbox", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
