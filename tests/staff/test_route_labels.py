"""Every staff route is logged and timed under its full path template, the routers the staff
router includes under /staff (follow-ups, outbound, search, admin) too."""

from __future__ import annotations

import gc
import json
import logging
import re
import weakref
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from prometheus_client.parser import text_string_to_metric_families

from service.db import Database
from service.logs import JsonFormatter, RequestLog
from service.main import create_app
from tests.staff.conftest import staff_settings
from tests.support import AppClient, app_client


def staff_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, full path template) of every staff route, as the app serves them."""
    return sorted(
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        if context.path.startswith("/staff")
        for method in context.methods or ()
        if method != "HEAD"
    )


def concrete(template: str) -> str:
    """A path that the template matches: each parameter filled in."""
    return re.sub(r"\{[^}]+\}", "7", template)


def test_every_staff_route_is_labelled_with_its_full_template(
    staff_app: FastAPI, client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    routes = staff_routes(staff_app)
    templates = {template for _, template in routes}
    # The routers included under /staff are there, under their full paths.
    assert {
        "/staff/follow-ups",
        "/staff/follow-ups/{raw_id}/close",
        "/staff/outbound",
        "/staff/search",
        "/staff/admin",
        "/staff/admin/staff/{username:path}/disable",
        "/staff/calls/{ident}",
    } <= templates
    caplog.set_level(logging.INFO, logger="phoneline.request")
    for method, template in routes:
        client.request(method, concrete(template))

    formatter = JsonFormatter()
    logged = [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "phoneline.request"
    ]
    assert [(line["method"], line["route"]) for line in logged] == routes
    assert [line["path"] for line in logged] == [concrete(template) for _, template in routes]

    timed = {
        (sample.labels["method"], sample.labels["route"])
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "phoneline_http_request_duration_seconds_count"
    }
    assert set(routes) <= timed
    cut = {template.removeprefix("/staff") for template in templates}
    assert not [label for label in timed if label[1] in cut]  # no label lost its /staff


def test_a_router_included_at_two_places_is_labelled_by_where_it_was_reached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    items = APIRouter()

    @items.get("/items/{item}")
    def item(item: str) -> str:
        return item

    app = FastAPI()
    app.include_router(items, prefix="/a")
    app.include_router(items, prefix="/b")
    app.add_middleware(RequestLog)
    caplog.set_level(logging.INFO, logger="phoneline.request")
    with app_client(app) as client:
        assert client.get("/b/items/1").status_code == 200
        assert client.get("/a/items/2").status_code == 200
    routes = [
        record.__dict__["route"] for record in caplog.records if record.name == "phoneline.request"
    ]
    assert routes == ["/b/items/{item}", "/a/items/{item}"]


def test_labelling_a_route_keeps_no_app_alive(database: Database, tmp_path: Path) -> None:
    """Each test builds an app (a process that keeps one would not notice): finding a route's
    label once held every app ever served alive, and with it its routes' analyses, until the
    test processes spent a fifth of their time in the garbage collector."""
    url = database.url.render_as_string(hide_password=False)
    app = create_app(staff_settings(tmp_path, url))
    with app_client(app) as client:
        assert client.get("/staff/calls/7").status_code in (302, 303)  # signed out
        assert client.get("/healthz").status_code == 200
    gone = weakref.ref(app)
    del app, client
    gc.collect()
    assert gone() is None, [type(holder).__name__ for holder in gc.get_referrers(gone())]
