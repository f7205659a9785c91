"""`phoneline twilio configure` against a fake Twilio REST API over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, running_fake_twilio

PHONELINE = str(Path(sys.executable).parent / "phoneline")
NUMBER = "+18045550100"
PUBLIC = "https://line.example.org"


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with running_fake_twilio() as fake:
        yield fake


def phoneline(
    tmp_path: Path, *args: str, fake: FakeTwilio | None = None, credentials: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TWILIO_") and key != "PUBLIC_BASE_URL"
    }
    if fake is not None:
        env["TWILIO_API_BASE"] = fake.base_url
    if credentials:
        env |= {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    return subprocess.run(
        [PHONELINE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_configure_posts_the_webhook_urls_to_the_number(tmp_path: Path, fake: FakeTwilio) -> None:
    other = fake.add_number("+18045550199")
    sid = fake.add_number(NUMBER, voice_application_sid="AP" + "2" * 32)
    result = phoneline(
        tmp_path,
        "twilio",
        "configure",
        "--number",
        "(804) 555-0100",
        "--public-url",
        PUBLIC,
        fake=fake,
    )
    assert result.returncode == 0, result.stderr
    lookups = [r for r in fake.requests if r.method == "GET"]
    assert [r.query["PhoneNumber"] for r in lookups] == [[NUMBER]]
    (update,) = fake.posts("IncomingPhoneNumbers/" + sid + ".json")
    assert update.form == {
        "VoiceUrl": [f"{PUBLIC}/twilio/voice"],
        "VoiceMethod": ["POST"],
        "VoiceFallbackUrl": [f"{PUBLIC}/twilio/fallback"],
        "VoiceFallbackMethod": ["POST"],
        "StatusCallback": [f"{PUBLIC}/twilio/voice/status"],
        "StatusCallbackMethod": ["POST"],
        "SmsUrl": [f"{PUBLIC}/twilio/sms"],
        "SmsMethod": ["POST"],
        "VoiceApplicationSid": [""],
    }
    assert not fake.posts(other + ".json")
    assert fake.numbers[sid]["voice_url"] == f"{PUBLIC}/twilio/voice"
    assert f"updated {NUMBER} ({sid})" in result.stdout
    assert f"voice_url                {PUBLIC}/twilio/voice" in result.stdout
    assert "cleared voice application" in result.stdout


def test_a_trailing_slash_in_the_public_url_makes_no_double_slash(
    tmp_path: Path, fake: FakeTwilio
) -> None:
    sid = fake.add_number(NUMBER)
    result = phoneline(
        tmp_path,
        "twilio",
        "configure",
        "--number",
        NUMBER,
        "--public-url",
        PUBLIC + "/",
        fake=fake,
    )
    assert result.returncode == 0, result.stderr
    (update,) = fake.posts(sid + ".json")
    assert update.field("SmsUrl") == f"{PUBLIC}/twilio/sms"
    assert "VoiceApplicationSid" not in update.form


def test_dry_run_prints_and_sends_nothing(tmp_path: Path, fake: FakeTwilio) -> None:
    fake.add_number(NUMBER)
    result = phoneline(
        tmp_path,
        "twilio",
        "configure",
        "--number",
        NUMBER,
        "--public-url",
        PUBLIC,
        "--dry-run",
        fake=fake,
    )
    assert result.returncode == 0, result.stderr
    assert fake.requests == []
    assert "dry run" in result.stdout
    for line in (
        f"voice_url                {PUBLIC}/twilio/voice",
        f"voice_fallback_url       {PUBLIC}/twilio/fallback",
        f"status_callback          {PUBLIC}/twilio/voice/status",
        f"sms_url                  {PUBLIC}/twilio/sms",
        "voice_method             POST",
        "sms_method               POST",
    ):
        assert line in result.stdout


def test_missing_credentials_is_a_clear_error(tmp_path: Path, fake: FakeTwilio) -> None:
    result = phoneline(
        tmp_path,
        "twilio",
        "configure",
        "--number",
        NUMBER,
        "--public-url",
        PUBLIC,
        fake=fake,
        credentials=False,
    )
    assert result.returncode == 1
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set" in result.stderr
    assert fake.requests == []


def test_a_number_not_on_the_account(tmp_path: Path, fake: FakeTwilio) -> None:
    fake.add_number("+18045550199")
    result = phoneline(
        tmp_path, "twilio", "configure", "--number", NUMBER, "--public-url", PUBLIC, fake=fake
    )
    assert result.returncode == 1
    assert f"{NUMBER} is not a number on Twilio account {ACCOUNT_SID}" in result.stderr
    assert not [r for r in fake.requests if r.method == "POST"]


def test_wrong_credentials_and_unreachable_twilio(tmp_path: Path, fake: FakeTwilio) -> None:
    fake.add_number(NUMBER)
    env_token = {"TWILIO_AUTH_TOKEN": "wrong"}
    result = subprocess.run(
        [PHONELINE, "twilio", "configure", "--number", NUMBER, "--public-url", PUBLIC],
        cwd=tmp_path,
        env={
            **os.environ,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_API_BASE": fake.base_url,
            **env_token,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Twilio refused" in result.stderr
    assert "Traceback" not in result.stderr
    result = subprocess.run(
        [PHONELINE, "twilio", "configure", "--number", NUMBER, "--public-url", PUBLIC],
        cwd=tmp_path,
        env={
            **os.environ,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE": "http://127.0.0.1:9",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "could not reach Twilio" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--number", "not-a-number", "--public-url", PUBLIC], "is not a phone number"),
        (["--number", NUMBER, "--public-url", "http://line.example.org"], "https://"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = phoneline(tmp_path, "twilio", "configure", *args)
    assert result.returncode != 0
    assert message in result.stderr
