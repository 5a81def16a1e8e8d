"""Content negotiation and the response envelope (pure: no I/O).

Every /v1 response is a `trakr.Response{meta, data}`. Protobuf clients get its binary encoding;
everyone else gets the protobuf JSON mapping of the same message (lowerCamelCase names, int64 as
strings, enums by name), with every field of the one `data` member that the route fills printed
even when it holds its default, so a JSON client never has to guess a missing key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

from trakr.pb import trakr_pb2
from trakr.pb.trakr_pb2 import Data, Meta, Response

Format = Literal["json", "protobuf"]

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"
# Other names clients use for the same thing; all get the binary encoding.
_PROTOBUF_TYPES = frozenset(
    {PROTOBUF_TYPE, "application/protobuf", "application/vnd.google.protobuf"}
)
_JSON_TYPES = frozenset({JSON_TYPE, "application/*", "*/*"})
CONTENT_TYPES: dict[Format, str] = {"json": JSON_TYPE, "protobuf": PROTOBUF_TYPE}


def negotiate(accept: str | None) -> Format:
    """The format an Accept header asks for: protobuf only when it prefers it over JSON.

    Unknown or missing media types fall back to JSON rather than 406: the API has one
    default and an app that sends `Accept: text/html` still gets something useful.
    """
    if not accept:
        return "json"
    best_protobuf = best_json = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media in _PROTOBUF_TYPES:
            best_protobuf = max(best_protobuf, quality)
        elif media in _JSON_TYPES:
            best_json = max(best_json, quality)
    return "protobuf" if best_protobuf > 0 and best_protobuf >= best_json else "json"


def envelope(data: Data | None = None, *, code: int = 200, message: str = "OK") -> Response:
    """A Response with meta filled in; `data` may be None for errors."""
    response = Response(meta=Meta(code=code, message=message))
    if data is not None:
        response.data.CopyFrom(data)
    return response


def render(response: Response, fmt: Format, *, field: str | None = None) -> bytes:
    """Serialise an envelope. `field` names the Data member the route fills (printed even if empty)."""
    if fmt == "protobuf":
        # Deterministic so equal data gives equal bytes, hence equal ETags across replicas.
        return response.SerializeToString(deterministic=True)
    data: dict[str, object] = {}
    if field is not None:
        descriptor = Data.DESCRIPTOR.fields_by_name[field]
        value = getattr(response.data, field)
        if descriptor.message_type is not None and not descriptor.is_repeated:
            data[descriptor.json_name] = _to_dict(value)
        else:
            data[descriptor.json_name] = [_to_dict(item) for item in value]
    document = {"meta": _to_dict(response.meta), "data": data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def render_document(
    data_field: str, document: str, fmt: Format, *, field_names: bool = False
) -> bytes:
    """A 200 envelope around a document built by the database (see queries.sql).

    JSON: the JSON-mapping document is spliced in as it is. Protobuf: the document becomes the
    message; with `field_names` it already uses proto field names and int64 numbers (the
    query's protobuf variant, see `protobuf_query`) and goes straight into the constructor,
    otherwise `proto_fields` converts it. The tests decode both formats and compare.
    """
    if fmt == "json":
        json_name = Data.DESCRIPTOR.fields_by_name[data_field].json_name
        return b"".join((_OK_PREFIX, json_name.encode(), b'":', document.encode(), b"}}"))
    value = json.loads(document)
    data = {data_field: value if field_names else proto_fields(value)}
    # Built in one constructor call from plain values: envelope(Data(…)) would copy the whole
    # message tree once more (CopyFrom).
    response = Response(meta=_OK_META, data=data)
    return response.SerializeToString(deterministic=True)


def protobuf_query(query: str) -> str:
    """The variant of a JSON-mapping query that builds proto field names and int64 numbers.

    Converting ~3,000 keys of a big course in Python costs more than the query; renaming the
    keys in the SQL (quoted column names, which row_to_json/json_agg turn into keys) costs
    nothing at run time. Timestamps stay RFC 3339 strings, so a query with a Timestamp field
    must use the JSON variant and `proto_fields`.
    """
    for json_name, name in _FIELD_NAMES.items():
        if json_name != name:
            query = query.replace(f'"{json_name}"', f'"{name}"')
    return query.replace("topic_id::text", "topic_id")


def proto_fields(value: Any) -> Any:
    """A JSON-mapping value (dicts, lists, scalars) as message-constructor arguments.

    Renames lowerCamelCase keys to field names, turns int64 strings into ints and RFC 3339
    strings into Timestamps, and drops nulls (an unset field). Generic over trakr's messages:
    the key tables come from the proto descriptors.
    """
    if isinstance(value, dict):
        fields = {}
        for key, item in value.items():
            if item is None:
                continue
            name = _FIELD_NAMES.get(key, key)
            kind = _SPECIAL.get(name)
            if kind == "int64":
                fields[name] = int(item)
            elif kind == "timestamp":
                stamp = Timestamp()
                stamp.FromJsonString(item)
                fields[name] = stamp
            else:
                fields[name] = proto_fields(item)
        return fields
    if isinstance(value, list):
        return [proto_fields(item) for item in value]
    return value


def parse(body: bytes, fmt: Format) -> Response:
    """Decode a rendered envelope (tests, clients)."""
    response = Response()
    if fmt == "protobuf":
        response.ParseFromString(body)
    else:
        json_format.Parse(body, response)
    return response


def etag(body: bytes) -> str:
    """A strong ETag for a body: equal bytes, equal tag, on every replica.

    SHA-256 cut to 128 bits (the cache's fixed width): with the CPU's SHA extensions it hashes
    a 47 KB course in about half the time BLAKE2b takes (~30 µs against ~55 µs, measured).
    """
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """True when an If-None-Match header names `tag` (or is `*`); weak prefixes are ignored."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


def _field_tables() -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    special: dict[str, str] = {}
    for message in trakr_pb2.DESCRIPTOR.message_types_by_name.values():
        for field in message.fields:
            names[field.json_name] = field.name
            if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
                special[field.name] = "int64"
            elif (
                field.message_type is not None
                and field.message_type.full_name == "google.protobuf.Timestamp"
            ):
                special[field.name] = "timestamp"
    # Every int64 or Timestamp field name must mean the same kind everywhere for the tables to hold.
    return names, special


_FIELD_NAMES, _SPECIAL = _field_tables()
_OK_PREFIX = b'{"meta":{"code":200,"message":"OK"},"data":{"'
_OK_META = {"code": 200, "message": "OK"}


def _to_dict(message: object) -> dict[str, object]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)  # type: ignore[arg-type]
