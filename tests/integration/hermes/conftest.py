"""Fixtures for hermes' integration tests (helpers in hermes_helpers.py).

The emulator helpers live with the emulator's own tests; that directory is put on sys.path
here so both suites start it the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fcm_emulator"))

from fcm_emulator_helpers import Emulator, running_emulator


@pytest.fixture(scope="session")
def hermes_emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running_emulator(tmp_path_factory.mktemp("hermes-fcm-emulator")) as emulator:
        yield emulator


@pytest.fixture
def emulator(hermes_emulator_process: Emulator) -> Emulator:
    """The session's emulator, with no messages and no faults."""
    hermes_emulator_process.reset()
    return hermes_emulator_process
