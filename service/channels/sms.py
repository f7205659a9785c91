"""A text reply into messages and TwiML: effects -> `render_sms` -> `pack` -> `<Message>`s.

Segments are counted honestly (one accented character makes the whole message UCS-2, 67
characters a segment once it is long). A message is at most 2 segments in English and 3 in
Spanish: English is written in GSM-7 and Spanish needs UCS-2, so the limit follows from the
message's own encoding (`segments.MESSAGE_SEGMENTS`), and `phoneline flows check` holds every
text of a flow, per language, to its flow's limits. A longer reply is split between lines into
several messages. "Send nothing" (a number that opted out) is an empty `<Response/>`.
"""

from __future__ import annotations

from fastapi.responses import Response
from twilio.twiml.messaging_response import MessagingResponse

from service.flowengine import Flow
from service.flowengine.effects import Effect
from service.flowengine.render import render_sms
from service.flowengine.segments import count_segments, pack

TWIML_MEDIA_TYPE = "application/xml"


def messages_for(text: str | None) -> list[str]:
    """The messages a reply goes out as (none for None or an empty reply)."""
    if not text or not text.strip():
        return []
    return pack(text)


def messages_for_effects(
    flow: Flow, lang: str, effects: tuple[Effect, ...], *, opt_in_notice: bool = False
) -> list[str]:
    return messages_for(render_sms(flow, lang, effects, opt_in_notice=opt_in_notice))


def segments_of(message: str) -> int:
    return count_segments(message)


def twiml(messages: list[str]) -> str:
    """`<Response>` with one `<Message>` per message; `<Response/>` for no messages."""
    response = MessagingResponse()
    for message in messages:
        response.message(message)
    return str(response.to_xml(xml_declaration=True))


def twiml_response(messages: list[str]) -> Response:
    return Response(content=twiml(messages), media_type=TWIML_MEDIA_TYPE)
