"""Inline SVG charts for the overview: no JavaScript, no CDN, every label escaped.

Each chart is an `<svg role="img">` with a title and description; the page puts a table with the
same numbers beside it for screen readers and for anyone who wants the exact figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH = 720
BAR_COLOURS = ("#1d4ed8", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#374151")
TEXT = "#1f2937"
GRID = "#d1d5db"

_ids = itertools.count(1)


def _svg(title: str, description: str, height: int, body: list[str]) -> Markup:
    ident = f"chart-{next(_ids)}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


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


def daily_bars(
    title: str, days: Sequence[date], counts: Mapping[date, int], colour: str = BAR_COLOURS[0]
) -> Markup:
    """One bar per day, dates under every seventh bar."""
    height, left, bottom, top = 220, 44, 36, 12
    plot_height = height - bottom - top
    top_value = _nice_max(max((counts.get(day, 0) for day in days), default=0))
    slot = (WIDTH - left - 8) / max(1, len(days))
    body = []
    for fraction in (0, 0.5, 1):
        y = top + plot_height * (1 - fraction)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{TEXT}">{top_value * fraction:g}</text>'
        )
    for index, day in enumerate(days):
        value = counts.get(day, 0)
        bar = plot_height * value / top_value
        x = left + index * slot + slot * 0.15
        body.append(
            f'<rect x="{x:.1f}" y="{top + plot_height - bar:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar:.1f}" fill="{colour}"><title>{day.isoformat()}: {value}</title></rect>'
        )
        if (len(days) - 1 - index) % 7 == 0:  # the last day, then every week back
            body.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" font-size="11" '
                f'text-anchor="middle" fill="{TEXT}">{day:%b %d}</text>'
            )
    total = sum(counts.get(day, 0) for day in days)
    if not total:
        body.append(
            f'<text x="{WIDTH / 2:.0f}" y="{top + plot_height / 2:.0f}" font-size="14" '
            f'text-anchor="middle" fill="{TEXT}">None in these days</text>'
        )
    description = (
        f"{total} in the {len(days)} days from {days[0]:%B %d} to {days[-1]:%B %d}"
        if days
        else "no days"
    )
    return _svg(title, description, height, body)


def horizontal_bars(title: str, items: Sequence[tuple[str, int]]) -> Markup:
    """One labelled bar per item, longest first as given."""
    row, label_width, top = 24, 380, 8
    height = top * 2 + row * max(1, len(items))
    top_value = max((value for _, value in items), default=0) or 1
    plot = WIDTH - label_width - 60
    body = []
    if not items:
        body.append(f'<text x="8" y="{top + 16}" font-size="13" fill="{TEXT}">No data yet</text>')
    for index, (label, value) in enumerate(items):
        y = top + index * row
        width = plot * value / top_value
        shown = label if len(label) <= 58 else label[:57] + "…"
        body.append(
            f'<text x="{label_width - 8}" y="{y + 16}" font-size="12" text-anchor="end" '
            f'fill="{TEXT}">{escape(shown)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{BAR_COLOURS[0]}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 16}" font-size="12" '
            f'fill="{TEXT}">{value}</text>'
        )
    description = "; ".join(f"{label}: {value}" for label, value in items) or "no data yet"
    return _svg(title, description, height, body)


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
    row, label_width, top, legend = 26, 260, 8, 26
    height = top * 2 + legend + row * max(1, len(rows))
    top_value = max((sum(counts.values()) for _, counts in rows), default=0) or 1
    plot = WIDTH - label_width - 60
    colours = {
        part: (colours or {}).get(part, BAR_COLOURS[i % len(BAR_COLOURS)])
        for i, part in enumerate(parts)
    }
    body = []
    x = 8
    for part in parts:
        body.append(
            f'<rect x="{x}" y="{top}" width="12" height="12" fill="{colours[part]}"/>'
            f'<text x="{x + 16}" y="{top + 11}" font-size="12" fill="{TEXT}">'
            f"{escape(names[part])}</text>"
        )
        x += 24 + 8 * len(names[part])
    if not rows:
        body.append(
            f'<text x="8" y="{top + legend + 16}" font-size="13" fill="{TEXT}">No data yet</text>'
        )
    for index, (label, counts) in enumerate(rows):
        y = top + legend + index * row
        body.append(
            f'<text x="{label_width - 8}" y="{y + 17}" font-size="12" text-anchor="end" '
            f'fill="{TEXT}">{escape(label)}</text>'
        )
        x_start = float(label_width)
        for part in parts:
            value = counts.get(part, 0)
            if not value:
                continue
            width = plot * value / top_value
            body.append(
                f'<rect x="{x_start:.1f}" y="{y + 4}" width="{width:.1f}" height="{row - 8}" '
                f'fill="{colours[part]}">'
                f"<title>{escape(label)}, {escape(names[part])}: {value}</title></rect>"
            )
            x_start += width
        body.append(
            f'<text x="{x_start + 6:.1f}" y="{y + 17}" font-size="12" fill="{TEXT}">'
            f"{sum(counts.values())}</text>"
        )
    description = "; ".join(
        f"{label}: " + ", ".join(f"{names[part]} {counts.get(part, 0)}" for part in parts)
        for label, counts in rows
    )
    return _svg(title, description or "no data yet", height, body)
