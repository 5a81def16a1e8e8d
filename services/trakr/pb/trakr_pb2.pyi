import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class University(_message.Message):
    __slots__ = ("name", "abbr", "home_page", "registration_page", "available_semesters", "registrations", "metadata", "subjects", "topic_name", "topic_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ABBR_FIELD_NUMBER: _ClassVar[int]
    HOME_PAGE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_PAGE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_SEMESTERS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    abbr: str
    home_page: str
    registration_page: str
    available_semesters: _containers.RepeatedCompositeFieldContainer[Semester]
    registrations: _containers.RepeatedCompositeFieldContainer[Registration]
    metadata: _containers.RepeatedCompositeFieldContainer[Metadata]
    subjects: _containers.RepeatedCompositeFieldContainer[Subject]
    topic_name: str
    topic_id: int
    def __init__(self, name: _Optional[str] = ..., abbr: _Optional[str] = ..., home_page: _Optional[str] = ..., registration_page: _Optional[str] = ..., available_semesters: _Optional[_Iterable[_Union[Semester, _Mapping]]] = ..., registrations: _Optional[_Iterable[_Union[Registration, _Mapping]]] = ..., metadata: _Optional[_Iterable[_Union[Metadata, _Mapping]]] = ..., subjects: _Optional[_Iterable[_Union[Subject, _Mapping]]] = ..., topic_name: _Optional[str] = ..., topic_id: _Optional[int] = ...) -> None: ...

class Semester(_message.Message):
    __slots__ = ("season", "year")
    class Season(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SEASON_UNSPECIFIED: _ClassVar[Semester.Season]
        WINTER: _ClassVar[Semester.Season]
        SPRING: _ClassVar[Semester.Season]
        SUMMER: _ClassVar[Semester.Season]
        FALL: _ClassVar[Semester.Season]
    SEASON_UNSPECIFIED: Semester.Season
    WINTER: Semester.Season
    SPRING: Semester.Season
    SUMMER: Semester.Season
    FALL: Semester.Season
    SEASON_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    season: Semester.Season
    year: int
    def __init__(self, season: _Optional[_Union[Semester.Season, str]] = ..., year: _Optional[int] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("number", "name", "season", "year", "courses", "metadata", "topic_name", "topic_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEASON_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    COURSES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    number: str
    name: str
    season: Semester.Season
    year: int
    courses: _containers.RepeatedCompositeFieldContainer[Course]
    metadata: _containers.RepeatedCompositeFieldContainer[Metadata]
    topic_name: str
    topic_id: int
    def __init__(self, number: _Optional[str] = ..., name: _Optional[str] = ..., season: _Optional[_Union[Semester.Season, str]] = ..., year: _Optional[int] = ..., courses: _Optional[_Iterable[_Union[Course, _Mapping]]] = ..., metadata: _Optional[_Iterable[_Union[Metadata, _Mapping]]] = ..., topic_name: _Optional[str] = ..., topic_id: _Optional[int] = ...) -> None: ...

class Course(_message.Message):
    __slots__ = ("code", "number", "name", "synopsis", "credits", "sections", "metadata", "topic_name", "topic_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYNOPSIS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    number: str
    name: str
    synopsis: str
    credits: str
    sections: _containers.RepeatedCompositeFieldContainer[Section]
    metadata: _containers.RepeatedCompositeFieldContainer[Metadata]
    topic_name: str
    topic_id: int
    def __init__(self, code: _Optional[str] = ..., number: _Optional[str] = ..., name: _Optional[str] = ..., synopsis: _Optional[str] = ..., credits: _Optional[str] = ..., sections: _Optional[_Iterable[_Union[Section, _Mapping]]] = ..., metadata: _Optional[_Iterable[_Union[Metadata, _Mapping]]] = ..., topic_name: _Optional[str] = ..., topic_id: _Optional[int] = ...) -> None: ...

class Section(_message.Message):
    __slots__ = ("index", "number", "status", "credits", "meetings", "instructors", "books", "metadata", "topic_name", "topic_id")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Section.Status]
        OPEN: _ClassVar[Section.Status]
        CLOSED: _ClassVar[Section.Status]
        WAITLIST: _ClassVar[Section.Status]
        CANCELLED: _ClassVar[Section.Status]
    STATUS_UNSPECIFIED: Section.Status
    OPEN: Section.Status
    CLOSED: Section.Status
    WAITLIST: Section.Status
    CANCELLED: Section.Status
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    MEETINGS_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTORS_FIELD_NUMBER: _ClassVar[int]
    BOOKS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    index: str
    number: str
    status: Section.Status
    credits: str
    meetings: _containers.RepeatedCompositeFieldContainer[Meeting]
    instructors: _containers.RepeatedCompositeFieldContainer[Instructor]
    books: _containers.RepeatedCompositeFieldContainer[Book]
    metadata: _containers.RepeatedCompositeFieldContainer[Metadata]
    topic_name: str
    topic_id: int
    def __init__(self, index: _Optional[str] = ..., number: _Optional[str] = ..., status: _Optional[_Union[Section.Status, str]] = ..., credits: _Optional[str] = ..., meetings: _Optional[_Iterable[_Union[Meeting, _Mapping]]] = ..., instructors: _Optional[_Iterable[_Union[Instructor, _Mapping]]] = ..., books: _Optional[_Iterable[_Union[Book, _Mapping]]] = ..., metadata: _Optional[_Iterable[_Union[Metadata, _Mapping]]] = ..., topic_name: _Optional[str] = ..., topic_id: _Optional[int] = ...) -> None: ...

class Meeting(_message.Message):
    __slots__ = ("day", "start_time", "end_time", "room", "building", "campus", "class_type", "metadata")
    DAY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    BUILDING_FIELD_NUMBER: _ClassVar[int]
    CAMPUS_FIELD_NUMBER: _ClassVar[int]
    CLASS_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    day: str
    start_time: str
    end_time: str
    room: str
    building: str
    campus: str
    class_type: str
    metadata: _containers.RepeatedCompositeFieldContainer[Metadata]
    def __init__(self, day: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., room: _Optional[str] = ..., building: _Optional[str] = ..., campus: _Optional[str] = ..., class_type: _Optional[str] = ..., metadata: _Optional[_Iterable[_Union[Metadata, _Mapping]]] = ...) -> None: ...

class Instructor(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Book(_message.Message):
    __slots__ = ("title", "url")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    title: str
    url: str
    def __init__(self, title: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class Metadata(_message.Message):
    __slots__ = ("title", "content")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    title: str
    content: str
    def __init__(self, title: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class Registration(_message.Message):
    __slots__ = ("period", "period_date")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_DATE_FIELD_NUMBER: _ClassVar[int]
    period: str
    period_date: _timestamp_pb2.Timestamp
    def __init__(self, period: _Optional[str] = ..., period_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("notification_id", "topic_name", "university", "old_status", "status", "created_at", "course_name", "section_number", "section_index")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    UNIVERSITY_FIELD_NUMBER: _ClassVar[int]
    OLD_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COURSE_NAME_FIELD_NUMBER: _ClassVar[int]
    SECTION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SECTION_INDEX_FIELD_NUMBER: _ClassVar[int]
    notification_id: int
    topic_name: str
    university: str
    old_status: Section.Status
    status: Section.Status
    created_at: _timestamp_pb2.Timestamp
    course_name: str
    section_number: str
    section_index: str
    def __init__(self, notification_id: _Optional[int] = ..., topic_name: _Optional[str] = ..., university: _Optional[str] = ..., old_status: _Optional[_Union[Section.Status, str]] = ..., status: _Optional[_Union[Section.Status, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., course_name: _Optional[str] = ..., section_number: _Optional[str] = ..., section_index: _Optional[str] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("device_id", "topic_name", "is_subscribed", "updated_at")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    topic_name: str
    is_subscribed: bool
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, device_id: _Optional[str] = ..., topic_name: _Optional[str] = ..., is_subscribed: _Optional[bool] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("status", "at")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    status: Section.Status
    at: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[_Union[Section.Status, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SectionHistory(_message.Message):
    __slots__ = ("topic_name", "changes", "open_share", "days")
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    OPEN_SHARE_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    topic_name: str
    changes: _containers.RepeatedCompositeFieldContainer[StatusChange]
    open_share: float
    days: int
    def __init__(self, topic_name: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ..., open_share: _Optional[float] = ..., days: _Optional[int] = ...) -> None: ...

class SectionHotness(_message.Message):
    __slots__ = ("topic_name", "number", "index", "subscribers", "z_score", "hot")
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
    Z_SCORE_FIELD_NUMBER: _ClassVar[int]
    HOT_FIELD_NUMBER: _ClassVar[int]
    topic_name: str
    number: str
    index: str
    subscribers: int
    z_score: float
    hot: bool
    def __init__(self, topic_name: _Optional[str] = ..., number: _Optional[str] = ..., index: _Optional[str] = ..., subscribers: _Optional[int] = ..., z_score: _Optional[float] = ..., hot: _Optional[bool] = ...) -> None: ...

class CourseHotness(_message.Message):
    __slots__ = ("topic_name", "sections")
    TOPIC_NAME_FIELD_NUMBER: _ClassVar[int]
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    topic_name: str
    sections: _containers.RepeatedCompositeFieldContainer[SectionHotness]
    def __init__(self, topic_name: _Optional[str] = ..., sections: _Optional[_Iterable[_Union[SectionHotness, _Mapping]]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("meta", "data")
    META_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    meta: Meta
    data: Data
    def __init__(self, meta: _Optional[_Union[Meta, _Mapping]] = ..., data: _Optional[_Union[Data, _Mapping]] = ...) -> None: ...

class Meta(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Data(_message.Message):
    __slots__ = ("universities", "university", "subjects", "subject", "courses", "course", "section", "section_history", "course_hotness", "subscription")
    UNIVERSITIES_FIELD_NUMBER: _ClassVar[int]
    UNIVERSITY_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    COURSES_FIELD_NUMBER: _ClassVar[int]
    COURSE_FIELD_NUMBER: _ClassVar[int]
    SECTION_FIELD_NUMBER: _ClassVar[int]
    SECTION_HISTORY_FIELD_NUMBER: _ClassVar[int]
    COURSE_HOTNESS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    universities: _containers.RepeatedCompositeFieldContainer[University]
    university: University
    subjects: _containers.RepeatedCompositeFieldContainer[Subject]
    subject: Subject
    courses: _containers.RepeatedCompositeFieldContainer[Course]
    course: Course
    section: Section
    section_history: SectionHistory
    course_hotness: CourseHotness
    subscription: Subscription
    def __init__(self, universities: _Optional[_Iterable[_Union[University, _Mapping]]] = ..., university: _Optional[_Union[University, _Mapping]] = ..., subjects: _Optional[_Iterable[_Union[Subject, _Mapping]]] = ..., subject: _Optional[_Union[Subject, _Mapping]] = ..., courses: _Optional[_Iterable[_Union[Course, _Mapping]]] = ..., course: _Optional[_Union[Course, _Mapping]] = ..., section: _Optional[_Union[Section, _Mapping]] = ..., section_history: _Optional[_Union[SectionHistory, _Mapping]] = ..., course_hotness: _Optional[_Union[CourseHotness, _Mapping]] = ..., subscription: _Optional[_Union[Subscription, _Mapping]] = ...) -> None: ...
