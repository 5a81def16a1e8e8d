"""Flap collapsing, pure: parse TRAKR_COLLAPSE and decide, per topic, forward / hold / collapse.

The model, in event time (the outbox rows' created_at, stamped by PostgreSQL):

- A change outside any open window is forwarded at once and opens a window
  [created_at, created_at + W) for its topic (W from the university's policy).
- Changes created inside an open window are held.
- When the window closes, the latest held change is forwarded if its status differs from the
  last one forwarded; that forward opens the next window at the close time, so a section that
  keeps flapping produces at most one message per W. Otherwise nothing is forwarded and the
  window simply ends. Every other held row is collapsed into the row it folded into (the one
  forwarded at the close, or the last forwarded one when nothing was).

Everything the decision needs lives in the rows (status, created_at, and `window_ends_at`,
which julia stores on forwarded and held rows), so a restarted julia reaches the same
decisions. No I/O here; `now` is passed in (the database's clock, not julia's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

DEFAULT_KEY = "default"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_KEY = re.compile(r"^[a-z0-9_.~%-]+$")

Action = Literal["forward", "hold", "collapse"]
Reason = Literal["immediate", "window_closed"]


def parse_duration(text: str) -> float:
    """Seconds from '240s', '4m', '1.5h', '250ms' or a bare number of seconds ('0', '30')."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"bad duration {text!r} (use e.g. 240s, 4m, 1h, 0)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class CollapsePolicy:
    """Flap window per university: exact topic-name match, else the longest `key-` prefix, else default."""

    windows_seconds: dict[str, float] = field(default_factory=dict)
    default_seconds: float = 0.0

    def window_seconds(self, university: str) -> float:
        exact = self.windows_seconds.get(university)
        if exact is not None:
            return exact
        best: tuple[int, float] | None = None
        for key, seconds in self.windows_seconds.items():
            if university.startswith(key + "-") and (best is None or len(key) > best[0]):
                best = (len(key), seconds)
        return best[1] if best else self.default_seconds

    def window(self, university: str) -> timedelta:
        return timedelta(seconds=self.window_seconds(university))


def parse_collapse(text: str) -> CollapsePolicy:
    """Parse 'rutgers=240s,default=0s'; raises ValueError naming the bad part.

    Keys are university topic names (or their prefix before a '-': `rutgers` covers
    `rutgers-nb`); `default` applies to every other university and is 0 when absent.
    """
    windows: dict[str, float] = {}
    default = 0.0
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError(f"{part!r} is not key=duration (e.g. rutgers=240s)")
        if not _KEY.match(key):
            raise ValueError(f"{key!r} is not a university topic name")
        seconds = parse_duration(value)
        if key == DEFAULT_KEY:
            default = seconds
            continue
        if key in windows:
            raise ValueError(f"{key!r} is given twice")
        windows[key] = seconds
    return CollapsePolicy(windows_seconds=windows, default_seconds=default)


@dataclass(frozen=True)
class PendingRow:
    """An outbox row still to decide (state new or held), in id order within its topic."""

    id: int
    status: str
    created_at: datetime


@dataclass(frozen=True)
class LastSent:
    """The topic's latest forwarded row; `window_ends_at` None means no window is open."""

    id: int
    status: str
    window_ends_at: datetime | None


@dataclass(frozen=True)
class Decision:
    """What to do with one row.

    forward: send it; `window_ends_at` is the window it opens, `previous_status` what the topic
    last sent (None for its first message), `folded` how many rows collapsed into it.
    hold: keep it until `window_ends_at`. collapse: it folded into `collapsed_into`.
    """

    id: int
    action: Action
    window_ends_at: datetime | None = None
    collapsed_into: int | None = None
    previous_status: str | None = None
    reason: Reason | None = None
    folded: int = 0


def plan_topic(
    rows: list[PendingRow], *, last: LastSent | None, window: timedelta, now: datetime
) -> list[Decision]:
    """Decide every pending row of one topic (rows in id order); one Decision per row, same order."""
    decisions: dict[int, Decision] = {}
    held: list[PendingRow] = []

    def resolve(close: datetime) -> None:
        # The window closed at `close`: forward the latest held status if it is news.
        nonlocal last, held
        assert last is not None
        latest = held[-1]
        if latest.status != last.status:
            end = close + window
            decisions[latest.id] = Decision(
                latest.id,
                "forward",
                window_ends_at=end,
                previous_status=last.status,
                reason="window_closed",
                folded=len(held) - 1,
            )
            into = latest.id
            last = LastSent(latest.id, latest.status, end)
        else:
            into = last.id
        for row in held:
            if row.id != into and row.id not in decisions:
                decisions[row.id] = Decision(row.id, "collapse", collapsed_into=into)
        held = []

    for row in rows:
        while True:
            open_until = last.window_ends_at if last else None
            if open_until is not None and row.created_at < open_until:
                held.append(row)
                break
            if held:
                # `row` comes after the window of the held rows: close that window first; the
                # forward it may cause opens a new window that `row` could fall into.
                assert open_until is not None
                resolve(open_until)
                continue
            if last is not None and row.status == last.status:
                # Not news (cannot happen while the trigger records only real changes and every
                # window ends on the last sent status), but never send the same status twice.
                decisions[row.id] = Decision(row.id, "collapse", collapsed_into=last.id)
            else:
                end = row.created_at + window if window > timedelta(0) else None
                decisions[row.id] = Decision(
                    row.id,
                    "forward",
                    window_ends_at=end,
                    previous_status=last.status if last else None,
                    reason="immediate",
                )
                last = LastSent(row.id, row.status, end)
            break

    if held:
        assert last is not None and last.window_ends_at is not None
        if now >= last.window_ends_at:
            resolve(last.window_ends_at)
        else:
            for row in held:
                decisions[row.id] = Decision(row.id, "hold", window_ends_at=last.window_ends_at)
    return [decisions[row.id] for row in rows]
