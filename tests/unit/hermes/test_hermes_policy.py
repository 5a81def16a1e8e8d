"""hermes.policy: backoff with jitter and Retry-After; per-topic pacing."""

from __future__ import annotations

import random

from trakr.hermes.policy import RetryPolicy, TopicPacer


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=0.2, max_seconds=2.0, rng=random.Random(1))
    for attempts, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 2.0), (9, 2.0)]:
        delays = [policy.delay(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(max_attempts=8, base_seconds=0.2, max_seconds=2.0)
    assert policy.delay(1, 5.0) == 5.0
    assert 0.1 <= policy.delay(1, 0.01) <= 0.2
    assert policy.delay(1, 10_000) == 300.0


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.should_retry(1) and policy.should_retry(2) and not policy.should_retry(3)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_slows_only_the_rate_limited_topic() -> None:
    clock = Clock()
    pacer = TopicPacer(base_seconds=0.5, max_seconds=4.0, clock=clock)
    assert pacer.wait_seconds("a") == 0
    assert pacer.rate_limited("a") == 0.5
    assert pacer.wait_seconds("a") == 0.5 and pacer.wait_seconds("b") == 0
    assert pacer.rate_limited("a") == 1.0  # strikes double the pause
    assert pacer.rate_limited("a", retry_after_seconds=3) == 3  # Retry-After is a floor
    assert pacer.rate_limited("a") == 4.0  # capped
    clock.now += 10
    assert pacer.wait_seconds("a") == 0 and len(pacer) == 0
    pacer.succeeded("a")
    assert pacer.rate_limited("a") == 0.5  # success forgot the strikes
