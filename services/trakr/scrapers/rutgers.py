"""trakr-scrape-rutgers: a Rutgers Schedule of Classes courses.json (+ openSections.json) as one University.

The SOC API (https://sis.rutgers.edu/soc/api/courses.json?year=2026&term=1&campus=NB) returns a
flat array of courses, each with its sections. This module maps it onto trakr's data model:

- Subject = the SOC subject code ("198", named by subjectDescription).
- Course.code = f"{offeringUnitCode}-{courseNumber}" [+ f"-{supplementCode}" when not blank]
  [+ f"-{campusCode}" when it is not the university's campus]. `courseString` ("01:198:111") is
  NOT unique: in NB Spring 2026 thirteen of them repeat, differing only in supplementCode, and
  off-campus offerings (campusCode "OB") may share a number with the on-campus one.
- Section status comes from openStatus, or from openSections.json (index listed -> OPEN, else
  CLOSED) when that file is given: it is the cheap, frequently refreshed view of the same data.

`build_university` is pure (dicts in, University out); `load_university` adds file/URL reading.
"""

from __future__ import annotations

import argparse
import gzip
import json
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trakr.codec import ScrapeRejected, encode_university, validate_university
from trakr.errors import InvalidScrape, TrakrError
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

SOC_API = "https://sis.rutgers.edu/soc/api"
EN_DASH = "\u2013"  # the official names use an en dash
CAMPUSES: dict[str, tuple[str, str, str]] = {
    # campus code: (university name, abbr, home page)
    "NB": (
        f"Rutgers University{EN_DASH}New Brunswick",
        "rutgers-nb",
        "https://newbrunswick.rutgers.edu",
    ),
    "NK": (f"Rutgers University{EN_DASH}Newark", "rutgers-nk", "https://www.newark.rutgers.edu"),
    "CM": (f"Rutgers University{EN_DASH}Camden", "rutgers-cm", "https://www.camden.rutgers.edu"),
}
# The SOC's own term numbers (the `term=` query parameter and the first digit of `semester=`).
TERMS = {"winter": 0, "spring": 1, "summer": 7, "fall": 9}
SEASONS = {
    "winter": Semester.WINTER,
    "spring": Semester.SPRING,
    "summer": Semester.SUMMER,
    "fall": Semester.FALL,
}
DAYS = {
    "M": "Monday",
    "T": "Tuesday",
    "W": "Wednesday",
    "H": "Thursday",
    "F": "Friday",
    "S": "Saturday",
    "U": "Sunday",
}
LEVELS = {"U": "Undergraduate", "G": "Graduate"}
# campusLocation "O" is printed as campusName "** INVALID **": it means online/remote instruction.
ONLINE_CAMPUS_LOCATION = "O"
OPEN, CLOSED = Section.OPEN, Section.CLOSED
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024


class RutgersDataError(InvalidScrape):
    """The Rutgers SOC data is not in the expected shape."""


# --- pure mapping ----------------------------------------------------------------------------


def university_details(campus: str) -> tuple[str, str, str]:
    """(name, abbr, home page) of a campus; unknown campuses get a generic name."""
    if campus in CAMPUSES:
        return CAMPUSES[campus]
    return (
        f"Rutgers University ({campus})",
        f"rutgers-{campus.lower()}",
        "https://www.rutgers.edu",
    )


def registration_page(campus: str, season: str, year: int) -> str:
    return f"https://sis.rutgers.edu/soc/#home?semester={TERMS[season]}{year}&campus={campus}&level=U,G"


def courses_url(campus: str, season: str, year: int) -> str:
    return f"{SOC_API}/courses.json?year={year}&term={TERMS[season]}&campus={campus}"


