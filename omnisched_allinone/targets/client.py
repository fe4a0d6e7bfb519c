"""The client the worker uses to call registered targets and check their health."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omnisched_allinone.core.errors import InvalidArgument
from omnisched_allinone.targets.catalog import (
    Catalog,
    Method,
    ReflectionUnavailable,
    load_descriptor_set,
    reflect,
)
from omnisched_allinone.targets.errors import TargetCallError, from_rpc_error, permanent
from omnisched_allinone.targets.registry import TargetRegistry, TargetService, validate_method_name

# Cap gRPC's reconnect backoff (default up to 120 s) so a restarted target is seen again quickly.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
)
# grpc-core rejects bad metadata with a raw ExecuteBatchError and a log line, so check it first.
_METADATA_KEY_RE = re.compile(r"[0-9a-z_.-]+")
_METADATA_VALUE_RE = re.compile(r"[\x20-\x7e]*")


class TargetClient:
    """Calls registered targets: resolves the method by the target's server reflection (cached per
    target), builds the request from a JSON-like dict (a field the method does not take is an
    error: TargetCallError(code="INVALID_ARGUMENT", transient=False)), calls with a deadline,
    returns the response as a dict (json_format.MessageToDict, preserving_proto_field_name=True).

    Zero-valued fields are kept in the dict (`products_scraped: 0`), so a stored result says "none"
    rather than leaving the field out. int64 values come back as strings, as proto3 JSON says.
    Channels are bound to the loop that first uses them: use one client from one loop.
    """

    def __init__(self, registry: TargetRegistry, *, descriptor_set_path: str | None = None) -> None:
        self._registry = registry
        # Read now, so a bad path or file stops the worker at start, not at the first job.
        self._descriptor_set = (
            load_descriptor_set(descriptor_set_path) if descriptor_set_path else None
        )
        self._channels: dict[str, tuple[asyncio.AbstractEventLoop, grpc.aio.Channel]] = {}
        self._catalogs: dict[str, Catalog] = {}
        self.reflection_queries = 0  # observable, so tests and metrics can see the cache work

    async def call(
        self,
        target: str,
        method: str,
        parameters: Mapping[str, Any],
        *,
        timeout_s: float,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Call `method` on `target`; every failure is a TargetCallError, never a raw gRPC error."""
        if not timeout_s > 0:  # also refuses NaN
            raise permanent("INVALID_ARGUMENT", f"timeout_s must be positive, got {timeout_s}")
        try:
            service = self._registry.get(target)
        except InvalidArgument as error:
            raise permanent("INVALID_ARGUMENT", error.message) from None
        metadata = _checked_metadata(metadata)
        deadline = asyncio.get_running_loop().time() + timeout_s
        resolved = await self._resolve(service, method, timeout_s)
        request = _build_request(resolved, method, parameters)
        remaining_s = deadline - asyncio.get_running_loop().time()
        if remaining_s <= 0:
            raise TargetCallError("DEADLINE_EXCEEDED", f"{target}: deadline spent resolving")
        stub = self._channel(service).unary_unary(
            resolved.path,
            request_serializer=resolved.request_class.SerializeToString,
            response_deserializer=resolved.response_class.FromString,
        )
        try:
            response = await stub(request, timeout=remaining_s, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._catalogs.pop(target, None)  # the target changed: reflect again next time
            raise from_rpc_error(error, target) from None
        except grpc.RpcError as error:  # not an AioRpcError: no code to read
            raise TargetCallError("UNKNOWN", f"{target}: {error}", transient=False) from None
        return json_format.MessageToDict(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    async def check_health(self, target: str, *, timeout_s: float = 2.0) -> dict[str, Any]:
        """Ask the target's standard grpc.health.v1 service; an unreachable target is a status."""
        service = self._registry.get(target)
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, error = "UNKNOWN", None
        try:
            response = await health_pb2_grpc.HealthStub(self._channel(service)).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        except grpc.aio.AioRpcError as rpc_error:
            reached = rpc_error.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            status = "ERROR" if reached else "UNREACHABLE"
            error = from_rpc_error(rpc_error, target).message
        return {
            "target": target,
            "address": service.address,
            "status": status,
            "latency_ms": round((loop.time() - started) * 1000, 3),
            "error": error,
        }

    async def close(self) -> None:
        """Close every channel opened on this loop; channels of a dead loop are just dropped."""
        channels, self._channels = self._channels, {}
        loop = asyncio.get_running_loop()
        for owner, channel in channels.values():
            if owner is loop:
                await channel.close()

    def _channel(self, service: TargetService) -> grpc.aio.Channel:
        """One channel per target, made lazily on the running loop (a channel is bound to one)."""
        loop = asyncio.get_running_loop()
        cached = self._channels.get(service.name)
        if cached is None or cached[0] is not loop:
            channel = grpc.aio.insecure_channel(service.address, options=_CHANNEL_OPTIONS)
            self._channels[service.name] = (loop, channel)
            return channel
        return cached[1]

    async def _resolve(self, service: TargetService, method: str, timeout_s: float) -> Method:
        try:
            validate_method_name(method)
        except InvalidArgument as error:
            raise permanent("INVALID_ARGUMENT", error.message) from None
        catalog = self._catalogs.get(service.name)
        if catalog is None:
            catalog = await self._load_catalog(service, timeout_s)
            self._catalogs[service.name] = catalog
        return catalog.resolve(method)

    async def _load_catalog(self, service: TargetService, timeout_s: float) -> Catalog:
        self.reflection_queries += 1
        try:
            return await reflect(self._channel(service), timeout_s)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error, service.name) from None
        except ReflectionUnavailable:
            if self._descriptor_set is None:
                raise permanent(
                    "UNIMPLEMENTED",
                    f"{service.name} serves no reflection and no descriptor set is configured",
                ) from None
            return self._descriptor_set


def _build_request(method: Method, name: str, parameters: Mapping[str, Any]) -> Any:
    """JSON -> message; unknown fields are refused, so a typo never becomes a silent default."""
    try:
        return json_format.ParseDict(dict(parameters), method.request_class())
    except (json_format.ParseError, TypeError, ValueError) as error:
        raise permanent("INVALID_ARGUMENT", f"bad parameters for {name}: {error}") from None


def _checked_metadata(metadata: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Text metadata only, with keys gRPC accepts; reserved (grpc-*) and binary keys refused."""
    checked = tuple((key, value) for key, value in metadata)
    for key, value in checked:
        valid_key = isinstance(key, str) and _METADATA_KEY_RE.fullmatch(key) is not None
        if not valid_key or key.startswith("grpc-") or key.endswith("-bin"):
            raise permanent("INVALID_ARGUMENT", f"bad metadata key {key!r}")
        if not isinstance(value, str) or _METADATA_VALUE_RE.fullmatch(value) is None:
            raise permanent("INVALID_ARGUMENT", f"bad metadata value for {key!r}")
    return checked
