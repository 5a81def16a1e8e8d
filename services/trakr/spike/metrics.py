"""spike's Prometheus metrics (default registry, served at /metrics on the API port)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Labels: route is the template ("/v1/courses/{topic}"), never the raw path, so the series
# count is bounded by the route table.
REQUEST_DURATION = Histogram(
    "trakr_spike_request_duration_seconds",
    "Time from request to the last response byte, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REQUESTS = Counter(
    "trakr_spike_requests_total",
    "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
CACHE_HITS = Counter("trakr_spike_cache_hits_total", "Responses served from the Redis cache.")
CACHE_MISSES = Counter(
    "trakr_spike_cache_misses_total", "Cacheable requests answered from the database."
)
CACHE_ERRORS = Counter(
    "trakr_spike_cache_errors_total", "Redis calls that failed or timed out (served without cache)."
)
CACHE_INVALIDATIONS = Counter(
    "trakr_spike_cache_invalidations_total", "Invalidation messages from ein handled."
)
DATABASE_UNAVAILABLE = Counter(
    "trakr_spike_database_unavailable_total",
    "Requests answered 503 because PostgreSQL was unreachable.",
)
UNEXPECTED_ERRORS = Counter(
    "trakr_spike_unexpected_errors_total",
    "Requests that hit a bug (logged with a traceback, answered 503).",
)
