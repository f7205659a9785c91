"""`phoneline serve --workers 2` as the engineer on call sees it (real processes): the workers
are forked from one process that imported the service, a dead one is replaced, `kill -HUP`
brings workers of code imported afresh, and /metrics speaks for the workers that serve, not for
the supervisor, the fork server or the workers that are gone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import (
    ServerProcess,
    local_get,
    phoneline_env,
    phoneline_server,
    proc_stat,
    process_group_pids,
    serve_workers,
)


def running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if (proc_stat(pid) or ["Z"])[0] != "Z"]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def flow_loaded(server: ServerProcess) -> str:
    metrics = local_get(server.base_url + "/metrics", timeout=10)
    for line in metrics.text.splitlines():
        if line.startswith("phoneline_flow_loaded "):
            return line.split()[1]
    raise AssertionError(f"no phoneline_flow_loaded on /metrics: {metrics} {metrics.text[:500]}")


def live_gauge_pids(metrics_dir: Path) -> set[int]:
    """The processes whose values the live gauges (sum, least) are over."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("gauge_live*.db")}


def test_the_workers_fork_from_one_process_and_metrics_speak_for_those_that_serve(
    tmp_path: Path,
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = phoneline_env(
        f"sqlite:///{tmp_path / 'phoneline.db'}",
        tmp_path / "var",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    server = phoneline_server(env, tmp_path / "serve.log", workers=2)
    server.start(ready_path="/readyz", timeout=90)
    group = server.pgid
    try:
        wait_for(lambda: len(serve_workers(group)) == 2, "two workers")
        first = serve_workers(group)
        [fork_server] = set(first.values())
        assert proc_stat(fork_server)[1] == str(server.pgid)  # type: ignore[index]
        wait_for(lambda: live_gauge_pids(metrics_dir) == set(first), "the workers' gauges")
        # Every worker has its menu: none of the supervisor's or the fork server's zeros.
        assert flow_loaded(server) == "1.0"

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in serve_workers(group) and len(serve_workers(group)) == 2,
            "a new one",
        )
        replaced = serve_workers(group)
        assert set(replaced.values()) == {fork_server}
        wait_for(lambda: live_gauge_pids(metrics_dir) == set(replaced), "the dead one forgotten")
        assert flow_loaded(server) == "1.0"

        # The fork server killed: the workers it forked serve on (the supervisor asks the
        # kernel, not it, whether they live), and the next worker comes from a new one.
        os.kill(fork_server, signal.SIGKILL)
        time.sleep(2)  # four of the supervisor's looks at its workers
        assert serve_workers(group).keys() == replaced.keys()
        victim = min(replaced)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: victim not in serve_workers(group) and len(serve_workers(group)) == 2,
            "a new one",
        )
        survivors, replaced = replaced, serve_workers(group)
        [newcomer] = set(replaced) - set(survivors)
        fork_server = replaced[newcomer]
        assert fork_server != 1 and proc_stat(fork_server)[1] == str(server.pgid)  # type: ignore[index]
        wait_for(lambda: live_gauge_pids(metrics_dir) == set(replaced), "the dead one forgotten")
        assert flow_loaded(server) == "1.0"

        hup_at = time.monotonic()
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: (
                not set(replaced) & set(serve_workers(group)) and len(serve_workers(group)) == 2
            ),
            "the workers replaced",
        )
        after = serve_workers(group)
        [new_fork_server] = set(after.values())
        assert new_fork_server != fork_server, "kill -HUP: a fork server importing the code anew"
        wait_for(lambda: proc_stat(fork_server) is None, "the old fork server to end")
        assert time.monotonic() - hup_at < 60
        wait_for(lambda: live_gauge_pids(metrics_dir) == set(after), "the old workers forgotten")
        assert flow_loaded(server) == "1.0"
        assert local_get(server.base_url + "/readyz", timeout=10).status_code == 200

        server.process.send_signal(signal.SIGTERM)  # serve alone, as systemd or Docker stop it
        assert server.process.wait(timeout=60) == 0
        # (Its resource tracker ends a moment after it: a zombie until init reaps it.)
        wait_for(lambda: not running(process_group_pids(group)), "nothing of serve left", 10)
    finally:
        server.stop()
