from __future__ import annotations

import json

import pytest
from trakr.pb.trakr_pb2 import Course, Data, Section, University
from trakr.spike.encoding import (
    envelope,
    etag,
    etag_matches,
    negotiate,
    parse,
    proto_fields,
    protobuf_query,
    render,
    render_document,
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "json"),
        ("", "json"),
        ("application/json", "json"),
        ("application/x-protobuf", "protobuf"),
        ("application/protobuf", "protobuf"),
        ("text/html", "json"),
        ("*/*", "json"),
        ("application/x-protobuf, application/json;q=0.5", "protobuf"),
        ("application/json, application/x-protobuf;q=0.5", "json"),
        ("application/x-protobuf;q=0", "json"),
        ("application/x-protobuf;q=bogus", "json"),
        ("APPLICATION/X-PROTOBUF", "protobuf"),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


def test_json_prints_the_filled_member_with_defaults_and_round_trips() -> None:
    course = Course(code="01-111", topic_id=-5, sections=[Section(index="1", status=Section.OPEN)])
    response = envelope(Data(course=course))
    body = render(response, "json", field="course")
    document = json.loads(body)
    assert document["meta"] == {"code": 200, "message": "OK"}
    assert list(document["data"]) == ["course"]
    assert document["data"]["course"]["topicId"] == "-5"
    assert document["data"]["course"]["synopsis"] == ""  # defaults are printed
    assert document["data"]["course"]["sections"][0]["status"] == "OPEN"
    assert (
        parse(body, "json")
        == parse(render(response, "protobuf", field="course"), "protobuf")
        == response
    )


def test_empty_list_member_is_printed() -> None:
    body = render(envelope(Data(universities=[])), "json", field="universities")
    assert json.loads(body)["data"] == {"universities": []}


def test_error_envelope_has_empty_data() -> None:
    body = render(envelope(code=404, message="no course"), "json")
    assert json.loads(body) == {"meta": {"code": 404, "message": "no course"}, "data": {}}


def test_protobuf_is_deterministic() -> None:
    data = Data(universities=[University(name="A", topic_name="a"), University(name="B")])
    assert render(envelope(data), "protobuf") == render(envelope(data), "protobuf")


def test_etag() -> None:
    tag = etag(b"body")
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert tag == etag(b"body") != etag(b"other")
    assert etag_matches(tag, tag)
    assert etag_matches(f'"x", W/{tag}', tag)
    assert etag_matches("*", tag)
    assert not etag_matches(None, tag)
    assert not etag_matches('"other"', tag)


def test_proto_fields_converts_the_json_mapping() -> None:
    document = {
        "topicName": "t",
        "topicId": "-7",
        "sections": [{"startTime": "x", "meetings": [{"classType": "LEC", "startTime": "09:00"}]}],
        "registrations": [
            {"period": "p", "periodDate": "2025-11-01T00:00:00Z"},
            {"periodDate": None},
        ],
    }
    fields = proto_fields(document)
    assert fields["topic_name"] == "t" and fields["topic_id"] == -7
    assert fields["sections"][0]["meetings"][0] == {"class_type": "LEC", "start_time": "09:00"}
    assert fields["registrations"][0]["period_date"].seconds == 1761955200
    assert fields["registrations"][1] == {}


def test_document_renders_the_same_data_in_both_formats() -> None:
    course_json = '{"code" : "01-111", "topicName" : "u.c", "topicId" : "42", "sections" : []}'
    course_fields = '{"code" : "01-111", "topic_name" : "u.c", "topic_id" : 42, "sections" : []}'
    as_json = render_document("course", course_json, "json")
    assert json.loads(as_json)["data"]["course"]["topicId"] == "42"
    native = render_document("course", course_fields, "protobuf", field_names=True)
    converted = render_document("course", course_json, "protobuf")
    assert parse(as_json, "json") == parse(native, "protobuf") == parse(converted, "protobuf")


def test_protobuf_query_renames_quoted_column_names_only() -> None:
    query = (
        'SELECT row_to_json(d) FROM (SELECT x.topic_name AS "topicName", '
        "x.topic_id::text AS \"topicId\", x.name, 'topicName' AS label "
        'FROM section x ORDER BY "topicName") d'
    )
    assert protobuf_query(query) == (
        'SELECT row_to_json(d) FROM (SELECT x.topic_name AS "topic_name", '
        "x.topic_id AS \"topic_id\", x.name, 'topicName' AS label "
        'FROM section x ORDER BY "topic_name") d'
    )
