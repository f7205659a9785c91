"""Voicemail end to end, on SQLite and PostgreSQL: a caller whose transfer went unanswered
leaves a message (signed webhooks: the `<Record>` action, then Twilio's recording status
callback), the fetcher copies the audio from a fake Twilio over real HTTP and deletes Twilio's
copy once ours is verified, the worklist shows the item, a navigator plays it (each listen
audited), nobody else gets a byte of it, and purge removes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from service.channels.sender import TwilioSender
from service.config import Settings
from service.db import Database
from service.followups.sweep import sweep_follow_ups
from service.models import (
    AuditEntry,
    FollowUp,
    FollowUpSource,
    StaffUser,
    Voicemail,
    VoicemailAudio,
    utcnow,
)
from service.purge import purge
from service.staff.auth import limit_to_lines
from service.voicemail.fetch import Fetcher, NotAudio, verified_audio
from tests.audio import mp3_of, wav_of
from tests.lines.test_two_lines import app  # noqa: F401
from tests.ops.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, running_fake_twilio
from tests.staff.conftest import (  # noqa: F401
    ADMIN,
    LINE,
    VIEWER,
    clock,
    password_hash,
    signed_in,
    staff_app,
)
from tests.support import AppClient, app_client
from tests.voice.caller import Caller

RECORDING = "RE" + "4" * 32
CALL = "CA" + "4" * 32
CALLER = "+18045551234"
NAVIGATOR = "nina"


@pytest.fixture
def fake() -> FakeTwilio:
    with running_fake_twilio() as fake:
        yield fake


def fetcher_for(fake: FakeTwilio, database: Database, audio_format: str = "wav") -> Fetcher:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=fake.base_url,
    )
    return Fetcher(
        TwilioSender(settings, timeout=2),
        audio_format=audio_format,
        first_retry=timedelta(0),
        database=lambda: database,
    )


def leave_a_message(client: AppClient, seconds: int = 14) -> Caller:
    """A call to the shipped line: 0, nobody answers, 3 (leave a message), the recording."""
    caller = Caller(client, call_sid=CALL, caller=CALLER, called=LINE)
    caller.call()
    caller.press("0")
    retry = caller.dial_ends("no-answer")
    assert "To leave a message, press 3." in retry.words
    heard = caller.press("3")
    assert heard.record is not None
    assert heard.record["recordingStatusCallback"].endswith("/twilio/voice/recording")
    assert heard.record["maxLength"] == "120" and heard.record["finishOnKey"] == "#"
    assert heard.record["trim"] == "trim-silence" and heard.record["playBeep"] == "true"
    done = caller.post(
        caller.url,
        RecordingSid=RECORDING,
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}",
        RecordingDuration=str(seconds),
        Digits="#",
    )
    assert done.hangup
    assert done.words[0] == (
        "Thank you. We got your message. A staff member will call you back as soon as they can."
    )
    return caller


def report_recording(client: AppClient, status: str = "completed", seconds: int = 14) -> int:
    response = client.twilio(
        "/twilio/voice/recording",
        {
            "CallSid": CALL,
            "RecordingSid": RECORDING,
            "RecordingStatus": status,
            "RecordingDuration": str(seconds),
            "RecordingChannels": "1",
            "RecordingSource": "RecordVerb",
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}",
        },
    )
    return response.status_code


def the_voicemail(database: Database) -> Voicemail:
    with database.session() as session:
        found = session.scalars(select(Voicemail)).one()
        session.expunge(found)
        return found


def test_a_message_reaches_the_worklist_and_only_its_navigators_hear_it(
    staff_app: FastAPI,  # noqa: F811
    database: Database,
    fake: FakeTwilio,
) -> None:
    audio = wav_of(14)
    fake.add_recording(RECORDING, wav=audio)
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
    with app_client(staff_app) as client:
        leave_a_message(client)
        # The same report twice (Twilio retries) makes one message.
        assert report_recording(client) == 204
        assert report_recording(client) == 204
    message = the_voicemail(database)
    assert (message.phone, message.contact, message.language) == (CALLER, "coordinator", "en")
    assert (message.seconds, message.twilio_status, message.state) == (14, "completed", "waiting")

    fetcher = fetcher_for(fake, database)
    assert fetcher.run() == 1
    message = the_voicemail(database)
    assert message.state == "done" and message.deleted_at_twilio is not None
    assert fake.deleted_recordings == [RECORDING]
    downloads = fake.requested("GET", f"/Recordings/{RECORDING}.wav")
    assert len(downloads) == 1 and downloads[0].authorization.startswith("Basic ")
    assert fetcher.run() == 0  # nothing left to do

    with database.session() as session:
        sweep_follow_ups(session, utcnow())
        item = session.scalars(select(FollowUp)).one()
        reasons = set(session.scalars(select(FollowUpSource.reason)))
    assert item.phone == CALLER and reasons == {"missed-transfer", "left-voicemail"}

    audio_url = f"/staff/voicemails/{message.id}/audio"
    with app_client(staff_app) as client:
        signed_in(client, NAVIGATOR)
        page = client.get(f"/staff/follow-ups/{item.id}")
        assert page.status_code == 200
        assert "Left a voicemail" in page.text and "Messages left" in page.text
        assert f'<audio controls preload="none" src="{audio_url}"' in page.text
        assert "14 seconds" in page.text
        played = client.get(audio_url)
        assert played.status_code == 200 and played.content == audio
        assert played.headers["content-type"] == "audio/wav"
        assert "no-store" in played.headers["cache-control"]
        assert "media-src 'self'" in page.headers["content-security-policy"]
    with database.session() as session:
        listens = session.scalars(select(AuditEntry).where(AuditEntry.action == "listen")).all()
    assert [entry.actor for entry in listens] == [NAVIGATOR]
    assert CALLER not in listens[0].detail and "1234" in listens[0].detail

    with app_client(staff_app) as client:  # nobody signed in: the sign-in page, no audio
        anonymous = client.get(audio_url)
        assert anonymous.status_code in (302, 303) and audio not in anonymous.content
    with app_client(staff_app) as client:  # a viewer reads the list but hears nothing
        signed_in(client, VIEWER)
        refused = client.get(audio_url)
        assert refused.status_code == 403 and audio not in refused.content
        assert "<audio" not in client.get(f"/staff/follow-ups/{item.id}").text

    report = purge(database, timedelta(0), now=utcnow() + timedelta(days=1))
    assert report.voicemails == 1
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Voicemail)) == 0
        assert session.scalar(select(func.count()).select_from(VoicemailAudio)) == 0
    with app_client(staff_app) as client:
        signed_in(client, ADMIN)
        assert client.get(audio_url).status_code == 404


def test_a_navigator_of_another_line_gets_no_audio(
    app: FastAPI,  # noqa: F811
    database: Database,
    fake: FakeTwilio,
) -> None:
    with database.session() as session:
        session.add(StaffUser(username=NAVIGATOR, password_hash=password_hash(), role="navigator"))
        session.flush()
        limit_to_lines(session, NAVIGATOR, ["clinical-trials"])
    fake.add_recording(RECORDING, wav=wav_of(5))
    with app_client(app) as client:
        leave_a_message(client, seconds=5)
        assert report_recording(client, seconds=5) == 204
        assert app.state.spool.drain(15)
    fetcher_for(fake, database).run()
    message = the_voicemail(database)
    assert message.audio_sha256 is not None
    with app_client(app) as client:
        signed_in(client, NAVIGATOR)
        answer = client.get(f"/staff/voicemails/{message.id}/audio")
        assert answer.status_code == 404 and b"RIFF" not in answer.content


def test_twilio_failing_then_serving_the_recording_loses_nothing(
    staff_app: FastAPI,  # noqa: F811
    database: Database,
    fake: FakeTwilio,
) -> None:
    audio = mp3_of(9)
    fake.add_recording(RECORDING, mp3=audio)
    with app_client(staff_app) as client:
        leave_a_message(client, seconds=9)
    fetcher = fetcher_for(fake, database, "mp3")
    # The status callback never came: the message is asked for after a while anyway.
    assert fetcher.run() == 0
    with database.session() as session:
        row = session.scalars(select(Voicemail)).one()
        row.left_at -= timedelta(minutes=1)
    fake.fail(500)
    assert fetcher.run() == 1
    waiting = the_voicemail(database)
    assert waiting.state == "waiting" and "500" in (waiting.last_error or "")
    assert fake.deleted_recordings == []  # Twilio keeps it: we have no copy
    fake.recover()
    fake.add_recording(RECORDING, mp3=b"<html>Service unavailable</html>")  # a 200 that lies
    fetcher.run()
    assert the_voicemail(database).state == "waiting"
    assert fake.deleted_recordings == []
    fake.add_recording(RECORDING, mp3=audio)
    fetcher.run()
    done = the_voicemail(database)
    assert done.state == "done" and done.attempts == 3
    assert fake.deleted_recordings == [RECORDING]
    with database.session() as session:
        kept = session.scalars(select(VoicemailAudio)).one()
    assert kept.content == audio and kept.content_type == "audio/mpeg"


def test_a_recording_twilio_made_nothing_of_is_absent_and_still_on_the_worklist(
    staff_app: FastAPI,  # noqa: F811
    database: Database,
    fake: FakeTwilio,
) -> None:
    with app_client(staff_app) as client:
        leave_a_message(client, seconds=1)
        assert report_recording(client, "absent", 0) == 204
        assert report_recording(client, "in-progress") == 204  # says nothing to keep
    message = the_voicemail(database)
    assert message.state == "absent"
    assert fetcher_for(fake, database).run() == 0
    with database.session() as session:
        sweep_follow_ups(session, utcnow())
        assert session.scalars(select(FollowUpSource.reason)).all().count("left-voicemail") == 1


def test_the_recording_callback_needs_twilios_signature_and_a_recording_sid(
    staff_app: FastAPI,  # noqa: F811
) -> None:
    with app_client(staff_app) as client:
        forged = client.twilio(
            "/twilio/voice/recording",
            {"CallSid": CALL, "RecordingSid": RECORDING, "RecordingStatus": "completed"},
            token="not-the-token",
        )
        assert forged.status_code == 403
        unnamed = client.twilio(
            "/twilio/voice/recording", {"CallSid": CALL, "RecordingStatus": "completed"}
        )
        assert unnamed.status_code == 400


@pytest.mark.parametrize(
    ("content", "audio_format"),
    [
        (b"", "wav"),
        (b"hello, this is a text file renamed .wav\n" * 50, "wav"),
        (wav_of(3), "mp3"),
        (mp3_of(3), "wav"),
        (wav_of(600, rate=8000), "wav"),  # ten minutes: not a message
    ],
)
def test_what_is_not_a_message_of_the_format_asked_for_is_refused(
    content: bytes, audio_format: str
) -> None:
    with pytest.raises(NotAudio):
        verified_audio(content, audio_format)


def test_a_message_lasts_what_its_audio_says() -> None:
    assert verified_audio(wav_of(14), "wav") == pytest.approx(14, abs=0.1)
    assert verified_audio(mp3_of(9), "mp3") == pytest.approx(9, abs=0.2)


def test_a_clinic_that_keeps_twilios_copy_gets_no_delete(
    staff_app: FastAPI,  # noqa: F811
    database: Database,
    fake: FakeTwilio,
) -> None:
    fake.add_recording(RECORDING, wav=wav_of(4))
    with app_client(staff_app) as client:
        leave_a_message(client, seconds=4)
        assert report_recording(client, seconds=4) == 204
    keeping = fetcher_for(fake, database)
    keeping.delete_at_twilio = False
    assert keeping.run() == 1
    kept = the_voicemail(database)
    assert kept.state == "done" and kept.audio_sha256 and kept.deleted_at_twilio is None
    assert fake.deleted_recordings == [] and fake.requested("DELETE", ".json") == []


def test_a_failed_copy_is_tried_again_after_30_s_then_twice_as_long_at_most_hourly() -> None:
    from service.voicemail.fetch import backoff

    waits = [backoff(attempt).total_seconds() for attempt in (1, 2, 3, 4, 8, 30)]
    assert waits == [30, 60, 120, 240, 3600, 3600]
