"""The overview's benchmark schema: a big clinic's year, made by simulating it.

Five lines' worth of traffic, each 300 calls and 150 texts received a day on average (fewer at
weekends, most of them in office hours, in the clinic's zone), for the 366 days up to the
moment of loading (the newest rows minutes old): about 550,000 calls and 275,000 texts in.

- Callers are patients: each calls 1 to 5 times (2.1 on average) a few days apart, always the
  same line, 21 % of them in Spanish. A call walks the real menu (`flows/second-opinion.yaml`):
  30 % reach a person, 10 % are transfers nobody answered (busy, no answer, failed; a third of
  them ask for a call-back), 32 % listen and leave, 23 % hang up in a menu, 2 % fail and 2 %
  never get a final status. Its events are those the line records (menus, keys, dials).
- Texters are patients (55 %) or numbers that only text; a conversation is two or three texts
  and the line's replies, minutes apart. Some ask for a person, are not understood (twice),
  sound like an emergency, ask for a call-back or for help; 2.5 % text STOP, and a quarter of
  those come back later with START (texts from an opted-out number get no reply).
- The worklist as the sweep and the navigators leave it: a missed transfer, a call-back asked
  for, a text that asked for a person or a second one not understood is filed on the number's
  open item (opened 100 seconds later) or opens one; a navigator closes it after a wait of
  about a day (reached, voicemail, wrong number, no longer needed), unless a later call of the
  number reaches a person first (closed by the sweep). Those whose close lies in the future are
  open (some claimed, with notes).

Deterministic (one seeded generator), written with COPY in about a minute. The schema is kept
between runs like `bench/staff_data.py`'s.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter as timer
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import Connection

from bench.staff_data import KeptSchema

ZONE = ZoneInfo("America/New_York")
"""The clinic's zone: the benchmark's servers run with the default TIMEZONE."""
LINES = [f"+1804555010{n}" for n in range(5)]
CALLS_PER_DAY_PER_LINE = 300
TEXTS_IN_PER_DAY_PER_LINE = 150
DAYS = 366
SEED = 20261206
SPANISH = 0.21
AREA_CODES = ("804", "434", "757", "540", "703")
CONTACTS = (  # (contact, its key in the "reach" menu, its number, share of transfers)
    ("coordinator", "1", "+18048287999", 0.55),
    ("library", "2", "+18048288709", 0.25),
    ("cancer_information_service", "3", "+18004226237", 0.15),
    ("medicare_hotline", "4", "+18006386833", 0.05),
)
LISTENED = (  # (the keys pressed, (menu, key) each, the last menu, share of those who listen)
    ((("main", "1"),), "why", 0.40),
    ((("main", "3"),), "prepare", 0.30),
    ((("main", "4"),), "disagree", 0.20),
    ((("main", "4"), ("disagree", "1")), "disagree_more", 0.10),
)
NAVIGATORS = ("ana", "bill", "chen", "dee")
FLOW_HASH = "clinicflowhash"


@dataclass
class Rows:
    """The rows of each table, in the order of their columns (`COLUMNS`)."""

    calls: list[tuple[object, ...]] = field(default_factory=list)
    call_events: list[tuple[object, ...]] = field(default_factory=list)
    conversations: list[tuple[object, ...]] = field(default_factory=list)
    messages: list[tuple[object, ...]] = field(default_factory=list)
    opt_outs: list[tuple[object, ...]] = field(default_factory=list)
    follow_ups: list[tuple[object, ...]] = field(default_factory=list)
    follow_up_sources: list[tuple[object, ...]] = field(default_factory=list)
    follow_up_notes: list[tuple[object, ...]] = field(default_factory=list)


COLUMNS = {
    "calls": (
        "id, call_sid, caller, called, started_at, answered_at, ended_at, duration_seconds, "
        "language, status, outcome, transferred_contact, transferred_number, dial_outcome, "
        "last_node, flow_hash, path, last_seen_at, updated_at, settled_at"
    ),
    "call_events": "id, call_id, at, kind, node, detail",
    "conversations": (
        "id, phone, line, language, node, state, started_at, last_activity_at, flow_hash"
    ),
    "messages": (
        "id, message_sid, conversation_id, direction, phone, line, body, segments, status, "
        "intent, created_at, updated_at"
    ),
    "opt_outs": "phone, opted_out, keyword, changed_at",
    "follow_ups": (
        "id, phone, open_phone, reason, language, opened_at, first_attempt_at, "
        "last_attempt_at, claimed_by, claimed_at, closed_at, closed_by, outcome"
    ),
    "follow_up_sources": "id, follow_up_id, kind, ref_id, call_id, reason, at",
    "follow_up_notes": "id, follow_up_id, at, author, text",
}
"""What each table is loaded with, in the order the tables are loaded (foreign keys)."""


@dataclass(frozen=True)
class Person:
    """A patient who calls (and may text), or a number that only texts."""

    phone: str
    line: str
    language: str


@dataclass(frozen=True)
class Trigger:
    """Something the sweep files on a number's item."""

    phone: str
    at: datetime
    kind: str
    ref_id: int
    reason: str
    language: str
    call_id: int | None = None


