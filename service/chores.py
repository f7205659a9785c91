"""Work a worker does beside its own, at most every so often (`Chore`): the outbox worker
runs its chores after each tick (calls reconciled with Twilio, voicemails copied from it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


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
