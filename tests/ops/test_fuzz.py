"""Hostile input never gets a 500: property-based requests to every route of the app.

Each example is a request to one of the app's routes (and the routes the spec promises, so a
route that is not there yet is still knocked on): random and Twilio-shaped form fields with
unicode, huge and empty values, missing fields, wrong content types, raw bytes and bogus query
strings, sent unsigned and signed with the real Twilio algorithm (so it passes the signature
check and reaches the handler). `make test` runs a bounded number of examples; `make fuzz` runs
the deep version (marked slow).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

from service.db import Database
from service.models import StaffUser
from tests.staff.conftest import ADMIN, VIEWER, password_hash, signed_in
from tests.support import PUBLIC_BASE, AppClient, app_client, twilio_signature

LIMIT = 64 * 1024

# The spec's HTTP surface (section 2 and 6), fuzzed even before a route is registered.
SPEC_ROUTES = [
    ("POST", "/twilio/voice"),
    ("POST", "/twilio/voice/status"),
    ("POST", "/twilio/sms"),
    ("POST", "/twilio/sms/status"),
    ("POST", "/twilio/fallback"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/staff/login"),
    ("POST", "/staff/login"),
    ("GET", "/staff/"),
    ("GET", "/staff/calls"),
    ("GET", "/staff/calls.csv"),
    ("GET", "/staff/messages"),
    ("GET", "/staff/simulator"),
]

TWILIO_KEYS = [
    "AccountSid",
    "CallSid",
    "From",
    "To",
    "Called",
    "Caller",
    "Digits",
    "SpeechResult",
    "Confidence",
    "CallStatus",
    "DialCallStatus",
    "DialCallDuration",
    "DialCallSid",
    "CallDuration",
    "Direction",
    "ParentCallSid",
    "MessageSid",
    "SmsSid",
    "SmsMessageSid",
    "Body",
    "NumMedia",
    "NumSegments",
    "MessageStatus",
    "SmsStatus",
    "ErrorCode",
    "Timestamp",
    "SequenceNumber",
    "ApiVersion",
    "username",
    "password",
    "csrf_token",
    "role",
    "lang",
    "at",
]
QUERY_KEYS = [
    "at",
    "lang",
    "next",
    "page",
    "cursor",
    "before",
    "after",
    "outcome",
    "language",
    "contact",
    "from",
    "to",
    "sid",
    "reveal",
    "q",
]
INTERESTING = [
    "",
    " ",
    "0",
    "1",
    "2",
    "8",
    "9",
    "*",
    "#",
    "##",
    "1234567890*#",
    "-1",
    "99999999999999999999",
    "1e309",
    "NaN",
    "null",
    "true",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
    "in-progress",
    "ringing",
    "answered",
    "delivered",
    "undelivered",
    "queued",
    "STOP",
    "stop ",
    "START",
    "HELP",
    "HOLA",
    "ESPAÑOL",
    "MENU",
    "BACK",
    "CALL",
    "AYUDA",
    "+18045551234",
    "+1804555",
    "+999999999999999999",
    "8045551234",
    "CA" + "f" * 32,
    "SM" + "0" * 32,
    "main",
    "main.1",
    "main:retry",
    "../../../etc/passwd",
    "%00",
    "\x00",
    "\r\n",
    "\ud7ff",
    "ñ" * 80,
    "😀" * 40,
    "'; DROP TABLE calls; --",
    "<Say>hi</Say>",
    "]]>",
    "{{7*7}}",
    "en",
    "es",
    "fr",
    "EN",
    "a" * 300,
]

# What staff links carry, bent: digits of other scripts (str.isdigit takes them, int() reads
# some), integers past 64 bits, days and cursors far from any record, ages past any calendar.
ODD_IDS_AND_DATES = [
    "\u00b9",  # SUPERSCRIPT ONE
    "\u00b2",
    "\u0663",  # ARABIC-INDIC DIGIT THREE
    "\uff13",  # FULLWIDTH DIGIT THREE
    "\U0001d7d9",  # MATHEMATICAL DOUBLE-STRUCK DIGIT ONE
    "9" * 23,
    str(2**63),
    str(2**63 - 1),
    str(-(2**63)),
    "0",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0664",
    "20261124",
    "2026-W48-2",
    "9999-12-31T23:59:59-23:59~1",
    "0001-01-01T00:00:00+23:59~1",
    "2026-11-24T15:00:00+00:00~1",
    "2026-11-24T15:00:00+00:00~" + "9" * 20,
    "2026-11-24T15:00:00+00:00~\u00b9",
    "99999999d",
    "999999999999h",
    "36500d",
    "1d",
    "\uff1d1+1",
    "CA\x00",  # PostgreSQL refuses NUL in text
    "v\x00ic",
]
odd_numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=25),
)
far_dates = st.dates().map(date.isoformat)


def _cursor(at: datetime, offset_minutes: int, ident: str) -> str:
    """A page link as Cursor.encode writes one, at any time and offset, with any id."""
    zone = timezone(timedelta(minutes=offset_minutes))
    return f"{at.replace(tzinfo=zone).isoformat()}~{ident}"


cursors = st.builds(
    _cursor, st.datetimes(), st.integers(min_value=-1439, max_value=1439), odd_numbers
)
odd_values = st.one_of(st.sampled_from(ODD_IDS_AND_DATES), odd_numbers, far_dates, cursors)

values = st.one_of(
    st.sampled_from(INTERESTING),
    st.text(max_size=40),
    st.text(min_size=500, max_size=3000),
    st.integers().map(str),
    odd_values,
)
keys = st.one_of(st.sampled_from(TWILIO_KEYS), st.text(max_size=16))
forms = st.dictionaries(keys, values, max_size=10)
queries = st.dictionaries(
    st.one_of(st.sampled_from(QUERY_KEYS), st.text(max_size=8)), values, max_size=3
)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "multipart/form-data; boundary=fuzzboundary",
    "multipart/form-data",
    "application/json",
    "text/plain",
    "text/xml",
    "",
    "application/x-www-form-urlencoded; boundary=;;;",
    "garbage/;;;==",
]


def registered_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) for every route the app has, included routers' too."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute | Route):
                for method in route.methods or {"GET"}:
                    if method != "HEAD":
                        found.add((method, prefix + route.path))
            elif isinstance(route, Mount):
                found.add(("GET", prefix + route.path.rstrip("/") + "/{path}"))

    walk(app.routes, "")
    return found


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """The app's routes and the spec's."""
    return sorted(registered_routes(app) | set(SPEC_ROUTES))


def fill_path(template: str, filler: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: quote(filler, safe="") or "x", template)


def multipart(form: dict[str, str]) -> bytes:
    parts = [
        f'--fuzzboundary\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in form.items()
    ]
    return ("".join(parts) + "--fuzzboundary--\r\n").encode("utf-8", "surrogatepass")


def hostile_request(
    client: AppClient, data: st.DataObject, routes: list[tuple[str, str]]
) -> tuple[str, str, int]:
    method, template = data.draw(st.sampled_from(routes), label="route")
    method = data.draw(st.sampled_from([method, method, method, "GET", "POST", "PUT"]))
    path = fill_path(template, data.draw(values, label="path filler"))
    query = data.draw(queries, label="query")
    raw_query = data.draw(st.sampled_from(["", "", "&&==&", "%zz", "at=%ff%fe", "a=1&a=2"]))
    query_string = "&".join(part for part in (urlencode(query), raw_query) if part)
    url = PUBLIC_BASE + path + (f"?{query_string}" if query_string else "")
    form = data.draw(forms, label="form")
    encoding = data.draw(st.sampled_from(["form", "form", "multipart", "json", "raw", "none"]))
    headers: dict[str, str | bytes] = {}
    content: bytes
    if encoding == "form":
        content = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif encoding == "multipart":
        content = multipart(form)
        headers["Content-Type"] = "multipart/form-data; boundary=fuzzboundary"
    elif encoding == "json":
        content = json.dumps(form).encode()
        headers["Content-Type"] = "application/json"
    elif encoding == "raw":
        content = data.draw(st.binary(max_size=2000), label="raw body")
    else:
        content = b""
    if encoding in ("raw", "none") or data.draw(st.booleans(), label="wrong content type"):
        headers["Content-Type"] = data.draw(st.sampled_from(CONTENT_TYPES), label="content type")
    if data.draw(st.booleans(), label="signed"):
        headers["X-Twilio-Signature"] = twilio_signature(url, form)
    elif data.draw(st.booleans(), label="bogus signature"):
        headers["X-Twilio-Signature"] = data.draw(
            st.sampled_from(["", "x", "=" * 28, "é".encode()])
        )
    headers = {key: value for key, value in headers.items() if value or key != "Content-Type"}
    response = client.request(method, url, content=content, headers=headers)
    return method, path, response.status_code


# Every fuzzed request's status, by class ("2xx", ...): the deep runs print it at the end.
SENT: Counter[str] = Counter()


def check(client: AppClient, data: st.DataObject, routes: list[tuple[str, str]]) -> None:
    method, path, status = hostile_request(client, data, routes)
    SENT[f"{status // 100}xx"] += 1
    if path == "/readyz":
        assert status in (200, 503, 405), (method, path, status)
    else:
        assert status < 500, (method, path, status)


FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}


@pytest.fixture
def fuzz_client(app: FastAPI) -> Iterator[tuple[AppClient, list[tuple[str, str]]]]:
    with app_client(app) as client:
        yield client, app_routes(app)


@pytest.fixture
def tally(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> Iterator[Counter[str]]:
    """Counts this test's requests by status class and prints them when it ends."""
    before = Counter(SENT)
    yield SENT
    sent = SENT - before
    line = ", ".join(f"{key}: {sent[key]}" for key in ("1xx", "2xx", "3xx", "4xx", "5xx"))
    with capsys.disabled():
        print(f"\n{request.node.name}: {sent.total()} requests ({line})")


