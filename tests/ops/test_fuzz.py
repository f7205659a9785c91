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
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route

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

values = st.one_of(
    st.sampled_from(INTERESTING),
    st.text(max_size=40),
    st.text(min_size=500, max_size=3000),
    st.integers().map(str),
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


def check(client: AppClient, data: st.DataObject, routes: list[tuple[str, str]]) -> None:
    method, path, status = hostile_request(client, data, routes)
    if path == "/readyz":
        assert status in (200, 503, 405), (method, path, status)
    else:
        assert status < 500, (method, path, status)


@pytest.fixture
def fuzz_client(app: FastAPI) -> Iterator[tuple[AppClient, list[tuple[str, str]]]]:
    with app_client(app) as client:
        yield client, app_routes(app)


FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}


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
    fuzz_client: tuple[AppClient, list[tuple[str, str]]], data: st.DataObject
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
