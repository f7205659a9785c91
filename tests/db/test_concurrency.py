"""Several processes writing to one database at once lose nothing."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize

from sqlalchemy import func, select

from service.db import Database
from service.models import Call, CallEvent
from tests.recorder import Recorder

CALLS_PER_PROCESS = 200


def record_calls(url: str, prefix: str, start: multiprocessing.synchronize.Event) -> None:
    """Runs in a child process, with its own engine."""
    database = Database(url)
    recorder = Recorder(database)
    try:
        start.wait(30)
        for number in range(CALLS_PER_PROCESS):
            sid = f"CA{prefix}{number:04d}"
            recorder.call_started(sid, "+18045550100", "+18048287999", language="en")
            recorder.call_event(sid, "menu", node="main")
            recorder.call_status(sid, "completed", duration=number)
    finally:
        database.dispose()


def test_two_processes_recording_calls_at_once_lose_nothing(database: Database) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    url = database.url.render_as_string(hide_password=False)
    processes = [context.Process(target=record_calls, args=(url, prefix, start)) for prefix in "AB"]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(120)

    assert [process.exitcode for process in processes] == [0, 0]
    with database.session() as session:
        calls = session.scalar(select(func.count()).select_from(Call))
        events = session.scalar(select(func.count()).select_from(CallEvent))
        finished = session.scalar(
            select(func.count()).select_from(Call).where(Call.status == "completed")
        )
    assert calls == 2 * CALLS_PER_PROCESS
    assert events == 2 * CALLS_PER_PROCESS
    assert finished == 2 * CALLS_PER_PROCESS
