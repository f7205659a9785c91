"""Webhooks carry Twilio's identity or are refused (issue 13): a signed request re-cut into
other parameters, a replay, another account's request. Signed with twilio's RequestValidator."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.main import create_app
from service.models import OptOut, OutboxMessage
from tests.sms.conftest import ACCOUNT_SID, LINE, TEXTER, Texter
from tests.support import AppClient, twilio_signature

SID = "SM" + "ab12" * 8


def captured_call_text() -> dict[str, str]:
    """What Twilio sent for a patient's `CALL` (an attacker captured it, signature and all)."""
    return {
        "AccountSid": ACCOUNT_SID,
        "Body": "CALL",
        "From": TEXTER,
        "MessageSid": SID,
        "NumMedia": "0",
        "SmsSid": SID,
        "To": LINE,
    }


def recut(params: dict[str, str]) -> dict[str, str]:
    """The same bytes under the same signature, cut into other names: Twilio signs the names
    and values run together, so `MessageSid`+`SMx`+`NumMedia`+`0`+`SmsSid`+`SMx` can be sent
    as one parameter `MessageSi` = `dSMxNumMedia0SmsSidSMx`."""
    recut = {k: v for k, v in params.items() if k not in ("MessageSid", "NumMedia", "SmsSid")}
    recut["MessageSi"] = f"d{SID}NumMedia0SmsSid{SID}"
    return recut


def post_with_signature(
    client: AppClient, path: str, params: dict[str, str], signature: str
) -> int:
    response = client.post(
        path,
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    return response.status_code


def call_backs(database: Database) -> int:
    with database.session() as session:
        return len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "call")).all())


def test_a_recut_replay_carries_the_same_signature_and_is_refused(
    client: AppClient, database: Database
) -> None:
    url = client.base_url + "/twilio/sms"
    original = captured_call_text()
    signature = twilio_signature(url, original)
    assert twilio_signature(url, recut(original)) == signature  # the attack works on paper
    assert post_with_signature(client, "/twilio/sms", original, signature) == 200
    for _ in range(5):
        assert post_with_signature(client, "/twilio/sms", recut(original), signature) == 400
    assert call_backs(database) == 1


def test_an_exact_replay_of_call_places_one_call_back(
    client: AppClient, database: Database
) -> None:
    url = client.base_url + "/twilio/sms"
    original = captured_call_text()
    signature = twilio_signature(url, original)
    for _ in range(5):
        assert post_with_signature(client, "/twilio/sms", original, signature) == 200
    assert call_backs(database) == 1


def test_a_start_replayed_after_stop_does_not_resubscribe(
    client: AppClient, texter: Texter, database: Database
) -> None:
    start_sid = "SM" + "5" * 32
    texter.send("START", sid=start_sid)
    texter.send("STOP")
    texter.send("START", sid=start_sid)  # the captured START, sent again
    with database.session() as session:
        assert session.scalar(select(OptOut.opted_out).where(OptOut.phone == TEXTER)) is True
    assert texter.send("hi") == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/twilio/sms", {"From": TEXTER, "To": LINE, "Body": "CALL"}),
        ("/twilio/sms", {"MessageSid": "SM1", "From": TEXTER, "To": LINE, "Body": "CALL"}),
        ("/twilio/sms", {"MessageSid": "CA" + "1" * 32, "From": TEXTER, "To": LINE}),
        ("/twilio/sms/status", {"MessageSid": "SMx", "MessageStatus": "delivered"}),
        ("/twilio/voice", {"From": TEXTER, "To": LINE}),
        ("/twilio/voice/status", {"CallSid": "CA12", "CallStatus": "completed"}),
        ("/twilio/fallback", {"CallSid": "", "From": TEXTER}),
    ],
)
def test_a_signed_request_without_twilios_identifier_is_a_400(
    client: AppClient, database: Database, path: str, params: dict[str, str]
) -> None:
    assert client.twilio(path, params).status_code == 400
    assert call_backs(database) == 0


def test_another_accounts_request_is_a_400(client: AppClient, database: Database) -> None:
    params = captured_call_text() | {"AccountSid": "AC" + "9" * 32}
    assert client.twilio("/twilio/sms", params).status_code == 400
    voice = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "9" * 32}
    assert client.twilio("/twilio/voice", voice).status_code == 400
    assert call_backs(database) == 0


@pytest.mark.parametrize("status", ["partially_delivered", "read", "canceled", "scheduled"])
def test_every_documented_message_status_is_taken(client: AppClient, status: str) -> None:
    response = client.twilio("/twilio/sms/status", {"MessageSid": SID, "MessageStatus": status})
    assert response.status_code == 204


def test_start_up_warns_when_signatures_cannot_match_behind_a_proxy(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="service.main")
    create_app(settings.model_copy(update={"public_base_url": ""})).state.spool.close()
    assert "PUBLIC_BASE_URL is not" in caplog.text
    caplog.clear()
    configured = {"public_base_url": "https://line.example.org"}
    create_app(settings.model_copy(update=configured)).state.spool.close()
    assert "PUBLIC_BASE_URL is not" not in caplog.text
