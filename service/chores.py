"""Work a worker does beside its own, at most every so often (`Chore`): the outbox worker
runs its chores after each tick (calls reconciled with Twilio, voicemails copied from it); and
how long work that failed waits before it is tried again (`backoff`: texts, call-backs,
voicemails)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)


def backoff(attempt: int, first: timedelta = FIRST_RETRY, cap: timedelta = MAX_RETRY) -> timedelta:
    """Wait before attempt `attempt + 1`: first, 2x first, 4x first... at most `cap` (and no
    overflow however many attempts: a voicemail is tried for as long as it takes)."""
    delay: timedelta = first * (2 ** max(0, min(attempt, 32) - 1))
    return min(delay, cap)


@dataclass
class Chore:
    """`run`, at most every `every` seconds (calling it sooner does nothing)."""

    run: Callable[[], object]
    every: float
    _next: float = 0.0

    def __call__(self) -> None:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every
            self.run()
