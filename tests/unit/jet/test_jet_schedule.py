"""Phase sharding: positions, next run times, and no double run in a slot across re-divisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trakr.jet.schedule import (
    PlannedRun,
    Position,
    dead_before_ms,
    heartbeat_seconds,
    min_gap_seconds,
    next_run,
    phase_seconds,
    position_of,
    slot_of,
)


def test_position_sorts_ids_and_counts_itself() -> None:
    assert position_of("b", ["c", "a", "b"]) == Position(index=1, count=3)
    assert position_of("a", ["c", "b"]) == Position(index=0, count=3)
    assert position_of("z", []) == Position(index=0, count=1)
    assert position_of("a", ["a", "a"]) == Position(index=0, count=1)


def test_three_replicas_at_60s_run_at_00_20_40() -> None:
    at = [phase_seconds(Position(i, 3), 60.0) for i in range(3)]
    assert at == [0.0, 20.0, 40.0]
    start = 1_800_000_000.0  # a multiple of 60
    runs = [
        next_run(start + 0.5, position=Position(i, 3), interval_seconds=60.0).at - start
        for i in range(3)
    ]
    assert runs == [60.0, 20.0, 40.0]


def test_next_run_is_at_or_after_now_and_on_phase() -> None:
    position = Position(1, 4)
    plan = next_run(1003.0, position=position, interval_seconds=8.0)
    assert plan == PlannedRun(slot=126, at=1010.0)
    # Exactly on the phase: that run is due now.
    assert next_run(1002.0, position=position, interval_seconds=8.0).at == 1002.0


def test_next_run_skips_the_slot_already_run() -> None:
    position = Position(0, 2)
    first = next_run(100.0, position=position, interval_seconds=10.0)
    assert first.at == 100.0
    second = next_run(
        100.0, position=position, interval_seconds=10.0, last_slot=first.slot, last_run_at=first.at
    )
    assert second.at == 110.0


def test_redivision_never_reruns_the_same_slot() -> None:
    # Replica 0 of 3 ran at 30 (slot 10). A member leaves; it becomes 1 of 2 (phase 1.5 s):
    # 31.5 is in the same 3-second window, so its next run is 34.5.
    interval = 3.0
    ran = next_run(30.0, position=Position(0, 3), interval_seconds=interval)
    assert ran == PlannedRun(slot=10, at=30.0)
    after = next_run(
        30.2,
        position=Position(1, 2),
        interval_seconds=interval,
        last_slot=ran.slot,
        last_run_at=ran.at,
    )
    assert after.at == pytest.approx(34.5)
    assert after.slot == 11


def test_redivision_respects_the_minimum_gap() -> None:
    # Ran at 32 as 2 of 3 (slot 10). As 0 of 2, 33.0 is a new slot and 1 s later, more than
    # half a share (0.75 s): allowed. As the only replica, half a share is 1.5 s: 33.0 is too soon.
    ran = PlannedRun(slot=10, at=32.0)
    plan = next_run(
        32.1, position=Position(0, 2), interval_seconds=3.0, last_slot=ran.slot, last_run_at=ran.at
    )
    assert plan.at == 33.0
    plan = next_run(
        32.1, position=Position(0, 1), interval_seconds=3.0, last_slot=ran.slot, last_run_at=ran.at
    )
    assert plan.at == 36.0


@given(
    interval=st.sampled_from([1.0, 3.0, 7.5, 60.0]),
    changes=st.lists(
        st.tuples(st.integers(1, 6), st.integers(0, 5), st.floats(0, 20, allow_nan=False)),
        min_size=1,
        max_size=30,
    ),
)
def test_one_replica_never_runs_twice_in_a_window_or_too_soon(
    interval: float, changes: list[tuple[int, int, float]]
) -> None:
    """Whatever the membership does between runs, runs move forward slot by slot and keep the gap."""
    now = 1_700_000_000.0
    last: PlannedRun | None = None
    windows: set[int] = set()
    for count, raw_index, advance in changes:
        position = Position(raw_index % count, count)
        now += advance
        plan = next_run(
            now,
            position=position,
            interval_seconds=interval,
            last_slot=last.slot if last else None,
            last_run_at=last.at if last else None,
        )
        assert plan.at >= now
        assert slot_of(plan.at, position=position, interval_seconds=interval) == plan.slot
        if last is not None:
            assert plan.slot > last.slot
            assert plan.at - last.at >= min_gap_seconds(position, interval) - 1e-6
        window = int(plan.at // interval)
        assert window not in windows
        windows.add(window)
        last, now = plan, plan.at


def test_heartbeat_defaults_to_a_quarter_of_the_interval_within_1_to_5s() -> None:
    assert heartbeat_seconds(60.0) == 5.0
    assert heartbeat_seconds(12.0) == 3.0
    assert heartbeat_seconds(2.0) == 1.0
    assert heartbeat_seconds(60.0, 0.25) == 0.25


def test_dead_after_three_heartbeats() -> None:
    assert dead_before_ms(10_000, 1.0) == 7_000
    assert dead_before_ms(10_000, 0.5) == 8_500
