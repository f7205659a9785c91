"""Starting as an operator would: `phoneline serve` and `phoneline worker` refuse to start where
they could not keep what the line acknowledges (a var/ they cannot write), and `serve` starts and
answers calls with the menu while the database is away (real processes)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bench.harness import (
    ACCOUNT_SID,
    LINE_NUMBER,
    PHONELINE,
    PUBLIC_BASE,
    REPO_ROOT,
    local_get,
    phoneline_env,
    phoneline_server,
    sign,
)

UNREACHABLE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:9/test"


def var_behind_a_file(tmp_path: Path) -> Path:
    """A VAR_DIR that cannot be made: a file stands where its parent should be (root ignores
    permissions, so a read-only mode would not stop it)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where var/ should be\n")
    return blocker / "var"


@pytest.mark.parametrize("command", [["serve", "--port", "8999"], ["worker"]])
def test_serve_and_worker_refuse_to_start_without_a_writable_var(
    tmp_path: Path, command: list[str]
) -> None:
    var_dir = var_behind_a_file(tmp_path)
    env = phoneline_env(f"sqlite:///{tmp_path / 'phoneline.db'}", var_dir)
    result = subprocess.run(
        [PHONELINE, *command],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"cannot write to {var_dir / 'spool'}" in result.stderr
    assert "persistent" in result.stderr


def a_call_rings(base_url: str, call_sid: str) -> httpx.Response:
    """The first webhook of a call, signed as Twilio signs it."""
    params = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": "+18045550111",
        "To": LINE_NUMBER,
        "CallStatus": "ringing",
    }
    return httpx.post(
        base_url + "/twilio/voice",
        content=urlencode(params),
        headers={
            "X-Twilio-Signature": sign(PUBLIC_BASE + "/twilio/voice", params),
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=10,
    )


def test_serve_starts_and_answers_the_menu_while_the_database_is_away(tmp_path: Path) -> None:
    env = phoneline_env(UNREACHABLE_POSTGRES, tmp_path / "var")
    server = phoneline_server(env, tmp_path / "serve.log")
    server.start(timeout=90)
    try:
        response = a_call_rings(server.base_url, "CA" + "7" * 32)
        assert response.status_code == 200
        assert "To find another doctor, press 2." in response.text
        assert "<Gather" in response.text
        ready = local_get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert "database not ready" in ready.text
    finally:
        server.stop()
    assert "serving anyway; migrations run when it is back" in (tmp_path / "serve.log").read_text()


def test_serve_without_a_menu_is_not_ready_and_says_why(tmp_path: Path) -> None:
    """A deploy whose FLOWS_DIR points nowhere (a relative path from another directory) and
    that kept no last good copy answers every call with the fallback: not ready."""
    env = phoneline_env(
        f"sqlite:///{tmp_path / 'phoneline.db'}", tmp_path / "var", FLOWS_DIR="deploy/flows"
    )
    server = phoneline_server(env, tmp_path / "serve.log")
    server.start(timeout=90)
    try:
        ready = local_get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.text == (
            "no valid menu loaded (calls and texts get the fallback; see the log)\n"
        )
        metrics = local_get(server.base_url + "/metrics", timeout=10).text
        assert "\nphoneline_flow_loaded 0.0\n" in metrics
        call = a_call_rings(server.base_url, "CA" + "8" * 32)
        assert call.status_code == 200
        assert "<Dial" in call.text and "+18048287999" in call.text  # the fallback
        assert "press 2" not in call.text
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "no menu loaded: every call and text gets the fallback" in log
    assert "FLOWS_DIR deploy/flows (from " in log