def build_university(
    courses: list[dict[str, Any]],
    open_indexes: set[str] | None,
    *,
    campus: str = "NB",
    season: str = "spring",
    year: int = 2026,
) -> University:
    """Map SOC courses onto one University (topics not yet filled).

    `open_indexes` (from openSections.json) overrides every section's status when given.
    Raises RutgersDataError naming the first course that is not in the expected shape.
    Subjects are ordered by number, courses by code, sections by (number, index), so the same
    data always gives the same bytes whatever order the API returned it in.
    """
    if season not in SEASONS:
        raise RutgersDataError(f"unknown season {season!r} (one of {', '.join(SEASONS)})")
    if not isinstance(courses, list):
        raise RutgersDataError(f"expected a JSON array of courses, got {_kind(courses)}")
    if not courses:
        raise RutgersDataError("the courses array is empty")
    season_value = SEASONS[season]
    name, abbr, home_page = university_details(campus)
    subjects: dict[str, Subject] = {}
    by_subject: dict[str, list[tuple[str, Course]]] = {}
    for position, raw in enumerate(courses):
        try:
            subject_number, course = _course(raw, open_indexes, campus)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            label = raw.get("courseString", "?") if isinstance(raw, dict) else "?"
            raise RutgersDataError(f"course #{position} ({label}): {_describe(exc)}") from exc
        if subject_number not in subjects:
            subjects[subject_number] = Subject(
                number=subject_number,
                name=_text(raw.get("subjectDescription")) or subject_number,
                season=season_value,
                year=year,
            )
            by_subject[subject_number] = []
        by_subject[subject_number].append((course.code, course))
    university = University(
        name=name,
        abbr=abbr,
        home_page=home_page,
        registration_page=registration_page(campus, season, year),
        available_semesters=[Semester(season=season_value, year=year)],
    )
    for number in sorted(subjects):
        subject = subjects[number]
        subject.courses.extend(
            course for _, course in sorted(by_subject[number], key=lambda item: item[0])
        )
        university.subjects.append(subject)
    return university


def _course(raw: dict[str, Any], open_indexes: set[str] | None, campus: str) -> tuple[str, Course]:
    if not isinstance(raw, dict):
        raise TypeError(f"expected an object, got {_kind(raw)}")
    subject_number = _required(raw, "subject")
    number = _required(raw, "courseNumber")
    unit = _required(raw, "offeringUnitCode")
    code = f"{unit}-{number}"
    supplement = _text(raw.get("supplementCode"))
    if supplement:
        code += f"-{supplement}"
    course_campus = _text(raw.get("campusCode"))
    if course_campus and course_campus != campus:
        code += f"-{course_campus}"
    credits = _credits(raw.get("credits"))
    title = _clean(raw.get("title"))
    expanded = _clean(raw.get("expandedTitle"))
    sections = raw["sections"]
    if not isinstance(sections, list):
        raise TypeError(f"sections: expected an array, got {_kind(sections)}")
    built = [_section(s, open_indexes, credits) for s in sections]
    built.sort(key=lambda s: (s.number, s.index))
    return subject_number, Course(
        code=code,
        number=number,
        # expandedTitle is the full name ("COMICS IN THE MIDDLE EAST"); title is the 20-character
        # registrar abbreviation ("COMICS MIDEAST"), so it is only the fallback.
        name=expanded or title,
        synopsis=_text(raw.get("synopsisUrl")),
        credits=credits,
        sections=built,
        metadata=_course_metadata(raw, title if expanded and expanded != title else ""),
    )


def _course_metadata(raw: dict[str, Any], short_title: str) -> list[Metadata]:
    core = "; ".join(
        f"{_text(c.get('coreCode') or c.get('code'))}: {_text(c.get('coreCodeDescription') or c.get('description'))}"
        for c in raw.get("coreCodes") or ()
        if isinstance(c, dict)
    )
    school = raw.get("school")
    credits_object = raw.get("creditsObject")
    fee = _text(raw.get("courseFee"))
    items = [
        ("Course string", _text(raw.get("courseString"))),
        ("Short title", short_title),
        ("School", _text(school.get("description")) if isinstance(school, dict) else ""),
        ("Level", LEVELS.get(_text(raw.get("level")), _text(raw.get("level")))),
        (
            "Credits",
            _text(credits_object.get("description"))
            if raw.get("credits") is None and isinstance(credits_object, dict)
            else "",
        ),
        ("Prerequisites", _text(raw.get("preReqNotes"))),
        ("Core codes", core),
        ("Course notes", _text(raw.get("courseNotes"))),
        ("Subject notes", _text(raw.get("subjectNotes"))),
        ("Unit notes", _text(raw.get("unitNotes"))),
        ("Campus locations", _descriptions(raw.get("campusLocations"))),
        (
            "Course fee",
            f"{fee} {_text(raw.get('courseFeeDescr'))}".strip() if fee not in ("", "0") else "",
        ),
    ]
    return [Metadata(title=title, content=content) for title, content in items if content]


