"""One line and fifty on `phoneline serve`: the CPU a voice webhook costs with each (the same
within noise: a call finds its line by a dictionary lookup, and the line book is read once a
second however many lines there are), and how soon a `phoneline flows publish` is heard by a
new call.

Two servers on SQLite, as deployed otherwise (`--workers 1`, log level info, the call writer on):
one with the shipped line alone; one with 49 more lines added beside it (each its own number and
flow: the shipped flow renamed, with its own greeting), called on all 50 numbers in turn. They
take turns for ROUNDS saturated rounds (the order alternates), and a server's CPU per webhook is
the median of its rounds (the machine's speed varies from minute to minute). Then on the 50-line
server a line is published PUBLISHES times with `phoneline flows publish` (a process, as an
operator types it), each time with a new greeting, and new calls to its number are made until
one hears it: the time from typing the command, and from the command's return (its commit)."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    ACCOUNT_SID,
    LINE_NUMBER,
    PHONELINE,
    PUBLIC_BASE,
    REPO_ROOT,
    ServerProcess,
    caller_number,
    phoneline_env,
    phoneline_server,
    run_callers,
    sign,
)

LINES = 50
ROUNDS = 5
CALLS = 120
PUBLISHES = 5
SHIPPED = REPO_ROOT / "flows" / "second-opinion.yaml"
GREETING = "Welcome to VCU Massey's Second Opinion Line."


def line_number(n: int) -> str:
    return f"+1804555{2000 + n:04d}"


def line_text(n: int, edition: int = 1) -> str:
    """Line n's flow: the shipped one with its own name, title and greeting."""
    return (
        SHIPPED.read_text(encoding="utf-8")
        .replace("name: second-opinion", f"name: program-{n:02d}")
        .replace("en: VCU Massey Second Opinion Line\n", f"en: VCU Massey Program {n:02d}\n")
        .replace(GREETING, greeting(n, edition))
    )


def greeting(n: int, edition: int) -> str:
    return f"Welcome to program {n:02d}, edition {edition}."


def phoneline(env: dict[str, str], *args: str) -> None:
    subprocess.run([PHONELINE, *args], env=env, check=True, capture_output=True, timeout=120)


def _server(work: Path, name: str) -> ServerProcess:
    env = phoneline_env(
        f"sqlite:///{work / name / 'phoneline.db'}",
        work / f"var-{name}",
        RUN_WORKER_IN_SERVER="false",
        LOG_LEVEL="info",
    )
    return phoneline_server(env, work / f"serve-{name}.log")


def probe_call(base_url: str, number: str, words: str, n: int) -> bool:
    """Call n to `number`, signed: whether its greeting holds `words`. It ends at once,
    completed (so that it leaves no call in progress)."""
    params = {"CallSid": f"CA{n:032x}", "AccountSid": ACCOUNT_SID, "From": caller_number(n),
              "To": number}  # fmt: skip
    answer = ""
    for path, status in (("/twilio/voice", "ringing"), ("/twilio/voice/status", "completed")):
        signed = {**params, "CallStatus": status, "CallDuration": "1"}
        headers = {"X-Twilio-Signature": sign(PUBLIC_BASE + path, signed)}
        response = httpx.post(base_url + path, data=signed, headers=headers, timeout=10)
        answer = answer or response.text
    return words.replace("'", "&apos;") in answer or words in answer


