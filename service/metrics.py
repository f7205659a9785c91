"""Every Prometheus metric the app exposes, defined once (on the default registry)."""

from __future__ import annotations

from prometheus_client import Counter

DB_ERRORS = Counter(
    "phoneline_db_errors",
    "Database operations that failed and were swallowed so callers and texters carry on.",
    ["operation"],
)
