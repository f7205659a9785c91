"""The overview's charts, drawn inline (no JavaScript, no CDN, every label escaped), legible at
any width: their text is never scaled.

`bars_over_time` (a bar a day, or a month for long ranges) is an `<svg role="img">` with a
title and a description, laid out in percentages of its width rather than scaled from a
viewBox, so its 12 px labels stay 12 px on a phone.
`horizontal_bars` and `stacked_bars` are HTML figures whose labels are text that wraps, one row
per item, with bars drawn as decorative SVG rectangles (the CSP allows no inline style to size
them). The page puts a table with the same numbers beside each chart.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from math import ceil

from markupsafe import Markup

BAR_COLOURS = ("#1d4ed8", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#374151")
TEXT = "#1f2937"
GRID = "#d1d5db"
FONT_SIZE = 12
"""CSS px: the smallest chart text (the browser test holds it to that at phone width)."""

_ids = itertools.count(1)


def _svg(title: str, description: str, height: int, body: list[str]) -> Markup:
    ident = f"chart-{next(_ids)}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="100%" height="{height}" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _bar(rects: list[str]) -> str:
    """A row's bar: rectangles (x and width in % of the row) in a decorative SVG."""
    return (
        '<svg class="bar" width="100%" height="16" aria-hidden="true" focusable="false">'
        + "".join(rects)
        + "</svg>"
    )


def _figure(title: str, rows: list[str], before: str = "") -> Markup:
    """A chart of labelled rows: its title as the caption, then `before` (a legend)."""
    return Markup(
        f'<figure class="chart bars"><figcaption>{escape(title)}</figcaption>{before}'
        f"<ul>{''.join(rows)}</ul></figure>"
    )


def _row(label: str, value: int, rects: list[str]) -> str:
    return (
        f'<li><span class="label">{escape(label)}</span>'
        f'<span class="value num">{value}</span>{_bar(rects)}</li>'
    )


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5, 10, 20, 50 ...)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


@dataclass(frozen=True)
class Period:
    """A bar of a chart over time: a day, or a month (its days in the range)."""

    first: date
    last: date
    label: str
    """Under the bar: "Nov 24", "Nov 2026"."""
    name: str
    """In the bar's title and the table: "2026-11-24", "November 2026" (and from or to which
    day, when the range covers part of the month)."""


DAILY_UP_TO = 62
"""Ranges of up to this many days have a bar a day; longer ones a bar a month."""


def periods_of(days: Sequence[date]) -> list[Period]:
    """The bars of a chart over `days` (consecutive): one a day for up to DAILY_UP_TO days,
    else one a month, the first and last months cut to the range."""
    if len(days) <= DAILY_UP_TO:
        return [Period(day, day, f"{day:%b %d}", day.isoformat()) for day in days]
    months: dict[tuple[int, int], list[date]] = {}
    for day in days:
        months.setdefault((day.year, day.month), []).append(day)
    periods = []
    for in_month in months.values():
        first, last = in_month[0], in_month[-1]
        name = f"{first:%B %Y}"
        whole = first.day == 1 and (last + timedelta(days=1)).month != last.month
        if not whole:
            name += f" ({first.day} to {last.day})"
        periods.append(Period(first, last, f"{first:%b %Y}", name))
    return periods


def _axis_value(value: float) -> str:
    """An axis label short enough for the margin: 45000 as 45k."""
    return f"{value / 1000:g}k" if value >= 10_000 else f"{value:g}"


