"""TIMEZONE: the call list, its day filters, its CSV, the call page and the overview's days
agree with the clinic's zone, tested far from UTC (Kiritimati, UTC+14) and at a half-hour
offset (Kolkata, UTC+5:30), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from service.config import Settings
from tests.recorder import Recorder
from tests.staff.conftest import VIEWER, Clock, record_call, signed_in
from tests.support import AppClient

LATE = "CA" + "1" * 32
EARLY = "CA" + "2" * 32


def test_the_default_zone_is_new_york() -> None:
    assert Settings(_env_file=None).timezone == "America/New_York"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("zone", "late_utc", "late_local", "early_utc", "early_local", "offset", "label"),
    [
        pytest.param(
            "Pacific/Kiritimati",
            datetime(2026, 11, 24, 11, 0, tzinfo=UTC), "2026-11-25 01:00:00",
            datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "2026-11-24 23:00:00",
            "+14:00", "+14", id="kiritimati",
        ),
        pytest.param(
            "Asia/Kolkata",
            datetime(2026, 11, 24, 18, 40, tzinfo=UTC), "2026-11-25 00:10:00",
            datetime(2026, 11, 24, 18, 20, tzinfo=UTC), "2026-11-24 23:50:00",
            "+05:30", "IST", id="kolkata",
        ),
    ],
)  # fmt: skip
def test_list_filter_csv_and_overview_agree_with_the_zone(
    staff_app: FastAPI,
    client: AppClient,
    recorder: Recorder,
    clock: Clock,
    zone: str,
    late_utc: datetime,
    late_local: str,
    early_utc: datetime,
    early_local: str,
    offset: str,
    label: str,
) -> None:
    staff_app.state.settings = staff_app.state.settings.model_copy(update={"timezone": zone})
    clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the 25th in both zones
    # Two calls 20 minutes to 2 hours apart, on one UTC day and on two days in the zone.
    record_call(recorder, LATE, "+18045551234", late_utc)
    record_call(recorder, EARLY, "+18045555678", early_utc)
    assert late_utc.date() == early_utc.date()
    signed_in(client, VIEWER)

    page = client.get("/staff/calls")
    assert f"times are {label}." in page.text
    assert f">{late_local}</a>" in page.text and f">{early_local}</a>" in page.text
    assert f"From (day, {label})" in page.text

    next_day = late_local[:10]
    page = client.get(f"/staff/calls?from={next_day}&to={next_day}")
    started = re.findall(r'<a href="/staff/calls/\d+">([^<]+)</a>', page.text)
    assert started == [late_local]
    page = client.get(f"/staff/calls?to={early_local[:10]}")
    assert re.findall(r'<a href="/staff/calls/\d+">([^<]+)</a>', page.text) == [early_local]

    exported = list(csv.reader(io.StringIO(client.get(f"/staff/calls.csv?from={next_day}").text)))
    assert [row[:2] for row in exported[1:]] == [[LATE, late_local.replace(" ", "T") + offset]]
    exported = list(csv.reader(io.StringIO(client.get("/staff/calls.csv").text)))
    assert [row[1] for row in exported[1:]] == [
        late_local.replace(" ", "T") + offset,
        early_local.replace(" ", "T") + offset,
    ]

    page = client.get(f"/staff/calls/{LATE}")
    assert f"{late_local} {label}" in page.text

    overview = client.get("/staff/").text
    for day in (early_local[:10], next_day):
        assert re.search(rf'<th scope="row">{day}</th><td class="num">1</td>', overview), (
            f"{day} should have one call"
        )
    assert f"by day in the clinic's time zone ({label})" in overview