def _section(raw: dict[str, Any], open_indexes: set[str] | None, credits: str) -> Section:
    if not isinstance(raw, dict):
        raise TypeError(f"section: expected an object, got {_kind(raw)}")
    index = _required(raw, "index")
    if open_indexes is None:
        status = OPEN if raw["openStatus"] is True else CLOSED
    else:
        status = OPEN if index in open_indexes else CLOSED
    return Section(
        index=index,
        number=_required(raw, "number"),
        status=status,
        credits=credits,
        meetings=[_meeting(m) for m in raw.get("meetingTimes") or ()],
        instructors=[
            Instructor(name=_text(i.get("name")))
            for i in raw.get("instructors") or ()
            if isinstance(i, dict) and _text(i.get("name"))
        ],
        metadata=_section_metadata(raw),
    )


# (title, SOC field) of the plain-text section fields shown as metadata, in display order.
_SECTION_TEXT_FIELDS = (
    ("Subtitle", "subtitle"),
    ("Subtopic", "subtopic"),
    ("Comments", "commentsText"),
    ("Notes", "sectionNotes"),
    ("Eligibility", "sectionEligibility"),
    ("Open to", "openToText"),
    ("Exam", "examCodeText"),
    ("Cross-listed", "crossListedSectionsText"),
    ("Special permission", "specialPermissionAddCodeDescription"),
    ("Session dates", "sessionDates"),
)


def _section_metadata(raw: dict[str, Any]) -> list[Metadata]:
    # A plain loop: this runs for every section and most fields are empty (a third of the
    # mapping's time went to a helper call per field).
    found = []
    for title, key in _SECTION_TEXT_FIELDS:
        value = raw.get(key)
        if value.__class__ is str and (value := value.strip()):
            found.append(Metadata(title=title, content=value))
        elif key == "commentsText" and raw.get("comments"):
            comments = "; ".join(
                _text(c.get("description")) for c in raw["comments"] if isinstance(c, dict)
            )
            if comments:
                found.append(Metadata(title=title, content=comments))
    locations = _descriptions(raw.get("sectionCampusLocations"))
    if locations:
        found.append(Metadata(title="Campus locations", content=locations))
    return found


def _meeting(raw: dict[str, Any]) -> Meeting:
    if not isinstance(raw, dict):
        raise TypeError(f"meetingTimes: expected an object, got {_kind(raw)}")
    day = _text(raw.get("meetingDay"))
    if raw.get("campusLocation") == ONLINE_CAMPUS_LOCATION:
        campus = "ONLINE"
    else:
        campus = _text(raw.get("campusName"))
        if campus.startswith("**"):
            campus = ""
    return Meeting(
        day=DAYS.get(day, day),
        start_time=_clock(raw.get("startTimeMilitary")),
        end_time=_clock(raw.get("endTimeMilitary")),
        room=_text(raw.get("roomNumber")),
        building=_text(raw.get("buildingCode")),
        campus=campus,
        class_type=_text(raw.get("meetingModeDesc")),
        metadata=[Metadata(title="Hours", content="By arrangement")]
        if raw.get("baClassHours") == "B"
        else (),
    )


def _clock(value: Any) -> str:
    """ "1930" -> "19:30"; "" (unscheduled) stays ""."""
    text = _text(value)
    if not text:
        return ""
    if len(text) != 4 or not text.isdigit():
        raise ValueError(f"time {text!r} is not HHMM")
    return f"{text[:2]}:{text[2:]}"


