"""Chaos: kill every process and both servers while changes stream through; nothing may be lost.

Ground truth is the scrapes stream itself (harness.truth): every snapshot jet queued, decoded,
in stream order. After the faults stop and the pipeline drains, the database, the deliveries and
the emulator's messages must account for every status change in it.
"""

from __future__ import annotations

import time
from collections import Counter

import psycopg
import pytest
import redis
from harness.faults import Chaos, backlog, drain
from harness.pipeline import Pipeline, PipelineConfig, script, wait_until
from harness.table import render
from harness.truth import read_scrapes, reconcile, unexplained_by_simulator

from .conftest import chaos_seconds

# Startup, settling and the drain take well under 10 minutes on top of the faults.
pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(chaos_seconds() + 600)]

SECTIONS = 300
CHANGES_PER_TICK = 5
# Two sections flip on every tick; julia holds their changes in a 3 s collapse window, which
# must survive julia's kills and the database's restarts too.
FLAPPING = 2
COLLAPSE = "sim=3s,default=0s"
NAMESPACE = "chaos"
QUIET_SECONDS = 15.0  # at the end: no process may exit on its own during the drain


def _sections_stored(dsn: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("SELECT count(*) FROM section").fetchone()
        return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def test_nothing_lost_under_faults(own_servers) -> None:
    seconds = chaos_seconds()
    dsn = own_servers.postgres.dsn("trakr")
    pipeline = Pipeline(
        PipelineConfig(
            postgres_dsn=dsn,
            redis_url=own_servers.redis.url,
            namespace=NAMESPACE,
            root=own_servers.root / "pipeline",
            scraper=[script("trakr-scrape-sim"), "--sections", str(SECTIONS),
                     "--changes", str(CHANGES_PER_TICK), "--flapping", str(FLAPPING),
                     "--tick-seconds", "1"],
            # Two replicas at 2 s: one scrape a second between them, a new tick each time.
            jet_replicas=2,
            jet_interval="2s",
            extra_env={"TRAKR_COLLAPSE": COLLAPSE},
        )
    )  # fmt: skip

    def redis_client() -> redis.Redis:
        return redis.Redis.from_url(own_servers.redis.url, socket_timeout=5)

    chaos = Chaos(
        pipeline, own_servers.redis, own_servers.postgres, database="trakr", gap_seconds=3.0
    )
    started = time.monotonic()
    try:
        pipeline.start()
        assert wait_until(lambda: _sections_stored(dsn) == SECTIONS, timeout_seconds=60), (
            "the first scrape never reached the database:\n" + pipeline.processes["ein"].tail(30)
        )
        chaos.run(seconds)
        # Let the pipeline settle under normal conditions, then stop the producers (SIGTERM).
        time.sleep(3)
        pipeline.stop_jets()
        quiet_from = time.monotonic()
        drained, last = drain(redis_client, dsn, NAMESPACE, timeout_seconds=120)
        time.sleep(max(0.0, QUIET_SECONDS - (time.monotonic() - quiet_from)))
        client = redis_client()
        scrapes = read_scrapes(client, f"{NAMESPACE}:scrapes")
        # Every simulated scrape is valid: one set aside by ein is a scrape lost to a fault.
        dead_lettered = Counter(
            fields.get(b"reason", b"?").decode()
            for _, fields in client.xrange(f"{NAMESPACE}:scrapes:dead")
        )
        final_backlog = backlog(client, dsn, NAMESPACE)
        client.close()
        messages = list(pipeline.iter_messages())
        result = reconcile(dsn=dsn, scrapes=scrapes, messages=messages)
        not_simulated = unexplained_by_simulator(
            scrapes, sections=SECTIONS, changes=CHANGES_PER_TICK, flapping=FLAPPING
        )
        # A duplicate push is only excusable when a fault hit while that send was in flight.
        duplicates_by_fault: Counter[str] = Counter(
            chaos.log.during(min(received), max(received)) or "NO FAULT"
            for received in result.duplicate_pushes.values()
        )
        spike_status = pipeline.spike_get("/v1/universities").status_code
        processes = {
            name: (p.alive(), p.starts, p.kills, len(p.unexpected_exits), p.exits_since(quiet_from))
            for name, p in pipeline.processes.items()
        }
    finally:
        exit_codes = pipeline.stop()

    elapsed = time.monotonic() - started
    faults = render(
        ["fault", "injected"],
        [*sorted(chaos.log.counts.items()), ("total", sum(chaos.log.counts.values()))],
        title=f"chaos: {seconds:.0f} s of faults, {elapsed:.0f} s in all",
    )
    outcome = render(
        ["what", "count"],
        [
            ("scrapes queued by jet", result.scrapes),
            ("  not what the simulator printed", len(not_simulated)),
            ("  dead-lettered by ein (all are valid)", sum(dead_lettered.values())),
            *((f"    reason {reason}", n) for reason, n in sorted(dead_lettered.items())),
            ("status changes in them", result.changes),
            ("notifications", result.notifications),
            ("  collapsed", result.collapsed),
            ("pushes at the emulator", result.pushes),
            ("  notifications pushed", result.pushed_notifications),
            ("  duplicates (in flight at a fault)", result.duplicates),
            *(
                (f"    pushed again, during {kind}", n)
                for kind, n in sorted(duplicates_by_fault.items())
            ),
            ("  pushed, no 'sent' delivery row", result.pushed_not_recorded),
            ("  push payload mismatches", result.payload_mismatches),
            ("spurious notifications", result.spurious),
            ("broken old→new chains", result.broken_chains),
            ("failed deliveries", result.failed_deliveries),
            ("LOST: change without notification", result.not_notified),
            ("LOST: notification not delivered", result.undelivered),
            ("LOST: recorded sent, never pushed", result.sent_not_pushed),
            ("LOST: final status differs", result.final_status_mismatches),
            ("LOST: last push differs from final status", result.last_push_mismatches),
            ("lost (must be 0)", result.lost),
        ],
    )
    procs = render(
        [
            "process",
            "alive",
            "starts",
            "SIGKILLs",
            "exits on its own",
            "during drain",
            "exit on SIGTERM",
        ],
        [(n, *v, exit_codes.get(n)) for n, v in processes.items()],
    )
    print(f"\n{faults}\n\n{outcome}\n\n{procs}")
    print(f"backlog at the end: {final_backlog}; spike GET /v1/universities -> {spike_status}")
    if chaos.log.errors:
        print("harness errors:", *chaos.log.errors, sep="\n  ")
    if result.details:
        print("details:", *result.details, sep="\n  ")

    assert not chaos.log.errors, chaos.log.errors
    assert drained, f"the pipeline did not drain: {last}"
    assert final_backlog.scrapes_pending == 0 and final_backlog.notifications_pending == 0
    assert result.changes > 0, "no status change ever reached the stream"
    assert not not_simulated, f"stream entries that match no simulator tick: {not_simulated[:5]}"
    assert not dead_lettered, f"valid scrapes dead-lettered by ein: {dict(dead_lettered)}"
    assert result.lost == 0, result.details
    assert result.spurious == 0, result.details
    assert result.payload_mismatches == 0
    assert result.pushed_not_recorded == 0
    assert "NO FAULT" not in duplicates_by_fault, result.duplicate_pushes
    for name, (alive, *_rest, during_drain) in processes.items():
        if name.startswith("jet"):
            continue
        assert alive, f"{name} is not running:\n{pipeline.processes[name].tail(30)}"
        assert during_drain == 0, f"{name} exited on its own after the faults stopped (crash loop)"
    assert spike_status == 200
