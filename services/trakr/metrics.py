"""Starting the Prometheus endpoint; each service defines its own metrics in <service>/metrics.py."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)


def start_metrics_server(
    port: int | None, *, default_port: int, addr: str = "0.0.0.0"
) -> int | None:
    """Serve /metrics on `port` (or the service's default); port 0 disables it. Returns the port."""
    chosen = default_port if port is None else port
    if chosen == 0:
        return None
    try:
        start_http_server(chosen, addr=addr)
    except OSError as exc:
        # A second replica on the same host must not crash-loop over its metrics port.
        logger.error(
            "metrics port %d unavailable: %s", chosen, exc, extra={"event": "metrics_unavailable"}
        )
        return None
    logger.info(
        "metrics on :%d/metrics", chosen, extra={"event": "metrics_started", "port": chosen}
    )
    return chosen
