"""JSON ↔ proto messages, following the proto3 JSON mapping.

Requests are parsed into the RPC's own request message (`json_format.ParseDict` accepts proto
field names and lowerCamelCase); answers are the servicer's response messages written with
`MessageToDict`. A body that is not JSON, a field of the wrong type or a field the message does not
have is `InvalidArgument` naming the field, so it is answered like any other invalid argument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from omnisched_allinone.core.errors import InvalidArgument

_PARSE_STEP = re.compile(r"Failed to parse (\S+) field: ")
_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]*)"')


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def to_json(message: Message) -> dict[str, Any]:
    """Proto field names; fields without presence always written, so shapes are stable."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object; an empty body is an empty object."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidArgument("body", f"is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise InvalidArgument("body", "must be a JSON object")
    return value


def query_values(descriptor: Descriptor, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Query parameters as a JSON object for `descriptor` (each given at most once)."""
    values: dict[str, Any] = {}
    for key, text in items:
        if key in values:
            raise InvalidArgument(key, "is given more than once")
        field = _field(descriptor, key)
        if field is not None and field.type == FieldDescriptor.TYPE_BOOL:
            values[key] = {"true": True, "false": False}.get(text, text)
        else:
            values[key] = text
    return values


def to_request(
    descriptor: Descriptor, values: Mapping[str, Any], path_params: Mapping[str, str]
) -> Message:
    """The request message: `values` (body or query) plus the fields the path binds."""
    values = dict(values)
    for key in list(values):
        field = _field(descriptor, key)
        if field is not None and field.name in path_params:
            if values[key] not in (None, path_params[field.name]):
                raise InvalidArgument(field.name, "differs from the value in the path")
            del values[key]
    message = message_class(descriptor)()
    try:
        json_format.ParseDict(values, message)
    except json_format.ParseError as error:
        raise _invalid(descriptor, str(error)) from None
    except (ValueError, TypeError, RecursionError) as error:
        raise InvalidArgument("body", f"cannot be read ({error})") from None
    for name, value in path_params.items():
        setattr(message, name, value)
    return message


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    return descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)


def _invalid(descriptor: Descriptor, text: str) -> InvalidArgument:
    """Name the field json_format complained about, as a dotted path of proto field names."""
    steps = list(_PARSE_STEP.finditer(text))
    names = [m.group(1) for m in steps]
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        names.append(unknown.group(1))
        reason = "is not a field of this request"
    else:
        reason = text[steps[-1].end() :] if steps else text
        reason = reason.strip().rstrip(".") or "has an invalid value"
    return InvalidArgument(_canonical_path(descriptor, names) or "body", reason)


def _canonical_path(descriptor: Descriptor | None, names: list[str]) -> str:
    path = []
    for name in names:
        field = _field(descriptor, name) if descriptor is not None else None
        if field is None:
            path.append(name)
            descriptor = None
            continue
        path.append(field.name)
        message = field.message_type
        descriptor = (
            message
            if message is not None
            and not message.GetOptions().map_entry
            and not message.full_name.startswith("google.protobuf.")
            else None
        )
    return ".".join(path)
