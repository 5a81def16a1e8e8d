"""collapse.py: the TRAKR_COLLAPSE parser and the per-topic forward/hold/collapse decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from trakr.julia.collapse import (
    CollapsePolicy,
    Decision,
    LastSent,
    PendingRow,
    parse_collapse,
    parse_duration,
    plan_topic,
)

T0 = datetime(2026, 1, 20, 12, 0, 0, tzinfo=UTC)
W = timedelta(seconds=240)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(*changes: tuple[int, str, float]) -> list[PendingRow]:
    return [PendingRow(id_, status, at(t)) for id_, status, t in changes]


def actions(decisions: list[Decision]) -> list[tuple[int, str, int | None]]:
    return [(d.id, d.action, d.collapsed_into) for d in decisions]


# --- parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("240s", 240),
        ("4m", 240),
        ("0", 0),
        ("0s", 0),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("30", 30),
        (" 2S ", 2),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "4x", "-1s", "s", "1 m", "1e3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_parse_collapse_example() -> None:
    policy = parse_collapse("rutgers=240s,default=0s")
    assert policy == CollapsePolicy(windows_seconds={"rutgers": 240.0}, default_seconds=0.0)


def test_parse_collapse_spaces_case_and_missing_default() -> None:
    policy = parse_collapse(" Rutgers = 4m , njit=1m, ")
    assert policy.windows_seconds == {"rutgers": 240.0, "njit": 60.0}
    assert policy.default_seconds == 0.0
    assert parse_collapse("") == CollapsePolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rutgers", "not key=duration"),
        ("=240s", "not key=duration"),
        ("rutgers=4x", "bad duration"),
        ("rut gers=4m", "not a university topic name"),
        ("rutgers=1m,rutgers=2m", "given twice"),
    ],
)
def test_parse_collapse_errors_are_readable(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_collapse(text)


def test_window_lookup_exact_prefix_and_default() -> None:
    policy = parse_collapse("rutgers=240s,rutgers-nk=60s,default=10s")
    assert policy.window_seconds("rutgers") == 240
    assert policy.window_seconds("rutgers-nb") == 240  # key + "-" prefix
    assert policy.window_seconds("rutgers-nk") == 60  # exact beats prefix
    assert policy.window_seconds("rutgers-nk-x") == 60  # longest prefix wins
    assert policy.window_seconds("rutgersville") == 10  # a bare prefix is not enough
    assert policy.window_seconds("njit") == 10
    assert policy.window("rutgers-cm") == timedelta(seconds=240)


# --- decisions --------------------------------------------------------------------------------


def test_window_zero_forwards_everything_at_once() -> None:
    pending = rows((1, "OPEN", 0), (2, "CLOSED", 0.1), (3, "OPEN", 0.2))
    decisions = plan_topic(pending, last=None, window=timedelta(0), now=at(0.3))
    assert [d.action for d in decisions] == ["forward"] * 3
    assert all(d.window_ends_at is None and d.reason == "immediate" for d in decisions)
    assert [d.previous_status for d in decisions] == [None, "OPEN", "CLOSED"]


def test_first_change_goes_out_at_once_and_opens_a_window() -> None:
    (decision,) = plan_topic(rows((1, "OPEN", 0)), last=None, window=W, now=at(0.01))
    assert decision == Decision(1, "forward", window_ends_at=at(240), reason="immediate")


def test_open_closed_open_inside_the_window_is_one_message() -> None:
    pending = rows((1, "OPEN", 0), (2, "CLOSED", 10), (3, "OPEN", 20))
    during = plan_topic(pending, last=None, window=W, now=at(30))
    assert actions(during) == [(1, "forward", None), (2, "hold", None), (3, "hold", None)]
    assert during[1].window_ends_at == at(240)

    # The window closes; the latest status equals the last one sent: nothing more goes out.
    after = plan_topic(pending[1:], last=LastSent(1, "OPEN", at(240)), window=W, now=at(241))
    assert actions(after) == [(2, "collapse", 1), (3, "collapse", 1)]


def test_open_closed_inside_the_window_is_two_messages() -> None:
    pending = rows((1, "OPEN", 0), (2, "CLOSED", 10))
    decisions = plan_topic(pending, last=None, window=W, now=at(300))
    assert actions(decisions) == [(1, "forward", None), (2, "forward", None)]
    second = decisions[1]
    assert second.reason == "window_closed"
    assert second.previous_status == "OPEN"
    # The forward at the close opens the next window at the close time, not at the row's time.
    assert second.window_ends_at == at(480)


def test_latest_held_status_wins_and_the_rest_fold_into_it() -> None:
    pending = rows((2, "CLOSED", 10), (3, "WAITLIST", 20), (4, "CLOSED", 30))
    decisions = plan_topic(pending, last=LastSent(1, "OPEN", at(240)), window=W, now=at(250))
    assert actions(decisions) == [(2, "collapse", 4), (3, "collapse", 4), (4, "forward", None)]
    assert decisions[2].folded == 2
    assert decisions[2].previous_status == "OPEN"


def test_change_after_the_window_is_immediate() -> None:
    decisions = plan_topic(
        rows((2, "CLOSED", 300)), last=LastSent(1, "OPEN", at(240)), window=W, now=at(300)
    )
    assert actions(decisions) == [(2, "forward", None)]
    assert decisions[0].reason == "immediate"
    assert decisions[0].window_ends_at == at(540)


def test_backlog_resolves_windows_in_event_time() -> None:
    # julia was down for an hour: the old windows are long closed, decided in one pass.
    pending = rows(
        (1, "OPEN", 0),  # forwarded, window to 240
        (2, "CLOSED", 5),  # held ...
        (3, "OPEN", 6),  # ... collapses into 1 at 240
        (4, "CLOSED", 500),  # outside: immediate, window to 740
        (5, "OPEN", 600),  # held, forwarded at 740, window to 980
        (6, "CLOSED", 900),  # held in the new window, forwarded at 980
    )
    decisions = plan_topic(pending, last=None, window=W, now=at(3600))
    assert actions(decisions) == [
        (1, "forward", None),
        (2, "collapse", 1),
        (3, "collapse", 1),
        (4, "forward", None),
        (5, "forward", None),
        (6, "forward", None),
    ]
    assert [d.reason for d in decisions if d.action == "forward"] == [
        "immediate",
        "immediate",
        "window_closed",
        "window_closed",
    ]
    assert decisions[4].window_ends_at == at(980)
    assert decisions[5].window_ends_at == at(1220)


def test_rows_in_an_open_window_stay_held_across_calls() -> None:
    last = LastSent(1, "OPEN", at(240))
    first = plan_topic(rows((2, "CLOSED", 10)), last=last, window=W, now=at(11))
    second = plan_topic(rows((2, "CLOSED", 10), (3, "OPEN", 12)), last=last, window=W, now=at(13))
    assert [d.action for d in first + second] == ["hold", "hold", "hold"]
    assert {d.window_ends_at for d in first + second} == {at(240)}


def test_same_status_as_last_sent_is_never_sent_twice() -> None:
    decisions = plan_topic(
        rows((2, "OPEN", 300)), last=LastSent(1, "OPEN", None), window=timedelta(0), now=at(300)
    )
    assert actions(decisions) == [(2, "collapse", 1)]


def test_last_sent_without_window_means_no_window_open() -> None:
    # A forward made under a 0 s policy opened no window; after a switch to 240 s the next
    # change still goes out at once.
    decisions = plan_topic(
        rows((2, "CLOSED", 5)), last=LastSent(1, "OPEN", None), window=W, now=at(5)
    )
    assert actions(decisions) == [(2, "forward", None)]
