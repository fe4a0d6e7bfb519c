"""The gRPC server: the job API, the standard health service and server reflection.

`create_server` builds and binds (tests bind port 0 and read the port back); starting, health
and shutdown belong to the caller, so the launcher can order them with the other parts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from omnisched_allinone.api.security import HEALTH_RESERVE_RPCS, ApiGuard, TlsConfig, TokenTable
from omnisched_allinone.api.servicer import SchedulerServicer
from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.service import JobService

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["SchedulerService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ApiServer:
    """A bound `grpc.aio` server plus the health servicer whose state the caller drives."""

    def __init__(self, server: grpc.aio.Server, port: int, health_servicer: health.HealthServicer):
        self.server = server
        self.port = port
        self.health = health_servicer

    async def set_serving(self, serving: bool) -> None:
        status = SERVING if serving else NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def watch_store(self, service: JobService, interval_s: float = 2.0) -> None:
        """Keep health in step with the store: NOT_SERVING while it does not answer."""
        serving: bool | None = None
        while True:
            try:
                await service.store.ping()
                now_serving = True
            except Unavailable:
                now_serving = False
            if now_serving != serving:
                serving = now_serving
                await self.set_serving(serving)
                log.info("api health changed to %s", "SERVING" if serving else "NOT_SERVING")
            await asyncio.sleep(interval_s)

    async def stop(self, grace_s: float) -> None:
        """Refuse new RPCs, let in-flight ones finish within `grace_s`, then cancel the rest."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


# Keepalive enforcement: a client may ping at most every 10 s without calls in flight (more
# earns a strike; two strikes and GOAWAY "too_many_pings"); the server pings idle connections
# every 60 s and drops those that do not answer within 20 s (dead watchers free their slots).
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
)


def _size_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def create_server(
    service: JobService,
    *,
    host: str = "0.0.0.0",
    port: int = 50054,
    max_message_bytes: int = 4 * 1024 * 1024,
    max_concurrent_rpcs: int | None = 256,
    max_watch_streams: int = 64,
    reflection_enabled: bool = True,
    tokens: TokenTable | None = None,
    tls: TlsConfig | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> ApiServer:
    """`max_concurrent_rpcs` caps the job API's in-flight calls (RESOURCE_EXHAUSTED beyond it);
    grpcio's own hard cap sits `HEALTH_RESERVE_RPCS` above it so health still answers."""
    server = grpc.aio.server(
        options=[*SERVER_OPTIONS, *_size_options(max_message_bytes)],
        # `interceptors` (metrics) run outermost: they see the guard's refusals too.
        interceptors=[*interceptors, ApiGuard(tokens, max_concurrent_rpcs)],
        maximum_concurrent_rpcs=(
            max_concurrent_rpcs + HEALTH_RESERVE_RPCS if max_concurrent_rpcs else None
        ),
    )
    pb_grpc.add_SchedulerServiceServicer_to_server(
        SchedulerServicer(service, max_watch_streams=max_watch_streams), server
    )
    health_servicer = (
        health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection_enabled:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = f"{host}:{port}"
    bound = (
        server.add_secure_port(address, tls.grpc_credentials())
        if tls is not None
        else server.add_insecure_port(address)
    )
    if bound == 0:
        raise OSError(f"could not bind the gRPC API to {host}:{port}")
    return ApiServer(server, bound, health_servicer)
