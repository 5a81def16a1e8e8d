"""Decoding, encoding and validating a scrape (one University) in either wire format.

jet validates before it queues; ein validates again before it writes (a stream entry may come
from anything that can XADD). Both use this one module, so "valid" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from trakr.errors import InvalidScrape
from trakr.pb.trakr_pb2 import Section, University
from trakr.scrapers import pbjson
from trakr.topics import is_valid_topic, iter_assign_topics

if TYPE_CHECKING:
    # Only for annotations: importing trakr.settings pulls in pydantic (~0.4 s), which every
    # scraper run (trakr-scrape-rutgers/-sim import this module) would pay for nothing.
    from trakr.settings import WireFormat

VALID_STATUSES = frozenset(
    value for name, value in Section.Status.items() if name != "STATUS_UNSPECIFIED"
)


class ScrapeRejected(InvalidScrape):
    """The scrape was rejected."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short, low-cardinality label for metrics ("duplicate_section", …)


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
    seen: set[str] = set()
    add, valid_statuses = seen.add, VALID_STATUSES
    courses = sections = topics_written = 0
    walk = iter_assign_topics(university)
    try:
        for kind, entity, name, written in walk:
            topics_written += written
            if kind == "section":
                sections += 1
                if entity.status not in valid_statuses:  # type: ignore[union-attr]
                    raise ScrapeRejected(
                        "bad_status",
                        f"section {name} has status {entity.status}",  # type: ignore[union-attr]
                    )
            elif kind == "course":
                courses += 1
            if name in seen or not is_valid_topic(name):
                _check_topic(kind, name, seen)
            add(name)
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
