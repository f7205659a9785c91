"""The overview's numbers counted by hand: every row read back and counted in Python, as a
manager would count them, to hold `service.staff.headlines.overview_report` (rolled up or
not) to the rows."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import (
    Call,
    CallEvent,
    Conversation,
    DailyAggregate,
    FollowUp,
    Message,
    OptOut,
    OutboxMessage,
    Voicemail,
)
from service.staff.headlines import MEASURES, Range, Report

CONVERSATION_ENDS_AFTER = timedelta(hours=24)
"""A conversation is a number's texts to one line until 24 hours pass without one."""


def counted_by_hand(
    session: Session, chosen: Range, lines: Collection[str] | None = None
) -> Report:
    zone = chosen.zone

    def in_range(at: datetime | None) -> bool:
        return at is not None and chosen.first <= at.astimezone(zone).date() <= chosen.last

    def on_a_line(line: str | None) -> bool:
        return lines is None or (line or "") in lines

    result = Report(chosen)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    numbers: dict[str, dict[str, set[str]]] = {"callers": defaultdict(set), "texters": {}}
    numbers["texters"] = defaultdict(set)
    calls = {call.id: call for call in session.scalars(select(Call))}
    for call in calls.values():
        if not in_range(call.started_at) or not on_a_line(call.called):
            continue
        language = call.language or ""
        counts["calls"][language] += 1
        counts["reached"][language] += call.outcome == "reached"
        counts["not_answered"][language] += call.outcome == "not-answered"
        if call.caller is not None:
            numbers["callers"][language].add(call.caller)
        result.calls_per_day[call.started_at.astimezone(zone).date()] += 1
        if call.outcome in ("hung-up", "listened"):
            result.drop_off[call.last_node or "(before the first menu)"] += 1
        if call.transferred_contact is not None:
            result.transfers[call.transferred_contact][call.dial_outcome or "no result"] += 1
    for event in session.scalars(select(CallEvent).where(CallEvent.kind == "key")):
        if in_range(event.at) and on_a_line(calls[event.call_id].called):
            result.options[(event.node or "?", event.detail or "?")] += 1

    conversations = {c.id: c for c in session.scalars(select(Conversation))}
    messages = session.scalars(select(Message).order_by(Message.created_at, Message.id)).all()
    last_text_in: dict[tuple[str | None, str | None], datetime] = {}
    for message in messages:
        if message.body and in_range(message.created_at) and on_a_line(message.line):
            result.texts_per_day[message.created_at.astimezone(zone).date()] += 1
        if message.direction != "in":
            continue
        before = last_text_in.get((message.phone, message.line))
        last_text_in[(message.phone, message.line)] = message.created_at
        if not in_range(message.created_at) or not on_a_line(message.line):
            continue
        conversation = conversations.get(message.conversation_id or 0)
        language = (conversation.language if conversation else None) or ""
        if before is None or message.created_at - before > CONVERSATION_ENDS_AFTER:
            counts["conversations"][language] += 1
        counts["stops"][language] += message.intent == "opt_out"
        if message.phone is not None:
            numbers["texters"][language].add(message.phone)

    items = session.scalars(select(FollowUp)).all()
    waits = []
    if lines is None or "" in lines:
        for item in items:
            if in_range(item.opened_at):
                counts["follow_ups_opened"][item.language or ""] += 1
            if in_range(item.closed_at):
                assert item.closed_at is not None
                counts["follow_ups_closed"][item.language or ""] += 1
                waits.append((item.closed_at - item.first_attempt_at).total_seconds())
    if lines is None:
        for item in items:
            if in_range(item.opened_at) and item.closed_at is None:
                counts["follow_ups_open"][item.language or ""] += 1
        for phone in session.scalars(select(OptOut.phone).distinct()):
            said = [
                m
                for m in messages
                if m.phone == phone
                and m.direction == "in"
                and m.intent in ("opt_out", "opt_in")
                and m.created_at < chosen.end
            ]
            if said and said[-1].intent == "opt_out":
                latest = max(
                    (c for c in conversations.values() if c.phone == phone),
                    key=lambda c: (c.last_activity_at, c.id),
                    default=None,
                )
                counts["opted_out"][(latest.language if latest else None) or ""] += 1
        for purged in session.scalars(select(DailyAggregate)):
            if chosen.first <= purged.day <= chosen.last:
                if (purged.channel, purged.metric) == ("voice", "calls"):
                    result.calls_per_day[purged.day] += purged.count
                elif purged.channel == "sms" and purged.metric.startswith("messages_"):
                    result.texts_per_day[purged.day] += purged.count

    # Messages left; call-backs asked for while closed, by phone and by text (a call-back
    # queued for later than it was asked), and those of them still waiting now.
    now = datetime.now(UTC)
    by_sid = {call.call_sid: call for call in calls.values()}
    for voicemail in session.scalars(select(Voicemail)):
        call = by_sid.get(voicemail.call_sid)
        if in_range(voicemail.left_at) and on_a_line(call.called if call else None):
            counts["voicemails"][voicemail.language or ""] += 1
    for event in session.scalars(select(CallEvent).where(CallEvent.kind == "callback_request")):
        call = calls[event.call_id]
        closed = (event.detail or "").startswith("closed:")
        if closed and in_range(event.at) and on_a_line(call.called):
            counts["after_hours"][call.language or ""] += 1
    for row in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "call")):
        later = row.next_attempt_at > row.created_at
        if later and in_range(row.created_at) and on_a_line(row.from_number):
            counts["after_hours"][row.language or ""] += 1
            if row.status == "pending" and row.next_attempt_at > now:
                counts["call_backs_waiting"][row.language or ""] += 1

    for key, *_ in MEASURES:
        if key in numbers:
            result.counts[key] = Counter({lang: len(n) for lang, n in numbers[key].items()})
            result.totals[key] = len(set().union(*numbers[key].values()))
        else:
            result.counts[key] = Counter({lang: n for lang, n in counts[key].items() if n})
            result.totals[key] = sum(counts[key].values())
    if waits:
        result.median_wait = timedelta(seconds=statistics.median(waits))
        result.longest_wait = timedelta(seconds=max(waits))
    return result
