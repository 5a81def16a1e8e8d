"""Decoding, encoding and validating a scrape (one University) in either wire format.

jet validates before it queues; ein validates again before it writes (a stream entry may come
from anything that can XADD). Both use this one module, so "valid" means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from trakr.errors import ScrapeRejected
from trakr.pb.trakr_pb2 import Course, Section, University
from trakr.scrapers import pbjson
from trakr.topics import (
    fill_topic,
    is_valid_topic,
    iter_assign_course_topics,
    iter_assign_topics,
    subject_topic,
    university_topic,
)

if TYPE_CHECKING:
    # Only for annotations: importing trakr.settings pulls in pydantic (~0.4 s), which every
    # scraper run (trakr-scrape-rutgers/-sim import this module) would pay for nothing.
    from trakr.settings import WireFormat

VALID_STATUSES = frozenset(
    value for name, value in Section.Status.items() if name != "STATUS_UNSPECIFIED"
)


def decode_university(payload: bytes, fmt: WireFormat) -> University:
    """Parse a scrape; raises ScrapeRejected("parse_error") when it is not a University."""
    university = University()
    try:
        if fmt == "json":
            json_format.Parse(payload, university, ignore_unknown_fields=False)
        else:
            university.ParseFromString(payload)
    except (
        json_format.ParseError,
        DecodeError,
        UnicodeDecodeError,
        ValueError,
        RecursionError,
    ) as exc:
        raise ScrapeRejected("parse_error", f"not a University in {fmt}: {_short(exc)}") from exc
    return university


def encode_university(university: University, fmt: WireFormat) -> bytes:
    """Serialise a University (deterministic protobuf; compact JSON mapping)."""
    if fmt == "json":
        # The same bytes as json_format.MessageToJson(indent=None, ensure_ascii=False), about
        # 3x faster on a big university (tests/unit/scrapers check the two agree).
        return pbjson.message_to_json(university)
    return university.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class ScrapeCounts:
    subjects: int
    courses: int
    sections: int
    # Entities whose topic name or id validation had to set (0: the scrape carried them all
    # already, so its protobuf encoding is unchanged by validation).
    topics_written: int = 0


def validate_university(university: University) -> ScrapeCounts:
    """Check a decoded scrape and fill its topics; raises ScrapeRejected naming the first problem.

    A University must have a name, at least one subject, sections with a known status, and
    unique topic names (so unique section keys) that FCM would accept.
    """
    if not university.name.strip():
        raise ScrapeRejected("no_name", "the University has no name")
    if not university.subjects:
        raise ScrapeRejected("no_subjects", f"{university.name}: no subjects")
    # Checked while the topics are filled (one walk of the tree, not two: this runs for every
    # scrape in jet and in ein); on a rejection the rest are still filled, as the contract says.
    walk = iter_assign_topics(university)
    try:
        courses, sections, topics_written = _check_entities(walk, set())
    except ScrapeRejected:
        for _ in walk:
            pass
        raise
    return ScrapeCounts(
        subjects=len(university.subjects),
        courses=courses,
        sections=sections,
        topics_written=topics_written,
    )


@dataclass(frozen=True)
class Accepted:
    """A protobuf scrape that passed validation as it is (every topic already right)."""

    university: str  # the university's topic name
    counts: ScrapeCounts


class _Checked(NamedTuple):
    """An accepted subject or course: every topic name in it, and its counts."""

    names: set[str]
    courses: int
    sections: int


class _KnownSubject(NamedTuple):
    name: str  # its topic name
    checked: _Checked
    courses: dict[bytes, _Checked] | None  # its courses by their bytes, once it has changed


class KnownSubjects:
    """Validates consecutive protobuf scrapes of one catalogue, walking only what changed.

    jet validates a scrape of the same catalogue every interval with a handful of sections
    changed, and walking 10,000 sections in Python (~30 ms with the decode) was most of its
    time. Validity and topics of a subject are a function of the university's topic name and
    the subject's bytes alone (of a course: the subject's topic name and the course's bytes).
    So a subject byte-identical to one accepted last time (same university topic name, every
    topic already right) is accepted again, with the same names and counts, without being
    decoded: a dict lookup on its bytes, cut from the payload by a walk of the top level only. A
    changed subject is decoded, and of its courses only those not byte-identical to one of that
    subject's last version are walked (a new subject is walked whole). Uniqueness is checked
    again across courses and across subjects, over all names at once. Anything else — a topic
    to fill, any problem, framing this does not read — returns None: the caller decodes and
    validates the whole scrape, which names the first problem exactly as always. One university
    and one call at a time.
    """

    def __init__(self) -> None:
        self._university = ""
        self._subjects: dict[bytes, _KnownSubject] = {}

    def accept(self, payload: bytes) -> Accepted | None:
        """The scrape's topic name and counts if `payload` is valid as it is; None: decide it whole."""
        parts = _split(payload, _SUBJECTS)
        if parts is None:
            return None
        shell_bytes, subject_bytes = parts
        try:
            shell = University.FromString(shell_bytes)
        except DecodeError:
            return None
        if not shell.name.strip() or not subject_bytes:
            return None
        university_name = university_topic(shell)
        if fill_topic(shell, university_name) or not is_valid_topic(university_name):
            return None
        known = self._subjects if university_name == self._university else {}
        by_name: dict[str, _KnownSubject] | None = None
        kept: dict[bytes, _KnownSubject] = {}
        for body in subject_bytes:
            found = known.get(body)
            if found is None:
                if by_name is None:
                    by_name = {subject.name: subject for subject in known.values()}
                found = _accept_subject(university_name, body, by_name)
                if found is None:
                    return None
            kept[body] = found
        if len(kept) != len(subject_bytes):
            return None  # the same subject twice
        checked = [subject.checked for subject in kept.values()]
        everything = {university_name}
        for found in checked:
            everything.update(found.names)
        if len(everything) != 1 + sum(len(found.names) for found in checked):
            return None  # a topic name in two subjects
        self._university, self._subjects = university_name, kept
        counts = ScrapeCounts(
            subjects=len(checked),
            courses=sum(found.courses for found in checked),
            sections=sum(found.sections for found in checked),
        )
        return Accepted(university_name, counts)