@dataclass
class Thread:
    """A texter's conversation row (one per number and line)."""

    ident: int
    started_at: datetime
    last_activity_at: datetime
    language: str


@dataclass
class Item:
    """A follow-up as the simulation files it."""

    triggers: list[Trigger]
    closing: datetime
    closed_by_sweep: bool = False

    @property
    def first(self) -> Trigger:
        return self.triggers[0]

    @property
    def opened_at(self) -> datetime:
        return self.first.at + timedelta(seconds=100)  # the sweep runs every few seconds


class Clinic:
    """The simulation: `rows_of_the_year()` makes the year's rows, up to `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.random = random.Random(SEED)
        today = now.astimezone(ZONE).date()
        self.days = [today - timedelta(days=DAYS - 1 - n) for n in range(DAYS)]
        # Weekends have 40 % of a weekday's traffic; the average day has the stated traffic.
        self.day_weights = [0.4 if day.isoweekday() >= 6 else 1.0 for day in self.days]
        self.rows = Rows()
        self.patients: list[Person] = []
        self.triggers: list[Trigger] = []
        self.reached_at: dict[str, list[datetime]] = defaultdict(list)
        self.not_understood_at: dict[str, datetime] = {}

    def rows_of_the_year(self) -> Rows:
        self._calls()
        self._texts()
        self._worklist()
        return self.rows

    def _moment(self, day: date) -> datetime:
        """A time of `day` in the clinic's zone (88 % in office hours, 8 to 18), in UTC."""
        if self.random.random() < 0.88:
            seconds = 8 * 3600 + self.random.random() * 10 * 3600
        else:
            seconds = self.random.random() * 86_400
        local = datetime.combine(day, time(), tzinfo=ZONE) + timedelta(seconds=seconds)
        return local.astimezone(UTC)

    def _day(self) -> int:
        return self.random.choices(range(DAYS), weights=self.day_weights)[0]

    def _person(self, number: int) -> Person:
        return Person(
            f"+1{AREA_CODES[number % 5]}{number:07d}",
            LINES[self.random.randrange(len(LINES))],
            "es" if self.random.random() < SPANISH else "en",
        )

    # -- calls ----------------------------------------------------------------------------------

    def _calls(self) -> None:
        target = CALLS_PER_DAY_PER_LINE * len(LINES) * DAYS
        planned: list[tuple[datetime, Person]] = []
        while len(planned) < target:
            patient = self._person(2_000_000 + len(self.patients))
            self.patients.append(patient)
            day = self._day()
            for _ in range(self.random.choice((1, 1, 1, 1, 2, 2, 2, 3, 3, 5))):
                if day < DAYS:
                    at = self._moment(self.days[day])
                    if at < self.now - timedelta(minutes=2):
                        planned.append((at, patient))
                day += self.random.randint(1, 5)
        planned.sort(key=lambda each: each[0])
        for call_id, (started_at, patient) in enumerate(planned, start=1):
            self._call(call_id, started_at, patient)

    def _call(self, call_id: int, started_at: datetime, patient: Person) -> None:
        pick = self.random.random()
        outcome = (
            "reached"
            if pick < 0.30
            else "not-answered"
            if pick < 0.40
            else "listened"
            if pick < 0.72
            else "hung-up"
            if pick < 0.95
            else "failed"
            if pick < 0.97
            else "unknown"
        )
        keys: list[tuple[str, str]] = []
        nodes = [] if outcome == "failed" else ["main"]
        contact = number = dial = None
        if outcome in ("reached", "not-answered"):
            contact, key, number, _ = self.random.choices(CONTACTS, [c[3] for c in CONTACTS])[0]
            keys = [("main", "2"), ("reach", key), (contact, "1")]
            nodes += ["reach", contact]
            dial = (
                "completed"
                if outcome == "reached"
                else self.random.choices(("busy", "no-answer", "failed"), (3, 6, 1))[0]
            )
        elif outcome == "listened":
            pressed, last, _ = self.random.choices(LISTENED, [w for *_, w in LISTENED])[0]
            keys = list(pressed)
            nodes += [node for node, _ in keys[1:]] + [last]
        elif outcome == "hung-up" and self.random.random() < 0.3:
            keys, nodes = [("main", "2")], ["main", "reach"]
        duration = 0 if outcome == "failed" else 20 + int(self.random.random() * 400)
        ended = started_at + timedelta(seconds=duration)
        path = ">".join(
            part
            for node, (_, key) in zip(nodes, [*keys, ("", "")], strict=False)
            for part in (node, key)
            if part
        )
        finished = outcome != "unknown"
        self.rows.calls.append(
            (
                call_id,
                f"CA{call_id:032x}",
                patient.phone,
                patient.line,
                started_at,
                None if outcome == "failed" else started_at + timedelta(seconds=1),
                ended if finished else None,
                duration if finished else None,
                patient.language,
                {"failed": "failed", "unknown": None}.get(outcome, "completed"),
                outcome,
                contact,
                number,
                dial,
                nodes[-1] if nodes else None,
                FLOW_HASH,
                path or None,
                ended,
                ended,
                ended + timedelta(seconds=1),
            )
        )
        events = self.rows.call_events
        at = started_at
        for n, node in enumerate(nodes):
            events.append((len(events) + 1, call_id, at, "menu", node, None))
            if n < len(keys):
                at += timedelta(seconds=6 + self.random.random() * 20)
                events.append((len(events) + 1, call_id, at, "key", *keys[n]))
        if contact is not None:
            events.append((len(events) + 1, call_id, at, "dial", contact, contact))
            events.append((len(events) + 1, call_id, ended, "dial_result", contact, dial))
        if outcome == "reached":
            self.reached_at[patient.phone].append(started_at)
        if outcome != "not-answered":
            return
        self.triggers.append(
            Trigger(
                patient.phone,
                started_at,
                "call",
                call_id,
                "missed-transfer",
                patient.language,
                call_id,
            )
        )
        if self.random.random() < 1 / 3:
            events.append(
                (
                    len(events) + 1,
                    call_id,
                    ended + timedelta(seconds=15),
                    "callback_request",
                    contact,
                    contact,
                )
            )
            self.triggers.append(
                Trigger(
                    patient.phone,
                    started_at,
                    "call_event",
                    len(events),
                    "call-back-asked",
                    patient.language,
                    call_id,
                )
            )

    # -- texts ------------------------------------------------------------------------------------

    def _texts(self) -> None:
        texters = [self._person(5_000_000 + n) for n in range(40_000)]
        target = TEXTS_IN_PER_DAY_PER_LINE * len(LINES) * DAYS
        sessions: list[tuple[datetime, Person]] = []
        while 3 * len(sessions) < target:  # about three texts in a conversation
            at = self._moment(self.days[self._day()])
            if at < self.now - timedelta(minutes=5):
                pool = self.patients if self.random.random() < 0.55 else texters
                sessions.append((at, pool[self.random.randrange(len(pool))]))
        sessions.sort(key=lambda each: each[0])
        threads: dict[tuple[str, str], Thread] = {}
        stops: dict[str, tuple[bool, str, datetime]] = {}
        for at, texter in sessions:
            thread = threads.setdefault(
                (texter.phone, texter.line), Thread(len(threads) + 1, at, at, texter.language)
            )
            if at - thread.last_activity_at > timedelta(hours=24):
                thread.started_at = at  # the line starts a conversation again
            stopped = stops.get(texter.phone, (False, "", at))[0]
            for body, intent in self._conversation(texter, stopped):
                self._message(thread.ident, "in", texter, body, intent, at)
                if intent in ("opt_out", "opt_in"):
                    stopped = intent == "opt_out"
                    stops[texter.phone] = (stopped, body, at)
                if not stopped or intent == "opt_out":
                    reply = at + timedelta(seconds=2)
                    self._message(thread.ident, "out", texter, "(the line's reply)", None, reply)
                    thread.last_activity_at = at
                at += timedelta(seconds=30 + self.random.random() * 90)
        for (phone, line), thread in threads.items():
            self.rows.conversations.append(
                (
                    thread.ident,
                    phone,
                    line,
                    thread.language,
                    "main",
                    "{}",
                    thread.started_at,
                    thread.last_activity_at,
                    FLOW_HASH,
                )
            )
        for phone, (stopped, word, at) in stops.items():
            self.rows.opt_outs.append((phone, stopped, word, at))

    def _conversation(self, texter: Person, stopped: bool) -> list[tuple[str, str | None]]:
        """The texts of one conversation: (body, intent) each."""
        greeting = ("hola", None) if texter.language == "es" else ("hi", None)
        if stopped:  # an opted-out number: back with START, or a text that gets no answer
            if self.random.random() < 0.25:
                return [("START", "opt_in"), ("1", None), ("2", None)]
            return [greeting]
        choice = (str(self.random.randint(1, 4)), None)
        pick = self.random.random()
        if pick < 0.025:
            return [greeting, choice, ("STOP", "opt_out")]
        if pick < 0.065:
            return [greeting, ("can I talk to someone", "asked_for_person"), choice]
        if pick < 0.085:
            lost = ("whats the adress pls", "not_understood")
            return [greeting, lost, lost]
        if pick < 0.09:
            return [greeting, ("I have chest pain", "emergency"), choice]
        if pick < 0.10:
            return [greeting, choice, ("CALL", "call_back")]
        if pick < 0.11:
            return [greeting, ("HELP", "help"), choice]
        return [greeting, choice, (str(self.random.randint(1, 4)), None)]

    def _message(
        self,
        conversation_id: int,
        direction: str,
        texter: Person,
        body: str,
        intent: str | None,
        at: datetime,
    ) -> None:
        ident = len(self.rows.messages) + 1
        self.rows.messages.append(
            (
                ident,
                f"SM{ident:032x}",
                conversation_id,
                direction,
                texter.phone,
                texter.line,
                body,
                1,
                "received" if direction == "in" else "delivered",
                intent,
                at,
                at,
            )
        )
        reason = None
        if intent == "asked_for_person":
            reason = "text-asked-person"
        elif intent == "not_understood":
            before = self.not_understood_at.get(texter.phone)
            if before is not None and at - before <= timedelta(hours=24):
                reason = "text-not-understood"  # the second in a day
            self.not_understood_at[texter.phone] = at
        if reason is not None:
            self.triggers.append(
                Trigger(texter.phone, at, "message", ident, reason, texter.language)
            )

    # -- the worklist ---------------------------------------------------------------------------

    def _worklist(self) -> None:
        by_phone: dict[str, list[Trigger]] = defaultdict(list)
        for trigger in self.triggers:
            by_phone[trigger.phone].append(trigger)
        items: list[Item] = []
        for phone, triggers in by_phone.items():
            triggers.sort(key=lambda t: (t.at, t.kind, t.ref_id))
            item: Item | None = None
            for trigger in triggers:
                if item is None or item.closing <= trigger.at:  # none open: a new item
                    item = Item([], trigger.at)
                    items.append(item)
                item.triggers.append(trigger)
                self._close(phone, item)
        items.sort(key=lambda item: (item.opened_at, item.first.phone))
        for ident, item in enumerate(items, start=1):
            self._item_rows(ident, item)

    def _close(self, phone: str, item: Item) -> None:
        """When the item closes: after a navigator's wait from its first attempt (about a day,
        now and then much longer), or when a later call of the number reaches a person."""
        last = item.triggers[-1].at
        waited = timedelta(hours=0.5 + self.random.expovariate(1 / 20))
        item.closing = max(item.first.at + waited, last + timedelta(minutes=5))
        item.closed_by_sweep = False
        reached = [at for at in self.reached_at.get(phone, ()) if last <= at < item.closing]
        if reached:
            item.closing, item.closed_by_sweep = min(reached) + timedelta(seconds=100), True

    def _item_rows(self, ident: int, item: Item) -> None:
        first, last = item.first, item.triggers[-1]
        is_open = item.closing > self.now
        claimed = not is_open or ident % 4 == 0
        navigator = NAVIGATORS[ident % 4]
        claimed_at = min(item.opened_at + timedelta(minutes=30), self.now) if claimed else None
        outcome = closed_by = None
        if not is_open:
            closed_by = "system" if item.closed_by_sweep else navigator
            outcome = (
                "reached-a-person"
                if item.closed_by_sweep
                else self.random.choices(
                    ("reached", "left-voicemail", "wrong-number", "no-longer-needed"),
                    (50, 25, 5, 20),
                )[0]
            )
        self.rows.follow_ups.append(
            (
                ident,
                first.phone,
                first.phone if is_open else None,
                first.reason,
                first.language,
                item.opened_at,
                first.at,
                last.at,
                navigator if claimed else None,
                claimed_at,
                None if is_open else item.closing,
                closed_by,
                outcome,
            )
        )
        sources = self.rows.follow_up_sources
        for trigger in item.triggers:
            sources.append(
                (
                    len(sources) + 1,
                    ident,
                    trigger.kind,
                    trigger.ref_id,
                    trigger.call_id,
                    trigger.reason,
                    trigger.at,
                )
            )
        notes = self.rows.follow_up_notes
        if claimed_at is not None and (is_open or ident % 3 == 0):
            for k in range(1 + ident % 3):
                notes.append(
                    (
                        len(notes) + 1,
                        ident,
                        claimed_at + timedelta(minutes=10 * k),
                        NAVIGATORS[(ident + k) % 4],
                        "Left a voicemail with the clinic number.",
                    )
                )


def _load(connection: Connection) -> None:
    """Simulate the year up to now and COPY it in."""
    started = timer()
    rows = Clinic(datetime.now(UTC)).rows_of_the_year()
    print(
        f"  simulated in {timer() - started:.0f} s: "
        + ", ".join(f"{len(getattr(rows, table)):,} {table}" for table in COLUMNS),
        flush=True,
    )
    raw = connection.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor:
        for table, columns in COLUMNS.items():
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in getattr(rows, table):
                    copy.write_row(row)


CLINIC = KeptSchema(
    "bench_clinic_year",
    1,
    _load,
    sequences=tuple(table for table in COLUMNS if table != "opt_outs"),
    tables=tuple(COLUMNS),
)
"""A big clinic's year: the overview is timed on it."""
