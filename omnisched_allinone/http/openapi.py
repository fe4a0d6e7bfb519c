"""The OpenAPI 3.1 document, generated from the route table and the proto descriptors.

Component schemas follow the proto3 JSON mapping of each message (int64 as a decimal string,
Timestamp as an RFC 3339 string, Struct as an object, maps as objects); nothing is written twice,
so the document cannot disagree with what the server parses and answers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from omnisched_allinone import __version__
from omnisched_allinone.api.errors import HTTP_STATUS
from omnisched_allinone.core.executions import ExecutionStatus, Trigger
from omnisched_allinone.core.jobs import JobStatus, JobType
from omnisched_allinone.core.policies import OverlapPolicy
from omnisched_allinone.core.schedules import ScheduleType
from omnisched_allinone.http.routes import ID_PATTERN, ROUTES, Route
from omnisched_allinone.proto import scheduler_service_pb2 as pb

Schema = dict[str, Any]

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1}
# The JSON mapping writes 64-bit integers as strings and reads either form.
_INT64 = {"type": ["string", "integer"], "pattern": r"^-?[0-9]+$"}
_UINT64 = {"type": ["string", "integer"], "pattern": r"^[0-9]+$", "minimum": 0}

_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
}

# Enum-like fields are strings in the proto (so the seed's client works unchanged); their values
# come from the domain's enums. (The server also accepts them in any letter case.)
_CHOICES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "ScheduledJob.job_type",
            "CreateScheduledJobRequest.job_type",
            "ListScheduledJobsRequest.job_type",
        ),
        tuple(JobType),
    ),
    **dict.fromkeys(
        ("ScheduledJob.status", "JobStatusResponse.status", "ListScheduledJobsRequest.status"),
        tuple(JobStatus),
    ),
    **dict.fromkeys(
        ("JobExecution.status", "ListJobExecutionsRequest.status"), tuple(ExecutionStatus)
    ),
    **dict.fromkeys(("JobExecution.trigger", "ListJobExecutionsRequest.trigger"), tuple(Trigger)),
    "JobPolicies.overlap": tuple(OverlapPolicy),
    "ScheduleConfig.type": tuple(ScheduleType),
}

ERROR_SCHEMA: Schema = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {
            "type": "string",
            "enum": sorted({code.name for code in HTTP_STATUS} | {"UNIMPLEMENTED"}),
        },
        "message": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {"field": {"type": "string", "description": "The invalid field"}},
        },
    },
    "additionalProperties": False,
}

_STATUS_TEXT = {
    400: "Invalid argument (details.field names it)",
    401: "Unauthenticated",
    403: "Permission denied",
    404: "Not found",
    409: "Already exists, or changed since read (ABORTED)",
    412: "Failed precondition",
    413: "Request body too large",
    429: "Resource exhausted",
    503: "Unavailable: a backing service does not answer; retry",
}

_SSE_DESCRIPTION = """\
`text/event-stream`. Each change is an event named `execution` whose `data` is an
`ExecutionEvent` as JSON and whose `id` is the execution id; a comment line is sent as a
heartbeat. If the stream fails after it started, a last event named `error` carries an `Error`.
"""

_API_DESCRIPTION = """\
The omnisched job API over HTTP/JSON: the same operations, rules and messages as the gRPC
`omnisched.v1.SchedulerService`. Bodies follow the proto3 JSON mapping: proto field names
(shown here) or their lowerCamelCase forms are accepted, 64-bit integers are written as strings
and timestamps as RFC 3339. Errors are `{"code", "message", "details": {"field"}}` with the gRPC
status name as `code`.
"""


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def field_schema(field: FieldDescriptor) -> Schema:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        message = field.message_type
        if message.GetOptions().map_entry:
            value = field_schema(message.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        schema = _WELL_KNOWN.get(message.full_name) or _ref(message.name)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    else:
        schema = dict(_SCALARS[field.type])
        choices = _CHOICES.get(f"{field.containing_type.name}.{field.name}")
        if choices:
            schema["enum"] = [str(choice) for choice in choices]
    if field.is_repeated:
        return {"type": "array", "items": schema}
    return schema


def message_schema(descriptor: Descriptor, *, without: tuple[str, ...] = ()) -> Schema:
    properties = {
        field.name: field_schema(field) for field in descriptor.fields if field.name not in without
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


def component_schemas() -> dict[str, Schema]:
    """Every message of the API's .proto (map entries are inlined; well-known types too)."""
    schemas = {
        name: message_schema(descriptor)
        for name, descriptor in sorted(pb.DESCRIPTOR.message_types_by_name.items())
    }
    schemas["Error"] = ERROR_SCHEMA
    return schemas


def _parameters(route: Route) -> list[Schema]:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": f"^{ID_PATTERN}$"},
        }
        for name in route.path_fields
    ]
    if not route.has_body:
        parameters += [
            {"name": field.name, "in": "query", "required": False, "schema": field_schema(field)}
            for field in route.request_type.fields
            if field.name not in route.path_fields
        ]
    return parameters


def _operation(route: Route) -> Schema:
    if route.stream:
        ok = {
            "description": _SSE_DESCRIPTION,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    else:
        ok = {
            "description": f"`{route.response_type.name}`",
            "content": {"application/json": {"schema": _ref(route.response_type.name)}},
        }
    responses: dict[str, Schema] = {str(route.status): ok}
    for status in route.errors:
        responses[str(status)] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    operation: Schema = {
        "operationId": route.op_id,
        "summary": route.summary,
        "description": f"gRPC: `{route.rpc_method.full_name}`.",
        "tags": [route.path.split("/")[2].split(":")[0].split("{")[0]],
        "parameters": _parameters(route),
        "responses": responses,
    }
    if route.has_body:
        body = (
            message_schema(route.request_type, without=route.path_fields)
            if route.path_fields
            else _ref(route.request_type.name)
        )
        media: Schema = {"schema": body}
        if route.example is not None:
            media["example"] = dict(route.example)
        operation["requestBody"] = {"required": False, "content": {"application/json": media}}
    return operation


def _probe(summary: str, ready: bool) -> Schema:
    ok = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    responses: dict[str, Schema] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    if ready:
        responses["503"] = {
            "description": "Not ready",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return {
        "get": {
            "operationId": summary,
            "summary": summary,
            "tags": ["probes"],
            "responses": responses,
        }
    }


def openapi_document() -> Schema:
    paths: dict[str, Schema] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    paths["/healthz"] = _probe("Health", ready=False)
    paths["/readyz"] = _probe("Readiness", ready=True)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "omnisched job API",
            "version": __version__,
            "description": _API_DESCRIPTION,
        },
        "paths": paths,
        "components": {"schemas": component_schemas()},
    }
