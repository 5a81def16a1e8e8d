"""Pydantic models of the JSON responses, for /openapi.json and /docs only.

Responses are built as protobuf messages and rendered by `encoding.render`; these models
describe that JSON (the protobuf JSON mapping: lowerCamelCase, int64 as a string, enums by
name, timestamps as RFC 3339). A unit test walks the proto descriptors and checks that every
model has exactly the fields of its message, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Season = Literal["SEASON_UNSPECIFIED", "WINTER", "SPRING", "SUMMER", "FALL"]
Status = Literal["STATUS_UNSPECIFIED", "OPEN", "CLOSED", "WAITLIST", "CANCELLED"]
Int64 = str  # the protobuf JSON mapping prints 64-bit integers as decimal strings

TOPIC_PATTERN = r"^[a-z0-9_~%.\-]{1,900}$"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_:.\-]{8,512}$"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(Model):
    title: str
    content: str


class Book(Model):
    title: str
    url: str


class Instructor(Model):
    name: str


class Meeting(Model):
    day: str
    startTime: str
    endTime: str
    room: str
    building: str
    campus: str
    classType: str
    metadata: list[Metadata]


class Section(Model):
    index: str
    number: str
    status: Status
    credits: str
    meetings: list[Meeting]
    instructors: list[Instructor]
    books: list[Book]
    metadata: list[Metadata]
    topicName: str
    topicId: Int64


class Course(Model):
    code: str
    number: str
    name: str
    synopsis: str
    credits: str
    sections: list[Section]
    metadata: list[Metadata]
    topicName: str
    topicId: Int64


class Semester(Model):
    season: Season
    year: int


class Subject(Model):
    number: str
    name: str
    season: Season
    year: int
    courses: list[Course]
    metadata: list[Metadata]
    topicName: str
    topicId: Int64


class Registration(Model):
    period: str
    periodDate: str | None = None


class University(Model):
    name: str
    abbr: str
    homePage: str
    registrationPage: str
    availableSemesters: list[Semester]
    registrations: list[Registration]
    metadata: list[Metadata]
    subjects: list[Subject]
    topicName: str
    topicId: Int64


class StatusChange(Model):
    status: Status
    at: str | None = None


class SectionHistory(Model):
    topicName: str
    changes: list[StatusChange]
    openShare: float = Field(description="share of the last `days` days the section was OPEN, 0..1")
    days: int


class SectionHotness(Model):
    topicName: str
    number: str
    index: str
    subscribers: Int64
    zScore: float
    hot: bool


class CourseHotness(Model):
    topicName: str
    sections: list[SectionHotness]


class Subscription(Model):
    deviceId: str
    topicName: str
    isSubscribed: bool
    updatedAt: str | None = None


class Meta(Model):
    code: int
    message: str


# --- envelopes: {meta, data: {<the one member this route fills>}} ------------------------------


class UniversitiesData(Model):
    universities: list[University]


class UniversityData(Model):
    university: University


class SubjectsData(Model):
    subjects: list[Subject]


class SubjectData(Model):
    subject: Subject


class CoursesData(Model):
    courses: list[Course]


class CourseData(Model):
    course: Course


class SectionData(Model):
    section: Section


class SectionHistoryData(Model):
    sectionHistory: SectionHistory


class CourseHotnessData(Model):
    courseHotness: CourseHotness


class SubscriptionData(Model):
    subscription: Subscription


class EmptyData(Model):
    pass


class UniversitiesResponse(Model):
    meta: Meta
    data: UniversitiesData


class UniversityResponse(Model):
    meta: Meta
    data: UniversityData


class SubjectsResponse(Model):
    meta: Meta
    data: SubjectsData


class SubjectResponse(Model):
    meta: Meta
    data: SubjectData


class CoursesResponse(Model):
    meta: Meta
    data: CoursesData


class CourseResponse(Model):
    meta: Meta
    data: CourseData


class SectionResponse(Model):
    meta: Meta
    data: SectionData


class SectionHistoryResponse(Model):
    meta: Meta
    data: SectionHistoryData


class CourseHotnessResponse(Model):
    meta: Meta
    data: CourseHotnessData


class SubscriptionResponse(Model):
    meta: Meta
    data: SubscriptionData


class ErrorResponse(Model):
    """Every error: meta says what went wrong, data is empty."""

    meta: Meta
    data: EmptyData


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "unknown topic"},
    422: {"model": ErrorResponse, "description": "invalid parameters"},
    503: {"model": ErrorResponse, "description": "database unavailable; see Retry-After"},
}


# --- request bodies ---------------------------------------------------------------------------


class SubscriptionRequest(BaseModel):
    """An app's report: this device (FCM registration token or installation id) joined or left a topic.

    Both the proto field names (`device_id`) and their JSON-mapping names (`deviceId`) are accepted.
    """

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(
        pattern=DEVICE_ID_PATTERN,
        validation_alias=AliasChoices("device_id", "deviceId"),
        description="8-512 characters of [A-Za-z0-9_:.-] (FCM tokens and installation ids fit)",
    )
    topic_name: str = Field(
        pattern=TOPIC_PATTERN,
        validation_alias=AliasChoices("topic_name", "topicName"),
        description="a topic name from this API; subscribing needs an existing topic",
    )
    is_subscribed: bool = Field(
        validation_alias=AliasChoices("is_subscribed", "isSubscribed"), strict=True
    )
