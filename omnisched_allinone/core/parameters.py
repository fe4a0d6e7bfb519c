"""Job parameters: a JSON object, bounded in size and depth.

Parameters arrive as a `google.protobuf.Struct`, whose numbers are doubles: NaN and infinities do
not survive JSON, and integers beyond 2**53 have already lost precision, so both are refused here
instead of being stored wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from omnisched_allinone.core.errors import InvalidArgument

MAX_SAFE_INTEGER = 2**53


def validate_parameters(
    parameters: Mapping[str, Any],
    *,
    max_bytes: int,
    max_depth: int,
    field_name: str = "parameters",
) -> dict[str, Any]:
    """Check and normalise parameters: integral doubles become ints, so `3.0` reads back as `3`."""
    normalised = _normalise(parameters, field_name, 0, max_depth)
    size = len(json.dumps(normalised, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise InvalidArgument(field_name, f"is {size} bytes as JSON; the limit is {max_bytes}")
    return normalised


def _normalise(value: Any, path: str, depth: int, max_depth: int) -> Any:
    if depth > max_depth:
        raise InvalidArgument(path, f"nesting is deeper than {max_depth} levels")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(path, "object keys must be strings")
            out[key] = _normalise(item, f"{path}.{key}", depth + 1, max_depth)
        return out
    if isinstance(value, list | tuple):
        return [
            _normalise(item, f"{path}[{i}]", depth + 1, max_depth) for i, item in enumerate(value)
        ]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidArgument(path, "integers must be within ±2^53 (JSON number precision)")
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InvalidArgument(path, "NaN and infinity are not valid JSON numbers")
        if value.is_integer():
            if abs(value) > MAX_SAFE_INTEGER:
                raise InvalidArgument(path, "integers must be within ±2^53 (JSON number precision)")
            return int(value)
        return value
    raise InvalidArgument(path, f"unsupported value of type {type(value).__name__}")


def merge_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for one run: top-level keys of `overrides` replace the job's."""
    return {**base, **overrides}
