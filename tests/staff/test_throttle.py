"""Sign-in throttling: guessing is slowed per (username, address), per address and during a
flood, and no stranger can lock the owner of an account out (SPEC section 6; README, "Going
live")."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from service.audit import record_audit
from service.db import Database
from service.main import create_app
from service.models import AuditEntry
from service.staff.auth import FLOOD_FAILURES, SIGN_IN_FAILED, SignInResult, sign_in
from tests.staff.conftest import ADMIN, PASSWORD, VIEWER, Clock, csrf_of, staff_settings
from tests.support import AppClient, app_client

WRONG = "wrong password 123"


def sign_in_from(
    client: AppClient, address: str | None, username: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in through the trusted proxy (the test client's 127.0.0.1), which forwards
    `address` as the client's; None: straight from 127.0.0.1."""
    headers = {"X-Forwarded-For": address} if address else {}
    form = client.get("/staff/login")
    return client.post(
        "/staff/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form)},
        headers=headers,
    )


def failures(database: Database) -> list[tuple[str, str | None, str | None]]:
    with database.session(read_only=True) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == SIGN_IN_FAILED).order_by(AuditEntry.id)
        )
        return [(e.actor, e.client_address, e.detail) for e in entries]


def throttled_count(limit: str, flood: str) -> float:
    value = REGISTRY.get_sample_value(
        "phoneline_staff_sign_ins_throttled_total", {"limit": limit, "flood": flood}
    )
    return value or 0.0


def test_five_failures_make_that_address_wait_for_that_username(
    client: AppClient, clock: Clock, database: Database
) -> None:
    for _ in range(5):
        assert sign_in_from(client, None, VIEWER, WRONG).status_code == 401
    response = sign_in_from(client, None, VIEWER)  # even the right password, from here
    assert response.status_code == 429
    assert "Too many failed sign-ins from here. Wait 1 minute, then try again" in response.text
    assert response.headers["Retry-After"] == "60"
    assert sign_in_from(client, None, ADMIN).status_code == 303  # another account: not slowed
    clock.advance(minutes=1, seconds=1)
    assert sign_in_from(client, None, VIEWER).status_code == 303
    assert len(failures(database)) == 5  # the refused attempt was not checked, nor audited


def test_concurrent_attempts_from_one_address_are_checked_one_at_a_time(
    staff_app: FastAPI, database: Database, clock: Clock
) -> None:
    """Twelve wrong passwords sent at the same moment (as a script would) from one address: five
    are checked and audited, the rest refused by the limit. Checked all at once, every one of
    them would have passed the limit before any failure was written."""
    start = threading.Barrier(12)
    results: list[SignInResult] = []

    def attempt() -> None:
        start.wait()
        with database.session() as session:
            results.append(sign_in(session, VIEWER, WRONG, "203.0.113.9", clock()))

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures(database)) == 5
    assert sum(result.throttle is not None for result in results) == 7
    assert all(result.user is None for result in results)


def test_the_wait_doubles_with_each_further_failure_up_to_fifteen_minutes(
    client: AppClient, clock: Clock
) -> None:
    for _ in range(5):
        sign_in_from(client, None, VIEWER, WRONG)
    waits = []
    for _ in range(6):
        response = sign_in_from(client, None, VIEWER, WRONG)
        assert response.status_code == 429
        waits.append(int(response.headers["Retry-After"]))
        clock.advance(seconds=waits[-1])
        assert sign_in_from(client, None, VIEWER, WRONG).status_code == 401
    assert waits == [60, 120, 240, 480, 900, 900]


@pytest.mark.parametrize("attempts", [5, 50])
def test_failures_from_other_addresses_never_lock_the_owner_out(
    client: AppClient, database: Database, attempts: int
) -> None:
    for n in range(attempts):
        response = sign_in_from(client, f"198.51.100.{n % 250}", ADMIN, f"guess number {n}")
        assert response.status_code in (401, 429)
    assert sign_in_from(client, "203.0.113.77", ADMIN).status_code == 303  # the owner
    recorded = failures(database)
    assert recorded[0] == (ADMIN, "198.51.100.0", "wrong password")
    assert len(recorded) == attempts  # each one checked was audited, with its address


