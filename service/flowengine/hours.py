"""When a contact takes calls, and when it opens next, said in words.

A contact's weekly office hours live in its flow (`hours:` spans, in its time zone; a span whose
`to` is earlier than its `from` runs past midnight into the next day). Its closures do not: a
holiday, an early closing, a snow day are kept by staff (`phoneline hours close`, /staff/hours)
and given to the engine with the contact (`Contact.closures`), each in the clinic's time zone:
one date, or every year on a date ("12-25") or on the nth weekday of a month ("the fourth
Thursday of November"); all day, or from a time to the end of the day. A contact with no hours
and no closure is always open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.flowengine.model import Closure, Hours

__all__ = ["Closure", "closure_at", "in_hours", "next_opening", "open_at", "when_words"]

LOOK_AHEAD_DAYS = 14
"""How far `next_opening` looks (a contact closed for longer has no next opening to say)."""

WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"),
}  # fmt: skip


def closure_at(closures: tuple[Closure, ...], moment: datetime) -> Closure | None:
    """The closure that closes the contact at `moment`, if one does."""
    return next((closure for closure in closures if closure.closes(moment)), None)


def in_hours(hours: Hours, moment: datetime) -> bool:
    local = moment.astimezone(ZoneInfo(hours.timezone))
    now, weekday, yesterday = local.time(), local.weekday(), (local.weekday() - 1) % 7
    for span in hours.spans:
        if span.opens < span.closes:
            if weekday in span.days and span.opens <= now < span.closes:
                return True
        elif (weekday in span.days and now >= span.opens) or (
            yesterday in span.days and now < span.closes
        ):
            return True  # a span past midnight: its evening, or the next day's small hours
    return False


def open_at(hours: Hours | None, closures: tuple[Closure, ...], moment: datetime) -> bool:
    if closure_at(closures, moment) is not None:
        return False
    return hours is None or in_hours(hours, moment)


def next_opening(
    hours: Hours | None, closures: tuple[Closure, ...], now: datetime
) -> datetime | None:
    """When a contact closed at `now` opens next (in its time zone), within LOOK_AHEAD_DAYS."""
    zone = ZoneInfo(hours.timezone if hours is not None else closures[0].timezone)
    today = now.astimezone(zone).date()
    candidates = []
    for offset in range(LOOK_AHEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        if hours is None:
            candidates.append(datetime.combine(day, time(0), zone))
            continue
        for span in hours.spans:
            if day.weekday() in span.days:
                candidates.append(datetime.combine(day, span.opens, zone))
    return next(
        (moment for moment in sorted(candidates)
         if moment > now and open_at(hours, closures, moment)),
        None,
    )  # fmt: skip


def when_words(moment: datetime, now: datetime, lang: str, *, after: bool = False) -> str:
    """`moment` as a caller hears it, from `now`: "today at 1 p.m.", "tomorrow at 8 a.m.",
    "Monday at 8:30 a.m.", "Monday, December 28, at 8 a.m." (more than six days on); in
    Spanish "hoy a la 1 de la tarde", "el lunes a las 8:30 de la mañana". `after`: from then
    on ("Monday after 8 a.m.", "el lunes a partir de las 8 de la mañana")."""
    local_now = now.astimezone(moment.tzinfo)
    days = (moment.date() - local_now.date()).days
    spanish = lang == "es"
    weekday = WEEKDAYS["es" if spanish else "en"][moment.weekday()]
    if days == 0:
        day = "hoy" if spanish else "today"
    elif days == 1:
        day = "mañana" if spanish else "tomorrow"
    elif days <= 6:
        day = f"el {weekday}" if spanish else weekday
    elif spanish:
        day = f"el {weekday} {moment.day} de {MONTHS['es'][moment.month - 1]}"
    else:
        day = f"{weekday}, {MONTHS['en'][moment.month - 1]} {moment.day},"
    if spanish:
        clock = _clock_es(moment.time())
        return f"{day} {clock.replace('a la', 'a partir de la', 1) if after else clock}"
    clock = _clock_en(moment.time())
    if after:
        clock = "after 12 noon" if clock == "at noon" else clock.replace("at", "after", 1)
    return f"{day} {clock}"


def _clock_en(at: time) -> str:
    if at == time(0):
        return "at midnight"
    if at == time(12):
        return "at noon"
    hour = at.hour % 12 or 12
    minutes = f":{at.minute:02d}" if at.minute else ""
    return f"at {hour}{minutes} {'a.m.' if at.hour < 12 else 'p.m.'}"


def _clock_es(at: time) -> str:
    if at == time(0):
        return "a la medianoche"
    hour = at.hour % 12 or 12
    minutes = f":{at.minute:02d}" if at.minute else ""
    if 5 <= at.hour < 12:
        part = "de la mañana"
    elif at.hour == 12:
        part = "del mediodía"
    elif 13 <= at.hour < 20:
        part = "de la tarde"
    else:
        part = "de la noche"
    return f"{'a la' if hour == 1 else 'a las'} {hour}{minutes} {part}"
