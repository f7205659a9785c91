"""How staff pages name a call's outcome, honestly and in words (never by colour alone):
reached a person; transfer not answered (busy, no answer, failed); hung up in a menu (which);
listened and left; call failed; unknown (no final status)."""

from __future__ import annotations

from typing import Any, Protocol

from service.models import CallOutcome


class MenuNames(Protocol):
    def menu(self, node: str | None) -> str: ...


OUTCOME_LABELS = {
    CallOutcome.REACHED.value: "Reached a person",
    CallOutcome.NOT_ANSWERED.value: "Transfer not answered",
    CallOutcome.HUNG_UP.value: "Hung up in a menu",
    CallOutcome.LISTENED.value: "Listened and left",
    CallOutcome.FAILED.value: "Call failed",
    CallOutcome.UNKNOWN.value: "Unknown (no final status)",
    CallOutcome.IN_PROGRESS.value: "In progress",
}
DIAL_LABELS = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no answer",
    "failed": "failed",
    "canceled": "canceled",
    "no result": "no result yet",
}
DIAL_COLOURS = {
    "completed": "#047857",  # green: a person answered
    "busy": "#b45309",  # amber
    "no-answer": "#c2410c",  # orange
    "failed": "#b91c1c",  # red
    "canceled": "#6b7280",  # grey
    "no result": "#9ca3af",  # light grey
}
"""The transfers chart's colours: answered green, not answered amber to red."""


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)


def outcome_text(call: Any, names: MenuNames) -> str:
    """ "Transfer not answered (busy)", "Hung up in a menu (Main menu)", "Listened and left
    (Find another doctor)", "Reached a person"."""
    label = outcome_label(call.outcome)
    if call.outcome == CallOutcome.NOT_ANSWERED.value and call.dial_outcome:
        return f"{label} ({DIAL_LABELS.get(call.dial_outcome, call.dial_outcome)})"
    if call.outcome in (CallOutcome.HUNG_UP.value, CallOutcome.LISTENED.value) and call.last_node:
        return f"{label} ({names.menu(call.last_node)})"
    return label