def _accept_subject(
    university_name: str, body: bytes, by_name: dict[str, _KnownSubject]
) -> _KnownSubject | None:
    """Check one changed subject, reusing what its last version's courses showed; None if not OK."""
    try:
        # Parsed inside a University, at the depth the whole scrape's parse would see it.
        subject = University.FromString(_nest(_SUBJECTS, body)).subjects[0]
        subject_name = subject_topic(university_name, subject)
    except (DecodeError, ScrapeRejected):  # ScrapeRejected: an unknown season
        return None
    if fill_topic(subject, subject_name) or not is_valid_topic(subject_name):
        return None
    previous = by_name.get(subject_name)
    if previous is None:
        # New (the first scrape, mostly): one walk; its courses are recorded when it changes.
        names = {subject_name}
        walk = chain.from_iterable(
            iter_assign_course_topics(subject_name, course) for course in subject.courses
        )
        try:
            course_count, sections, written = _check_entities(walk, names)
        except ScrapeRejected:
            return None
        if written:
            return None
        return _KnownSubject(subject_name, _Checked(names, course_count, sections), None)
    known = previous.courses or {}
    course_bytes = [course.SerializeToString() for course in subject.courses]
    courses: dict[bytes, _Checked] = {}
    for course_body, course in zip(course_bytes, subject.courses, strict=True):
        found = known.get(course_body) or _check_course(subject_name, course)
        if found is None:
            return None
        courses[course_body] = found
    if len(courses) != len(course_bytes):
        return None  # the same course twice
    names = {subject_name}
    total = 1
    for found in courses.values():
        names.update(found.names)
        total += len(found.names)
    if len(names) != total:
        return None  # a topic name in two courses
    sections = sum(found.sections for found in courses.values())
    return _KnownSubject(subject_name, _Checked(names, len(courses), sections), courses)


