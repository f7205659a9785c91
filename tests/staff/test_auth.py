"""Sign-in, sessions, CSRF, roles and throttling, through HTTP as a browser does them."""

from __future__ import annotations

import threading

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry, StaffUser
from service.staff.auth import (
    CSRF_COOKIE,
    HOST_PREFIX,
    SESSION_COOKIE,
    AccountError,
    disable_staff,
)
from tests.staff.conftest import (
    ADMIN,
    PASSWORD,
    VIEWER,
    Clock,
    csrf_of,
    password_hash,
    post_form,
    sign_in,
    signed_in,
)
from tests.support import AppClient, app_client

# The default test client comes over https (https://line.example.org).
HTTPS_SESSION = HOST_PREFIX + SESSION_COOKIE
HTTPS_CSRF = HOST_PREFIX + CSRF_COOKIE

STAFF_PAGES = [
    "/staff/",
    "/staff/calls",
    "/staff/calls?outcome=reached",
    "/staff/calls.csv",
    "/staff/calls/1",
    "/staff/calls/CA0000",
    "/staff/messages",
    "/staff/messages.csv",
    "/staff/messages/1",
    "/staff/simulator",
    "/staff/audit",
    "/staff/admin",
]


def audit(database: Database, action: str) -> list[AuditEntry]:
    with database.session(read_only=True) as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_signed_out_requests_are_sent_to_the_sign_in_page(client: AppClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/login?next=%2Fstaff")
    assert "phoneline_staff=" not in response.headers.get("set-cookie", "")


def test_sign_in_returns_to_the_page_asked_for(client: AppClient) -> None:
    redirect = client.get("/staff/calls?outcome=reached")
    form = client.get(redirect.headers["location"])
    assert 'name="next" value="/staff/calls?outcome=reached"' in form.text
    response = client.post(
        "/staff/login",
        data={
            "username": VIEWER,
            "password": PASSWORD,
            "csrf_token": csrf_of(form),
            "next": "/staff/calls?outcome=reached",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/calls?outcome=reached"
    page = client.get("/staff/calls?outcome=reached")
    assert page.status_code == 200
    assert "<h1>Calls</h1>" in page.text


def test_sign_in_never_redirects_off_the_dashboard(client: AppClient) -> None:
    form = client.get("/staff/login")
    response = client.post(
        "/staff/login",
        data={
            "username": VIEWER,
            "password": PASSWORD,
            "csrf_token": csrf_of(form),
            "next": "//evil.example/staff",
        },
    )
    assert response.headers["location"] == "/staff/"


def test_login_form_is_labelled_and_carries_a_csrf_token(client: AppClient) -> None:
    page = client.get("/staff/login")
    assert page.status_code == 200
    assert '<label for="username">' in page.text and 'id="username" name="username"' in page.text
    assert '<label for="password">' in page.text and 'type="password"' in page.text
    assert 'type="hidden" name="csrf_token"' in page.text
    assert 'href="#content"' in page.text  # the skip link


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each cookie the answer sets, by name: its Set-Cookie header."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def attributes(set_cookie: str) -> set[str]:
    """A Set-Cookie header's attributes (not its value), as written."""
    return {part.strip() for part in set_cookie.split(";")[1:]}


def test_over_https_the_cookies_are_host_only_secure_http_only_and_lax(client: AppClient) -> None:
    form = client.get("/staff/login")
    assert attributes(set_cookies(form)[HTTPS_CSRF]) == {
        "HttpOnly",
        "Path=/",
        "SameSite=lax",
        "Secure",
    }  # the `__Host-` prefix: Secure, Path=/ and no Domain, or browsers drop it
    response = client.post(
        "/staff/login",
        data={"username": VIEWER, "password": PASSWORD, "csrf_token": csrf_of(form)},
    )
    assert response.status_code == 303
    cookies = set_cookies(response)
    assert set(cookies) == {HTTPS_SESSION, HTTPS_CSRF}  # a new CSRF secret with the session
    for header in cookies.values():
        assert attributes(header) == {"HttpOnly", "Path=/", "SameSite=lax", "Secure"}
    assert client.get("/staff/calls").status_code == 200
    assert post_form(client, "/staff/calls", "/staff/logout").status_code == 303


def test_over_plain_http_the_cookies_have_plain_names_and_sign_in_and_forms_work(
    staff_app: FastAPI, database: Database
) -> None:
    # `make run` on a laptop: http://127.0.0.1:8000, where a `__Host-` cookie cannot be set.
    with app_client(staff_app, base_url="http://127.0.0.1:8000") as client:
        response = sign_in(client, VIEWER)
        assert response.status_code == 303
        cookies = set_cookies(response)
        assert set(cookies) == {SESSION_COOKIE, CSRF_COOKIE}
        for header in cookies.values():
            assert attributes(header) == {"HttpOnly", "Path=/staff", "SameSite=lax"}
        assert client.get("/staff/calls").status_code == 200
        assert post_form(client, "/staff/calls", "/staff/logout").status_code == 303
    assert [entry.actor for entry in audit(database, "sign-out")] == [VIEWER]


def test_behind_a_trusted_https_proxy_the_cookies_are_host_only(staff_app: FastAPI) -> None:
    # The test transport's client address is 127.0.0.1, a trusted proxy by default.
    proxied = {"X-Forwarded-Proto": "https"}
    with app_client(staff_app, base_url="http://127.0.0.1:8000") as client:
        form = client.get("/staff/login", headers=proxied)
        csrf = form.cookies[HTTPS_CSRF]  # the browser has it (it speaks https to the proxy)
        response = client.post(
            "/staff/login",
            data={"username": VIEWER, "password": PASSWORD, "csrf_token": csrf_of(form)},
            headers={**proxied, "Cookie": f"{HTTPS_CSRF}={csrf}"},
        )
        assert response.status_code == 303
        assert attributes(set_cookies(response)[HTTPS_SESSION]) == {
            "HttpOnly",
            "Path=/",
            "SameSite=lax",
            "Secure",
        }


def test_over_https_a_cookie_without_the_prefix_is_not_read(client: AppClient) -> None:
    """A plain-named cookie may have been planted by a sibling subdomain or over http."""
    signed_in(client, VIEWER)
    session = client.cookies.get(HTTPS_SESSION)
    assert session
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, session, domain="line.example.org", path="/staff")
    assert client.get("/staff/calls").status_code == 303


def test_an_anonymous_browsers_csrf_pair_is_refused_beside_an_admins_session(
    staff_app: FastAPI, database: Database
) -> None:
    """The attack: an anonymous visitor's CSRF cookie and token (the attacker's own, planted
    in the administrator's browser) posted with the administrator's session cookie."""
    with app_client(staff_app) as anonymous:
        token = csrf_of(anonymous.get("/staff/login"))
        planted = dict(anonymous.cookies.items())
    with app_client(staff_app) as admin:
        signed_in(admin, ADMIN)
        own = dict(admin.cookies.items())
        csrf_name = next(name for name in own if name.endswith(CSRF_COOKIE))
        forged = {**own, csrf_name: planted[csrf_name]}
        admin.cookies.clear()
        for name, value in forged.items():
            admin.cookies.set(name, value, domain="line.example.org")
        response = admin.post(
            f"/staff/admin/staff/{VIEWER}/disable", data={"csrf_token": token, "confirm": "yes"}
        )
        assert response.status_code == 403
        assert "<h1>Form expired</h1>" in response.text
        assert "from another sign-in" in response.text
        assert admin.get("/staff/calls").status_code == 200  # the admin is still signed in
    with database.session(read_only=True) as session:
        viewer = session.scalars(select(StaffUser).where(StaffUser.username == VIEWER)).one()
        assert not viewer.disabled


def test_a_token_made_before_signing_in_is_refused_after(client: AppClient) -> None:
    form = client.get("/staff/login")
    before = csrf_of(form)
    client.post(
        "/staff/login", data={"username": ADMIN, "password": PASSWORD, "csrf_token": before}
    )
    response = client.post("/staff/admin/purge", data={"csrf_token": before, "older_than": "1d"})
    assert response.status_code == 403
    assert "Form expired" in response.text


def test_wrong_password_is_refused_and_audited(client: AppClient, database: Database) -> None:
    response = sign_in(client, VIEWER, "not the password at all")
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    assert 'value="vic"' in response.text  # the username is kept in the form
    assert client.get("/staff/calls").status_code == 303
    failures = audit(database, "sign-in-failed")
    assert [(f.actor, f.detail) for f in failures] == [(VIEWER, "wrong password")]


def test_unknown_and_disabled_accounts_cannot_sign_in(
    client: AppClient, database: Database
) -> None:
    assert sign_in(client, "nobody").status_code == 401
    with database.session() as session:
        disable_staff(session, VIEWER)
    response = sign_in(client, VIEWER)
    assert response.status_code == 401
    assert "Wrong username or password." in response.text
    details = [entry.detail for entry in audit(database, "sign-in-failed")]
    assert details == ["unknown account", "account disabled"]


def test_sign_in_is_audited(client: AppClient, database: Database) -> None:
    signed_in(client, ADMIN)
    entries = audit(database, "sign-in")
    assert [(e.actor, e.client_address) for e in entries] == [(ADMIN, "127.0.0.1")]


@pytest.mark.parametrize("token", [None, "", "forged-token", "\x80", "ñandú"])
def test_sign_in_without_the_right_csrf_token_is_refused(
    client: AppClient, token: str | None
) -> None:
    client.get("/staff/login")  # the browser has a CSRF cookie
    data = {"username": VIEWER, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/staff/login", data=data)
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert "phoneline_staff=" not in response.headers.get("set-cookie", "")


def test_a_token_from_another_browser_is_refused(staff_app: FastAPI) -> None:
    with app_client(staff_app) as other:
        token = csrf_of(other.get("/staff/login"))
    with app_client(staff_app) as client:
        client.get("/staff/login")
        response = client.post(
            "/staff/login", data={"username": VIEWER, "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 403


def test_state_changing_forms_need_the_csrf_token(client: AppClient, database: Database) -> None:
    signed_in(client, ADMIN)
    for action, data in [
        ("/staff/logout", {}),
        ("/staff/calls/1/reveal", {}),
        ("/staff/admin/purge", {"older_than": "1d"}),
        (f"/staff/admin/staff/{VIEWER}/disable", {}),
        ("/staff/simulator", {"start": "1"}),
    ]:
        response = client.post(action, data=data)
        assert response.status_code == 403, action
        assert "Form expired" in response.text
    assert client.get("/staff/calls").status_code == 200  # still signed in
    assert audit(database, "purge") == []
    assert sign_in(client, VIEWER).status_code == 303  # not disabled


def test_sign_out_ends_the_session(client: AppClient, database: Database) -> None:
    signed_in(client, VIEWER)
    response = post_form(client, "/staff/calls", "/staff/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login"
    assert client.get("/staff/calls").status_code == 303
    assert [e.actor for e in audit(database, "sign-out")] == [VIEWER]


def test_sign_out_also_ends_copies_of_the_session_cookie(client: AppClient, clock: Clock) -> None:
    signed_in(client, VIEWER)
    copied = client.cookies.get(HTTPS_SESSION)
    assert copied
    clock.advance(seconds=5)
    post_form(client, "/staff/calls", "/staff/logout")
    client.cookies.set(HTTPS_SESSION, copied, domain="line.example.org")
    assert client.get("/staff/calls").status_code == 303
    clock.advance(seconds=5)
    signed_in(client, VIEWER)  # signing in again works
    assert client.get("/staff/calls").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/staff/audit"),
        ("GET", "/staff/admin"),
        ("POST", "/staff/calls/1/reveal"),
        ("POST", "/staff/admin/purge"),
        ("POST", f"/staff/admin/staff/{ADMIN}/disable"),
    ],
)
def test_a_viewer_gets_a_403_page_on_admin_routes(
    client: AppClient, database: Database, method: str, path: str
) -> None:
    signed_in(client, VIEWER)
    if method == "GET":
        response = client.get(path)
    else:
        response = post_form(client, "/staff/calls", path, older_than="1d")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This page is for administrators." in response.text
    assert audit(database, "purge") == []


def test_viewers_see_no_admin_links(client: AppClient) -> None:
    signed_in(client, VIEWER)
    page = client.get("/staff/").text
    assert 'href="/staff/audit"' not in page and 'href="/staff/admin"' not in page


def test_session_lapses_after_thirty_idle_minutes(client: AppClient, clock: Clock) -> None:
    signed_in(client, VIEWER)
    clock.advance(minutes=29)
    assert client.get("/staff/calls").status_code == 200
    clock.advance(minutes=29)  # 58 minutes in, but only 29 idle
    assert client.get("/staff/calls").status_code == 200
    clock.advance(minutes=30, seconds=1)
    response = client.get("/staff/calls")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/staff/login")


def test_session_lapses_after_twelve_hours_however_busy(client: AppClient, clock: Clock) -> None:
    signed_in(client, VIEWER)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert client.get("/staff/simulator").status_code == 200
    clock.advance(minutes=20, seconds=1)
    assert client.get("/staff/simulator").status_code == 303


def test_disabling_an_account_ends_its_session_at_once(
    staff_app: FastAPI, database: Database
) -> None:
    with app_client(staff_app) as viewer, app_client(staff_app) as admin:
        signed_in(viewer, VIEWER)
        signed_in(admin, ADMIN)
        response = post_form(
            admin, "/staff/admin", f"/staff/admin/staff/{VIEWER}/disable", confirm="yes"
        )
        assert response.status_code == 200
        assert f"{VIEWER} is disabled." in response.text
        assert viewer.get("/staff/calls").status_code == 303
        assert [e.detail for e in audit(database, "disable-staff")] == [VIEWER]


def test_an_admin_cannot_disable_themselves(client: AppClient, database: Database) -> None:
    signed_in(client, ADMIN)
    response = post_form(
        client, "/staff/admin", f"/staff/admin/staff/{ADMIN}/disable", confirm="yes"
    )
    assert response.status_code == 409
    assert "you cannot disable your own account; ask another administrator" in response.text
    assert client.get("/staff/admin").status_code == 200  # still signed in, still an admin
    assert audit(database, "disable-staff") == []


def test_the_last_active_admin_cannot_be_disabled_from_the_dashboard(
    staff_app: FastAPI, database: Database
) -> None:
    with database.session() as session:
        session.add(StaffUser(username="bea", password_hash=password_hash(), role="admin"))
    with app_client(staff_app) as ada, app_client(staff_app) as bea:
        signed_in(ada, ADMIN)
        signed_in(bea, "bea")
        response = post_form(ada, "/staff/admin", "/staff/admin/staff/bea/disable", confirm="yes")
        assert response.status_code == 200 and "bea is disabled." in response.text
        # bea's session has ended; ada is the last active admin and cannot go either.
        assert bea.get("/staff/admin").status_code == 303
    # ada is now the last active admin: not even another admin's request may disable her.
    with database.session() as session, pytest.raises(AccountError, match="last active admin"):
        disable_staff(session, ADMIN, by="bea")
    assert [e.detail for e in audit(database, "disable-staff")] == ["bea"]


def test_two_admins_disabling_each_other_at_once_leave_one(database: Database) -> None:
    with database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
        session.add(StaffUser(username="bea", password_hash=password_hash(), role="admin"))
    outcome: dict[str, str] = {}

    def bea_disables_ada() -> None:
        try:
            with database.session() as session:
                disable_staff(session, ADMIN, by="bea")
            outcome["bea"] = "disabled ada"
        except AccountError as error:
            outcome["bea"] = str(error)

    with database.session() as session:
        disable_staff(session, "bea", by=ADMIN)  # ada's, not committed yet
        other = threading.Thread(target=bea_disables_ada)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive(), "bea's request waits for ada's to end"
    other.join(timeout=10)
    assert outcome["bea"].startswith("ada is the last active administrator")
    with database.session(read_only=True) as session:
        states = {u.username: u.disabled for u in session.scalars(select(StaffUser))}
    assert states == {ADMIN: False, "bea": True}


def test_a_forged_session_cookie_is_ignored(client: AppClient) -> None:
    client.get("/staff/login")
    forged = f"{HTTPS_SESSION}=eyJ1IjoxfQ.forged"
    response = client.get("/staff/calls", headers={"Cookie": forged})
    assert response.status_code == 303


@pytest.mark.parametrize(
    "path", ["/staff/logout", "/staff/calls/1/reveal", "/staff/admin/purge", "/staff/simulator"]
)
def test_a_form_posted_signed_out_goes_to_the_sign_in_page(client: AppClient, path: str) -> None:
    token = csrf_of(client.get("/staff/login"))
    response = client.post(path, data={"csrf_token": token, "older_than": "1d"})
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/login?next=%2Fstaff%2F"


def test_odd_ids_get_a_404_page(client: AppClient) -> None:
    signed_in(client, VIEWER)
    for path in ("/staff/messages/abc", "/staff/messages/99", "/staff/calls/%20"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")


def test_disable_and_purge_ask_first_and_do_nothing_until_confirmed(
    client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    asked = post_form(client, "/staff/admin", f"/staff/admin/staff/{VIEWER}/disable")
    assert asked.status_code == 200
    assert f"Disable {VIEWER}?" in asked.text and f"Yes, disable {VIEWER}" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'href="/staff/admin">Cancel' in asked.text
    assert audit(database, "disable-staff") == []
    with database.session(read_only=True) as session:
        user = session.scalars(select(StaffUser).where(StaffUser.username == VIEWER)).one()
        assert not user.disabled
    asked = post_form(client, "/staff/admin", "/staff/admin/purge", older_than="30d")
    assert "Purge old records?" in asked.text and "is deleted for good" in asked.text
    assert 'name="older_than" value="30d"' in asked.text
    assert audit(database, "purge") == []
    done = post_form(client, "/staff/admin", f"/staff/admin/staff/{VIEWER}/disable", confirm="yes")
    assert f"{VIEWER} is disabled." in done.text
