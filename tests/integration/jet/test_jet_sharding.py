"""Three real `trakr-jet --daemon 3s` replicas share the interval; a kill and a restart re-divide it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from jet_spacing import Group, settle_time, spacing

INTERVAL = 3.0
HEARTBEAT = 0.5  # dead after 1.5 s of silence
TOLERANCE = 0.1 * INTERVAL


@pytest.mark.slow
def test_three_replicas_kill_one_restart_it(tmp_path: Path, namespace: str) -> None:
    group = Group(tmp_path, namespace, interval=INTERVAL, heartbeat=HEARTBEAT)
    try:
        for _ in range(3):
            group.start()
        group.wait_members(3, timeout=30)
        # Thirds: 1 s apart, over three cycles.
        begin = time.time() + 2 * HEARTBEAT + INTERVAL
        _sleep_until(begin + 3 * INTERVAL + 0.2)
        thirds = spacing(group.starts(begin, begin + 3 * INTERVAL), replicas=3, interval=INTERVAL)
        assert len(thirds.gaps) >= 7, thirds
        assert thirds.worst_deviation <= TOLERANCE, f"{thirds}: {thirds.gaps}"

        # SIGKILL one: it cannot leave the set, so the others must notice its silence.
        killed_at = time.time()
        group.replicas[1].process.send_signal(signal.SIGKILL)
        group.replicas[1].process.wait()
        noticed = group.wait_members(2, timeout=3 * HEARTBEAT + 3 * HEARTBEAT)
        assert noticed - killed_at <= 6 * HEARTBEAT
        # Within three heartbeats of the death being noticed both survivors hold the new
        # position, and from the next interval on the gaps are halves.
        half_from = noticed + 3 * HEARTBEAT + INTERVAL
        _sleep_until(half_from + 2 * INTERVAL + 0.2)
        halves = spacing(
            group.starts(half_from, half_from + 2 * INTERVAL), replicas=2, interval=INTERVAL
        )
        assert len(halves.gaps) >= 3, halves
        assert halves.worst_deviation <= TOLERANCE, f"{halves}: {halves.gaps}"
        for survivor in (group.replicas[0], group.replicas[2]):
            assert any(e.get("replicas") == 2 for e in survivor.events("position")), (
                survivor.log.read_text()
            )
        settled = settle_time(
            group.starts(killed_at, time.time()),
            after=killed_at,
            expected=INTERVAL / 2,
            tolerance=TOLERANCE,
        )
        print(f"thirds: {thirds}; halves: {halves}; settled {settled:.2f}s after the kill")

        # Start it again (a new replica id): back to thirds.
        group.start()
        joined = group.wait_members(3, timeout=10)
        thirds_from = joined + 3 * HEARTBEAT + INTERVAL
        _sleep_until(thirds_from + 2 * INTERVAL + 0.2)
        again = spacing(
            group.starts(thirds_from, thirds_from + 2 * INTERVAL), replicas=3, interval=INTERVAL
        )
        assert len(again.gaps) >= 5, again
        assert again.worst_deviation <= TOLERANCE, f"{again}: {again.gaps}"

        # No replica ever ran twice within one interval-long window.
        for replica in group.replicas:
            runs = replica.events("scrape_started")
            slots = [int(str(e["slot"])) for e in runs]
            windows = [int(float(str(e["at"])) // INTERVAL) for e in runs]
            assert slots == sorted(set(slots)), slots
            assert len(windows) == len(set(windows)), windows
    finally:
        group.stop_all()
    # SIGTERM: every live replica exits 0 and removes itself from the set.
    assert [r.process.returncode for r in group.replicas] == [0, -signal.SIGKILL, 0, 0]
    assert group.members() == 0


def _sleep_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))
