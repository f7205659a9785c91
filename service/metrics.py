"""Every Prometheus metric the app exposes, defined once (on the default registry)."""

from __future__ import annotations

from prometheus_client import Counter

DB_ERRORS = Counter(
    "phoneline_db_errors",
    "Database operations that failed and were swallowed so callers and texters carry on.",
    ["operation"],
)

# Counted by service.recording when the change is recorded, once per call or text (Twilio's
# repeated callbacks do not count twice).
CALLS = Counter(
    "phoneline_calls",
    "Calls by outcome (transferred, completed, abandoned, failed), counted when settled.",
    ["outcome"],
)
TRANSFERS = Counter(
    "phoneline_transfers",
    "Transfers by the flow's contact id and dial result (completed, busy, no-answer, ...).",
    ["contact", "result"],
)
OPT_OUT_CHANGES = Counter(
    "phoneline_opt_out_changes",
    "Opt-out keywords recorded: change is 'stop' or 'start'.",
    ["change"],
)
