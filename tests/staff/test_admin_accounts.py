"""Administrators manage staff accounts in the browser: add one (with a temporary password shown
once), disable, enable, set a temporary password; an account holding a temporary password
chooses its own before it reaches any other page. Through HTTP, as a browser does it."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.db import Database
from service.models import AuditEntry, StaffUser
from service.staff.auth import (
    HOST_PREFIX,
    SESSION_COOKIE,
    TEMPORARY_ALPHABET,
    temporary_password,
)
from tests.staff.conftest import (
    ADMIN,
    PASSWORD,
    VIEWER,
    Clock,
    password_hash,
    post_form,
    sign_in,
    signed_in,
)
from tests.support import AppClient, app_client

NAVIGATOR = "nina"
NEW_PASSWORD = "a password of my very own"
SHOWN_PASSWORD = re.compile(r'<code class="temporary-password">([^<]+)</code>')
ACCOUNT_ACTIONS = ("add-staff", "disable-staff", "enable-staff", "temporary-password")


def shown_password(page: httpx.Response) -> str:
    [password] = SHOWN_PASSWORD.findall(page.text)
    return str(password)


def add_account(admin: AppClient, username: str, role: str = "navigator") -> str:
    """Add an account from the administration page; the temporary password it shows."""
    page = post_form(admin, "/staff/admin", "/staff/admin/staff", username=username, role=role)
    assert page.status_code == 200, page.text
    return shown_password(page)


def account(database: Database, username: str) -> StaffUser:
    with database.session(read_only=True) as session:
        user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        session.expunge(user)
        return user


def audit_entries(database: Database, *actions: str) -> list[tuple[str, str, str | None, str]]:
    """(actor, action, detail, client address) of the audit entries for `actions`, oldest first."""
    with database.session(read_only=True) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
        )
        return [(e.actor, e.action, e.detail, e.client_address or "") for e in entries]


def all_audit_text(database: Database) -> str:
    with database.session(read_only=True) as session:
        return " ".join(
            f"{e.actor} {e.action} {e.detail}" for e in session.scalars(select(AuditEntry))
        )


def choose_password(
    client: AppClient, current: str, new: str, again: str | None = None, next: str = "/staff/"
) -> httpx.Response:
    return post_form(
        client,
        "/staff/password",
        "/staff/password",
        current_password=current,
        new_password=new,
        new_password_again=new if again is None else again,
        next=next,
    )


def test_temporary_passwords_are_long_random_and_easy_to_read_aloud() -> None:
    passwords = {temporary_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", password)
        assert not set(password) & set("0o1li")
    assert set(TEMPORARY_ALPHABET) == set("".join(passwords).replace("-", ""))


def test_an_admin_adds_an_account_and_sees_its_temporary_password_once(
    client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    page = post_form(
        client, "/staff/admin", "/staff/admin/staff", username=" Nina ", role="navigator"
    )
    assert page.status_code == 200
    assert "<h1>nina is added (navigator)</h1>" in page.text
    password = shown_password(page)
    assert "It is shown only this once" in page.text
    assert "Give it to nina privately" in page.text
    assert page.headers["cache-control"] == "no-store"
    admin_page = client.get("/staff/admin").text
    assert password not in admin_page
    assert '<th scope="row">nina</th>' in admin_page
    assert "active, has a temporary password" in admin_page
    user = account(database, NAVIGATOR)
    assert (user.role, user.disabled, user.must_change_password) == ("navigator", False, True)
    assert password not in user.password_hash
    assert audit_entries(database, "add-staff") == [
        (ADMIN, "add-staff", "nina (navigator)", "127.0.0.1")
    ]
    assert password not in all_audit_text(database)


def test_a_new_account_chooses_its_password_before_any_other_page(
    staff_app: FastAPI, database: Database
) -> None:
    with app_client(staff_app) as admin, app_client(staff_app) as nina:
        password = add_account(signed_in(admin, ADMIN), NAVIGATOR)

        # Signing in with the temporary password goes to the choose-password page...
        login = nina.get("/staff/follow-ups").headers["location"]
        assert login == "/staff/login?next=%2Fstaff%2Ffollow-ups"
        fields = {"username": NAVIGATOR, "password": password, "next": "/staff/follow-ups"}
        response = post_form(nina, login, "/staff/login", **fields)
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/password?next=%2Fstaff%2Ffollow-ups"
        page = nina.get(response.headers["location"])
        assert page.status_code == 200
        assert "<h1>Choose your password</h1>" in page.text
        assert "You signed in with a temporary password." in page.text
        assert '<label for="current_password">Temporary password</label>' in page.text
        assert 'name="next" value="/staff/follow-ups"' in page.text
        assert 'href="/staff/follow-ups"' not in page.text  # no navigation to pages it cannot see

        # ...and every other page sends it back there.
        for path in ("/staff/", "/staff/calls", "/staff/calls.csv", "/staff/follow-ups"):
            refused = nina.get(path)
            assert refused.status_code == 303, path
            assert refused.headers["location"].startswith("/staff/password?next=%2Fstaff"), path
        refused = post_form(nina, "/staff/password", "/staff/simulator", start="1")
        assert refused.headers["location"] == "/staff/password?next=%2Fstaff%2F"

        # The same password rules as everywhere, each said on the page.
        for current, new, again, message in [
            ("not the temporary one", NEW_PASSWORD, None, "The current password is not right."),
            (password, "too short", None, "The password must have at least 12 characters."),
            (password, NEW_PASSWORD, NEW_PASSWORD + "!", "The two new passwords differ."),
            (password, password, None, "The new password must differ from the current one."),
        ]:
            refused = choose_password(nina, current, new, again)
            assert refused.status_code == 400, message
            assert message in refused.text
        assert nina.get("/staff/follow-ups").status_code == 303

        chosen = choose_password(nina, password, NEW_PASSWORD, next="/staff/follow-ups")
        assert chosen.status_code == 303
        assert chosen.headers["location"] == "/staff/follow-ups"
        page = nina.get("/staff/follow-ups")
        assert page.status_code == 200
        assert "<h1>Follow-ups</h1>" in page.text
        assert not account(database, NAVIGATOR).must_change_password
        assert "active, has a temporary password" not in admin.get("/staff/admin").text

        post_form(nina, "/staff/follow-ups", "/staff/logout")
        refused = sign_in(nina, NAVIGATOR, password)
        assert refused.status_code == 401
        assert "a forgotten password? Ask an administrator" in refused.text
        assert sign_in(nina, NAVIGATOR, NEW_PASSWORD).headers["location"] == "/staff/"
    assert audit_entries(database, "change-password") == [
        (NAVIGATOR, "change-password", None, "127.0.0.1")
    ]
    text = all_audit_text(database)
    assert password not in text and NEW_PASSWORD not in text


def test_choosing_a_password_ends_the_other_sessions_opened_with_the_temporary_one(
    staff_app: FastAPI, clock: Clock
) -> None:
    with (
        app_client(staff_app) as admin,
        app_client(staff_app) as nina,
        app_client(staff_app) as onlooker,
    ):
        password = add_account(signed_in(admin, ADMIN), NAVIGATOR)
        assert sign_in(nina, NAVIGATOR, password).status_code == 303
        assert sign_in(onlooker, NAVIGATOR, password).status_code == 303
        clock.advance(seconds=5)
        assert choose_password(nina, password, NEW_PASSWORD).status_code == 303
        assert nina.get("/staff/follow-ups").status_code == 200
        ended = onlooker.get("/staff/follow-ups")
        assert ended.status_code == 303
        assert ended.headers["location"].startswith("/staff/login")


def test_an_account_may_change_its_own_password(client: AppClient, database: Database) -> None:
    signed_in(client, ADMIN)
    assert 'href="/staff/password">Change your password</a>' in client.get("/staff/admin").text
    page = client.get("/staff/password")
    assert '<label for="current_password">Current password</label>' in page.text
    assert "You signed in with a temporary password." not in page.text
    assert choose_password(client, PASSWORD, NEW_PASSWORD).status_code == 303
    assert client.get("/staff/admin").status_code == 200
    post_form(client, "/staff/admin", "/staff/logout")
    assert sign_in(client, ADMIN, PASSWORD).status_code == 401
    assert sign_in(client, ADMIN, NEW_PASSWORD).status_code == 303


def test_the_password_form_is_no_faster_a_way_to_guess_a_password(
    client: AppClient, database: Database, clock: Clock
) -> None:
    """A browser holding someone's session (left signed in, a copied cookie) cannot try their
    password at /staff/password faster than at sign-in: each wrong current password is a
    failed sign-in, audited, and the sign-in limits refuse the form, right password or not."""
    signed_in(client, ADMIN)
    for n in range(5):
        wrong = choose_password(client, f"a guess number {n}", NEW_PASSWORD)
        assert wrong.status_code == 400
        assert "The current password is not right." in wrong.text
    assert (
        audit_entries(database, "sign-in-failed")
        == [(ADMIN, "sign-in-failed", "wrong current password", "127.0.0.1")] * 5
    )
    refused = choose_password(client, PASSWORD, NEW_PASSWORD)
    assert refused.status_code == 429
    assert "Too many wrong passwords from here. Wait 1 minute, then try again." in refused.text
    assert refused.headers["Retry-After"] == "60"
    assert len(audit_entries(database, "sign-in-failed")) == 5, "refused unchecked"
    clock.advance(seconds=61)
    assert choose_password(client, PASSWORD, NEW_PASSWORD).status_code == 303
    assert audit_entries(database, "change-password") == [
        (ADMIN, "change-password", None, "127.0.0.1")
    ]


def test_enable_asks_first_then_lets_the_account_sign_in_again(
    staff_app: FastAPI, client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    post_form(client, "/staff/admin", f"/staff/admin/staff/{VIEWER}/disable", confirm="yes")
    page = client.get("/staff/admin").text
    assert f'aria-label="Enable {VIEWER}">Enable</button>' in page
    assert f'aria-label="Disable {VIEWER}"' not in page

    asked = post_form(client, "/staff/admin", f"/staff/admin/staff/{VIEWER}/enable")
    assert asked.status_code == 200
    assert f"<h1>Enable {VIEWER}?</h1>" in asked.text and f"Yes, enable {VIEWER}" in asked.text
    assert 'name="confirm" value="yes"' in asked.text and 'href="/staff/admin">Cancel' in asked.text
    assert account(database, VIEWER).disabled
    assert audit_entries(database, "enable-staff") == []

    done = post_form(client, "/staff/admin", f"/staff/admin/staff/{VIEWER}/enable", confirm="yes")
    assert done.status_code == 200
    assert f"{VIEWER} is enabled and can sign in again." in done.text
    assert f'aria-label="Disable {VIEWER}"' in done.text
    assert not account(database, VIEWER).disabled
    assert audit_entries(database, "enable-staff") == [(ADMIN, "enable-staff", VIEWER, "127.0.0.1")]
    with app_client(staff_app) as viewer:
        assert sign_in(viewer, VIEWER).status_code == 303


def test_enabling_does_not_bring_back_a_session_from_before_the_account_was_disabled(
    staff_app: FastAPI, clock: Clock
) -> None:
    with app_client(staff_app) as admin, app_client(staff_app) as viewer:
        signed_in(admin, ADMIN)
        signed_in(viewer, VIEWER)
        copied = viewer.cookies.get(HOST_PREFIX + SESSION_COOKIE)  # over https
        assert copied
        clock.advance(seconds=5)
        post_form(admin, "/staff/admin", f"/staff/admin/staff/{VIEWER}/disable", confirm="yes")
        post_form(admin, "/staff/admin", f"/staff/admin/staff/{VIEWER}/enable", confirm="yes")
        viewer.cookies.set(HOST_PREFIX + SESSION_COOKIE, copied, domain="line.example.org")
        assert viewer.get("/staff/calls").status_code == 303
        clock.advance(seconds=5)
        signed_in(viewer, VIEWER)
        assert viewer.get("/staff/calls").status_code == 200


def test_a_temporary_password_asks_first_and_ends_the_accounts_sessions(
    staff_app: FastAPI, database: Database, clock: Clock
) -> None:
    with app_client(staff_app) as admin, app_client(staff_app) as viewer:
        signed_in(admin, ADMIN)
        signed_in(viewer, VIEWER)
        row = admin.get("/staff/admin").text
        assert f'aria-label="Set temporary password for {VIEWER}"' in row

        asked = post_form(admin, "/staff/admin", f"/staff/admin/staff/{VIEWER}/temporary-password")
        assert asked.status_code == 200
        assert f"<h1>Set a temporary password for {VIEWER}?</h1>" in asked.text
        assert f"Yes, set a temporary password for {VIEWER}" in asked.text
        assert "signed out everywhere at once" in asked.text
        assert viewer.get("/staff/calls").status_code == 200  # nothing happened yet
        assert audit_entries(database, "temporary-password") == []

        clock.advance(seconds=5)
        done = post_form(
            admin, "/staff/admin", f"/staff/admin/staff/{VIEWER}/temporary-password", confirm="yes"
        )
        assert done.status_code == 200
        assert f"<h1>New temporary password for {VIEWER}</h1>" in done.text
        password = shown_password(done)
        assert "It is shown only this once" in done.text
        ended = viewer.get("/staff/calls")
        assert ended.status_code == 303
        assert ended.headers["location"].startswith("/staff/login")

        assert sign_in(viewer, VIEWER, PASSWORD).status_code == 401
        response = sign_in(viewer, VIEWER, password)
        assert response.headers["location"] == "/staff/password?next=%2Fstaff%2F"
        assert viewer.get("/staff/calls").status_code == 303
        assert choose_password(viewer, password, NEW_PASSWORD).status_code == 303
        assert viewer.get("/staff/calls").status_code == 200
    assert audit_entries(database, "temporary-password") == [
        (ADMIN, "temporary-password", VIEWER, "127.0.0.1")
    ]
    assert password not in all_audit_text(database)


def test_an_admin_cannot_give_their_own_account_a_temporary_password(
    client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    page = client.get("/staff/admin").text
    assert f'aria-label="Set temporary password for {ADMIN}"' not in page
    assert f'aria-label="Disable {ADMIN}"' not in page
    response = post_form(
        client, "/staff/admin", f"/staff/admin/staff/{ADMIN}/temporary-password", confirm="yes"
    )
    assert response.status_code == 409
    assert "you cannot give your own account a temporary password" in response.text
    assert client.get("/staff/admin").status_code == 200  # still signed in
    assert not account(database, ADMIN).must_change_password
    assert audit_entries(database, "temporary-password") == []


@pytest.mark.parametrize(
    ("username", "role", "status", "message"),
    [
        (
            "",
            "viewer",
            400,
            "Not added: a username is 1 to 64 printable characters without spaces.",
        ),
        ("two words", "viewer", 400, "a username is 1 to 64 printable characters"),
        ("x" * 65, "viewer", 400, "a username is 1 to 64 printable characters"),
        ("nina", "owner", 400, "Not added: the role is viewer, navigator, editor or admin."),
        ("nina", "", 400, "the role is viewer, navigator, editor or admin"),
        (VIEWER, "viewer", 409, "Not added: there is already a staff account named &#39;vic&#39;."),
        (" VIC ", "admin", 409, "there is already a staff account named &#39;vic&#39;"),
    ],
)
def test_a_new_account_with_bad_details_gets_a_clear_page(
    client: AppClient, database: Database, username: str, role: str, status: int, message: str
) -> None:
    signed_in(client, ADMIN)
    page = post_form(client, "/staff/admin", "/staff/admin/staff", username=username, role=role)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert message in page.text
    assert '<h3 id="add-heading">Add an account</h3>' in page.text  # the form, to try again
    assert f'value="{username[:64]}"' in page.text
    assert 'aria-describedby="add-error add-help"' in page.text
    assert SHOWN_PASSWORD.search(page.text) is None
    with database.session(read_only=True) as session:
        assert set(session.scalars(select(StaffUser.username))) == {ADMIN, VIEWER}
    assert audit_entries(database, "add-staff") == []


@pytest.mark.parametrize("action", ["enable", "disable", "temporary-password"])
def test_an_unknown_account_gets_a_404_page(client: AppClient, action: str) -> None:
    signed_in(client, ADMIN)
    response = post_form(
        client, "/staff/admin", f"/staff/admin/staff/nobody/{action}", confirm="yes"
    )
    assert response.status_code == 404
    assert "there is no staff account named &#39;nobody&#39;" in response.text


def test_an_odd_username_is_managed_through_its_own_row(
    client: AppClient, database: Database
) -> None:
    signed_in(client, ADMIN)
    add_account(client, "o'brien/2?#")
    page = client.get("/staff/admin").text
    action = "/staff/admin/staff/o%27brien/2%3F%23/disable"
    assert f'action="{action}"' in page
    asked = post_form(client, "/staff/admin", action)
    assert "<h1>Disable o&#39;brien/2?#?</h1>" in asked.text
    assert 'action="/staff/admin/staff/o%27brien%2F2%3F%23/disable"' in asked.text
    done = post_form(client, "/staff/admin", action, confirm="yes")
    assert "o&#39;brien/2?# is disabled." in done.text
    assert account(database, "o'brien/2?#").disabled


@pytest.mark.parametrize("role", ["viewer", "navigator"])
@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/staff/admin/staff", {"username": "mallory", "role": "admin"}),
        (f"/staff/admin/staff/{ADMIN}/disable", {"confirm": "yes"}),
        (f"/staff/admin/staff/{ADMIN}/enable", {"confirm": "yes"}),
        (f"/staff/admin/staff/{ADMIN}/temporary-password", {"confirm": "yes"}),
        (f"/staff/admin/staff/{ADMIN}/temporary-password", {}),
    ],
)
def test_only_admins_manage_accounts(
    client: AppClient, database: Database, role: str, path: str, fields: dict[str, str]
) -> None:
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
    signed_in(client, VIEWER if role == "viewer" else NAVIGATOR)
    response = post_form(client, "/staff/calls", path, **fields)
    assert response.status_code == 403
    assert "This page is for administrators." in response.text
    assert SHOWN_PASSWORD.search(response.text) is None
    with database.session(read_only=True) as session:
        assert "mallory" not in set(session.scalars(select(StaffUser.username)))
    assert not account(database, ADMIN).must_change_password
    assert audit_entries(database, *ACCOUNT_ACTIONS) == []


@pytest.mark.parametrize(
    "path",
    [
        "/staff/admin/staff",
        f"/staff/admin/staff/{VIEWER}/enable",
        f"/staff/admin/staff/{VIEWER}/temporary-password",
        "/staff/password",
    ],
)
def test_the_new_forms_need_the_csrf_token(
    client: AppClient, database: Database, path: str
) -> None:
    signed_in(client, ADMIN)
    response = client.post(
        path,
        data={
            "username": "mallory",
            "role": "admin",
            "confirm": "yes",
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert audit_entries(database, *ACCOUNT_ACTIONS, "change-password") == []
    assert sign_in(client, ADMIN, PASSWORD).status_code == 303  # the password is unchanged