def _wait_heard(base_url: str, number: str, words: str, first: int, timeout: float = 30) -> float:
    started = time.monotonic()
    n = first
    while not probe_call(base_url, number, words, n):
        n += 1
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{words!r} not heard on {number} within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def run_lines(work: Path, rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, Any]:
    one, fifty = _server(work, "one-line"), _server(work, "fifty-lines")
    results: dict[str, Any] = {"lines": LINES, "rounds": rounds, "calls": calls}
    try:
        for server in (one, fifty):
            server.start()
        flows = work / "flows"
        flows.mkdir()
        numbers = [LINE_NUMBER]
        for n in range(1, LINES):
            path = flows / f"program-{n:02d}.yaml"
            path.write_text(line_text(n), encoding="utf-8")
            phoneline(fifty.env, "lines", "add", f"program-{n:02d}", "--flow", str(path),
                      "--number", line_number(n))  # fmt: skip
            numbers.append(line_number(n))
        _wait_heard(fifty.base_url, line_number(LINES - 1), greeting(LINES - 1, 1), 9_000_000)
        for server in (one, fifty):  # warm: every path of the menu once
            asyncio.run(run_callers(server.base_url, 8, 4, first_index=9_100_000))
        cpu: dict[str, list[float]] = {"1": [], str(LINES): []}
        for round_number in range(rounds):
            order = [(one, "1", (LINE_NUMBER,)), (fifty, str(LINES), tuple(numbers))]
            for server, key, called in order[:: 1 if round_number % 2 == 0 else -1]:
                before = server.cpu_seconds()
                timings = asyncio.run(
                    run_callers(server.base_url, calls, 4, numbers=called,
                                first_index=8_000_000 + round_number * calls)
                )  # fmt: skip
                time.sleep(1.5)  # the records of the round are written
                if timings.errors:
                    raise RuntimeError(f"{key} lines: {timings.errors[:3]}")
                spent = server.cpu_seconds() - before
                cpu[key].append(round(1000 * spent / len(timings.latencies), 4))
        results["cpu_ms_per_webhook"] = {key: statistics.median(v) for key, v in cpu.items()}
        results["cpu_ms_per_webhook_rounds"] = cpu
        results["ratio"] = round(
            results["cpu_ms_per_webhook"][str(LINES)] / results["cpu_ms_per_webhook"]["1"], 3
        )
        typed, committed = [], []
        line = 7
        for edition in range(2, 2 + PUBLISHES):
            path = flows / f"program-{line:02d}-{edition}.yaml"
            path.write_text(line_text(line, edition), encoding="utf-8")
            started = time.monotonic()
            phoneline(fifty.env, "flows", "publish", f"program-{line:02d}", str(path),
                      "-m", f"edition {edition}")  # fmt: skip
            returned = time.monotonic()
            _wait_heard(fifty.base_url, line_number(line), greeting(line, edition),
                        9_200_000 + edition * 1000)  # fmt: skip
            heard = time.monotonic()
            typed.append(round(heard - started, 3))
            committed.append(round(heard - returned, 3))
        results["publish_to_live_s"] = {
            "from_typing": {"p50": statistics.median(typed), "max": max(typed), "runs": typed},
            "from_commit": {
                "p50": statistics.median(committed), "max": max(committed), "runs": committed,
            },
        }  # fmt: skip
    finally:
        for server in (one, fifty):
            server.stop()
    return results


def lines_table(lines: dict[str, Any]) -> list[str]:
    cpu = lines["cpu_ms_per_webhook"]
    rounds = lines["cpu_ms_per_webhook_rounds"]
    live = lines["publish_to_live_s"]
    spread = {key: f"{min(v):.3f}-{max(v):.3f}" for key, v in rounds.items()}
    return [
        f"Lines ({lines['rounds']} rounds of {lines['calls']} calls, 4 at a time, SQLite):",
        "| lines on the server | CPU ms/voice webhook (rounds) |",
        "|---|---|",
        f"| 1 | {cpu['1']:.3f} ({spread['1']}) |",
        f"| {lines['lines']} | {cpu[str(lines['lines'])]:.3f} ({spread[str(lines['lines'])]}) |",
        f"50 lines / 1 line: {lines['ratio']:.2f}x. `flows publish` -> heard by a new call: "
        f"p50 {live['from_typing']['p50']:.2f} s, max {live['from_typing']['max']:.2f} s from "
        f"typing the command; p50 {live['from_commit']['p50']:.2f} s, max "
        f"{live['from_commit']['max']:.2f} s from its commit.",
    ]
