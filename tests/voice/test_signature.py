"""Every /twilio/* route answers 403 unless the request carries Twilio's signature for exactly
the URL Twilio requested and exactly the parameters it sent (checked with twilio's own
RequestValidator, as Twilio signs)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.from_thread
import httpx
import pytest
from fastapi import FastAPI

from service.db import Database
from service.main import create_app
from tests.support import PUBLIC_BASE, AppClient, twilio_signature
from tests.voice.caller import CALLER_NUMBER, LINE_NUMBER, parse
from tests.voice.conftest import voice_settings


def route_paths(routes: list[Any], prefix: str = "") -> set[str]:
    """Every route's path, included routers' too (FastAPI wraps those)."""
    paths: set[str] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            paths |= route_paths(included.routes, prefix + route.include_context.prefix)
        elif isinstance(getattr(route, "path", None), str):
            paths.add(prefix + route.path)
    return paths


TWILIO_ROUTES = sorted(
    path
    for path in route_paths(create_app(voice_settings(Path("/nonexistent"), "sqlite://")).routes)
    if path.startswith("/twilio")
)

PARAMS = {
    "CallSid": "CA" + "2" * 32,
    "MessageSid": "SM" + "2" * 32,
    "RecordingSid": "RE" + "2" * 32,
    "RecordingStatus": "completed",
    "AccountSid": "AC" + "0" * 32,
    "From": CALLER_NUMBER,
    "To": LINE_NUMBER,
    "CallStatus": "completed",
    "MessageStatus": "delivered",
    "Body": "hi",
    "Digits": "1",
}


QUERIES = {"/twilio/voice/screen": "?call=CA" + "3" * 32 + "&contact=coordinator"}
"""What Twilio's request to a route always carries in its URL (the line wrote it)."""


def test_the_voice_routes_are_among_those_checked() -> None:
    assert {"/twilio/voice", "/twilio/voice/status", "/twilio/fallback"} <= set(TWILIO_ROUTES)


def post(client: AppClient, url: str, params: dict[str, str], signature: str | None) -> int:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(url, content=urlencode(params), headers=headers).status_code


@pytest.mark.parametrize("route", TWILIO_ROUTES)
def test_a_correctly_signed_request_is_let_through(client: AppClient, route: str) -> None:
    url = PUBLIC_BASE + route + QUERIES.get(route, "")
    assert post(client, url, PARAMS, twilio_signature(url, PARAMS)) in (200, 204)


@pytest.mark.parametrize("route", TWILIO_ROUTES)
@pytest.mark.parametrize(
    "forgery", ["unsigned", "forged", "other path", "other query", "tampered", "other token"]
)
def test_a_request_not_signed_by_twilio_is_refused(
    client: AppClient, route: str, forgery: str
) -> None:
    url = PUBLIC_BASE + route + "?at=reach&lang=en"
    sent = dict(PARAMS)
    signature: str | None
    match forgery:
        case "unsigned":
            signature = None
        case "forged":
            signature = "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="
        case "other path":
            signature = twilio_signature(PUBLIC_BASE + "/twilio/elsewhere?at=reach&lang=en", sent)
        case "other query":
            signature = twilio_signature(PUBLIC_BASE + route + "?at=main&lang=en", sent)
        case "tampered":
            signature = twilio_signature(url, sent)
            sent["Digits"] = "0"
        case "other token":
            signature = twilio_signature(url, sent, token="someone-elses-auth-token")
    assert post(client, url, sent, signature) == 403


def test_without_an_auth_token_twilio_posts_are_refused(
    sqlite_database: Database, tmp_path: Path
) -> None:
    app = create_app(voice_settings(tmp_path, str(sqlite_database.url), twilio_auth_token=""))
    with client_from(app, ("127.0.0.1", 4000), PUBLIC_BASE) as client:
        url = PUBLIC_BASE + "/twilio/voice"
        assert post(client, url, PARAMS, twilio_signature(url, PARAMS)) == 403


# -- behind an https proxy --------------------------------------------------------------------


@contextmanager
def client_from(app: FastAPI, address: tuple[str, int], base_url: str) -> Iterator[AppClient]:
    """A client whose requests come from `address` (as the proxy in front of the app)."""
    with anyio.from_thread.start_blocking_portal() as portal:
        transport = httpx.ASGITransport(app=app, client=address)
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        try:
            yield AppClient(portal, client, app)
        finally:
            portal.call(client.aclose)
            app.state.spool.close()


@pytest.fixture
def proxied_app(sqlite_database: Database, tmp_path: Path) -> FastAPI:
    # No PUBLIC_BASE_URL: the URL Twilio used comes from the trusted proxy's headers.
    return create_app(voice_settings(tmp_path, str(sqlite_database.url), public_base_url=""))


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "line.example.org"}


def test_behind_a_trusted_proxy_the_public_https_url_is_checked(proxied_app: FastAPI) -> None:
    with client_from(proxied_app, ("127.0.0.1", 4000), "http://10.1.2.3:8000") as client:
        response = client.twilio(
            "/twilio/voice",
            PARAMS,
            signed_url="https://line.example.org/twilio/voice",
            headers=FORWARDED,
        )
        assert response.status_code == 200
        heard = parse(response.text)
        # The next action URL is the public one too, so Twilio's next request verifies.
        assert heard.next_url is not None
        assert heard.next_url.startswith("https://line.example.org/twilio/voice?at=main&")
        follow = client.twilio(
            heard.next_url.replace("https://line.example.org", "http://10.1.2.3:8000"),
            PARAMS,
            signed_url=heard.next_url,
            headers=FORWARDED,
        )
        assert follow.status_code == 200


def test_behind_a_trusted_proxy_the_internal_url_is_not_accepted(proxied_app: FastAPI) -> None:
    with client_from(proxied_app, ("127.0.0.1", 4000), "http://10.1.2.3:8000") as client:
        response = client.twilio(
            "/twilio/voice",
            PARAMS,
            signed_url="http://10.1.2.3:8000/twilio/voice",
            headers=FORWARDED,
        )
        assert response.status_code == 403


def test_forwarded_headers_from_an_untrusted_address_are_ignored(proxied_app: FastAPI) -> None:
    with client_from(proxied_app, ("10.0.0.5", 4000), "http://10.1.2.3:8000") as client:
        response = client.twilio(
            "/twilio/voice",
            PARAMS,
            signed_url="https://line.example.org/twilio/voice",
            headers=FORWARDED,
        )
        assert response.status_code == 403