def test_a_success_clears_the_count_of_that_address(client: AppClient, clock: Clock) -> None:
    for _ in range(4):
        sign_in_from(client, None, VIEWER, WRONG)
    clock.advance(seconds=1)
    assert sign_in_from(client, None, VIEWER).status_code == 303
    clock.advance(seconds=1)
    for _ in range(4):
        assert sign_in_from(client, None, VIEWER, WRONG).status_code == 401


def test_twenty_failures_for_any_usernames_make_an_address_wait(
    client: AppClient, clock: Clock
) -> None:
    for n in range(20):
        assert sign_in_from(client, "192.0.2.10", f"guess{n}", WRONG).status_code == 401
    before = throttled_count("address", "false")
    response = sign_in_from(client, "192.0.2.10", VIEWER)
    assert response.status_code == 429
    assert throttled_count("address", "false") == before + 1
    assert sign_in_from(client, "192.0.2.11", VIEWER).status_code == 303  # the next address
    clock.advance(minutes=1, seconds=1)
    assert sign_in_from(client, "192.0.2.10", VIEWER).status_code == 303


@pytest.fixture
def untrusted_client(staff_app: FastAPI, database: Database, tmp_path: Path) -> Iterator[AppClient]:
    """A client whose peer (127.0.0.1) is not a trusted proxy of this app."""
    url = database.url.render_as_string(hide_password=False)
    app = create_app(staff_settings(tmp_path, url, trusted_proxies="10.1.2.3"))
    app.state.staff_clock = staff_app.state.staff_clock
    with app_client(app) as client:
        yield client


def test_x_forwarded_for_from_an_untrusted_peer_does_not_rotate_the_address(
    untrusted_client: AppClient, database: Database
) -> None:
    for n in range(20):
        response = sign_in_from(untrusted_client, f"198.51.100.{n}", f"guess{n}", WRONG)
        assert response.status_code == 401
    assert sign_in_from(untrusted_client, "198.51.100.99", VIEWER).status_code == 429
    assert {address for _, address, _ in failures(database)} == {"127.0.0.1"}


def test_a_flood_from_many_addresses_slows_everyone_only_a_little(
    client: AppClient, clock: Clock, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with database.session() as session:  # a flood: as many failures as the ceiling, just now
        for n in range(FLOOD_FAILURES):
            record_audit(
                session,
                ADMIN,
                SIGN_IN_FAILED,
                "wrong password",
                client_address=f"10.{n // 250}.{n % 250}.1",
                at=clock.now,
            )
    clock.advance(seconds=1)
    assert sign_in_from(client, "203.0.113.5", ADMIN).status_code == 303  # first try: let in
    # A typo during the flood makes that address wait a minute for that username.
    before = throttled_count("pair", "true")
    assert sign_in_from(client, "203.0.113.6", VIEWER, WRONG).status_code == 401
    response = sign_in_from(client, "203.0.113.6", VIEWER)
    assert response.status_code == 429
    assert "Wait 1 minute" in response.text
    assert throttled_count("pair", "true") == before + 1
    assert "staff sign-in throttled (limit pair, during a flood of failed sign-ins)" in caplog.text
    clock.advance(minutes=1, seconds=1)
    assert sign_in_from(client, "203.0.113.6", VIEWER).status_code == 303
    # The flood is over five minutes later: one failure no longer makes anyone wait.
    clock.advance(minutes=5)
    assert sign_in_from(client, "203.0.113.7", VIEWER, WRONG).status_code == 401
    assert sign_in_from(client, "203.0.113.7", VIEWER).status_code == 303
