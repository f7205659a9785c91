"""Every Prometheus metric the app exposes, defined once (on the default registry)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

DB_ERRORS = Counter(
    "phoneline_db_errors",
    "Database operations that failed and were swallowed so callers and texters carry on.",
    ["operation"],
)

OUTBOUND_REFUSED = Counter(
    "phoneline_outbound_refused",
    "Texts and call-backs the outbound policy refused, by kind and reason.",
    ["kind", "reason"],
)

# The spool (service.spool): what the line acknowledged and the database does not have yet.
# Set by each process's spool thread; summed over the live processes of `serve --workers N`.
SPOOL_PENDING = Gauge(
    "phoneline_spool_pending",
    "Acknowledged webhooks and texts whose records wait in the spool for the database.",
    multiprocess_mode="livesum",
)
# 1 while the process has a valid menu to answer with; 0 while every call and text gets the
# fallback (the flow file is broken or missing and no last good copy was kept). `/readyz`
# answers 503 meanwhile. Over `serve --workers N`: 0 if any live process has no menu.
FLOW_LOADED = Gauge(
    "phoneline_flow_loaded",
    "Whether the process has a valid menu loaded (0: every call and text gets the fallback).",
    multiprocess_mode="livemin",
)
VOICEMAILS = Counter(
    "phoneline_voicemails",
    "Messages callers left, by what the fetcher did: copied from Twilio and verified (stored), "
    "deleted at Twilio (deleted), a download or delete to try again (retry), absent.",
    ["event"],
)
SPOOL_WRITE_ERRORS = Counter(
    "phoneline_spool_write_errors",
    "Times the local disk refused to take a spooled record (full, read-only).",
)
SPOOL_REJECTED = Counter(
    "phoneline_spool_rejected",
    "Spooled records the database refused while it answered, moved to var/spool/rejected/.",
)
WEBHOOKS_UNHEARD = Counter(
    "phoneline_webhooks_unheard",
    "Webhooks answered after Twilio had given up on them (not recorded as heard).",
    ["route"],
)
FENCE_GIVEN_UP = Counter(
    "phoneline_fence_given_up",
    "Spool directories of other hosts that stayed silent so long that replies and texts no "
    "longer wait for them.",
)
FENCE_HELD = Counter(
    "phoneline_fence_held",
    "Replies and texts held back because another host's spool may hold opt-outs the database "
    "lacks.",
    ["what"],
)
SPOOL_DROPPED = Counter(
    "phoneline_spool_dropped",
    "Records lost because the disk and the spool's memory were both full.",
)

# Counted once per call when it settles (service.calls.jobs), however often Twilio's callbacks
# repeat; `line` is the line's slug ("" for a call no line took), as few as the lines an
# administrator adds.
CALLS = Counter(
    "phoneline_calls",
    "Calls by outcome (transferred, completed, abandoned, failed) and line, counted when settled.",
    ["outcome", "line"],
)
TRANSFERS = Counter(
    "phoneline_transfers",
    "Transfers by the flow's contact id, dial result (completed, busy, no-answer, ...) and line.",
    ["contact", "result", "line"],
)
OPT_OUT_CHANGES = Counter(
    "phoneline_opt_out_changes",
    "Opt-out keywords recorded: change is 'stop' or 'start'.",
    ["change"],
)

# Observed by service.logging.RequestLog for every HTTP request, labelled by the matched route
# template ("/twilio/voice"; "unmatched" for a 404) so that label values stay bounded.
REQUEST_LATENCY = Histogram(
    "phoneline_http_request_duration_seconds",
    "Time to answer an HTTP request (webhooks included), by route template, method, status.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Texts: `via` is "reply" for a <Message> in the TwiML answer to an inbound text (counted by the
# SMS webhook) and "api" for an outbox text Twilio's REST API accepted (counted by the sender).
TEXTS_SENT = Counter(
    "phoneline_texts_sent",
    "Texts sent to patients, by how they went out (reply in TwiML, or api via the outbox).",
    ["via"],
)
# Counted by the outbox sender when a send attempt fails: final="false" will be retried,
# final="true" gave up (permanent Twilio error or too many attempts).
TEXTS_FAILED = Counter(
    "phoneline_texts_failed",
    "Outbound text send attempts that failed, by whether the failure was final.",
    ["final"],
)
# Counted by the SMS status callback for Twilio's final MessageStatus of an outbound text
# (delivered, undelivered, failed), once per message.
TEXT_DELIVERY = Counter(
    "phoneline_text_delivery",
    "Final delivery status Twilio reported for outbound texts.",
    ["status"],
)

# Counted by service.staff.auth for each staff sign-in refused unchecked: limit is "pair" (one
# username from one address) or "address"; flood="true" while failures from all addresses are
# at the flood ceiling.
SIGN_INS_THROTTLED = Counter(
    "phoneline_staff_sign_ins_throttled",
    "Staff sign-in attempts refused by the throttle, by limit and whether a flood was on.",
    ["limit", "flood"],
)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric and its content type.

    Under several processes (`phoneline serve --workers N`) PROMETHEUS_MULTIPROC_DIR names a
    directory where each process writes its values, and this sums them over all processes;
    otherwise it is this process's own registry.
    """
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def forget_process(pid: int) -> None:
    """A process of `phoneline serve` that serves no more, or never did (its supervisor, the
    fork server its workers come from): its values leave the live gauges, which are over the
    processes that serve (the sum of what waits in the spool; the least of "a menu is loaded",
    which a process that never loaded one would hold at 0, or a dead one at what it last was)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
