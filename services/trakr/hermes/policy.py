"""Pure retry and pacing rules: how long to wait before the next attempt, per message and per topic."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A server may ask for a long pause; beyond this we would rather try again and be told again.
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter, never shorter than the server's Retry-After."""

    max_attempts: int
    base_seconds: float = 0.2
    max_seconds: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def should_retry(self, attempts: int) -> bool:
        """True while another attempt is allowed after `attempts` failed ones."""
        return attempts < self.max_attempts

    def delay(self, attempts: int, retry_after_seconds: float | None = None) -> float:
        """Seconds to wait after the `attempts`-th failure (1-based)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        jittered = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after_seconds:
            return max(jittered, min(retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
        return jittered


@dataclass
class TopicPacer:
    """Slows sends to a topic FCM rate-limited: each 429 doubles that topic's pause, success resets.

    FCM limits the send rate per topic, not only per project, so one hot topic must not slow
    the others: the pause is kept per topic and only sends to that topic wait for it.
    """

    base_seconds: float = 0.5
    max_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _not_before: dict[str, float] = field(default_factory=dict)
    _strikes: dict[str, int] = field(default_factory=dict)

    def wait_seconds(self, topic: str) -> float:
        """How long a send to `topic` should wait now (0 when it may go)."""
        not_before = self._not_before.get(topic)
        if not_before is None:
            return 0.0
        remaining = not_before - self.clock()
        if remaining <= 0:
            del self._not_before[topic]
            return 0.0
        return remaining

    def rate_limited(self, topic: str, retry_after_seconds: float | None = None) -> float:
        """Record a rate-limit answer for `topic`; returns the pause now imposed on it."""
        strikes = self._strikes.get(topic, 0) + 1
        self._strikes[topic] = strikes
        pause = min(self.max_seconds, self.base_seconds * 2 ** (strikes - 1))
        if retry_after_seconds:
            pause = max(pause, min(retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
        self._not_before[topic] = max(self._not_before.get(topic, 0.0), self.clock() + pause)
        return pause

    def succeeded(self, topic: str) -> None:
        """A send to `topic` went through: forget its strikes (keeps the maps small)."""
        self._strikes.pop(topic, None)

    def __len__(self) -> int:
        return len(self._not_before)
