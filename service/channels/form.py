"""Reading what Twilio posts: the form, the webhook it is (`Webhook`: every field the voice and
text lines read, parsed and its numbers normalised once, here at the boundary), and the outbox
row named in a callback's URL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from service.phone import to_e164

MAX_SPEECH_CHARS = 200
MAX_BODY_CHARS = 1600
"""Twilio's own limit for a text's body."""


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


def outbox_id_of(request: Request) -> int | None:
    """The outbox row a status callback or a dial action is about (`?outbox=N` in its URL,
    which the line wrote when it sent the text or placed the call), or None."""
    value = request.query_params.get("outbox", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None


@dataclass(frozen=True)
class Webhook:
    """What the voice and text lines read of a webhook (every field optional: bad input is
    expected), parsed once: stripped, cut to a bound, a dial status in lower case, and the two
    numbers in E.164 (as written, at most 64 characters, when they are not phone numbers:
    "anonymous", a SIP address, a client name)."""

    from_number: str = ""
    """The caller or texter (`From`)."""
    to_number: str = ""
    """The line's number that was called or texted (`To`, else `Called`)."""
    call_sid: str = ""
    message_sid: str = ""
    """`MessageSid` (`SmsSid` from older accounts)."""
    body: str = ""
    """A text's body, as written (not stripped: the spaces are the texter's)."""
    digits: str = ""
    speech: str = ""
    confidence: str = ""
    dial_status: str = ""
    dial_duration: str = ""
    call_status: str = ""
    """A status callback's `CallStatus`, in lower case."""
    call_duration: str = ""
    message_status: str = ""
    """A text's status callback's `MessageStatus` (`SmsStatus`), in lower case."""
    error_code: str = ""
    recording_sid: str = ""
    """A `<Record>` action's or a recording status callback's `RecordingSid`."""
    recording_duration: str = ""
    recording_status: str = ""
    """A recording status callback's `RecordingStatus`, in lower case."""

    @classmethod
    def parse(cls, form: Mapping[str, Any]) -> Webhook:
        def field(name: str, limit: int = 64) -> str:
            value = form.get(name)
            return value.strip()[:limit] if isinstance(value, str) else ""

        body = form.get("Body")
        return cls(
            from_number=_number(field("From")),
            to_number=_number(field("To") or field("Called")),
            call_sid=field("CallSid"),
            message_sid=field("MessageSid") or field("SmsSid"),
            body=body[:MAX_BODY_CHARS] if isinstance(body, str) else "",
            digits=field("Digits"),
            speech=field("SpeechResult", MAX_SPEECH_CHARS),
            confidence=field("Confidence", 16),
            dial_status=field("DialCallStatus").lower(),
            dial_duration=field("DialCallDuration", 16),
            call_status=field("CallStatus").lower(),
            call_duration=field("CallDuration", 16),
            message_status=(field("MessageStatus") or field("SmsStatus")).lower(),
            error_code=field("ErrorCode", 16),
            recording_sid=field("RecordingSid"),
            recording_duration=field("RecordingDuration", 16),
            recording_status=field("RecordingStatus", 16).lower(),
        )


def _number(raw: str) -> str:
    return to_e164(raw) or raw if raw else ""
