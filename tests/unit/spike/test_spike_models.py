"""The OpenAPI models must describe exactly the JSON the protobuf mapping prints."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor
from pydantic import BaseModel
from trakr.pb import trakr_pb2
from trakr.spike import models

MESSAGES = [
    "University",
    "Semester",
    "Registration",
    "Subject",
    "Course",
    "Section",
    "Meeting",
    "Instructor",
    "Book",
    "Metadata",
    "Subscription",
    "StatusChange",
    "SectionHistory",
    "SectionHotness",
    "CourseHotness",
    "Meta",
]


@pytest.mark.parametrize("name", MESSAGES)
def test_model_fields_are_the_proto_json_names(name: str) -> None:
    descriptor: Descriptor = getattr(trakr_pb2, name).DESCRIPTOR
    model: type[BaseModel] = getattr(models, name)
    assert set(model.model_fields) == {field.json_name for field in descriptor.fields}


def test_every_data_member_has_an_envelope() -> None:
    members = {field.json_name for field in trakr_pb2.Data.DESCRIPTOR.fields}
    data_models = [
        m for m in vars(models).values() if isinstance(m, type) and m.__name__.endswith("Data")
    ]
    covered = {name for m in data_models for name in m.model_fields}
    assert covered == members