STAFF_FORM_KEYS = ["older_than", "username", "password", "next", "mode", "lang", "digits", "text"]
STAFF_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def staff_fuzz_client(
    app: FastAPI, database: Database
) -> Iterator[tuple[AppClient, str, list[tuple[str, str]]]]:
    """Signed in as an admin, with this browser's CSRF token: the staff routes' own handlers
    get the hostile input, not the sign-in redirect. (Not /staff/logout, which would end it.)"""
    with database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
        session.add(StaffUser(username=VIEWER, password_hash=password_hash(), role="viewer"))
    with app_client(app) as client:
        signed_in(client, ADMIN)
        match = STAFF_CSRF.search(client.get("/staff/admin").text)
        assert match is not None
        routes = [r for r in app_routes(app) if r[1].startswith("/staff/") and "logout" not in r[1]]
        yield client, match.group(1), routes
        assert client.get("/staff/admin").status_code == 200, "the requests were signed in"


def staff_request(
    client: AppClient, token: str, data: st.DataObject, routes: list[tuple[str, str]]
) -> tuple[str, str, int]:
    method, template = data.draw(st.sampled_from(routes), label="staff route")
    path = fill_path(template, data.draw(st.one_of(odd_values, values), label="path filler"))
    query = data.draw(
        st.dictionaries(st.sampled_from(QUERY_KEYS), st.one_of(odd_values, values), max_size=4),
        label="query",
    )
    url = path + (f"?{urlencode(query)}" if query else "")
    if method == "GET":
        response = client.get(url)
    else:
        form = data.draw(
            st.dictionaries(st.sampled_from(STAFF_FORM_KEYS), odd_values, max_size=4), label="form"
        )
        response = client.post(url, data={"csrf_token": token, **form})
    SENT[f"{response.status_code // 100}xx"] += 1
    return method, url, response.status_code