def _credits(value: Any) -> str:
    """3 -> "3", 1.5 -> "1.5", 3.0 -> "3", None (by arrangement) -> ""."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"credits: unexpected {_kind(value)}")
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _required(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _clean(value: Any) -> str:
    """Strip and collapse the SOC's fixed-width padding ("ELEMENTARY HINDI II     ")."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _descriptions(items: Any) -> str:
    if not isinstance(items, list):
        return ""
    return ", ".join(
        _text(i.get("description"))
        for i in items
        if isinstance(i, dict) and _text(i.get("description"))
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


# --- I/O -------------------------------------------------------------------------------------


def read_source(source: str | Path) -> bytes:
    """The bytes of a file or http(s) URL, gunzipped when they start with the gzip magic."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        data = _download(text)
    else:
        try:
            data = Path(text).read_bytes()
        except OSError as exc:
            raise RutgersDataError(f"cannot read {text}: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise RutgersDataError(f"{text}: broken gzip data: {exc}") from exc
    if not data.strip():
        raise RutgersDataError(f"{text} is empty")
    return data


def _download(url: str) -> bytes:
    import httpx  # only needed for URLs; keeps the file path's start-up lean

    try:
        response = httpx.get(
            url, timeout=60.0, follow_redirects=True, headers={"Accept-Encoding": "gzip"}
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise RutgersDataError(f"cannot fetch {url}: {exc}") from exc
    if len(response.content) > MAX_DOWNLOAD_BYTES:
        raise RutgersDataError(f"{url}: response larger than {MAX_DOWNLOAD_BYTES} bytes")
    return response.content


def read_json(source: str | Path) -> Any:
    data = read_source(source)
    try:
        return json.loads(data)
    except (
        ValueError,
        RecursionError,
    ) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RutgersDataError(f"{source} is not JSON: {exc}") from exc


def read_open_indexes(source: str | Path) -> set[str]:
    """The section indexes in an openSections.json (a flat array of index strings)."""
    value = read_json(source)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RutgersDataError(f"{source}: expected a JSON array of section index strings")
    return {item.strip() for item in value}


def load_university(
    courses: str | Path,
    open_sections: str | Path | None = None,
    *,
    campus: str = "NB",
    season: str = "spring",
    year: int = 2026,
) -> University:
    """Read courses.json (and openSections.json) from files or URLs; a validated University with topics.

    Raises RutgersDataError (an InvalidScrape) or ScrapeRejected on bad input.
    """
    raw = read_json(courses)
    open_indexes = read_open_indexes(open_sections) if open_sections is not None else None
    try:
        university = build_university(raw, open_indexes, campus=campus, season=season, year=year)
    except RutgersDataError as exc:
        raise RutgersDataError(f"{courses}: {exc}") from exc
    validate_university(university)
    return university


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trakr-scrape-rutgers",
        formatter_class=HelpFormatter,
        description="Print one University (trakr's data model) built from a Rutgers Schedule of "
        "Classes courses.json, optionally with an openSections.json that overrides each section's "
        "status. JSON (the protobuf JSON mapping) or binary protobuf on stdout; errors are one "
        "line on stderr with a non-zero exit. Run it under trakr-jet:\n"
        "  trakr-jet --scraper-name rutgers-nb -- trakr-scrape-rutgers --courses URL --open-sections URL",
    )
    parser.add_argument(
        "--courses",
        metavar="FILE_OR_URL",
        help="courses.json, plain or gzip, file or http(s) URL; default: the SOC API URL for "
        "--campus/--season/--year",
    )
    parser.add_argument(
        "--open-sections",
        metavar="FILE_OR_URL",
        help="openSections.json (array of open section indexes); listed -> OPEN, others -> CLOSED",
    )
    parser.add_argument("--campus", default="NB", help="SOC campus code: NB, NK or CM")
    parser.add_argument("--season", default="spring", choices=sorted(SEASONS))
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument(
        "--format", choices=("json", "protobuf"), default="json", help="output encoding"
    )
    return parser


def main(argv: Iterable[str] | None = None) -> None:
    args = build_parser().parse_args(None if argv is None else list(argv))
    campus = args.campus.strip().upper()
    courses = args.courses or courses_url(campus, args.season, args.year)
    try:
        university = load_university(
            courses, args.open_sections, campus=campus, season=args.season, year=args.year
        )
    except ScrapeRejected as exc:
        fail(f"{courses}: rejected ({exc.reason}): {exc}")
    except TrakrError as exc:
        fail(str(exc))
    write_output(encode(university, args.format))


def encode(university: University, fmt: str) -> bytes:
    """The output bytes: binary via codec.encode_university, JSON via the faster pbjson walker."""
    if fmt == "json":
        return message_to_json(university)
    return encode_university(university, "protobuf")


if __name__ == "__main__":
    main()
