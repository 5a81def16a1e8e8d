"""The demo's bookkeeping, pure: scrape times, push matching, latency percentiles, the summary text."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATES = frozenset({"sent", "failed", "collapsed"})


@dataclass(frozen=True)
class Notification:
    """One outbox row as the demo sees it."""

    id: int
    university: str
    state: str
    created_at: float  # epoch seconds


@dataclass
class ScrapeTimes:
    """When each university was scraped, from the scrapes stream (scraped_at of every queued scrape)."""

    by_university: dict[str, list[float]] = field(default_factory=dict)

    def add(self, university: str, scraped_at: float) -> None:
        times = self.by_university.setdefault(university, [])
        bisect.insort(times, scraped_at)

    def scrape_before(self, university: str, moment: float) -> float | None:
        """The latest scrape of `university` at or before `moment` (the one whose ingest made a change)."""
        times = self.by_university.get(university, [])
        i = bisect.bisect_right(times, moment)
        return times[i - 1] if i else None

    @property
    def count(self) -> int:
        return sum(len(times) for times in self.by_university.values())


def push_notification_id(message: Mapping[str, Any]) -> int | None:
    """The outbox id a pushed message carries in its data payload (hermes puts it there)."""
    data = message.get("data") or {}
    value = data.get("notification_id") or data.get("notificationId")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest-rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class DemoOutcome:
    """What the demo proves: every change not collapsed reached the emulator."""

    scrape_results: dict[str, float]
    scrapes_queued: int
    changes: int
    collapsed: int
    forwarded: int
    delivered: int
    failed: int
    pushes: int
    latencies_seconds: list[float]
    missing_ids: list[int]
    undecided: int
    changes_by_university: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing_ids and self.undecided == 0


def outcome(
    *,
    notifications: Iterable[Notification],
    delivery_states: Mapping[int, str],
    pushes: Mapping[int, float],
    push_count: int,
    scrape_times: ScrapeTimes,
    scrape_results: dict[str, float],
) -> DemoOutcome:
    """Match outbox rows to pushes (by notification id) and measure scrape-to-push latency.

    `pushes` maps notification id to the emulator's received_at. A change counts as delivered
    when the emulator received its message; collapsed changes need no push.
    """
    rows = list(notifications)
    collapsed = [n for n in rows if n.state == "collapsed"]
    forwarded = [n for n in rows if n.state != "collapsed"]
    latencies = []
    for n in forwarded:
        received_at = pushes.get(n.id)
        scraped_at = scrape_times.scrape_before(n.university, n.created_at)
        if received_at is not None and scraped_at is not None:
            latencies.append(received_at - scraped_at)
    return DemoOutcome(
        scrape_results=scrape_results,
        scrapes_queued=scrape_times.count,
        changes=len(rows),
        collapsed=len(collapsed),
        forwarded=len(forwarded),
        delivered=sum(1 for state in delivery_states.values() if state == "sent"),
        failed=sum(1 for state in delivery_states.values() if state == "failed"),
        pushes=push_count,
        latencies_seconds=latencies,
        missing_ids=[n.id for n in forwarded if n.id not in pushes],
        undecided=sum(1 for n in rows if n.state not in TERMINAL_STATES),
        changes_by_university=dict(Counter(n.university for n in rows)),
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _by_university(result: DemoOutcome) -> str:
    if not result.changes_by_university:
        return ""
    parts = ", ".join(
        f"{name} {count}" for name, count in sorted(result.changes_by_university.items())
    )
    return f": {parts}"


def render_summary(result: DemoOutcome, *, duration_seconds: float) -> str:
    """The summary block printed at the end of the demo."""
    runs = sum(result.scrape_results.values())
    queued = result.scrape_results.get("queued", 0)
    unchanged = result.scrape_results.get("unchanged", 0)
    rejected = runs - queued - unchanged
    p50 = percentile(result.latencies_seconds, 50)
    p99 = percentile(result.latencies_seconds, 99)
    lines = [
        "",
        f"=== trakr demo summary ({duration_seconds:.0f}s) ===",
        f"scrapes         {runs:.0f} run: {queued:.0f} queued, {unchanged:.0f} unchanged, {rejected:.0f} rejected",
        f"changes         {result.changes} section status changes (outbox rows){_by_university(result)}",
        f"collapsed       {result.collapsed} (flapping folded into another notification)",
        f"notifications   {result.forwarded} forwarded to hermes",
        f"deliveries      {result.delivered} sent, {result.failed} failed",
        f"pushes          {result.pushes} received by the FCM emulator",
        f"latency         scrape-to-push p50 {_seconds(p50)}, p99 {_seconds(p99)} "
        f"(n={len(result.latencies_seconds)})",
    ]
    if result.ok:
        lines.append(
            f"result          OK: all {result.forwarded} non-collapsed changes reached the emulator"
        )
    else:
        shown = ", ".join(str(i) for i in result.missing_ids[:10])
        more = "…" if len(result.missing_ids) > 10 else ""
        lines.append(
            f"result          FAILED: {len(result.missing_ids)} changes never reached the emulator"
            f"{f' (ids {shown}{more})' if shown else ''}; {result.undecided} still undecided"
        )
    return "\n".join(lines) + "\n"
