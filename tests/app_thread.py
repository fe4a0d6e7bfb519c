"""The whole service (`run_parts`) in a thread of the test process, on its own loop.

Used for end-to-end tests: a real gRPC API on loopback, a real Celery worker (threads pool) on the
real RabbitMQ and Redis (or the in-memory fallbacks), the in-memory store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from omnisched_allinone.app import LaunchOptions, Part, Services, run_parts
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.settings import Settings

T = TypeVar("T")


class AppThread:
    def __init__(
        self, settings: Settings, parts: tuple[Part, ...] = (Part.GRPC, Part.WORKER), **options: Any
    ) -> None:
        self.settings = settings.model_copy(
            update={
                "grpc_host": "127.0.0.1",
                "grpc_port": 0,
                "seed_builtin_jobs": False,
                "shutdown_grace_s": 5.0,
            }
        )
        self.options = LaunchOptions(parts=parts, **options)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="app-thread")
        self.error: BaseException | None = None
        self.services: Services
        self.port = 0
        self.channel: grpc.Channel
        self.stub: pb_grpc.SchedulerServiceStub

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()

            def ready(services: Services, port: int | None) -> None:
                self.services, self.port = services, port or 0
                self._ready.set()

            await run_parts(self.settings, self.options, stop=self._stop, on_ready=ready)

        try:
            self._loop.run_until_complete(main())
        except BaseException as error:  # surfaced by __enter__/__exit__
            self.error = error
            self._ready.set()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def __enter__(self) -> AppThread:
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the service did not start within 60s")
        if self.error is not None:
            raise self.error
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = pb_grpc.SchedulerServiceStub(self.channel)
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if not self._loop.is_running():
            self._loop.close()
        if self.error is not None:
            raise self.error
