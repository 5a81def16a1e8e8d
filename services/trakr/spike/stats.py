"""Pure statistics behind /hotness and /history (no I/O, unit-tested).

Hotness: a section is "unusually popular" when its subscriber count stands out from the other
sections of the same course: z = (count - mean) / population standard deviation over the
course's sections. A course's sections share one audience (the students who need that course),
so the course is the right baseline; a campus-wide baseline would flag every big intro course.
With n sections the largest possible z is (n-1)/sqrt(n), so HOT_Z = 1.5 needs at least four
sections to ever fire, and HOT_MIN_SUBSCRIBERS keeps 2-vs-0 noise from counting as popular.

Open share: the fraction of the window [start, end] a section spent OPEN, replaying the outbox's
status changes from the status in force at the window start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HOT_Z = 1.5
HOT_MIN_SUBSCRIBERS = 3


@dataclass(frozen=True)
class Hotness:
    subscribers: int
    z_score: float
    hot: bool


def hotness(counts: Sequence[int]) -> list[Hotness]:
    """Z-score of each count within the list; all zero when every count is equal."""
    if not counts:
        return []
    mean = sum(counts) / len(counts)
    deviation = math.sqrt(sum((c - mean) ** 2 for c in counts) / len(counts))
    result = []
    for count in counts:
        z = (count - mean) / deviation if deviation > 0 else 0.0
        result.append(Hotness(count, z, z >= HOT_Z and count >= HOT_MIN_SUBSCRIBERS))
    return result


def open_share(
    *,
    start: float,
    end: float,
    initial_status: str | None,
    changes: Sequence[tuple[float, str]],
) -> float:
    """Share of [start, end] (epoch seconds) spent OPEN.

    `initial_status` is the status at `start` (None: unknown, counted as not open);
    `changes` are (at, new_status) in time order, all at or after `start`.
    """
    if end <= start:
        return 0.0
    open_seconds = 0.0
    status, since = initial_status, start
    for at, new_status in changes:
        at = min(max(at, start), end)
        if status == "OPEN":
            open_seconds += at - since
        status, since = new_status, at
    if status == "OPEN":
        open_seconds += end - since
    return min(1.0, max(0.0, open_seconds / (end - start)))
