"""Call-backs and office hours: a call-back (CALL, LLAMAME, 1 at a contact) never connects a
patient to a closed contact.

Asked for while the contact is closed, it is queued for the opening, each number at its own
minute of the first half hour (`spread_out`), so a morning does not start with fifty calls at
once. When it comes due, the outbox worker asks once more (`wait_for_opening`): a closure added
since (a snow day) makes it wait again, for the next opening.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from service.flowengine.engine import is_open
from service.flowengine.hours import next_opening
from service.lines.book import LineBook
from service.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

OPENING_SPREAD_MINUTES = 30
"""Call-backs asked for while closed go out over the first half hour after the opening, each
number at its own minute."""
LOOK_AGAIN = timedelta(days=1)
"""A contact closed for longer than anyone looks ahead (two weeks): its call-backs are looked
at again a day later, never placed to it while it is closed."""


def spread_out(opening: datetime | None, phone: str) -> datetime | None:
    if opening is None:
        return None
    minute = int(hashlib.sha256(phone.encode()).hexdigest(), 16) % OPENING_SPREAD_MINUTES
    return opening + timedelta(minutes=minute)


def wait_for_opening(
    book: LineBook, clock: Callable[[], datetime] = utcnow
) -> Callable[[OutboxMessage], datetime | None]:
    """For the outbox worker: when a call-back due now must wait (its contact is closed, as
    its line's published flow and the closures kept by staff say): until when; else None. A
    row whose contact or line this process does not know (a flow published since without it)
    is placed: the line fails open to a person."""

    def hold(row: OutboxMessage) -> datetime | None:
        if not row.contact:
            return None
        line = book.by_id(row.line_id) if row.line_id is not None else book.default
        flow = book.flow(line)
        contact = flow.contacts.get(row.contact) if flow is not None else None
        now = clock()
        if contact is None or is_open(contact, now):
            return None
        opening = next_opening(contact.hours, contact.closures, now)
        log.info("outbox %d: its contact is closed now: it waits for the opening", row.id)
        return spread_out(opening, row.to_number) if opening else now + LOOK_AGAIN

    return hold
