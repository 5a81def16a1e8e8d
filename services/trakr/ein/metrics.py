"""ein's Prometheus metrics (default registry), documented in docs/ein.md."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

INGEST_DURATION = Histogram(
    "trakr_ein_ingest_duration_seconds",
    "Decode + diff + commit of one scrape",
    ["mode"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
ROWS = Counter(
    "trakr_ein_rows_total", "Catalogue rows by table and what happened to them", ["table", "kind"]
)
PAYLOAD_BYTES = Histogram(
    "trakr_ein_payload_bytes",
    "Size of each scrape payload taken from the stream",
    buckets=(1e3, 1e4, 1e5, 1e6, 4e6, 1.6e7, 6.4e7, 2.56e8),
)
SCRAPES_PROCESSED = Counter("trakr_ein_scrapes_processed_total", "Scrapes ingested and committed")
SCRAPES_REJECTED = Counter("trakr_ein_scrapes_rejected_total", "Scrapes dead-lettered", ["reason"])
SCRAPES_SKIPPED = Counter(
    "trakr_ein_scrapes_skipped_total",
    "Scrapes acked without writing: identical snapshot, or stale (older than the stored one)",
    ["reason"],
)
for _reason in ("identical", "stale"):
    SCRAPES_SKIPPED.labels(reason=_reason)  # both series exist from the start
INGEST_RETRIES = Counter(
    "trakr_ein_ingest_retries_total",
    "Ingests abandoned for a retry on a fresh connection (entry stays pending)",
    ["reason"],
)
for _reason in ("outage", "database_error", "unexpected_error"):
    INGEST_RETRIES.labels(reason=_reason)
STREAM_LAG = Gauge(
    "trakr_ein_stream_lag_seconds", "Now minus scraped_at of the entry just ingested"
)
STREAM_PENDING = Gauge(
    "trakr_ein_stream_pending_entries", "Entries delivered to group ein and not yet acked"
)
STATUS_CHANGES = Counter(
    "trakr_ein_status_changes_total", "Section status changes written (outbox rows)"
)