@settings(max_examples=60, **FUZZ_SETTINGS)
@given(data=st.data())
def test_signed_in_staff_routes_never_get_a_500(
    staff_fuzz_client: tuple[AppClient, str, list[tuple[str, str]]], data: st.DataObject
) -> None:
    client, token, routes = staff_fuzz_client
    method, url, status = staff_request(client, token, data, routes)
    assert status < 500, (method, url, status)


@pytest.mark.slow
@settings(max_examples=5_000, **FUZZ_SETTINGS)
@given(data=st.data())
def test_signed_in_staff_routes_never_get_a_500_deep(
    staff_fuzz_client: tuple[AppClient, str, list[tuple[str, str]]],
    tally: Counter[str],
    data: st.DataObject,
) -> None:
    client, token, routes = staff_fuzz_client
    method, url, status = staff_request(client, token, data, routes)
    assert status < 500, (method, url, status)


@pytest.mark.parametrize("odd", ODD_IDS_AND_DATES)
def test_every_staff_route_takes_each_odd_value_without_a_500(
    staff_fuzz_client: tuple[AppClient, str, list[tuple[str, str]]], odd: str
) -> None:
    """Each listed value in every path parameter, every query key and every form field."""
    client, token, routes = staff_fuzz_client
    for method, template in routes:
        url = fill_path(template, odd) + "?" + urlencode(dict.fromkeys(QUERY_KEYS, odd))
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(
                url, data={"csrf_token": token, **dict.fromkeys(STAFF_FORM_KEYS, odd)}
            )
        assert response.status_code < 500, (method, url, response.status_code)


