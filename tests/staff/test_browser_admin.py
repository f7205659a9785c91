"""Staff accounts managed in a real browser (Debian's Chromium) against a real server: an admin
adds a navigator, who signs in with the temporary password and chooses their own; the admin
sets a temporary password (the navigator's open session ends), disables and enables the
account. Screenshots at 1366 and 390 px wide go to test-artifacts/, each page checked by
axe-core when it is installed."""

from __future__ import annotations

import re

import pytest

from service.models import StaffUser
from tests.staff.conftest import PASSWORD, password_hash
from tests.staff.test_browser import ARTIFACTS, chromium  # noqa: F401
from tests.staff.test_browser_follow_ups import WIDTHS, Live, live, screenshots  # noqa: F401

pytestmark = pytest.mark.browser

ADMIN = "ada"
NEWCOMER = "nora"
CHOSEN_PASSWORD = "my own long password"
TEMPORARY = re.compile(r"[a-z2-9]{4}(-[a-z2-9]{4}){3}")


def sign_in_as(page: object, username: str, password: str) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shown_password(page: object) -> str:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    password = page.locator("code.temporary-password").inner_text()
    assert TEMPORARY.fullmatch(password), password
    return password


def confirm(page: object, button: str, yes: str) -> None:
    """Press a row's `button`, then `yes` on the page that asks first."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        yes.removeprefix("Yes, ") + "?", ignore_case=True
    )
    page.get_by_role("button", name=yes).click()


def test_an_admin_manages_a_navigators_account_in_a_browser(chromium: object, live: Live) -> None:  # noqa: F811
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    with live.database.session() as session:
        session.add(StaffUser(username=ADMIN, password_hash=password_hash(), role="admin"))
    admin_context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    newcomer_context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 900})
    admin = admin_context.new_page()
    newcomer = newcomer_context.new_page()
    administration = live.url + "/staff/admin"
    follow_ups = live.url + "/staff/follow-ups"
    try:
        # The admin adds a navigator and reads the temporary password off the page.
        admin.goto(administration)
        sign_in_as(admin, ADMIN, PASSWORD)
        expect(admin).to_have_url(administration)
        admin.get_by_label("Username").fill(NEWCOMER)
        admin.get_by_label("Role", exact=True).select_option("navigator")
        admin.get_by_role("button", name="Add the account").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text(
            f"{NEWCOMER} is added (navigator)"
        )
        expect(admin.locator("main")).to_contain_text("It is shown only this once")
        password = shown_password(admin)
        screenshots(admin, "admin-temporary-password")
        admin.get_by_role("button", name="Sign out").click()
        expect(admin.get_by_role("heading", name="Sign in")).to_be_visible()

        # The navigator signs in with it and must choose a password before anything else.
        newcomer.goto(follow_ups)
        sign_in_as(newcomer, NEWCOMER, password)
        expect(newcomer.get_by_role("heading", level=1)).to_have_text("Choose your password")
        assert "/staff/password?next=" in newcomer.url
        expect(newcomer.get_by_role("navigation", name="Dashboard")).to_have_count(0)
        screenshots(newcomer, "choose-password")
        newcomer.get_by_label("Temporary password").fill(password)
        newcomer.get_by_label("New password", exact=True).fill(CHOSEN_PASSWORD)
        newcomer.get_by_label("The new password again").fill(CHOSEN_PASSWORD + "!")
        newcomer.get_by_role("button", name="Save my password").click()
        expect(newcomer.get_by_role("alert")).to_have_text("The two new passwords differ.")
        newcomer.goto(live.url + "/staff/calls")
        expect(newcomer.get_by_role("heading", level=1)).to_have_text("Choose your password")
        newcomer.get_by_label("Temporary password").fill(password)
        newcomer.get_by_label("New password", exact=True).fill(CHOSEN_PASSWORD)
        newcomer.get_by_label("The new password again").fill(CHOSEN_PASSWORD)
        newcomer.get_by_role("button", name="Save my password").click()
        expect(newcomer).to_have_url(live.url + "/staff/calls")
        newcomer.get_by_role("link", name=re.compile("^Follow-ups")).click()
        expect(newcomer).to_have_url(follow_ups)
        expect(newcomer.get_by_role("heading", name="Follow-ups", exact=True)).to_be_visible()

        # The admin sets a temporary password: the navigator's open session ends.
        admin.goto(administration)
        sign_in_as(admin, ADMIN, PASSWORD)
        row = admin.get_by_role("row", name=re.compile(f"^{NEWCOMER} "))
        expect(row).to_contain_text("active")
        confirm(
            admin,
            f"Set temporary password for {NEWCOMER}",
            f"Yes, set a temporary password for {NEWCOMER}",
        )
        expect(admin.get_by_role("heading", level=1)).to_have_text(
            f"New temporary password for {NEWCOMER}"
        )
        second = shown_password(admin)
        assert second != password
        newcomer.goto(follow_ups)
        expect(newcomer.get_by_role("heading", level=1)).to_have_text("Sign in")

        # Disable, then enable.
        admin.get_by_role("link", name="Back to administration").click()
        confirm(admin, f"Disable {NEWCOMER}", f"Yes, disable {NEWCOMER}")
        expect(admin.get_by_role("status")).to_have_text(f"{NEWCOMER} is disabled.")
        expect(row).to_contain_text("disabled")
        screenshots(admin, "admin")
        confirm(admin, f"Enable {NEWCOMER}", f"Yes, enable {NEWCOMER}")
        expect(admin.get_by_role("status")).to_have_text(
            f"{NEWCOMER} is enabled and can sign in again."
        )
        expect(admin.get_by_role("button", name=f"Disable {NEWCOMER}")).to_be_visible()

        # The navigator comes back with the new temporary password, and chooses again.
        sign_in_as(newcomer, NEWCOMER, second)
        expect(newcomer.get_by_role("heading", level=1)).to_have_text("Choose your password")
    finally:
        admin_context.close()
        newcomer_context.close()
