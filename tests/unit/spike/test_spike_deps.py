"""spike's request dependencies."""

from __future__ import annotations

import inspect

from trakr.spike import deps


def test_dependencies_are_coroutines() -> None:
    # FastAPI runs a plain `def` dependency in a worker thread: two of those per request cost
    # spike more CPU than its course query does (docs/spike.md).
    assert inspect.iscoroutinefunction(deps.database)
    assert inspect.iscoroutinefunction(deps.response_format)
