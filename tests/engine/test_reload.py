"""An edited flow file is picked up on SIGHUP; a broken edit keeps the menu callers already hear."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.config import Settings
from service.main import create_app, load_configured_flow

ROOT = Path(__file__).resolve().parents[2]


def settings_for(flows: Path, tmp_path: Path) -> Settings:
    return Settings(
        flows_dir=flows,
        database_url=f"sqlite:///{tmp_path}/line.db",
        var_dir=tmp_path / "var",
        run_worker_in_server=False,
    )


def test_reload_picks_up_an_edit_and_keeps_the_last_good_flow(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    app = create_app(settings_for(flows, tmp_path))
    first = app.state.flow
    assert first is not None

    path = flows / "second-opinion.yaml"
    edited = path.read_text().replace("find another doctor", "find a different doctor")
    path.write_text(edited)
    load_configured_flow(app)
    assert app.state.flow.content_hash != first.content_hash
    assert app.state.flow.nodes["main"].options[1].label["en"] == "find a different doctor"

    good = app.state.flow
    path.write_text(edited.replace("goto: reach", "goto: nowhere", 1))
    load_configured_flow(app)
    assert app.state.flow is good


def test_a_broken_flow_at_start_leaves_no_flow_and_the_line_falls_back(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "second-opinion.yaml").write_text("name: [broken\n")
    app = create_app(settings_for(flows, tmp_path))
    assert app.state.flow is None


def test_sighup_reloads_a_running_server(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    env = {
        **os.environ,
        "FLOWS_DIR": str(flows),
        "DATABASE_URL": f"sqlite:///{tmp_path}/line.db",
        "VAR_DIR": str(tmp_path / "var"),
        "RUN_WORKER_IN_SERVER": "false",
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("phoneline")), "serve", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "Application startup complete" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        path = flows / "second-opinion.yaml"
        path.write_text(path.read_text().replace("find another doctor", "find a new doctor"))
        server.send_signal(signal.SIGHUP)
        # Every process logs the version it loaded (the warm spare too): the new workers log
        # the edited file's.
        while len(set(re.findall(r"loaded \(version (\w+)\)", log.read_text()))) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        # A SIGTERM during the rolling restart waits for the worker being replaced (compose
        # gives 60 s).
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise


def test_a_process_started_while_the_flow_is_broken_runs_the_last_good_copy(
    tmp_path: Path,
) -> None:
    """`kill -HUP` of serve starts new workers: a broken edit must not leave them without the
    menu the old ones ran."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    good = create_app(settings_for(flows, tmp_path)).state.flow
    assert good is not None
    path = flows / "second-opinion.yaml"
    path.write_text(path.read_text().replace("goto: reach", "goto: nowhere", 1))
    restarted = create_app(settings_for(flows, tmp_path))
    assert restarted.state.flow is not None
    assert restarted.state.flow.content_hash == good.content_hash
