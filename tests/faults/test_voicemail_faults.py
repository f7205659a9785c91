"""The voicemail fault scenario: callers leave messages to a running `phoneline serve` while a
separate `phoneline worker` copies their audio from a fake Twilio that answers 500, then stalls
in the middle of a download (half the audio sent, then nothing), while the worker is killed
(`kill -9`) mid-download and started again. The ledger holds every message the line said it
got ("We got your message") against the database and what Twilio was asked: none lost, none
doubled, every copy the audio Twilio served, every recording deleted at Twilio once, and only
after its copy was stored; every caller on the worklist with their message."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from bench.harness import ACCOUNT_SID, caller_number, next_action
from tests.audio import mp3_of
from tests.faults.lab import Ledger, Line, Twilio, engine_for, rows
from tests.faults.test_faults import ARTIFACTS, LONG, backends, start_line
from tests.ops.fake_twilio import FakeTwilio

pytestmark = [pytest.mark.faults]

MESSAGES = 60 if LONG else 9


@dataclass
class MessageLedger:
    acknowledged: dict[str, str] = field(default_factory=dict)
    """RecordingSid -> the caller, for each message the caller was told was received."""
    audio: dict[str, bytes] = field(default_factory=dict)


async def leave_messages(
    twilio: Twilio, fake: FakeTwilio, ledger: MessageLedger, first: int, count: int
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for index in range(first, first + count):
            await leave_one(twilio, fake, ledger, client, index)


async def leave_one(
    twilio: Twilio, fake: FakeTwilio, ledger: MessageLedger, client: httpx.AsyncClient, index: int
) -> None:
    sid, caller = f"CA{index:032x}", caller_number(index)
    recording = f"RE{index:032x}"
    base = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": twilio.number_for(caller),
        "CallStatus": "in-progress",
    }
    audio = mp3_of(6 + index % 5, index)
    fake.add_recording(recording, mp3=audio)
    ledger.audio[recording] = audio
    response = await twilio.post(client, "/twilio/voice", base)
    for params in ({"Digits": "0"}, {"DialCallStatus": "no-answer"}, {"Digits": "3"}):
        action = next_action(response.text) if response is not None else None
        if action is None:
            return
        response = await twilio.post(client, action, {**base, **params})
    action = next_action(response.text) if response is not None else None
    if action is None or "<Record" not in (response.text if response else ""):
        return
    recorded = {
        "RecordingSid": recording,
        "RecordingDuration": str(6 + index % 5),
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording}",
        "Digits": "#",
    }
    response = await twilio.post(client, action, {**base, **recorded})
    if response is not None and "We got your message" in response.text:
        ledger.acknowledged[recording] = caller
    status = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "RecordingSid": recording,
        "RecordingStatus": "completed",
        "RecordingDuration": recorded["RecordingDuration"],
    }
    await twilio.post(client, "/twilio/voice/recording", status)
    fake.register_call(sid, "completed", 60, caller, base["To"])
    await twilio.post(
        client, "/twilio/voice/status", {**base, "CallStatus": "completed", "CallDuration": "60"}
    )


def wait_until_copied(url: str, expected: int, timeout: float = 180) -> list[tuple[str, ...]]:
    engine = engine_for(url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = rows(
                engine,
                "SELECT v.recording_sid, v.state, v.phone, a.content, v.attempts "
                "FROM voicemails v LEFT JOIN voicemail_audio a ON a.sha256 = v.audio_sha256",
            )
            done = [row for row in found if row[1] == "done"]
            if len(done) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", backends("postgres"))
def test_messages_survive_twilio_500_a_stalled_download_and_a_killed_worker(
    backend: str,
    database_url: str,
    tmp_path: Path,
    fake: FakeTwilio,
    lines: list[Line],
) -> None:
    line = start_line(
        lines, database_url, tmp_path, fake, workers=1, separate_worker=True,
        OUTBOX_FIRST_RETRY_SECONDS="1", OUTBOX_STALE_SECONDS="12",
    )  # fmt: skip
    ledger = MessageLedger()
    twilio = Twilio([line.base_url], Ledger(), fake, numbers=line.numbers)
    third = MESSAGES // 3

    fake.fail(500)
    asyncio.run(leave_messages(twilio, fake, ledger, 700_000, third))
    time.sleep(3)  # downloads answered 500: tried again, nothing deleted
    assert fake.deleted_recordings == []
    fake.recover()
    fake.stall_downloads()
    asyncio.run(leave_messages(twilio, fake, ledger, 700_100, third))
    time.sleep(4)  # a download has half its audio and waits for the rest
    line.kill_worker()
    fake.recover()
    line.start_worker()
    asyncio.run(leave_messages(twilio, fake, ledger, 700_200, MESSAGES - 2 * third))

    found = wait_until_copied(database_url, len(ledger.acknowledged))
    by_sid: dict[str, list[tuple[str, ...]]] = {}
    for row in found:
        by_sid.setdefault(row[0], []).append(row)
    lost = [sid for sid in ledger.acknowledged if sid not in by_sid]
    doubled = [sid for sid, found_rows in by_sid.items() if len(found_rows) > 1]
    wrong = [
        sid
        for sid, ((_, state, phone, content, _),) in by_sid.items()
        if state != "done" or content != ledger.audio[sid] or phone != ledger.acknowledged.get(sid)
    ]
    deleted = fake.deleted_recordings
    twice = sorted({sid for sid in deleted if deleted.count(sid) > 1})
    unacknowledged = [sid for sid in by_sid if sid not in ledger.acknowledged]
    engine = engine_for(database_url)
    try:
        filed = {
            phone
            for (phone,) in rows(
                engine,
                "SELECT f.phone FROM follow_ups f JOIN follow_up_sources s "
                "ON s.follow_up_id = f.id WHERE s.kind = 'voicemail'",
            )
        }
    finally:
        engine.dispose()
    attempts = sum(int(row[4]) for row in found)
    row = (
        f"| voicemail: Twilio 500, a stalled download, the worker killed ({backend}) "
        f"| {len(ledger.acknowledged)} messages | lost {len(lost)} | doubled {len(doubled)} "
        f"| wrong {len(wrong)} | deleted at Twilio twice {len(twice)} | attempts {attempts} |\n"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "faults.md", "a", encoding="utf-8") as table:
        table.write(row)
    assert len(ledger.acknowledged) == MESSAGES, "every caller was told their message was received"
    assert (lost, doubled, wrong, twice, unacknowledged) == ([], [], [], [], []), row
    assert sorted(deleted) == sorted(ledger.acknowledged)
    assert filed == set(ledger.acknowledged.values())
    assert attempts > MESSAGES  # the faults were met: some copies took more than one try
