"""Where `phoneline serve` keeps the multiprocess metric files: in memory, not under var/ (a
memory-mapped page a full disk cannot back kills the process with SIGBUS)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.cli import _use_multiprocess_metrics


def test_metric_files_live_in_memory_and_only_the_live_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # unset, and put back after the test
    root = Path("/dev/shm") / f"phoneline-metrics-{os.getuid()}"
    gone = root / "serve-999999999"  # a pid no process has
    gone.mkdir(parents=True, exist_ok=True)
    _use_multiprocess_metrics()
    chosen = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert chosen == root / f"serve-{os.getpid()}"
    assert chosen.is_dir() and not any(chosen.iterdir())
    assert not gone.exists()
    chosen.rmdir()


def test_an_operators_directory_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _use_multiprocess_metrics()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
