"""jet's Prometheus metrics (default registry, served on :9101/metrics in daemon mode)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Every outcome a scrape can have; pre-created at 0 so rate() and alerts see them from the start.
RESULTS = (
    "queued",
    "unchanged",
    "exit_status",
    "exec_error",
    "timeout",
    "too_large",
    "empty",
    "parse_error",
    "no_name",
    "no_subjects",
    "duplicate_university",
    "duplicate_subject",
    "duplicate_course",
    "duplicate_section",
    "bad_status",
    "invalid_topic",
    "redis_unavailable",
    "stopped",
    "error",
)

SCRAPES = Counter(
    "trakr_jet_scrapes",
    "Scrapes by outcome (queued, unchanged, or the rejection reason)",
    ["result"],
)
for _result in RESULTS:
    SCRAPES.labels(result=_result)

SCRAPE_DURATION = Histogram(
    "trakr_jet_scrape_duration_seconds",
    "Time from starting the scraper to its exit (or to jet killing it)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
PAYLOAD_BYTES = Histogram(
    "trakr_jet_payload_bytes",
    "Size of each accepted payload as queued (output format)",
    buckets=tuple(2**n for n in range(10, 30, 2)),
)
REPLICA_POSITION = Gauge(
    "trakr_jet_replica_position", "This replica's index among the live replicas (0-based)"
)
REPLICAS = Gauge("trakr_jet_replicas", "Live replicas of this scraper, this one included")
LAST_SUCCESS = Gauge(
    "trakr_jet_last_success_timestamp_seconds",
    "When the scraper last produced a valid scrape (queued or unchanged); 0 before the first",
)
DAEMON_DIR_ERRORS = Counter(
    "trakr_jet_daemon_dir_errors", "Accepted scrapes that could not be written to --daemon-dir"
)
