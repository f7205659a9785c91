"""The engine's own tests cover it whole (the coverage gate of `make test` runs them alone):
how a dial's end is read, and whether a flow's steps depend on the time."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.flowengine import load_flow
from service.flowengine.position import DialStatus

ROOT = Path(__file__).resolve().parents[2]


DOCUMENTED = ["completed", "answered", "busy", "no-answer", "failed", "canceled"]


@pytest.mark.parametrize("sent", [*DOCUMENTED, " No-Answer ", "BUSY"])
def test_every_dial_status_twilio_documents_is_read_in_any_case(sent: str) -> None:
    read = DialStatus.read(sent)
    assert read is not None and read.value == sent.strip().lower()


@pytest.mark.parametrize("sent", ["", None, "queued", "ringing", "in-progress", "no answer"])
def test_a_status_a_dial_does_not_end_with_is_none(sent: str | None) -> None:
    assert DialStatus.read(sent) is None


def test_only_a_flow_whose_contacts_keep_hours_depends_on_the_time() -> None:
    assert load_flow(ROOT / "tests" / "fixtures" / "flows" / "features.yaml").keeps_hours
    assert not load_flow(ROOT / "flows" / "second-opinion.yaml").keeps_hours
