"""Security headers on every staff answer, error pages included, and pages that keep to the
Content-Security-Policy (no scripts, no inline styles). The browser test checks the same in
Chromium, which reports any violation."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from service.staff.web import CONTENT_SECURITY_POLICY
from tests.staff.conftest import ADMIN, VIEWER, sign_in, signed_in
from tests.support import AppClient, app_client

PAGES = [
    "/staff/",
    "/staff/calls",
    "/staff/calls.csv",
    "/staff/messages",
    "/staff/messages.csv",
    "/staff/simulator",
    "/staff/audit",
    "/staff/admin",
]
ERROR_PAGES = [
    ("/staff/calls/424242", 404),
    ("/staff/no-such-page", 404),
    ("/staff/calls?outcome=nonsense", 400),
]


def assert_staff_headers(response: httpx.Response, *, https: bool) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, response.url
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    if https:
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    else:
        assert "Strict-Transport-Security" not in headers


def test_the_policy_allows_only_this_sites_stylesheet_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in directives  # default-src 'none': no script at all
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_every_page_and_error_page_has_the_headers(client: AppClient) -> None:
    assert_staff_headers(client.get("/staff/login"), https=True)
    assert_staff_headers(sign_in(client, ADMIN), https=True)  # the redirect after signing in
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_staff_headers(response, https=True)
        assert response.headers["Cache-Control"] == "no-store"
    for path, status in ERROR_PAGES:
        response = client.get(path)
        assert response.status_code == status, path
        assert response.headers["content-type"].startswith("text/html")
        assert_staff_headers(response, https=True)


def test_pages_have_no_script_and_no_inline_style(client: AppClient) -> None:
    signed_in(client, ADMIN)
    for path in [p for p in PAGES if not p.endswith(".csv")] + ["/staff/calls/424242"]:
        html = client.get(path).text.lower()
        assert "<script" not in html, path
        assert "<style" not in html and " style=" not in html, path
        assert '<link rel="stylesheet" href="/staff/staff.css">' in html, path


def test_a_viewers_403_page_has_the_headers(client: AppClient) -> None:
    signed_in(client, VIEWER)
    response = client.get("/staff/admin")
    assert response.status_code == 403
    assert_staff_headers(response, https=True)


def test_the_stylesheet_is_served_to_anyone_as_css(client: AppClient) -> None:
    response = client.get("/staff/staff.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert ".pre-wrap { white-space: pre-wrap; }" in response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_hsts_over_plain_http(staff_app: FastAPI) -> None:
    with app_client(staff_app, base_url="http://127.0.0.1:8000") as client:
        assert_staff_headers(client.get("/staff/login"), https=False)
        assert_staff_headers(client.get("/staff/no-such-page"), https=False)


@pytest.mark.parametrize(("proto", "https"), [("https", True), ("http", False)])
def test_hsts_behind_a_trusted_proxy_follows_x_forwarded_proto(
    staff_app: FastAPI, proto: str, https: bool
) -> None:
    # The test transport's peer is 127.0.0.1, a trusted proxy by default.
    with app_client(staff_app, base_url="http://127.0.0.1:8000") as client:
        response = client.get("/staff/login", headers={"X-Forwarded-Proto": proto})
        assert_staff_headers(response, https=https)
