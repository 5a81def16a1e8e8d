from __future__ import annotations

import math

import pytest
from trakr.spike.stats import HOT_MIN_SUBSCRIBERS, HOT_Z, hotness, open_share


def test_hotness_z_scores() -> None:
    scores = hotness([0, 0, 0, 0, 20])
    mean, sd = 4.0, math.sqrt((4 * 16 + 256) / 5)
    assert scores[4].z_score == pytest.approx((20 - mean) / sd)
    assert scores[0].z_score == pytest.approx(-mean / sd)
    assert scores[4].hot and not any(s.hot for s in scores[:4])
    assert sum(s.z_score for s in scores) == pytest.approx(0)


def test_hotness_flat_and_empty() -> None:
    assert hotness([]) == []
    assert all(s.z_score == 0 and not s.hot for s in hotness([7, 7, 7]))


def test_hotness_needs_enough_subscribers() -> None:
    # z is high but 2 subscribers against zeros is noise, not popularity.
    scores = hotness([0, 0, 0, 0, 0, 0, HOT_MIN_SUBSCRIBERS - 1])
    assert scores[-1].z_score >= HOT_Z
    assert not scores[-1].hot


def test_two_sections_can_never_be_hot() -> None:
    assert all(not s.hot for s in hotness([0, 1000]))


def test_open_share() -> None:
    assert open_share(start=0, end=100, initial_status="OPEN", changes=[]) == 1.0
    assert open_share(start=0, end=100, initial_status="CLOSED", changes=[]) == 0.0
    assert open_share(start=0, end=100, initial_status=None, changes=[]) == 0.0
    changes = [(10.0, "OPEN"), (40.0, "CLOSED"), (90.0, "OPEN")]
    assert open_share(start=0, end=100, initial_status="CLOSED", changes=changes) == pytest.approx(
        0.4
    )
    assert open_share(start=0, end=100, initial_status="OPEN", changes=[(25.0, "WAITLIST")]) == 0.25
    assert open_share(start=5, end=5, initial_status="OPEN", changes=[]) == 0.0


def test_open_share_clamps_changes_to_the_window() -> None:
    assert open_share(start=0, end=100, initial_status="CLOSED", changes=[(-5.0, "OPEN")]) == 1.0
    assert open_share(start=0, end=100, initial_status="OPEN", changes=[(150.0, "CLOSED")]) == 1.0
