"""julia's Prometheus metrics (default registry, prefix trakr_julia_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RECEIVED = Counter(
    "trakr_julia_events_received_total",
    "status_change notifications received on the LISTEN connection",
)
NOTIFICATIONS_FORWARDED = Counter(
    "trakr_julia_notifications_forwarded_total",
    "outbox rows forwarded to the notifications stream and marked queued",
    ["reason"],  # immediate | window_closed
)
FLAPS_COLLAPSED = Counter(
    "trakr_julia_flaps_collapsed_total", "outbox rows folded into another one (state collapsed)"
)
DUPLICATES_SUPPRESSED = Counter(
    "trakr_julia_duplicates_suppressed_total",
    "rows found already in the stream (a crash between XADD and commit) and not sent again",
)
CATCHUP_ROWS = Counter(
    "trakr_julia_catchup_rows_total",
    "outbox rows decided by the catch-up pass after a (re)connect or start",
)
LISTENER_RECONNECTS = Counter(
    "trakr_julia_listener_reconnects_total",
    "times the LISTEN connection was lost and established again",
)
BATCH_ERRORS = Counter(
    "trakr_julia_batch_errors_total",
    "batches rolled back and retried",
    ["kind"],  # database | redis | other
)
FORWARD_LAG = Histogram(
    "trakr_julia_forward_lag_seconds",
    "outbox row created_at to its forward (commit), by why it was forwarded",
    ["reason"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
BATCH_DURATION = Histogram(
    "trakr_julia_batch_duration_seconds",
    "one batch: lock, decide, XADD, commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HELD_NOTIFICATIONS = Gauge(
    "trakr_julia_held_notifications", "outbox rows held in an open collapse window"
)
