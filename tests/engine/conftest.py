from __future__ import annotations

from pathlib import Path

import pytest

from service.flowengine import Flow, load_flow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_FLOW = ROOT / "flows" / "second-opinion.yaml"


@pytest.fixture(scope="session")
def flow() -> Flow:
    return load_flow(SHIPPED_FLOW)
