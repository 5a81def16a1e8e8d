"""Fault injection for the emulator (pure): which failure, if any, the next send gets."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, Field


class FaultConfig(BaseModel):
    """What `POST /faults` accepts. Rates are independent shares of sends, checked in order."""

    model_config = {"extra": "forbid"}

    unavailable_rate: float = Field(0.0, ge=0, le=1, description="share of sends answered 503")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="share answered 429 QUOTA_EXCEEDED")
    retry_after_seconds: float | None = Field(1.0, ge=0, description="Retry-After on 429s")
    internal_rate: float = Field(0.0, ge=0, le=1, description="share answered 500")
    invalid_topics: list[str] = Field(
        default_factory=list, description="topics always answered 400"
    )
    delay_ms: float = Field(0.0, ge=0, description="added before answering every send")
    seed: int | None = None


@dataclass(frozen=True)
class Fault:
    """One injected error: HTTP status, Google status, FCM error code, optional Retry-After."""

    http_status: int
    status: str
    error_code: str
    message: str
    retry_after_seconds: float | None = None


class FaultInjector:
    """Draws faults from a FaultConfig with its own (seedable) random generator."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        self._invalid = frozenset(config.invalid_topics)

    def draw(self, topic: str | None) -> Fault | None:
        """The fault for a send to `topic`, or None to let it through."""
        config = self.config
        if topic is not None and topic in self._invalid:
            return Fault(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", f"topic {topic} is rejected")
        roll = self._random.random()
        if roll < config.unavailable_rate:
            return Fault(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
        roll -= config.unavailable_rate
        if roll < config.rate_limit_rate:
            return Fault(
                429,
                "RESOURCE_EXHAUSTED",
                "QUOTA_EXCEEDED",
                "Sending rate exceeded for this topic.",
                config.retry_after_seconds,
            )
        roll -= config.rate_limit_rate
        if roll < config.internal_rate:
            return Fault(500, "INTERNAL", "INTERNAL", "Internal error encountered.")
        return None
