"""Method resolution: a target's services and message classes, from reflection or a descriptor set.

No generated stubs: the descriptors come over the wire (server reflection) or from a configured
`FileDescriptorSet`, go into a private pool per source, and message classes are built from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2

from omnisched_allinone.targets.errors import permanent
from omnisched_allinone.targets.registry import split_method

# Python servers serve only v1alpha; v1 has the same messages on the wire, so the v1alpha classes
# serve both paths (DESIGN §10).
_REFLECTION_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
_INFRA_SERVICES = ("grpc.reflection.", "grpc.health.")


@dataclass(frozen=True)
class Method:
    """A resolved unary-unary method: its gRPC path and message classes."""

    path: str
    request_class: Any  # a generated message class
    response_class: Any


# Every private pool lives as long as the process. With protobuf's upb backend, message classes
# made from a pool that is later garbage-collected can crash the interpreter (seen here as a
# segfault in json_format.ParseDict; protocolbuffers/protobuf#12047). Pools are few (one per
# target per reflection), so keeping them costs little.
_POOLS_KEPT_ALIVE: list[descriptor_pool.DescriptorPool] = []


class Catalog:
    """The services of one target and a private pool holding their descriptors."""

    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        _POOLS_KEPT_ALIVE.append(self.pool)
        for file in _in_dependency_order(files):
            self.pool.AddSerializedFile(file.SerializeToString())
        self.services = sorted(
            f"{file.package}.{service.name}" if file.package else service.name
            for file in files
            for service in file.service
            if not f"{file.package}.".startswith(_INFRA_SERVICES)
        )

    def resolve(self, method: str) -> Method:
        service_name, method_name = split_method(method)
        candidates = [service_name] if service_name else self.services
        found = [m for s in candidates if (m := self._find(s, method_name)) is not None]
        if not found:
            raise permanent("NOT_FOUND", f"no method '{method}'; services: {self._listing()}")
        if len(found) > 1:
            names = ", ".join(m.full_name for m in found)
            raise permanent("INVALID_ARGUMENT", f"method '{method}' is ambiguous: {names}")
        return self._unary(found[0])

    def _find(self, service: str, method: str) -> MethodDescriptor | None:
        try:
            return self.pool.FindServiceByName(service).methods_by_name.get(method)
        except KeyError:
            return None

    def _listing(self) -> str:
        return ", ".join(self.services) or "(none)"

    def _unary(self, method: MethodDescriptor) -> Method:
        if method.client_streaming or method.server_streaming:
            raise permanent("UNIMPLEMENTED", f"{method.full_name} is streaming; only unary")
        return Method(
            path=f"/{method.containing_service.full_name}/{method.name}",
            request_class=message_factory.GetMessageClass(method.input_type),
            response_class=message_factory.GetMessageClass(method.output_type),
        )


def _in_dependency_order(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Order files so each follows its imports: a pool refuses a file before its dependencies."""
    by_name = {file.name: file for file in files}
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in by_name:
            return
        seen.add(name)
        for dependency in by_name[name].dependency:
            visit(dependency)
        ordered.append(by_name[name])

    for name in by_name:
        visit(name)
    return ordered


class ReflectionUnavailable(Exception):
    """The target serves neither reflection version."""


async def reflect(channel: grpc.aio.Channel, timeout_s: float) -> Catalog:
    """Ask the target for its services and their files, v1 first, then v1alpha.

    The bidi reflection method is called as unary-stream, one request per call (as
    grpcio-reflection's own client does): the request then leaves in the same batch as the
    headers. A separate write racing a server's immediate UNIMPLEMENTED fails as INTERNAL
    "Internal error from Core" in grpc.aio (seen ~1 call in 10 here), which would hide that a
    reflection version is simply absent. All exchanges share `timeout_s`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    for path in _REFLECTION_PATHS:
        rpc = channel.unary_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

        async def ask(request: Any, rpc: Any = rpc) -> Any:
            call = rpc(request, timeout=max(deadline - loop.time(), 0.001))
            async for response in call:
                call.cancel()  # one answer per request; the server waits for more
                return response
            raise permanent("FAILED_PRECONDITION", "reflection answered nothing")

        try:
            listed = await ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
            continue
        services = [service.name for service in listed.list_services_response.service]
        return _catalog_or_error(await _fetch_files(ask, services), "the target's reflection")
    raise ReflectionUnavailable()


def _catalog_or_error(files: Sequence[descriptor_pb2.FileDescriptorProto], source: str) -> Catalog:
    """A pool refuses inconsistent files (a missing import, a clash); that is not retryable."""
    try:
        return Catalog(files)
    except (TypeError, ValueError, KeyError) as error:
        message = f"unusable descriptors from {source}: {error}"
        raise permanent("FAILED_PRECONDITION", message) from None


async def _fetch_files(
    ask: Callable[[Any], Awaitable[Any]], services: Sequence[str]
) -> list[descriptor_pb2.FileDescriptorProto]:
    """Fetch the file of each service, then any import the server did not send along."""
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    requests = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)
        for name in services
        if not name.startswith(_INFRA_SERVICES)
    ]
    asked: set[str] = set()
    while requests:
        for response in await asyncio.gather(*(ask(request) for request in requests)):
            for raw in response.file_descriptor_response.file_descriptor_proto:
                file = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(file.name, file)
        missing = {d for f in files.values() for d in f.dependency} - files.keys() - asked
        asked |= missing
        requests = [reflection_pb2.ServerReflectionRequest(file_by_filename=d) for d in missing]
    return list(files.values())


def load_descriptor_set(path: str) -> Catalog:
    """Read a `protoc --descriptor_set_out --include_imports` file; ValueError if unusable."""
    try:
        with open(path, "rb") as handle:
            files = descriptor_pb2.FileDescriptorSet.FromString(handle.read()).file
    except (OSError, DecodeError) as error:
        raise ValueError(f"descriptor set {path!r} cannot be read: {error}") from None
    try:
        return Catalog(files)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"descriptor set {path!r} is inconsistent: {error}") from None
