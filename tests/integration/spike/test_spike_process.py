"""The real process (SIGTERM → exit 0), database down (503 + Retry-After), and a schema fuzz test."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from spike_helpers import COURSE, UNIVERSITY, closed_port_dsn, running, spike_process
from trakr.settings import Settings


def test_process_serves_and_exits_0_on_sigterm(
    writable_settings: Settings, subprocess_env: dict[str, str]
) -> None:
    with spike_process(subprocess_env) as spike:
        process, base_url = spike.process, spike.base_url
        response = httpx.get(f"{base_url}/v1/courses/{COURSE}", timeout=10)
        assert response.status_code == 200
        assert response.json()["data"]["course"]["topicName"] == COURSE
        metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
        assert 'route="/v1/courses/{topic}"' in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert '"event": "stopped"' in spike.output()


def test_help_and_bad_config() -> None:
    exe = str(Path(sys.executable).with_name("trakr-spike"))
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "TRAKR_SPIKE_PORT" in help_text and "--port" in help_text
    bad = subprocess.run([exe, "-c", "/nonexistent.toml"], capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot read config file" in bad.stderr


async def test_database_down_is_503_with_retry_after(seeded_settings: Settings) -> None:
    settings = seeded_settings.model_copy(
        update={"postgres_dsn": closed_port_dsn(seeded_settings.postgres_dsn)}
    )
    async with running(settings) as (client, _):
        for url in (f"/v1/courses/{COURSE}", "/v1/universities", f"/v1/universities/{UNIVERSITY}"):
            response = await client.get(url)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert response.json()["meta"]["code"] == 503
            assert response.json()["data"] == {}
        post = await client.post(
            "/v1/subscriptions",
            json={"device_id": "device-123", "topic_name": COURSE, "is_subscribed": True},
        )
        assert post.status_code == 503
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"].startswith("unavailable")
        assert (await client.get("/healthz")).status_code == 200


async def test_database_dropped_while_serving_is_503_then_recovers(
    writable_settings: Settings,
) -> None:
    """Connections killed under the pool: the request after is 503 or 200, never a 500."""

    async with running(writable_settings) as (client, _):
        assert (await client.get(f"/v1/courses/{COURSE}")).status_code == 200
        admin = await asyncpg.connect(writable_settings.postgres_dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        statuses = [(await client.get(f"/v1/courses/{COURSE}.x{i}")).status_code for i in range(3)]
        assert set(statuses) <= {404, 503}
        assert (await client.get(f"/v1/courses/{COURSE}")).status_code == 200


# --- property-based: every operation in /openapi.json, generated from its schema ----------------

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def run_operation(operation: object, base_url: str) -> None:
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)

    check()


def test_every_route_from_the_openapi_schema(
    writable_settings: Settings, subprocess_env: dict[str, str]
) -> None:
    """No 5xx, documented status codes and content types, responses valid against their models."""
    with spike_process(subprocess_env) as spike:
        base_url = spike.base_url
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {
            "/v1/universities",
            "/v1/universities/{topic}",
            "/v1/universities/{topic}/subjects",
            "/v1/subjects/{topic}",
            "/v1/subjects/{topic}/courses",
            "/v1/courses/{topic}",
            "/v1/courses/{topic}/hotness",
            "/v1/sections/{topic}",
            "/v1/sections/{topic}/history",
            "/v1/subscriptions",
        }
        for operation in operations:
            run_operation(operation, base_url)
