"""Fixtures for the emulator's tests (helpers in fcm_emulator_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fcm_emulator_helpers import Emulator, running_emulator


@pytest.fixture(scope="session")
def fcm_emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("fcm-emulator")) as emulator:
        yield emulator


@pytest.fixture
def emulator(fcm_emulator_process: Emulator) -> Emulator:
    """The session's emulator, with no messages and no faults."""
    fcm_emulator_process.reset()
    return fcm_emulator_process
