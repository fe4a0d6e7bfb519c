"""A real API server on loopback, in its own thread and loop, for synchronous gRPC clients.

The seed's client example and the hypothesis fuzzers use blocking stubs; running the server on a
separate loop keeps them from blocking it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from omnisched_allinone.api.server import ApiServer, create_server
from omnisched_allinone.app import Services, build_services, prepare_store
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.service import Dispatcher
from omnisched_allinone.settings import Settings

T = TypeVar("T")


class ServerThread:
    def __init__(
        self,
        settings: Settings | None = None,
        dispatcher: Dispatcher | None = None,
        **server_options: Any,
    ) -> None:
        base = settings or Settings()
        self.settings = base.as_dev().model_copy(
            update={"grpc_host": "127.0.0.1", "grpc_port": 0, "seed_builtin_jobs": False}
        )
        self._dispatcher = dispatcher
        self._server_options = server_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.services: Services
        self.api: ApiServer
        self.port = 0
        self.channel: grpc.Channel
        self.stub: pb_grpc.SchedulerServiceStub

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run a coroutine on the server's loop (to look into the store)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def _start(self) -> None:
        self.services = build_services(self.settings, self._dispatcher)
        await prepare_store(self.services)
        self.api = create_server(
            self.services.service, host="127.0.0.1", port=0, **self._server_options
        )
        await self.api.server.start()
        await self.api.set_serving(True)
        self.port = self.api.port

    async def _stop(self) -> None:
        await self.api.stop(1.0)
        await self.services.store.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.call(self._start())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.SchedulerServiceStub(self.channel)
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()
        self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
