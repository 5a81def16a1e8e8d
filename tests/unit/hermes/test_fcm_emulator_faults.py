"""fcm_emulator.faults: shares, order, seeds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from trakr.fcm_emulator.faults import FaultConfig, FaultInjector


def draws(config: FaultConfig, n: int = 2000, topic: str = "t") -> list[str]:
    injector = FaultInjector(config)
    return [(f.error_code if (f := injector.draw(topic)) else "ok") for _ in range(n)]


def test_no_faults_by_default() -> None:
    assert set(draws(FaultConfig())) == {"ok"}


def test_rates_are_shares_of_sends() -> None:
    result = draws(
        FaultConfig(unavailable_rate=0.3, rate_limit_rate=0.1, internal_rate=0.1, seed=1)
    )
    assert 0.25 < result.count("UNAVAILABLE") / len(result) < 0.35
    assert 0.07 < result.count("QUOTA_EXCEEDED") / len(result) < 0.13
    assert 0.07 < result.count("INTERNAL") / len(result) < 0.13


def test_seed_makes_runs_repeatable() -> None:
    config = FaultConfig(unavailable_rate=0.5, seed=42)
    assert draws(config, 100) == draws(config, 100)


def test_invalid_topics_always_fail_with_400() -> None:
    injector = FaultInjector(FaultConfig(invalid_topics=["bad"]))
    fault = injector.draw("bad")
    assert fault is not None and fault.http_status == 400 and fault.error_code == "INVALID_ARGUMENT"
    assert injector.draw("good") is None


def test_429_carries_retry_after() -> None:
    fault = FaultInjector(FaultConfig(rate_limit_rate=1, retry_after_seconds=2)).draw("t")
    assert fault is not None and fault.http_status == 429 and fault.retry_after_seconds == 2


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        FaultConfig(unavailable_rate=1.5)
    with pytest.raises(ValidationError):
        FaultConfig.model_validate({"typo_rate": 1})
