"""ein's pure diffing: hashes, the raw-payload split, the plan, and the stored-state cache."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest
from trakr.codec import ScrapeRejected, encode_university, validate_university
from trakr.ein import diff
from trakr.pb.trakr_pb2 import Metadata, Section, University
from trakr.scrapers.sim import simulate


def sample(tick: int = 0, **kwargs: int) -> University:
    params = {"sections": 90, "changes": 3, "subjects": 3, **kwargs}
    return simulate(tick=tick, **params)


def source_of(university: University, *, raw: bool = False) -> diff.Source:
    if raw:
        source = diff.PayloadSource.split(encode_university(university, "protobuf"))
        assert source is not None
        return source
    copy = University()
    copy.CopyFrom(university)
    return diff.MessageSource(copy)


class FakeDb:
    """Hands out ids like the sequences would and keeps the stored state between plans."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.stored: diff.StoredUniversity | None = None

    def plan(
        self, university: University, *, insert_all: bool = False, raw: bool = False
    ) -> diff.Plan:
        return diff.prepare(source_of(university, raw=raw), self.stored, insert_all=insert_all)

    def commit(self, plan: diff.Plan) -> None:
        # As ein's COPY does: inserted rows are hashed as they are written.
        for inserts, hash_of in (
            (plan.subject_inserts, diff.subject_hash),
            (plan.course_inserts, diff.course_hash),
            (plan.section_inserts, diff.section_hash),
        ):
            rows = diff.insert_rows(inserts, [0] * len(inserts), lambda _, e, h=hash_of: (h(e[0]),))
            assert all(row[0] for row in rows)
        plan.forget_messages()  # as ein does once the rows are written: the cache needs none
        self.stored = diff.apply_plan(
            self.stored,
            plan,
            university_id=1,
            generation=uuid.uuid4(),
            subject_ids=[next(self.ids) for _ in plan.subject_inserts],
            course_ids=[next(self.ids) for _ in plan.course_inserts],
            section_ids=[next(self.ids) for _ in plan.section_inserts],
        )

    def forget_trees(self) -> None:
        """What a restarted ein knows: the stored hashes, no subtree hashes."""
        assert self.stored is not None
        for subject in self.stored.subjects.values():
            subject.tree_hash = None
            for course in subject.courses.values():
                course.tree_hash = None
            subject.refresh()
        self.stored.by_tree = {}


def written(plan: diff.Plan, table: str) -> int:
    return sum(plan.counts[table][k] for k in ("inserted", "updated", "deleted"))


def test_payload_source_matches_the_message_encoding() -> None:
    university = sample()
    source = diff.PayloadSource.split(encode_university(university, "protobuf"))
    assert source is not None
    message = diff.MessageSource(university)
    assert source.subject_trees() == message.subject_trees()
    assert source.course_trees(1) == message.course_trees(1)
    assert source.subject_topic(2, "sim") == university.subjects[2].topic_name
    assert source.shell.name == university.name and not source.shell.subjects
    partial = source.build([(2, None), (0, [3, 1])])
    assert partial.subjects[0] == university.subjects[2]
    assert partial.subjects[1].name == university.subjects[0].name
    assert list(partial.subjects[1].courses) == [
        university.subjects[0].courses[3],
        university.subjects[0].courses[1],
    ]
    from_message = message.build([(2, None), (0, [3, 1])])
    validate_university(partial)  # fills the topics the two sources may carry differently
    validate_university(from_message)
    assert from_message == partial


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff\xff", b"\x42\x10abc", b"\x07", b"\x00\x01"])
def test_payload_source_refuses_broken_framing(garbage: bytes) -> None:
    assert diff.PayloadSource.split(garbage) is None


def test_metadata_json_is_valid_json() -> None:
    items = [Metadata(title='a "quoted"\ttitle', content="ünïcødé \\ line\nbreak \x01")]
    assert json.loads(diff.metadata_json(items)) == [
        {"title": items[0].title, "content": items[0].content}
    ]
    assert diff.metadata_json([]) == "[]"


def test_section_hash_covers_content_and_nothing_else() -> None:
    a = sample().subjects[0].courses[0].sections[0]
    b = Section()
    b.CopyFrom(a)
    assert diff.section_hash(a) == diff.section_hash(b)
    b.meetings[0].room = "999"
    assert diff.section_hash(a) != diff.section_hash(b)


@pytest.mark.parametrize("raw", [False, True])
def test_first_plan_inserts_everything_then_nothing_changes(raw: bool) -> None:
    db = FakeDb()
    plan = db.plan(sample(), raw=raw)
    assert plan.counts["subject"]["inserted"] == 3
    assert plan.counts["section"]["inserted"] == 90
    db.commit(plan)
    again = db.plan(sample(), raw=raw)
    assert not again.writes_catalogue
    assert again.counts["section"]["unchanged"] == 90


