"""The overview: the headline numbers and charts of a range of the clinic's days."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from service.models import DialOutcome
from service.sessions import ReadSessionDep
from service.staff import charts
from service.staff.auth import (
    clock_of,
)
from service.staff.headlines import (
    MEASURES,
    Range,
    language_name,
    overview_report,
    wait_text,
)
from service.staff.line_filter import chosen_line
from service.staff.localtime import zone_of
from service.staff.names import flow_names
from service.staff.outcomes import DIAL_COLOURS, DIAL_LABELS
from service.staff.pages import flow_of, params_of
from service.staff.queries import (
    FilterError,
)
from service.staff.web import (
    CurrentStaff,
    PageError,
    pages_router,
    render,
)

router = pages_router()


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request, staff: CurrentStaff, session: ReadSessionDep) -> Response:
    choice = chosen_line(request)
    names = flow_names(flow_of(request, choice))
    zone = zone_of(request)
    today = clock_of(request)().astimezone(zone).date()
    try:
        chosen = Range.parse(params_of(request), today, zone)
    except FilterError as error:
        raise PageError(400, "Check the dates", str(error)) from None
    report = overview_report(session, chosen, today, choice.numbers, clock_of(request)())
    periods = charts.periods_of(chosen.days)
    per = "day" if len(periods) == len(chosen.days) else "month"
    over_time = [
        (
            period,
            sum(report.calls_per_day[day] for day in _days_of(period)),
            sum(report.texts_per_day[day] for day in _days_of(period)),
        )
        for period in periods
    ]
    options = [
        (f"{names.menu(node)}: {names.option(node, key)}", count)
        for (node, key), count in report.options.most_common(15)
    ]
    drop_off = [(names.menu(node), count) for node, count in report.drop_off.most_common(15)]
    dial_outcomes = [*DialOutcome, "no result"]
    transfer_rows = [
        (names.contact(contact), counts)
        for contact, counts in sorted(report.transfers.items(), key=lambda item: -item[1].total())
    ]
    return render(
        request,
        "overview.html",
        report=report,
        line_choice=choice,
        measures=MEASURES,
        language_name=language_name,
        wait_text=wait_text,
        per=per,
        over_time=over_time,
        calls_chart=charts.bars_over_time(
            f"Calls per {per}", periods, [calls for _, calls, _ in over_time]
        ),
        texts_chart=charts.bars_over_time(
            f"Texts per {per}", periods, [texts for *_, texts in over_time], charts.BAR_COLOURS[2]
        ),
        options=options,
        options_chart=charts.horizontal_bars("Options chosen", options),
        drop_off=drop_off,
        drop_off_chart=charts.horizontal_bars(
            "Where callers hung up: the last menu of calls with no transfer", drop_off
        ),
        transfer_rows=transfer_rows,
        dial_outcomes=dial_outcomes,
        transfers_chart=charts.stacked_bars(
            "Transfers by contact and how they ended",
            transfer_rows,
            dial_outcomes,
            colours=DIAL_COLOURS,
            labels=DIAL_LABELS,
        ),
        dial_labels=DIAL_LABELS,
    )


def _days_of(period: charts.Period) -> Iterator[date]:
    day = period.first
    while day <= period.last:
        yield day
        day += timedelta(days=1)
