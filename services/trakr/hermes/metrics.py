"""hermes' Prometheus metrics (default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DEFAULT_METRICS_PORT = 9104

MESSAGES = Counter(
    "trakr_hermes_messages_sent_total",
    "notifications handled, by outcome (sent, failed, gave_up, validated, invalid, duplicate, "
    "malformed, unknown) and FCM error code",
    ["outcome", "error_code"],
)
SEND_DURATION = Histogram(
    "trakr_hermes_send_duration_seconds",
    "one FCM send call, including errors",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter(
    "trakr_hermes_retries_total", "sends retried after a transient error", ["error_code"]
)
IN_FLIGHT = Gauge("trakr_hermes_in_flight", "FCM sends in progress")
DELIVERY_LAG = Histogram(
    "trakr_hermes_delivery_lag_seconds",
    "outbox row created_at to FCM accepting the message",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
STREAM_PENDING = Gauge(
    "trakr_hermes_stream_pending_entries",
    "entries read by the hermes group and not acknowledged yet",
)
RECORD_DURATION = Histogram(
    "trakr_hermes_record_duration_seconds",
    "writing one batch of outcomes to PostgreSQL and acknowledging it",
)
RECONNECTS = Counter(
    "trakr_hermes_reconnects_total", "Redis/PostgreSQL errors followed by a reconnect", ["what"]
)
