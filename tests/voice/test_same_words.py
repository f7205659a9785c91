"""`phoneline simulate` and the voice webhooks say the same words for the same path: both render
the engine's effects with `render_voice`, and nothing else adds words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import AppClient
from tests.voice.caller import Caller
from tests.voice.conftest import REPO_ROOT

PHONELINE = Path(sys.executable).with_name("phoneline")

PATHS = {
    "coordinator, unanswered, then a person": ["2", "1", "1", "no-answer", "0", "completed"],
    "library, second line": ["2", "2", "1", "no-answer", "completed"],
    "spanish, wrong key, silences": ["9", "3", "7", "", "", "", "busy", ""],
    "text me, then star and pound": ["2", "8", "*", "#", "4", "1", "1", "1"],
    "speech": ["find another doctor", "cancer information", "mumble", "operator", "canceled"],
}


def simulate(entries: list[str]) -> list[list[str]]:
    """The words `phoneline simulate` prints, one list per turn (annotations left out)."""
    env = {**os.environ, "FLOWS_DIR": str(REPO_ROOT / "flows")}
    result = subprocess.run(
        [str(PHONELINE), "simulate"],
        input="".join(entry + "\n" for entry in entries),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
        check=True,
    )
    turns: list[list[str]] = [[]]
    for line in result.stdout.splitlines():
        if line.startswith("> "):
            turns.append([])
        elif not line.startswith(("[", "(how did the transfer end?")):
            turns[-1].append(line)
    return turns


@pytest.mark.parametrize("entries", list(PATHS.values()), ids=list(PATHS))
def test_the_webhooks_say_what_the_simulator_says(client: AppClient, entries: list[str]) -> None:
    simulated = simulate(entries)
    caller = Caller(client)
    webhooks = [caller.call().words]
    for entry in entries:
        if caller.last is not None and caller.last.hangup:
            break
        webhooks.append(caller.act(entry).words)
    assert len(webhooks) == len(simulated)
    for turn, (heard, printed) in enumerate(zip(webhooks, simulated, strict=True)):
        assert heard == printed, f"turn {turn} differs"