def _check_course(subject_name: str, course: Course) -> _Checked | None:
    """Check one decoded course; None if it has a problem or a topic to fill."""
    names: set[str] = set()
    try:
        _, sections, written = _check_entities(
            iter_assign_course_topics(subject_name, course), names
        )
    except ScrapeRejected:
        return None
    return None if written else _Checked(names, 1, sections)


_SUBJECTS = (8 << 3) | 2  # University.subjects: field 8, length-delimited


def _nest(tag: int, body: bytes) -> bytes:
    """`body` as one length-delimited field `tag` of an enclosing message."""
    return bytes((tag,)) + encode_varint(len(body)) + body


def _split(message: bytes, tag_wanted: int) -> tuple[bytes, list[bytes]] | None:
    """Cut a message into (its other fields, the bodies of each `tag_wanted` field); None if odd."""
    found = split_region(message, 0, len(message), tag_wanted)
    if found is None:
        return None
    other, fields = found
    return other, [message[body:end] for _, body, end in fields]


def split_region(
    payload: bytes, pos: int, end: int, tag_wanted: int
) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """Cut one message's fields into (the other fields' bytes, [(start, body, end) of `tag_wanted`]).

    A walk of the top level only; None when the framing is not plain protobuf (groups, a field
    running past `end`, field number 0), so the caller falls back to the real parser.
    """
    other: list[bytes] = []
    fields: list[tuple[int, int, int]] = []
    try:
        while pos < end:
            start = pos
            tag, pos = read_varint(payload, pos)
            wire = tag & 7
            if wire == 2:
                length, pos = read_varint(payload, pos)
                body, pos = pos, pos + length
            elif wire == 0:
                _, pos = read_varint(payload, pos)
                body = pos
            elif wire == 1:
                body, pos = pos, pos + 8
            elif wire == 5:
                body, pos = pos, pos + 4
            else:
                return None
            if pos > end or tag >> 3 == 0:
                return None
            if tag == tag_wanted:
                fields.append((start, body, pos))
            else:
                other.append(payload[start:pos])
    except IndexError:
        return None
    return b"".join(other), fields


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode the base-128 varint at `pos`: (value, position after it)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def encode_varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative `value` (protobuf wire format)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _check_entities(
    walk: Iterator[tuple[str, Message, str, bool]], seen: set[str]
) -> tuple[int, int, int]:
    """Check the entities an iter_assign_topics walk yields, adding each name to `seen`.

    Returns (courses, sections, topics written); raises ScrapeRejected at the first problem.
    """
    add, valid_statuses = seen.add, VALID_STATUSES
    courses = sections = topics_written = 0
    for kind, entity, name, written in walk:
        topics_written += written
        if kind == "section":
            sections += 1
            if entity.status not in valid_statuses:  # type: ignore[attr-defined]
                raise ScrapeRejected(
                    "bad_status",
                    f"section {name} has status {entity.status}",  # type: ignore[attr-defined]
                )
        elif kind == "course":
            courses += 1
        if name in seen or not is_valid_topic(name):
            _check_topic(kind, name, seen)
        add(name)
    return courses, sections, topics_written


def _check_topic(kind: str, topic_name: str, seen: set[str]) -> None:
    """Raise ScrapeRejected if `topic_name` is taken or not a valid FCM topic."""
    if topic_name in seen:
        raise ScrapeRejected(f"duplicate_{kind}", f"duplicate {kind} key {topic_name}")
    if not is_valid_topic(topic_name):
        raise ScrapeRejected(
            "invalid_topic", f"{kind} topic {topic_name[:120]!r} is not a valid FCM topic"
        )


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"