def bars_over_time(
    title: str,
    periods: Sequence[Period],
    values: Sequence[int],
    colour: str = BAR_COLOURS[0],
) -> Markup:
    """One bar per period, a label under at most five of them (the last, then back). Across,
    in % of the width: the axis labels end at 9, the bars fill 10 to 94 (the last label,
    centred under its bar, needs room on the right)."""
    height, bottom, top = 220, 36, 12
    left, right = 10.0, 94.0
    plot_height = height - bottom - top
    top_value = _nice_max(max(values, default=0))
    slot = (right - left) / max(1, len(periods))
    daily = all(period.first == period.last for period in periods)
    every = max(7 * ceil(len(periods) / 35) if daily else 1, ceil(len(periods) / 5))
    body = []
    for fraction in (0, 0.5, 1):
        y = top + plot_height * (1 - fraction)
        body.append(
            f'<line x1="{left}%" x2="{right}%" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 1}%" y="{y + 4:.1f}" text-anchor="end" font-size="{FONT_SIZE}" '
            f'fill="{TEXT}">{_axis_value(top_value * fraction)}</text>'
        )
    for index, (period, value) in enumerate(zip(periods, values, strict=True)):
        bar = plot_height * value / top_value
        x = left + index * slot + slot * 0.15
        body.append(
            f'<rect x="{x:.2f}%" y="{top + plot_height - bar:.1f}" width="{slot * 0.7:.2f}%" '
            f'height="{bar:.1f}" fill="{colour}"><title>{escape(period.name)}: {value}</title>'
            "</rect>"
        )
        if (len(periods) - 1 - index) % every == 0:
            body.append(
                f'<text x="{x + slot * 0.35:.2f}%" y="{height - bottom + 18}" '
                f'font-size="{FONT_SIZE}" text-anchor="middle" fill="{TEXT}">'
                f"{escape(period.label)}</text>"
            )
    total = sum(values)
    if not total:
        body.append(
            f'<text x="{(left + right) / 2}%" y="{top + plot_height / 2:.0f}" font-size="14" '
            f'text-anchor="middle" fill="{TEXT}">None in these days</text>'
        )
    description = (
        f"{total} in the {(periods[-1].last - periods[0].first).days + 1} days from "
        f"{periods[0].first:%B %d, %Y} to {periods[-1].last:%B %d, %Y}"
        if periods
        else "no days"
    )
    return _svg(title, description, height, body)


def horizontal_bars(title: str, items: Sequence[tuple[str, int]]) -> Markup:
    """One labelled bar per item, longest first as given."""
    top_value = max((value for _, value in items), default=0) or 1
    rows = [
        _row(
            label,
            value,
            [
                f'<rect width="{100 * value / top_value:.1f}%" height="16" '
                f'fill="{BAR_COLOURS[0]}"><title>{escape(label)}: {value}</title></rect>'
            ],
        )
        for label, value in items
    ]
    return _figure(title, rows or ['<li class="empty">No data yet</li>'])


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Mapping[str, int]]],
    parts: Sequence[str],
    colours: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Markup:
    """One bar per row split into `parts` (each its own colour, `colours[part]` when given,
    with a legend naming each part, `labels[part]` when given)."""
    names = {part: (labels or {}).get(part, part) for part in parts}
    top_value = max((sum(counts.values()) for _, counts in rows), default=0) or 1
    colours = {
        part: (colours or {}).get(part, BAR_COLOURS[i % len(BAR_COLOURS)])
        for i, part in enumerate(parts)
    }
    legend = "".join(
        f'<li><svg class="swatch" width="12" height="12" aria-hidden="true" focusable="false">'
        f'<rect width="12" height="12" fill="{colours[part]}"/></svg>{escape(names[part])}</li>'
        for part in parts
    )
    drawn = []
    for label, counts in rows:
        rects, x = [], 0.0
        for part in parts:
            value = counts.get(part, 0)
            if not value:
                continue
            width = 100 * value / top_value
            rects.append(
                f'<rect x="{x:.1f}%" width="{width:.1f}%" height="16" fill="{colours[part]}">'
                f"<title>{escape(label)}, {escape(names[part])}: {value}</title></rect>"
            )
            x += width
        drawn.append(_row(label, sum(counts.values()), rects))
    return _figure(
        title,
        drawn or ['<li class="empty">No data yet</li>'],
        before=f'<ul class="legend" aria-hidden="true">{legend}</ul>',
    )
