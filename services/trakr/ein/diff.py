"""Pure diffing of a scrape against what is stored: content hashes, validation, the write plan.

No I/O here. `trakr.ein.ingest` reads the stored hashes, calls `prepare()` and executes the
plan in one transaction.

Row hashes (blake2b-128; what the database stores in `content_hash`, the source of truth):
- section: its deterministic protobuf serialisation (topics, meetings, instructors, books,
  metadata), so the C encoder does the per-field work;
- course / subject: the repr of their COPY row's columns but the ids (metadata as its JSON),
  children excluded, so a status change rewrites one section row only; the row is built once
  and carries its hash (`course_record`, `subject_record`);
- university: the repr of its own fields.

Only rows that exist in the database are hashed while diffing; a new row is hashed as its COPY
streams (`insert_rows`).

On top of that, a Merkle-style short cut: every subject and every course is also hashed as a
whole subtree (for a protobuf payload straight from the received bytes, see PayloadSource).
While ein's in-memory copy of the stored state is current, a subtree whose hash equals the one
committed last time is byte-identical to what was validated and written then, so it is neither
parsed, validated nor compared again. Everything else goes through `validate_university` and a
row-by-row hash comparison.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # the C string encoder
from typing import Any

from google.protobuf.message import DecodeError

from trakr.codec import (
    ScrapeRejected,
    decode_university,
    encode_varint,
    split_region,
    validate_university,
)
from trakr.pb.trakr_pb2 import Course, Section, Subject, University
from trakr.topics import SEASON_NAMES, subject_topic, university_topic

TABLES = ("university", "subject", "course", "section", "meeting", "instructor")
KINDS = ("inserted", "updated", "deleted", "unchanged")

SUBJECT_COLUMNS = (
    "id", "university_id", "topic_name", "topic_id", "number", "name", "season", "year",
    "metadata", "content_hash",
)  # fmt: skip
COURSE_COLUMNS = (
    "id", "subject_id", "topic_name", "topic_id", "code", "number", "name", "synopsis",
    "credits", "metadata", "content_hash",
)  # fmt: skip
SECTION_COLUMNS = (
    "id", "course_id", "university_id", "topic_name", "topic_id", "index", "number", "status",
    "credits", "books", "metadata", "content_hash",
)  # fmt: skip
MEETING_COLUMNS = (
    "section_id", "ordinal", "day", "start_time", "end_time", "room", "building", "campus",
    "class_type", "metadata",
)  # fmt: skip
INSTRUCTOR_COLUMNS = ("section_id", "ordinal", "name")

STATUS_NAMES = {value: name for name, value in Section.Status.items()}


def digest(data: bytes) -> bytes:
    """The content hash: blake2b-128 (fast, and collisions are not a practical concern)."""
    return hashlib.blake2b(data, digest_size=16).digest()


def snapshot_sha256(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def tree_hash(subject: Subject) -> bytes:
    """Hash of a subject with everything below it (the Merkle short cut)."""
    return digest(subject.SerializeToString(deterministic=True))


def section_hash(section: Section) -> bytes:
    return digest(section.SerializeToString(deterministic=True))


def course_hash(course: Course) -> bytes:
    """The course row without its sections: the hash its COPY row carries."""
    return course_record(0, 0, course)[-1]  # type: ignore[return-value]


def subject_hash(subject: Subject) -> bytes:
    """The subject row without its courses: the hash its COPY row carries."""
    return subject_record(0, 0, subject)[-1]  # type: ignore[return-value]


def university_hash(university: University) -> bytes:
    return _row_digest(
        university.name, university.abbr, university.home_page, university.registration_page,
        university.topic_name, university.topic_id,
        tuple((s.season, s.year) for s in university.available_semesters),
        tuple((r.period, r.period_date.seconds, r.period_date.nanos) for r in university.registrations),
        _pairs(university.metadata),
    )  # fmt: skip


def _pairs(metadata: Iterable[object]) -> tuple[tuple[str, str], ...]:
    return tuple((m.title, m.content) for m in metadata)  # type: ignore[attr-defined]


def _row_digest(*values: object) -> bytes:
    return digest(repr(values).encode())


# --- sources: a scrape as subtree hashes, parsed only where needed ----------------------------

_SUBJECTS_TAG = (8 << 3) | 2  # University.subjects, length-delimited
_COURSES_TAG = (5 << 3) | 2  # Subject.courses

Selection = list[tuple[int, list[int] | None]]  # (subject index, course indices or None: all)


class MessageSource:
    """A decoded University: subtree hashes by serialising each subject (and course)."""

    def __init__(self, university: University) -> None:
        self.message = university
        self.shell = University(
            name=university.name,
            abbr=university.abbr,
            home_page=university.home_page,
            registration_page=university.registration_page,
            available_semesters=university.available_semesters,
            registrations=university.registrations,
            metadata=university.metadata,
        )

    def subjects_count(self) -> int:
        return len(self.message.subjects)

    def subject_trees(self) -> list[bytes]:
        return [tree_hash(subject) for subject in self.message.subjects]

    def subject_topic(self, i: int, university_topic_name: str) -> str:
        return subject_topic(university_topic_name, self.message.subjects[i])

    def course_trees(self, i: int) -> list[bytes]:
        return [
            digest(c.SerializeToString(deterministic=True))
            for c in self.message.subjects[i].courses
        ]

    def build(self, selection: Selection) -> University:
        subjects = self.message.subjects
        if len(selection) == len(subjects) and all(courses is None for _, courses in selection):
            return self.message  # everything: validated in place, as codec callers expect
        partial = University()
        partial.CopyFrom(self.shell)
        for i, courses in selection:
            if courses is None:
                partial.subjects.add().CopyFrom(subjects[i])
                continue
            source = subjects[i]
            subject = partial.subjects.add(
                number=source.number,
                name=source.name,
                season=source.season,
                year=source.year,
                metadata=source.metadata,
            )
            subject.courses.extend(source.courses[j] for j in courses)
        return partial


class PayloadSource:
    """A protobuf payload: subtree hashes of the received bytes; only what is needed is parsed.

    The per-subject (per-course) bytes equal `SerializeToString(deterministic=True)` of that
    message for any canonical encoder (ours, upb's); another encoder only costs the short cut.
    """

    def __init__(self, payload: bytes, shell: bytes, subjects: list[tuple[int, int, int]]) -> None:
        self.payload = payload
        self.shell_bytes = shell
        self.subjects = subjects  # per subject: (field start, body start, end)
        self.shell = University.FromString(shell)
        self._split: dict[int, tuple[bytes, list[tuple[int, int, int]]]] = {}

    @classmethod
    def split(cls, payload: bytes) -> PayloadSource | None:
        """Walk the top level of a protobuf University; None if its framing is not protobuf."""
        found = split_region(payload, 0, len(payload), _SUBJECTS_TAG)
        if found is None:
            return None
        try:
            return cls(payload, *found)
        except DecodeError:
            return None

    def subjects_count(self) -> int:
        return len(self.subjects)

    def subject_trees(self) -> list[bytes]:
        view = memoryview(self.payload)
        return [digest(view[body:end]) for _, body, end in self.subjects]

    def _subject_parts(self, i: int) -> tuple[bytes, list[tuple[int, int, int]]]:
        parts = self._split.get(i)
        if parts is None:
            _, body, end = self.subjects[i]
            found = split_region(self.payload, body, end, _COURSES_TAG)
            if found is None:
                raise ScrapeRejected("parse_error", f"subject {i}: not a protobuf Subject")
            parts = self._split[i] = found
        return parts

    def subject_topic(self, i: int, university_topic_name: str) -> str:
        header, _ = self._subject_parts(i)
        try:
            subject = Subject.FromString(header)
        except DecodeError as exc:
            raise ScrapeRejected("parse_error", f"subject {i}: {exc}") from exc
        return subject_topic(university_topic_name, subject)

    def course_trees(self, i: int) -> list[bytes]:
        _, courses = self._subject_parts(i)
        view = memoryview(self.payload)
        return [digest(view[body:end]) for _, body, end in courses]

    def build(self, selection: Selection) -> University:
        payload = self.payload
        if [i for i, courses in selection if courses is None] == list(range(len(self.subjects))):
            return decode_university(payload, "protobuf")  # everything, in order: no copy
        out = [self.shell_bytes]
        for i, courses in selection:
            start, _, end = self.subjects[i]
            if courses is None:
                out.append(payload[start:end])
                continue
            header, fields = self._subject_parts(i)
            body = header + b"".join(payload[fields[j][0] : fields[j][2]] for j in courses)
            out.append(bytes((_SUBJECTS_TAG,)) + encode_varint(len(body)) + body)
        return decode_university(b"".join(out), "protobuf")


Source = MessageSource | PayloadSource


# --- what is stored ---------------------------------------------------------------------------


@dataclass(slots=True)
class StoredCourse:
    id: int
    content_hash: bytes
    sections: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # topic -> (id, hash)
    tree_hash: bytes | None = None  # unknown when read back from the database


@dataclass(slots=True)
class StoredSubject:
    id: int
    content_hash: bytes
    courses: dict[str, StoredCourse] = field(default_factory=dict)
    tree_hash: bytes | None = None  # unknown when read back from the database
    n_sections: int = 0
    by_tree: dict[bytes, str] = field(default_factory=dict)  # course subtree hash -> course topic

    def refresh(self) -> None:
        self.n_sections = sum(len(course.sections) for course in self.courses.values())
        self.by_tree = {c.tree_hash: t for t, c in self.courses.items() if c.tree_hash is not None}


@dataclass(slots=True)
class StoredUniversity:
    """The stored hashes of one university's catalogue, and the generation they belong to."""

    id: int
    topic_name: str
    content_hash: bytes | None = None
    generation: object = None  # uuid.UUID of the commit that wrote this state
    subjects: dict[str, StoredSubject] = field(default_factory=dict)
    by_tree: dict[bytes, str] = field(default_factory=dict)  # subtree hash -> subject topic

    @classmethod
    def from_rows(
        cls,
        *,
        university_id: int,
        topic_name: str,
        content_hash: bytes | None,
        generation: object,
        subjects: Iterable[Sequence[object]],
        courses: Iterable[Sequence[object]],
        sections: Iterable[Sequence[object]],
    ) -> StoredUniversity:
        """Build from (id, topic, hash[, parent id]) rows as the stored_* queries return them."""
        stored = cls(
            id=university_id,
            topic_name=topic_name,
            content_hash=content_hash,
            generation=generation,
        )
        subject_by_id: dict[int, StoredSubject] = {}
        for sid, topic, chash in subjects:
            subject_by_id[sid] = stored.subjects[topic] = StoredSubject(sid, chash)  # type: ignore[index,arg-type]
        course_by_id: dict[int, StoredCourse] = {}
        for cid, topic, chash, subject_id in courses:
            course = course_by_id[cid] = StoredCourse(cid, chash)  # type: ignore[index,arg-type]
            subject_by_id[subject_id].courses[topic] = course  # type: ignore[index]
        for section_id, topic, chash, course_id in sections:
            course_by_id[course_id].sections[topic] = (section_id, chash)  # type: ignore[index,assignment]
        for subject in stored.subjects.values():
            subject.refresh()
        return stored


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one ingest writes. Inserted entities get ids from the database before the COPY.

    Inserts are (message, hash, parent topic, topic), updates (id, message, hash, topic): the
    message is the row to write; the rest is what `apply_plan` needs for the hash cache after
    the commit. An insert's hash is None until `insert_rows` fills it in as its COPY streams.
    Once the rows are written, `forget_messages` drops the messages.
    """

    university: University | None  # validated: its topic is filled in; None once forgotten
    university_topic: str
    university_hash: bytes
    university_changed: bool
    subject_inserts: list[tuple[Subject | None, bytes | None, str]] = field(default_factory=list)
    subject_updates: list[tuple[int, Subject | None, bytes, str]] = field(default_factory=list)
    subject_deletes: list[int] = field(default_factory=list)
    course_inserts: list[tuple[Course | None, bytes | None, str, str]] = field(default_factory=list)
    course_updates: list[tuple[int, Course | None, bytes, str]] = field(default_factory=list)
    course_deletes: list[int] = field(default_factory=list)
    section_inserts: list[tuple[Section | None, bytes | None, str, str]] = field(
        default_factory=list
    )
    section_updates: list[tuple[int, Section | None, bytes, str]] = field(default_factory=list)
    section_deletes: list[int] = field(default_factory=list)
    rewrite_all_children: bool = False  # insert-all: every meeting and instructor is rewritten
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys(KINDS, 0) for t in TABLES}
    )
    deleted_sections: int = 0  # including those under deleted courses and subjects
    stored_sections: int = 0
    tree_hashes: dict[str, bytes] = field(default_factory=dict)  # subject topic -> subtree hash
    course_trees: dict[str, bytes] = field(default_factory=dict)  # course topic -> subtree hash
    touched_subjects: set[str] = field(default_factory=set)  # validated (not skipped) subjects

    def forget_messages(self) -> None:
        """Drop every reference to the scrape's messages (once their rows are written).

        What sets a first ingest's peak RSS is the hash cache growing (`apply_plan`) while the
        decoded scrape is still alive (~100 MB at 100k sections). The cache needs only topics,
        hashes and ids, so the messages go first. In place: no second list of 100k tuples.
        """
        self.university = None
        for inserts in (self.subject_inserts, self.course_inserts, self.section_inserts):
            for k, entry in enumerate(inserts):
                inserts[k] = (None, *entry[1:])  # type: ignore[assignment]
        for updates in (self.subject_updates, self.course_updates, self.section_updates):
            for k, entry in enumerate(updates):
                updates[k] = (entry[0], None, *entry[2:])  # type: ignore[assignment]

    @property
    def writes_catalogue(self) -> bool:
        return self.university_changed or any(
            self.counts[table][kind]
            for table in TABLES
            for kind in ("inserted", "updated", "deleted")
        )


def prepare(source: Source, stored: StoredUniversity | None, *, insert_all: bool = False) -> Plan:
    """Validate the scrape and compute what to write; raises ScrapeRejected.

    `stored` is the stored state (None for a new university). Subtrees (subjects, then courses)
    whose hash equals the one committed last time are skipped: byte-identical to what was
    validated and written then. Everything else goes through the codec's validation and is
    compared row by row with the stored hashes. With `insert_all` nothing is skipped and every
    row is written (the baseline).
    """
    trees = source.subject_trees()
    utopic = university_topic(source.shell)
    by_tree = {} if stored is None or insert_all else stored.by_tree
    use_cache = bool(by_tree)
    unchanged_subjects: list[str] = []
    selection: Selection = []
    kept_courses: dict[int, list[str]] = {}  # subject index -> topics of its unchanged courses
    course_trees: dict[int, list[bytes]] = {}  # subject index -> its courses' subtree hashes
    for i, tree in enumerate(trees):
        topic = by_tree.get(tree)
        if topic is not None:
            unchanged_subjects.append(topic)
            continue
        if use_cache:
            stored_subject = stored.subjects.get(source.subject_topic(i, utopic))  # type: ignore[union-attr]
            if stored_subject is not None and stored_subject.by_tree:
                changed, kept = [], []
                course_trees[i] = source.course_trees(i)
                for j, course_tree in enumerate(course_trees[i]):
                    course_topic = stored_subject.by_tree.get(course_tree)
                    if course_topic is None:
                        changed.append(j)
                    else:
                        kept.append(course_topic)
                selection.append((i, changed))
                kept_courses[i] = kept
                continue
        selection.append((i, None))
    # With nothing changed, one subject header is still validated so the university-level
    # checks (name, topic) run; it is not diffed.
    probe = not selection and bool(trees)
    university = source.build(selection or ([(0, [])] if trees else []))
    validate_university(university)
    changed_subjects = [] if probe else list(university.subjects)
    if unchanged_subjects:
        _check_unique("subject", [*unchanged_subjects, *(s.topic_name for s in changed_subjects)])

    uhash = university_hash(university)
    plan = Plan(
        university=university,
        university_topic=university.topic_name,
        university_hash=uhash,
        university_changed=insert_all or stored is None or stored.content_hash != uhash,
        rewrite_all_children=insert_all,
    )
    counts = plan.counts
    counts["university"]["updated" if stored is not None else "inserted"] += plan.university_changed
    counts["university"]["unchanged"] += not plan.university_changed
    stored_subjects = stored.subjects if stored is not None else {}
    for topic in unchanged_subjects:
        subject = stored_subjects[topic]
        plan.tree_hashes[topic] = subject.tree_hash  # type: ignore[assignment]
        counts["subject"]["unchanged"] += 1
        counts["course"]["unchanged"] += len(subject.courses)
        counts["section"]["unchanged"] += subject.n_sections
    for subject, (i, courses) in zip(changed_subjects, selection, strict=True):
        plan.tree_hashes[subject.topic_name] = trees[i]
        plan.touched_subjects.add(subject.topic_name)
        trees_of_courses = course_trees.get(i) or source.course_trees(i)
        picked = range(len(trees_of_courses)) if courses is None else courses
        for course, j in zip(subject.courses, picked, strict=True):
            plan.course_trees[course.topic_name] = trees_of_courses[j]
        kept = kept_courses.get(i, [])
        if kept:
            _check_unique("course", [*kept, *(c.topic_name for c in subject.courses)])
        _diff_subject(
            plan, subject, stored_subjects.get(subject.topic_name), kept, insert_all=insert_all
        )
    seen = plan.tree_hashes
    for topic, subject in stored_subjects.items():
        if topic not in seen:
            plan.subject_deletes.append(subject.id)
            counts["subject"]["deleted"] += 1
            counts["course"]["deleted"] += len(subject.courses)
            counts["section"]["deleted"] += subject.n_sections
            plan.deleted_sections += subject.n_sections
    if plan.deleted_sections and stored is not None:
        plan.stored_sections = sum(subject.n_sections for subject in stored_subjects.values())
    return plan


def check_delete_share(plan: Plan, max_delete_share: float) -> None:
    """Reject a scrape that would delete more than this share of the stored sections."""
    if plan.stored_sections and plan.deleted_sections > max_delete_share * plan.stored_sections:
        raise ScrapeRejected(
            "too_many_deletes",
            f"{plan.university_topic}: the scrape would delete {plan.deleted_sections} of "
            f"{plan.stored_sections} sections (more than {max_delete_share:.0%})",
        )


def _check_unique(kind: str, topics: list[str]) -> None:
    """The codec checks the validated part; this covers skipped (unchanged) subtrees too."""
    seen: set[str] = set()
    for topic in topics:
        if topic in seen:
            raise ScrapeRejected(f"duplicate_{kind}", f"duplicate {kind} key {topic}")
        seen.add(topic)


_NO_COURSES: dict[str, StoredCourse] = {}
_NO_SECTIONS: dict[str, tuple[int, bytes]] = {}


def _diff_subject(
    plan: Plan, subject: Subject, stored: StoredSubject | None, kept: list[str], *, insert_all: bool
) -> None:
    """Diff one validated subject holding its changed courses (`kept`: its unchanged ones)."""
    counts = plan.counts
    subject_topic_name = subject.topic_name
    if stored is None:
        plan.subject_inserts.append((subject, None, subject_topic_name))
        counts["subject"]["inserted"] += 1
        stored_courses = _NO_COURSES
    else:
        shash = subject_hash(subject)
        if insert_all or stored.content_hash != shash:
            plan.subject_updates.append((stored.id, subject, shash, subject_topic_name))
            counts["subject"]["updated"] += 1
        else:
            counts["subject"]["unchanged"] += 1
        stored_courses = stored.courses
    for topic in kept:
        counts["course"]["unchanged"] += 1
        counts["section"]["unchanged"] += len(stored_courses[topic].sections)
    matched_courses = len(kept)
    section_counts = counts["section"]
    for course in subject.courses:
        course_topic = course.topic_name
        stored_course = stored_courses.get(course_topic)
        if stored_course is None:
            plan.course_inserts.append((course, None, subject_topic_name, course_topic))
            counts["course"]["inserted"] += 1
            stored_sections = _NO_SECTIONS
        else:
            matched_courses += 1
            chash = course_hash(course)
            if insert_all or stored_course.content_hash != chash:
                plan.course_updates.append((stored_course.id, course, chash, course_topic))
                counts["course"]["updated"] += 1
            else:
                counts["course"]["unchanged"] += 1
            stored_sections = stored_course.sections
        matched = 0
        # The hot loop: one C-level serialisation + hash per stored section, nothing per field.
        for section in course.sections:
            topic = section.topic_name
            old = stored_sections.get(topic)
            if old is None:
                plan.section_inserts.append((section, None, course_topic, topic))
                section_counts["inserted"] += 1
            else:
                matched += 1
                h = digest(section.SerializeToString(deterministic=True))
                if insert_all or old[1] != h:
                    plan.section_updates.append((old[0], section, h, topic))
                    section_counts["updated"] += 1
                else:
                    section_counts["unchanged"] += 1
        if matched < len(stored_sections):
            present = {section.topic_name for section in course.sections}
            for topic, (section_id, _) in stored_sections.items():
                if topic not in present:
                    plan.section_deletes.append(section_id)
                    section_counts["deleted"] += 1
                    plan.deleted_sections += 1
    if matched_courses < len(stored_courses):
        present = {course.topic_name for course in subject.courses}.union(kept)
        for topic, stored_course in stored_courses.items():
            if topic not in present:
                plan.course_deletes.append(stored_course.id)
                counts["course"]["deleted"] += 1
                gone = len(stored_course.sections)
                section_counts["deleted"] += gone
                plan.deleted_sections += gone


def insert_rows(
    inserts: list[Any], ids: Sequence[int], row_of: Callable[[int, Any], tuple[object, ...]]
) -> Iterator[tuple[object, ...]]:
    """The COPY rows of a plan's inserts; each row's content hash (its last column) is stored
    back in its insert for the cache.

    Inserted rows are hashed here, as their COPY consumes them, not in `prepare`: nothing
    compares them, and meanwhile the server is writing the rows before them (a first NB ingest
    spent ~60 ms of Python on these hashes while the server idled).
    """
    for k, (entry, row_id) in enumerate(zip(inserts, ids, strict=True)):
        row = row_of(row_id, entry)
        inserts[k] = (entry[0], row[-1], *entry[2:])
        yield row


def apply_plan(
    stored: StoredUniversity | None,
    plan: Plan,
    *,
    university_id: int,
    generation: object,
    subject_ids: Sequence[int],
    course_ids: Sequence[int],
    section_ids: Sequence[int],
) -> StoredUniversity:
    """The stored state after `plan` committed (mutates and returns `stored`, or a new one)."""
    for inserts in (plan.subject_inserts, plan.course_inserts, plan.section_inserts):
        if any(entry[1] is None for entry in inserts):
            raise ValueError("an insert was never hashed: were its rows written?")
    if stored is None:
        stored = StoredUniversity(id=university_id, topic_name=plan.university_topic)
    stored.content_hash = plan.university_hash
    stored.generation = generation
    subjects = stored.subjects
    deleted_subjects = set(plan.subject_deletes)
    if deleted_subjects:
        for topic in [t for t, s in subjects.items() if s.id in deleted_subjects]:
            del subjects[topic]
    for (_, shash, topic), sid in zip(plan.subject_inserts, subject_ids, strict=True):
        subjects[topic] = StoredSubject(sid, shash)
    for _, _, shash, topic in plan.subject_updates:
        subjects[topic].content_hash = shash
    # Every course or section write happened under a touched subject.
    touched = [subjects[topic] for topic in plan.touched_subjects]
    if plan.course_deletes or plan.section_deletes:
        deleted_courses = set(plan.course_deletes)
        deleted_sections = set(plan.section_deletes)
        for subject in touched:
            for topic in [t for t, c in subject.courses.items() if c.id in deleted_courses]:
                del subject.courses[topic]
            if deleted_sections:
                for course in subject.courses.values():
                    for topic in [
                        t for t, (i, _) in course.sections.items() if i in deleted_sections
                    ]:
                        del course.sections[topic]
    courses_by_topic: dict[str, StoredCourse] = {}
    for (_, chash, subject_topic_name, topic), cid in zip(
        plan.course_inserts, course_ids, strict=True
    ):
        courses_by_topic[topic] = subjects[subject_topic_name].courses[topic] = StoredCourse(
            cid, chash
        )
    for _, _, chash, topic in plan.course_updates:
        _course(subjects, courses_by_topic, topic).content_hash = chash
    for (_, shash, course_topic, topic), section_id in zip(
        plan.section_inserts, section_ids, strict=True
    ):
        _course(subjects, courses_by_topic, course_topic).sections[topic] = (section_id, shash)
    for section_id, _, shash, topic in plan.section_updates:
        # A section topic is "<course topic>.<number>.<index>".
        _course(subjects, courses_by_topic, topic.rsplit(".", 2)[0]).sections[topic] = (
            section_id,
            shash,
        )
    for topic, tree in plan.course_trees.items():
        _course(subjects, courses_by_topic, topic).tree_hash = tree
    for subject in touched:
        subject.refresh()
    for topic, tree in plan.tree_hashes.items():
        subjects[topic].tree_hash = tree
    stored.by_tree = {s.tree_hash: t for t, s in subjects.items() if s.tree_hash is not None}
    return stored


def _course(
    subjects: dict[str, StoredSubject], cache: dict[str, StoredCourse], course_topic: str
) -> StoredCourse:
    course = cache.get(course_topic)
    if course is None:
        # A course topic is "<subject topic>.<course segment>": the subject is its prefix.
        subject_topic_name = course_topic.rsplit(".", 1)[0]
        course = cache[course_topic] = subjects[subject_topic_name].courses[course_topic]
    return course


# --- rows for COPY ----------------------------------------------------------------------------


# title -> '{"title":"…","content":' — titles repeat (a handful per university), contents vary.
_TITLE_PREFIXES: dict[str, str] = {}


def metadata_json(items: Sequence[object]) -> str:
    """JSON array of {title, content}; built by hand (json.dumps per row was a hot spot)."""
    if not items:
        return "[]"
    prefixes = _TITLE_PREFIXES
    parts = []
    for m in items:
        title = m.title  # type: ignore[attr-defined]
        prefix = prefixes.get(title)
        if prefix is None:
            if len(prefixes) >= 4096:  # a scraper inventing titles must not grow it forever
                prefixes.clear()
            prefix = prefixes[title] = '{"title":' + _quote(title) + ',"content":'
        parts.append(prefix + _quote(m.content))  # type: ignore[attr-defined]
    return "[" + "},".join(parts) + "}]"


def books_json(section: Section) -> str:
    books = section.books
    if not books:
        return "[]"
    return (
        "["
        + ",".join('{"title":' + _quote(b.title) + ',"url":' + _quote(b.url) + "}" for b in books)
        + "]"
    )


def subject_record(subject_id: int, university_id: int, s: Subject) -> tuple[object, ...]:
    """The subject's COPY row. Its last column, the content hash, is the digest of the repr of
    the other columns but the ids (unambiguous), so it covers exactly what is written."""
    own = (
        s.topic_name, s.topic_id, s.number, s.name,
        SEASON_NAMES.get(s.season, "season_unspecified"), s.year, metadata_json(s.metadata),
    )  # fmt: skip
    return (subject_id, university_id, *own, digest(repr(own).encode()))


def course_record(course_id: int, subject_id: int, c: Course) -> tuple[object, ...]:
    """The course's COPY row; its content hash is made like the subject's."""
    own = (
        c.topic_name, c.topic_id, c.code, c.number, c.name, c.synopsis, c.credits,
        metadata_json(c.metadata),
    )  # fmt: skip
    return (course_id, subject_id, *own, digest(repr(own).encode()))


def section_record(
    section_id: int, course_id: int, university_id: int, s: Section, content_hash: bytes
) -> tuple[object, ...]:
    return (
        section_id, course_id, university_id, s.topic_name, s.topic_id, s.index, s.number,
        STATUS_NAMES[s.status], s.credits, books_json(s), metadata_json(s.metadata), content_hash,
    )  # fmt: skip


def meeting_records(section_id: int, section: Section) -> Iterator[tuple[object, ...]]:
    """Meeting rows of one section (ordinal = position in the scrape)."""
    for ordinal, m in enumerate(section.meetings):
        meta = m.metadata
        yield (
            section_id, ordinal, m.day, m.start_time, m.end_time, m.room, m.building, m.campus,
            m.class_type, metadata_json(meta) if meta else "[]",
        )  # fmt: skip


def instructor_records(section_id: int, section: Section) -> Iterator[tuple[object, ...]]:
    for ordinal, i in enumerate(section.instructors):
        yield (section_id, ordinal, i.name)


def add_children(
    section_id: int,
    section: Section,
    meetings: list[tuple[object, ...]],
    instructors: list[tuple[object, ...]],
) -> None:
    """Append the meeting and instructor rows of one section."""
    meetings.extend(meeting_records(section_id, section))
    instructors.extend(instructor_records(section_id, section))