@pytest.mark.parametrize("raw", [False, True])
def test_only_changed_courses_are_parsed_again(raw: bool) -> None:
    db = FakeDb()
    db.commit(db.plan(sample(tick=0), raw=raw))
    source = source_of(sample(tick=1, changes=1), raw=raw)
    built: list[object] = []
    original = source.build

    def build(selection: diff.Selection) -> University:
        built.append(selection)
        return original(selection)

    source.build = build  # type: ignore[method-assign]
    plan = diff.prepare(source, db.stored)
    ((selection,),) = [built]
    assert len(selection) == 1 and len(selection[0][1]) == 1  # one subject, one course of it
    assert plan.counts["section"]["updated"] == 1
    assert plan.counts["section"]["unchanged"] == 89
    assert plan.counts["course"]["unchanged"] == 30  # the changed course's own row is unchanged
    assert written(plan, "course") == written(plan, "subject") == 0
    db.commit(plan)
    assert not db.plan(sample(tick=1, changes=1), raw=raw).writes_catalogue


@pytest.mark.parametrize("restarted", [False, True])
def test_one_status_change_is_one_section_update(restarted: bool) -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    if restarted:
        db.forget_trees()
    university = sample()
    section = university.subjects[1].courses[2].sections[0]
    section.status = Section.OPEN if section.status == Section.CLOSED else Section.CLOSED
    plan = db.plan(university)
    assert [s.topic_name for _, s, _, _ in plan.section_updates] == [section.topic_name]
    assert written(plan, "section") == 1
    assert written(plan, "course") == written(plan, "subject") == 0


@pytest.mark.parametrize("restarted", [False, True])
def test_reordering_changes_nothing(restarted: bool) -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    if restarted:
        db.forget_trees()
    university = sample()
    subjects = list(university.subjects)[::-1]
    for subject in subjects:
        courses = list(subject.courses)[::-1]
        for course in courses:
            sections = list(course.sections)[::-1]
            del course.sections[:]
            course.sections.extend(sections)
        del subject.courses[:]
        subject.courses.extend(courses)
    reordered = University()
    reordered.CopyFrom(university)
    del reordered.subjects[:]
    reordered.subjects.extend(subjects)
    plan = db.plan(reordered)
    assert not plan.writes_catalogue
    assert plan.counts["section"]["unchanged"] == 90


def test_vanished_and_moved_sections() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    university = sample()
    course_a = university.subjects[0].courses[0]
    course_b = university.subjects[0].courses[1]
    moved = course_a.sections[0]
    gone_topic = course_a.sections[1].topic_name
    course_b.sections.add().CopyFrom(moved)
    del course_a.sections[:2]
    plan = db.plan(university)
    assert plan.counts["section"] == {"inserted": 1, "updated": 0, "deleted": 2, "unchanged": 88}
    (inserted, _, parent, topic) = plan.section_inserts[0]
    assert parent == course_b.topic_name
    assert inserted.topic_name.startswith(course_b.topic_name + ".")
    assert topic == inserted.topic_name
    db.commit(plan)
    stored_course_a = db.stored.subjects[university.subjects[0].topic_name].courses[
        course_a.topic_name
    ]
    assert gone_topic not in stored_course_a.sections
    assert not db.plan(university).writes_catalogue


def test_deleting_too_much_is_rejected() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    university = sample()
    del university.subjects[1:]
    plan = db.plan(university)
    assert plan.deleted_sections == 60
    with pytest.raises(ScrapeRejected) as caught:
        diff.check_delete_share(plan, 0.5)
    assert caught.value.reason == "too_many_deletes"
    diff.check_delete_share(plan, 0.7)


def test_a_duplicate_of_an_unchanged_course_is_rejected() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    university = sample()
    subject = university.subjects[1]
    duplicate = subject.courses.add()
    duplicate.CopyFrom(subject.courses[0])
    duplicate.name = "Same code, other name"
    with pytest.raises(ScrapeRejected) as caught:
        db.plan(university)
    assert caught.value.reason == "duplicate_course"


def test_a_duplicate_of_an_unchanged_subject_is_rejected() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    university = sample()
    duplicate = university.subjects.add()
    duplicate.CopyFrom(university.subjects[0])
    duplicate.name = "Same number, other name"
    with pytest.raises(ScrapeRejected) as caught:
        db.plan(university)
    assert caught.value.reason == "duplicate_subject"


def test_codec_rejections_still_apply_to_changed_subjects() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    university = sample()
    course = university.subjects[2].courses[0]
    course.sections.add().CopyFrom(course.sections[0])
    with pytest.raises(ScrapeRejected) as caught:
        db.plan(university)
    assert caught.value.reason == "duplicate_section"


def test_insert_all_writes_every_row() -> None:
    db = FakeDb()
    db.commit(db.plan(sample()))
    plan = db.plan(sample(), insert_all=True)
    assert plan.counts["section"]["updated"] == 90
    assert plan.counts["subject"]["updated"] == 3
    assert plan.rewrite_all_children
