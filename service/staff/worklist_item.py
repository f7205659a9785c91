"""What an item's page tells a navigator beyond the number's history: what the patient already
got from the line, numbers they wrote in their texts (to call them on), and a revealed number
that stays revealed while they work the item (`kept_reveal`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.followups.worklist import History
from service.models import CallOutcome, OutboxStatus, Voicemail
from service.staff.names import FlowNames

KEEP_REVEALED_SECONDS = 30 * 60
"""How long a number stays revealed on an item's page after it was (audited) revealed."""
REGION = "US"
"""How a number written without +1 is read (the clinic's country)."""


@dataclass(frozen=True)
class Got:
    at: datetime
    what: str
    when: datetime | None = None
    """A time the sentence ends with (a call back promised for then)."""


def what_they_got(history: History, voicemails: Sequence[Voicemail], names: FlowNames) -> list[Got]:
    """What the line already gave the patient, newest first: numbers read to them (a transfer
    tried), texts sent and whether delivered, call-backs promised and when, messages left."""
    got: list[Got] = []
    for call in history.calls:
        if call.transferred_contact:
            contact = names.contact(call.transferred_contact)
            reached = (
                "a person took it" if call.outcome == CallOutcome.REACHED else "nobody took it"
            )
            heard = f"Put through to {contact}, its number read to them first: {reached}"
            got.append(Got(call.started_at, heard))
    for text in history.texts_sent:
        state = {
            OutboxStatus.SENT.value: "sent",
            OutboxStatus.PENDING.value: "waiting to be sent",
            OutboxStatus.SENDING.value: "being sent",
        }.get(text.status, f"not sent ({text.status})")
        got.append(Got(text.created_at, f"A text with the numbers they asked for: {state}"))
    for message in history.messages:
        if message.direction == "out" and message.status:
            got.append(Got(message.created_at, f"A reply by text: {message.status}"))
    for call_back in history.call_backs:
        if call_back.status == OutboxStatus.PENDING.value:
            promised = "A call back promised for"
            got.append(Got(call_back.created_at, promised, call_back.next_attempt_at))
        else:
            got.append(Got(call_back.created_at, f"A call back: {call_back.status}"))
    for voicemail in voicemails:
        got.append(Got(voicemail.left_at, "Left a message (below)"))
    return sorted(got, key=lambda item: item.at, reverse=True)


def numbers_written(history: History, own: str) -> list[str]:
    """Phone numbers the patient wrote in their texts ("call me back at 804-555-0199"), in
    E.164, newest first, not their own."""
    found: list[str] = []
    for message in history.messages:
        if message.direction != "in" or not message.body:
            continue
        for match in phonenumbers.PhoneNumberMatcher(message.body, REGION):
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if number != own and number not in found and phonenumbers.is_valid_number(match.number):
                found.append(number)
    return found


def _signer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="follow-up-reveal")


def keep_reveal(secret: str, item_id: int, username: str, which: str) -> str:
    """A token that lets the item's page show the number `which` again (after a note, a claim)
    without a second reveal: for this item and account only, for 30 minutes."""
    return _signer(secret).dumps([item_id, username, which])


def kept_reveal(secret: str, token: str, item_id: int, username: str) -> str | None:
    """Which number `token` keeps revealed ("caller" or "given:N"), if it is good."""
    try:
        kept = _signer(secret).loads(token, max_age=KEEP_REVEALED_SECONDS)
    except BadSignature:
        return None
    if not isinstance(kept, list) or kept[:2] != [item_id, username]:
        return None
    return str(kept[2])
