"""trakr-scrape-sim: deterministic, exactly `changes` (+ `flapping`) status changes per tick."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trakr.codec import decode_university, encode_university, validate_university
from trakr.pb.trakr_pb2 import Section, University
from trakr.scrapers.pbjson import message_to_json
from trakr.scrapers.sim import SimulationError, changed_sections, simulate

STATUS = {Section.OPEN: "OPEN", Section.CLOSED: "CLOSED"}


def statuses(university: University) -> dict[str, str]:
    return {
        s.topic_name: STATUS[s.status]
        for subject in university.subjects
        for course in subject.courses
        for s in course.sections
    }


def real_diff(**kwargs: int) -> list[tuple[str, str]]:
    tick = kwargs.pop("tick")
    before = statuses(simulate(tick=tick - 1, **kwargs))
    after = statuses(simulate(tick=tick, **kwargs))
    assert before.keys() == after.keys()  # the catalogue itself never changes with the tick
    return sorted((topic, status) for topic, status in after.items() if before[topic] != status)


def test_deterministic() -> None:
    first = simulate(sections=500, tick=7, seed=3)
    second = simulate(sections=500, tick=7, seed=3)
    assert encode_university(first, "protobuf") == encode_university(second, "protobuf")
    assert encode_university(
        simulate(sections=500, tick=7, seed=4), "protobuf"
    ) != encode_university(first, "protobuf")


def test_shape_resembles_real_data() -> None:
    university = simulate(sections=3000, tick=0)
    counts = validate_university(university)  # valid scrape, unique keys, topics filled
    assert counts.sections == 3000
    assert counts.courses == 1000
    assert 40 <= counts.subjects <= 60
    sections = [s for subject in university.subjects for c in subject.courses for s in c.sections]
    meetings = sum(len(s.meetings) for s in sections) / len(sections)
    instructors = sum(len(s.instructors) for s in sections) / len(sections)
    assert 1.2 <= meetings <= 1.7  # NB Spring 2026: 1.44 meetings per section
    assert 0.6 <= instructors <= 1.0  # NB: 0.83 instructors per section
    opened = sum(s.status == Section.OPEN for s in sections) / len(sections)
    assert 0.5 <= opened <= 0.7
    assert all(s.meetings[0].class_type for s in sections)
    assert (
        university.subjects[0].courses[0].sections[0].topic_name
        == "sim.001.spring.2026.01-101.01.10000"
    )


def test_shaping_flags() -> None:
    university = simulate(sections=100, tick=0, subjects=4, sections_per_course=5)
    assert len(university.subjects) == 4
    assert all(len(c.sections) == 5 for s in university.subjects for c in s.courses)
    named = simulate(sections=10, tick=0, abbr="state-u", name="State U")
    assert (named.name, named.abbr, named.topic_name) == ("State U", "state-u", "state-u")


@pytest.mark.parametrize(
    ("sections", "changes", "flapping", "seed"),
    [
        (1000, 10, 0, 0),
        (1000, 10, 5, 1),
        (97, 7, 3, 2),
        (50, 50, 0, 3),
        (20, 0, 4, 4),
        (1, 1, 0, 5),
    ],
)
def test_changed_sections_matches_a_real_diff(
    sections: int, changes: int, flapping: int, seed: int
) -> None:
    for tick in (0, 1, 2, 3, 1_764_000_000):
        expected = real_diff(
            sections=sections, tick=tick, seed=seed, changes=changes, flapping=flapping
        )
        listed = changed_sections(
            sections=sections, tick=tick, seed=seed, changes=changes, flapping=flapping
        )
        assert sorted(listed) == expected
        assert len(listed) == changes + flapping


@settings(max_examples=30, deadline=None)
@given(
    sections=st.integers(min_value=1, max_value=120),
    data=st.data(),
    tick=st.integers(min_value=-1000, max_value=10**10),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_exactly_changes_plus_flapping_per_tick(
    sections: int, data: st.DataObject, tick: int, seed: int
) -> None:
    flapping = data.draw(st.integers(min_value=0, max_value=sections))
    changes = data.draw(st.integers(min_value=0, max_value=sections - flapping))
    expected = real_diff(
        sections=sections, tick=tick, seed=seed, changes=changes, flapping=flapping
    )
    assert len(expected) == changes + flapping
    listed = changed_sections(
        sections=sections, tick=tick, seed=seed, changes=changes, flapping=flapping
    )
    assert sorted(listed) == expected


def test_flapping_sections_flip_every_tick() -> None:
    flappers = {c.topic_name for c in changed_sections(sections=300, tick=1, changes=0, flapping=6)}
    assert len(flappers) == 6
    history = [statuses(simulate(sections=300, tick=t, changes=0, flapping=6)) for t in range(4)]
    for topic in flappers:
        assert [h[topic] for h in history] in (["OPEN", "CLOSED"] * 2, ["CLOSED", "OPEN"] * 2)
    steady = next(t for t in history[0] if t not in flappers)
    assert len({h[steady] for h in history}) == 1


def test_every_active_section_changes_once_per_period() -> None:
    # 100 sections, 10 changes per tick: period 10, so over 10 ticks each section flips once.
    flipped = [
        c.topic_name for t in range(10) for c in changed_sections(sections=100, tick=t, changes=10)
    ]
    assert len(flipped) == len(set(flipped)) == 100


def test_invalid_parameters() -> None:
    with pytest.raises(SimulationError):
        simulate(sections=0, tick=0)
    with pytest.raises(SimulationError):
        simulate(sections=10, tick=0, changes=8, flapping=3)
    with pytest.raises(SimulationError):
        changed_sections(sections=10, tick=0, seed=0, changes=-1, flapping=0)


def test_fast_json_equals_json_format() -> None:
    university = simulate(sections=400, tick=2, flapping=3)
    assert message_to_json(university) == encode_university(university, "json")


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "trakr.scrapers.sim", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_cli_both_formats_and_explicit_tick() -> None:
    as_json = run_cli(
        "--sections", "300", "--tick", "12", "--seed", "9", "--university", "Sim State/sim-state"
    )
    as_protobuf = run_cli(
        "--sections",
        "300",
        "--tick",
        "12",
        "--seed",
        "9",
        "--university",
        "Sim State/sim-state",
        "--format",
        "protobuf",
    )
    assert as_json.returncode == as_protobuf.returncode == 0, as_json.stderr + as_protobuf.stderr
    university = decode_university(as_json.stdout, "json")
    assert university == decode_university(as_protobuf.stdout, "protobuf")
    assert university == simulate(sections=300, tick=12, seed=9, abbr="sim-state", name="Sim State")


def test_cli_clock_tick_and_bad_flags() -> None:
    result = run_cli("--sections", "20", "--tick-seconds", "3600")
    assert result.returncode == 0, result.stderr
    assert len(statuses(decode_university(result.stdout, "json"))) == 20
    tiny = run_cli(
        "--sections", "5", "--flapping", "1", "--tick", "3"
    )  # default --changes shrinks to 4
    assert tiny.returncode == 0, tiny.stderr
    assert decode_university(tiny.stdout, "json") == simulate(
        sections=5, tick=3, changes=4, flapping=1
    )
    bad = run_cli("--sections", "10", "--changes", "11")
    assert bad.returncode != 0
    assert bad.stderr.decode().startswith("error: ") and len(bad.stderr.decode().splitlines()) == 1
