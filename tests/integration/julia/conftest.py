"""Fixtures for julia's integration tests (helpers in julia_helpers.py)."""

from __future__ import annotations

import pytest
from julia_helpers import Catalogue
from trakr.settings import Settings


@pytest.fixture
def catalogue(database_dsn: str) -> Catalogue:
    return Catalogue(database_dsn, {})


@pytest.fixture
def julia_settings(settings: Settings) -> Settings:
    """Fast liveness and backoff so fault tests finish in seconds."""
    return settings.model_copy(
        update={
            "julia_keepalive_seconds": 0.5,
            "julia_poll_seconds": 1.0,
            "backoff_max_seconds": 0.5,
            "shutdown_grace_seconds": 5.0,
        }
    )