@settings(max_examples=60, **FUZZ_SETTINGS)
@given(data=st.data())
def test_hostile_requests_never_get_a_500(
    fuzz_client: tuple[AppClient, list[tuple[str, str]]], data: st.DataObject
) -> None:
    client, routes = fuzz_client
    check(client, data, routes)


@pytest.mark.slow
@settings(max_examples=10_000, **FUZZ_SETTINGS)
@given(data=st.data())
def test_hostile_requests_never_get_a_500_deep(
    fuzz_client: tuple[AppClient, list[tuple[str, str]]],
    tally: Counter[str],
    data: st.DataObject,
) -> None:
    client, routes = fuzz_client
    check(client, data, routes)


@settings(max_examples=25, **FUZZ_SETTINGS)
@given(data=st.data())
def test_signed_twilio_forms_reach_the_handlers_without_a_500(
    fuzz_client: tuple[AppClient, list[tuple[str, str]]], data: st.DataObject
) -> None:
    """Well-formed, correctly signed Twilio posts with hostile values in Twilio's own fields."""
    client, routes = fuzz_client
    twilio_routes = sorted({path for method, path in routes if path.startswith("/twilio/")})
    path = data.draw(st.sampled_from(twilio_routes))
    form = data.draw(st.dictionaries(st.sampled_from(TWILIO_KEYS), values, min_size=1))
    query = data.draw(st.dictionaries(st.sampled_from(["at", "lang"]), values, max_size=2))
    url = path + (f"?{urlencode(query)}" if query else "")
    response = client.twilio(url, form)
    assert response.status_code < 500, (path, response.status_code)
    assert response.status_code != 403, "signed requests pass the signature check"


def test_the_fuzzer_finds_the_apps_routes(app: FastAPI) -> None:
    routes = registered_routes(app)
    assert {("GET", "/metrics"), ("GET", "/readyz"), ("GET", "/healthz")} <= routes
    assert registered_routes(app) <= set(app_routes(app))


@pytest.mark.parametrize(("method", "path"), [r for r in SPEC_ROUTES if r[0] == "POST"])
def test_bodies_over_64_kb_get_413(app: FastAPI, client: AppClient, method: str, path: str) -> None:
    big = b"Body=" + b"x" * LIMIT
    declared = client.request(
        method,
        path,
        content=big,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert declared.status_code == 413

    async def chunks() -> Any:
        for _ in range(LIMIT // 4096 + 2):
            yield b"x" * 4096

    streamed = client.request(
        method,
        path,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    # A streamed body is only refused once it is read: a route that is not there answers 404.
    registered = (method, path) in registered_routes(app)
    assert streamed.status_code == 413 if registered else streamed.status_code in (404, 413)
    lying = client.request(
        method,
        path,
        content=big,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "10"},
    )
    assert lying.status_code < 500


def test_a_body_at_the_limit_is_not_refused(client: AppClient) -> None:
    body = b"Body=" + b"x" * (LIMIT - 5)
    response = client.post(
        "/twilio/sms", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 403  # reached the signature check: not refused for size
