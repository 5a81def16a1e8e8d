"""Phase sharding: when each jet replica of one scraper runs. Pure arithmetic, no I/O.

Replicas never talk to each other about the schedule. Each one knows the live replica ids
(from the members set in Redis) and the wall clock, sorts the ids, and replica *i* of *N*
runs at the wall-clock times t ≡ i·interval/N (mod interval), counted from the Unix epoch.
Replicas on different hosts therefore agree without a scheduler, as long as their clocks do.

Slots: replica i's k-th run is at `phase + k·interval` with `phase = i·interval/N`, so slot k
is also the k-th interval-long window of the epoch, whatever the phase (phase < interval).
During a re-division a replica's phase changes; remembering the last slot it ran, and never
running that slot or an earlier one again, is what stops it from scraping twice in one window
(old phase late in the window, new phase also in it). The minimum gap (half a share of the
interval) stops two runs in a row that straddle a window edge too closely.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# A member whose last heartbeat is older than this many heartbeat intervals is dead.
DEAD_AFTER_HEARTBEATS = 3
# The default heartbeat is a quarter of the interval, within these bounds.
HEARTBEAT_MIN_SECONDS = 1.0
HEARTBEAT_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class Position:
    """This replica's place among the live replicas: index in 0..count-1."""

    index: int
    count: int


@dataclass(frozen=True)
class PlannedRun:
    """The next run: its slot number and wall-clock start (epoch seconds)."""

    slot: int
    at: float


def heartbeat_seconds(interval_seconds: float, configured_seconds: float | None = None) -> float:
    """The heartbeat period: the configured one, else interval/4 clamped to 1..5 s."""
    if configured_seconds is not None:
        return configured_seconds
    return min(HEARTBEAT_MAX_SECONDS, max(HEARTBEAT_MIN_SECONDS, interval_seconds / 4))


def dead_before_ms(now_ms: int, heartbeat: float) -> int:
    """Members whose last heartbeat (ms) is below this are dead."""
    return now_ms - int(DEAD_AFTER_HEARTBEATS * heartbeat * 1000)


def position_of(replica_id: str, member_ids: Iterable[str]) -> Position:
    """Where `replica_id` sits among the live ids, sorted (it counts itself even if not listed)."""
    ids = sorted({*member_ids, replica_id})
    return Position(index=ids.index(replica_id), count=len(ids))


def phase_seconds(position: Position, interval_seconds: float) -> float:
    """Offset into each interval at which this replica runs: index·interval/count."""
    return position.index * interval_seconds / position.count


def slot_of(at: float, *, position: Position, interval_seconds: float) -> int:
    """The slot a run at wall-clock `at` belongs to: floor((at - phase)/interval)."""
    return math.floor((at - phase_seconds(position, interval_seconds)) / interval_seconds)


def min_gap_seconds(position: Position, interval_seconds: float) -> float:
    """The shortest time allowed between two runs of one replica: half its share of the interval."""
    return interval_seconds / position.count / 2


def next_run(
    now: float,
    *,
    position: Position,
    interval_seconds: float,
    last_slot: int | None = None,
    last_run_at: float | None = None,
) -> PlannedRun:
    """The earliest run at or after `now` for this position that is allowed.

    Allowed: a later slot than `last_slot`, and at least `min_gap_seconds` after `last_run_at`.
    """
    phase = phase_seconds(position, interval_seconds)
    gap = min_gap_seconds(position, interval_seconds)
    slot = math.ceil((now - phase) / interval_seconds)
    while True:
        at = phase + slot * interval_seconds
        # ceil() of a float quotient can land one slot early by rounding; never plan in the past.
        if (
            at >= now
            and (last_slot is None or slot > last_slot)
            and (last_run_at is None or at >= last_run_at + gap)
        ):
            return PlannedRun(slot=slot, at=at)
        slot += 1
