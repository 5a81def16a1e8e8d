"""trakr-scrape-sim: a deterministic simulated registrar whose sections open and close over time.

Everything is a pure function of (seed, size, tick): no state, no history, so any process can
print tick t, and tests and benchmarks can compute exactly what changed between two ticks.

Status model, in closed form. An affine permutation of the section positions (seeded) gives
each section a role:

- the first `flapping` positions flip every tick;
- the next A = changes·P positions are "active" with period P = (sections - flapping) // changes:
  active section number j (0 ≤ j < A) has offset o = j mod P and flips at tick t exactly when
  (t + o) mod P == 0. Each offset is shared by exactly `changes` sections, so exactly `changes`
  active sections flip at every tick;
- the rest never change.

A section's status at tick t is its seeded base status XOR the parity of its flips so far
(flapping: t; active: ⌊(t + o) / P⌋). Between tick t-1 and t exactly `changes + flapping`
sections differ; `changed_sections` lists them without building the University.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from trakr.codec import encode_university
from trakr.pb.trakr_pb2 import (
    Course,
    Instructor,
    Meeting,
    Metadata,
    Section,
    Semester,
    Subject,
    University,
)
from trakr.scrapers.output import HelpFormatter, fail, write_output
from trakr.scrapers.pbjson import message_to_json
from trakr.topics import assign_topics, course_topic, section_topic, subject_topic, university_topic

SEASON = Semester.SPRING
YEAR = 2026
DEFAULT_SECTIONS_PER_COURSE = 3
COURSES_PER_SUBJECT = 20  # NB Spring 2026: 4,608 courses in 238 subjects
BASE_OPEN_PERCENT = 60
OPEN, CLOSED = Section.OPEN, Section.CLOSED
STATUS_NAMES = {OPEN: "OPEN", CLOSED: "CLOSED"}

DEPARTMENTS = (
    "Accounting", "Africana Studies", "American Studies", "Anthropology", "Art History",
    "Astrophysics", "Biochemistry", "Biomedical Engineering", "Chemical Engineering", "Chemistry",
    "Chinese", "Civil Engineering", "Classics", "Cognitive Science", "Communication",
    "Comparative Literature", "Computer Science", "Criminal Justice", "Dance", "Data Science",
    "Economics", "Electrical Engineering", "English", "Environmental Sciences", "Exercise Science",
    "Finance", "French", "Genetics", "Geography", "Geology", "German", "History", "Italian",
    "Journalism", "Korean", "Labor Studies", "Linguistics", "Management", "Marine Sciences",
    "Marketing", "Mathematics", "Mechanical Engineering", "Microbiology", "Music", "Nursing",
    "Nutritional Sciences", "Philosophy", "Physics", "Planning and Public Policy",
    "Political Science", "Portuguese", "Psychology", "Public Health", "Religion", "Russian",
    "Social Work", "Sociology", "Spanish", "Statistics", "Theater", "Urban Studies",
)  # fmt: skip
COURSE_PATTERNS = (
    "Introduction to {}", "Principles of {}", "Topics in {}", "Advanced {}", "Seminar in {}",
    "Research in {}", "Methods of {}", "History of {}", "{} Laboratory", "Honors {}",
    "Special Problems in {}", "{} and Society", "Quantitative {}", "Applied {}", "Independent Study in {}",
)  # fmt: skip
SURNAMES = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "PATEL", "KIM", "NGUYEN", "CHEN", "WANG", "SHAH",
)  # fmt: skip
GIVEN_NAMES = (
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WEI", "PRIYA", "AHMED", "SOFIA", "YUKI", "OLUWASEUN", "IVAN", "ANA",
)  # fmt: skip
CAMPUS_BUILDINGS = {
    "BUSCH": ("ARC", "SEC", "HILL", "BE", "LSH", "PH"),
    "COLLEGE AVENUE": ("SC", "MU", "HH", "FH", "AB", "VD"),
    "LIVINGSTON": ("TIL", "BE", "LCB", "BEST"),
    "DOUGLAS/COOK": ("HCK", "FOR", "LOR", "BIO"),
}
CAMPUSES = tuple(CAMPUS_BUILDINGS)
DAY_PATTERNS = (
    ("Monday", "Wednesday"), ("Tuesday", "Thursday"), ("Monday", "Thursday"),
    ("Monday", "Wednesday", "Friday"), ("Wednesday",), ("Friday",), ("Tuesday",),
)  # fmt: skip
START_TIMES = ("08:30", "10:20", "12:10", "14:00", "15:50", "17:40", "19:30")
CLASS_TYPES = ("LEC", "LEC", "LEC", "RECIT", "LAB", "SEM", "STUDIO")
CREDITS = ("3", "3", "3", "3", "4", "4", "1", "1.5", "")
EXAMS = ("During class hour", "By arrangement", "No final exam")


class SimulationError(ValueError):
    """The simulation parameters are inconsistent."""


class Change(NamedTuple):
    """One section whose status differs between tick-1 and tick."""

    topic_name: str
    status: str  # "OPEN" / "CLOSED", as stored in section.status


@dataclass(frozen=True)
class Layout:
    """Where section position i sits, and which role it plays in the status model."""

    sections: int
    sections_per_course: int
    courses_per_subject: int
    changes: int
    flapping: int
    seed: int
    multiplier: int
    shift: int

    @classmethod
    def build(
        cls,
        *,
        sections: int,
        seed: int,
        changes: int,
        flapping: int,
        subjects: int | None = None,
        sections_per_course: int = DEFAULT_SECTIONS_PER_COURSE,
    ) -> Layout:
        if sections < 1:
            raise SimulationError("--sections must be at least 1")
        if sections_per_course < 1:
            raise SimulationError("--sections-per-course must be at least 1")
        if changes < 0 or flapping < 0:
            raise SimulationError("--changes and --flapping must not be negative")
        if changes + flapping > sections:
            raise SimulationError(
                f"--changes {changes} + --flapping {flapping} exceed the {sections} sections"
            )
        courses = math.ceil(sections / sections_per_course)
        if subjects is None:
            subjects = max(1, round(courses / COURSES_PER_SUBJECT))
        if subjects < 1:
            raise SimulationError("--subjects must be at least 1")
        rng = random.Random(f"layout:{seed}")
        # a*i + b mod n is a permutation when gcd(a, n) == 1: an O(1) shuffle with an O(1) inverse.
        multiplier = rng.randrange(1, sections + 1) if sections > 1 else 1
        while math.gcd(multiplier, sections) != 1:
            multiplier += 1
        return cls(
            sections=sections,
            sections_per_course=sections_per_course,
            courses_per_subject=math.ceil(courses / subjects),
            changes=changes,
            flapping=flapping,
            seed=seed,
            multiplier=multiplier % sections if sections > 1 else 0,
            shift=rng.randrange(sections),
        )

    @property
    def period(self) -> int:
        return (self.sections - self.flapping) // self.changes if self.changes else 0

    def rank(self, position: int) -> int:
        return (self.multiplier * position + self.shift) % self.sections

    def position(self, rank: int) -> int:
        if self.sections == 1:
            return 0
        return ((rank - self.shift) * pow(self.multiplier, -1, self.sections)) % self.sections

    def base_open(self, position: int) -> bool:
        # splitmix64-style mixing: a cheap, well-spread, seeded coin per section.
        z = (position + 1 + self.seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) % 100 < BASE_OPEN_PERCENT

    def flips(self, position: int, tick: int) -> int:
        """How many times the section flipped up to `tick` (only its parity matters)."""
        rank = self.rank(position)
        if rank < self.flapping:
            return tick
        active = rank - self.flapping
        if self.changes and active < self.changes * self.period:
            return (tick + active % self.period) // self.period
        return 0

    def status(self, position: int, tick: int) -> int:
        is_open = self.base_open(position) ^ (self.flips(position, tick) & 1)
        return OPEN if is_open else CLOSED

    def changed_positions(self, tick: int) -> list[int]:
        """Positions whose status at `tick` differs from `tick - 1`, in output order."""
        ranks = list(range(self.flapping))
        if self.changes:
            offset = (-tick) % self.period
            ranks.extend(self.flapping + offset + k * self.period for k in range(self.changes))
        return sorted(self.position(rank) for rank in ranks)

    def place(self, position: int) -> tuple[int, int, int]:
        """(subject, course within subject, section within course) of a position."""
        course, section = divmod(position, self.sections_per_course)
        subject, course_in_subject = divmod(course, self.courses_per_subject)
        return subject, course_in_subject, section


def _subject_number(subject: int) -> str:
    return f"{subject + 1:03d}"


def _course_number(course_in_subject: int) -> str:
    return str(101 + course_in_subject)


def _course_code(course_in_subject: int) -> str:
    return f"01-{_course_number(course_in_subject)}"


def _section_number(section: int) -> str:
    return f"{section + 1:02d}"


def _index(position: int) -> str:
    return f"{10000 + position:05d}"


def university_name(abbr: str) -> str:
    return "Simulated University" if abbr == "sim" else f"Simulated University ({abbr})"


def simulate(
    *,
    sections: int,
    tick: int,
    seed: int = 0,
    changes: int = 10,
    flapping: int = 0,
    abbr: str = "sim",
    name: str | None = None,
    subjects: int | None = None,
    sections_per_course: int = DEFAULT_SECTIONS_PER_COURSE,
) -> University:
    """The simulated registrar at `tick`: a University with topics filled, identical for equal arguments."""
    layout = Layout.build(
        sections=sections,
        seed=seed,
        changes=changes,
        flapping=flapping,
        subjects=subjects,
        sections_per_course=sections_per_course,
    )
    rng = random.Random(f"content:{seed}")
    university = University(
        name=name or university_name(abbr),
        abbr=abbr,
        home_page="https://example.edu",
        registration_page="https://example.edu/register",
        available_semesters=[Semester(season=SEASON, year=YEAR)],
        metadata=[Metadata(title="Simulated", content=f"seed {seed}")],
    )
    instructors = [
        Instructor(name=f"{rng.choice(SURNAMES)}, {rng.choice(GIVEN_NAMES)}") for _ in range(400)
    ]
    meeting_templates = _meeting_templates(rng)
    subject: Subject | None = None
    course: Course | None = None
    for position in range(sections):
        subject_pos, course_pos, section_pos = layout.place(position)
        if course_pos == 0 and section_pos == 0:
            department = DEPARTMENTS[subject_pos % len(DEPARTMENTS)]
            cycle = subject_pos // len(DEPARTMENTS)
            subject = university.subjects.add(
                number=_subject_number(subject_pos),
                name=department if cycle == 0 else f"{department} {cycle + 1}",
                season=SEASON,
                year=YEAR,
            )
        assert subject is not None  # the first position always starts a subject
        if section_pos == 0:
            course_credits = rng.choice(CREDITS)
            course = subject.courses.add(
                code=_course_code(course_pos),
                number=_course_number(course_pos),
                name=rng.choice(COURSE_PATTERNS).format(subject.name),
                synopsis=f"https://example.edu/courses/{subject.number}/{_course_number(course_pos)}",
                credits=course_credits,
            )
        assert course is not None
        # One draw per section, cut into fields: rng.sample() twice per section was a third of the time.
        bits = rng.getrandbits(40)
        roll, first_meeting, first_instructor = bits % 100, (bits >> 7) % 300, (bits >> 16) % 400
        count = 1 if roll < 66 else 2 if roll < 89 else 3  # NB: 66% / 23% / 11% of sections
        roll = (bits >> 28) % 100
        teachers = 0 if roll < 20 else 2 if roll >= 97 else 1  # NB: 20% / 77% / 3%
        section = course.sections.add(
            index=_index(position),
            number=_section_number(section_pos),
            status=layout.status(position, tick),
            credits=course.credits,
            meetings=meeting_templates[first_meeting : first_meeting + count],
            instructors=instructors[first_instructor : first_instructor + teachers],
        )
        if roll < 30:
            section.metadata.add(title="Exam", content=EXAMS[position % len(EXAMS)])
    return assign_topics(university)


def _meeting_templates(rng: random.Random) -> list[Meeting]:
    """A few hundred distinct meetings; sections copy them (cheaper than building 150,000 afresh)."""
    templates = []
    for _ in range(300):
        if rng.random() < 0.12:
            templates.append(Meeting(class_type="ONLINE INSTRUCTION(INTERNET)", campus="ONLINE"))
            continue
        campus = rng.choice(CAMPUSES)
        start = rng.choice(START_TIMES)
        hours, minutes = divmod(int(start[:2]) * 60 + int(start[3:]) + 80, 60)
        templates.append(
            Meeting(
                day=rng.choice(rng.choice(DAY_PATTERNS)),
                start_time=start,
                end_time=f"{hours:02d}:{minutes:02d}",
                room=str(rng.randrange(100, 400)),
                building=rng.choice(CAMPUS_BUILDINGS[campus]),
                campus=campus,
                class_type=rng.choice(CLASS_TYPES),
            )
        )
    return templates


def changed_sections(
    *,
    sections: int,
    tick: int,
    seed: int = 0,
    changes: int = 10,
    flapping: int = 0,
    abbr: str = "sim",
    subjects: int | None = None,
    sections_per_course: int = DEFAULT_SECTIONS_PER_COURSE,
) -> list[Change]:
    """Exactly the sections whose status differs between simulate(tick - 1) and simulate(tick).

    (topic_name, new status) pairs in output order; `changes + flapping` of them. Cheap: it
    does not build the University.
    """
    layout = Layout.build(
        sections=sections,
        seed=seed,
        changes=changes,
        flapping=flapping,
        subjects=subjects,
        sections_per_course=sections_per_course,
    )
    root = university_topic(University(abbr=abbr))
    found = []
    for position in layout.changed_positions(tick):
        subject_pos, course_pos, section_pos = layout.place(position)
        subject = subject_topic(
            root, Subject(number=_subject_number(subject_pos), season=SEASON, year=YEAR)
        )
        course = course_topic(subject, Course(code=_course_code(course_pos)))
        topic = section_topic(
            course, Section(number=_section_number(section_pos), index=_index(position))
        )
        found.append(Change(topic, STATUS_NAMES[layout.status(position, tick)]))
    return found


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trakr-scrape-sim",
        formatter_class=HelpFormatter,
        description="Print one simulated University (trakr's data model) on stdout. Deterministic: "
        "the same --seed, size and tick give the same bytes. By default the tick is the wall clock "
        "divided by --tick-seconds, so running it repeatedly (as trakr-jet does) shows exactly "
        "--changes sections opening or closing per tick, plus --flapping sections that flip every "
        "tick.\n  trakr-jet --scraper-name sim -- trakr-scrape-sim --sections 100000 --changes 50",
    )
    parser.add_argument("--sections", type=int, default=1000, help="number of sections")
    parser.add_argument("--seed", type=int, default=0, help="content and status seed")
    parser.add_argument(
        "--tick", type=int, default=None, help="explicit tick (default: from the clock)"
    )
    parser.add_argument(
        "--tick-seconds", type=float, default=1.0, help="seconds per tick when --tick is not given"
    )
    parser.add_argument(
        "--changes",
        type=int,
        default=None,
        help="sections that change status per tick (default: 10, at most the non-flapping sections)",
    )
    parser.add_argument("--flapping", type=int, default=0, help="sections that flip on every tick")
    parser.add_argument(
        "--university",
        default="sim",
        metavar="ABBR or NAME/ABBR",
        help="topic prefix (abbr), optionally with a display name: 'Sim State/sim-state'",
    )
    parser.add_argument(
        "--subjects", type=int, default=None, help="subjects (default: one per 20 courses)"
    )
    parser.add_argument("--sections-per-course", type=int, default=DEFAULT_SECTIONS_PER_COURSE)
    parser.add_argument(
        "--format", choices=("json", "protobuf"), default="json", help="output encoding"
    )
    return parser


def default_changes(sections: int, flapping: int) -> int:
    """10, or fewer when the catalogue is too small for 10 besides the flapping ones."""
    return max(0, min(10, sections - flapping))


def main(argv: Iterable[str] | None = None) -> None:
    args = build_parser().parse_args(None if argv is None else list(argv))
    if args.tick_seconds <= 0:
        fail("--tick-seconds must be positive")
    tick = args.tick if args.tick is not None else int(time.time() // args.tick_seconds)
    name, _, abbr = args.university.rpartition("/")
    if not abbr.strip():
        fail("--university needs an abbr")
    try:
        university = simulate(
            sections=args.sections,
            tick=tick,
            seed=args.seed,
            changes=default_changes(args.sections, args.flapping)
            if args.changes is None
            else args.changes,
            flapping=args.flapping,
            abbr=abbr.strip(),
            name=name.strip() or None,
            subjects=args.subjects,
            sections_per_course=args.sections_per_course,
        )
    except SimulationError as exc:
        fail(str(exc))
    payload = (
        message_to_json(university)
        if args.format == "json"
        else encode_university(university, "protobuf")
    )
    write_output(payload)


if __name__ == "__main__":
    main()
