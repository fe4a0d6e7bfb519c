"""The whole service (`run_parts`) in a thread of another program, on its own loop.

For integration tests and benchmarks: a real gRPC API on loopback, a real worker and beat, with
the caller's settings. `with ServiceThread(settings, options) as service:` starts it and waits for
it to be ready; leaving the block stops it as SIGTERM would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import grpc

from omnisched_allinone.app import LaunchOptions, Services, run_parts
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.settings import Settings

T = TypeVar("T")


class ServiceThread:
    def __init__(self, settings: Settings, options: LaunchOptions, *, start_timeout_s: float = 60):
        self.settings = settings
        self.options = options
        self.loop = asyncio.new_event_loop()
        self._start_timeout_s = start_timeout_s
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="omnisched-service")
        self.error: BaseException | None = None
        self.services: Services
        self.port = 0
        self.channel: grpc.Channel
        self.stub: pb_grpc.SchedulerServiceStub

    @property
    def address(self) -> str:
        return f"{self.settings.grpc_host}:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()

            def ready(services: Services, port: int | None) -> None:
                self.services, self.port = services, port or 0
                self._ready.set()

            await run_parts(self.settings, self.options, stop=self._stop, on_ready=ready)

        try:
            self.loop.run_until_complete(main())
        except BaseException as error:  # surfaced by __enter__/__exit__
            self.error = error
            self._ready.set()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run a coroutine on the service's loop (to look into its store, say)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def __enter__(self) -> ServiceThread:
        self._thread.start()
        if not self._ready.wait(self._start_timeout_s):
            raise TimeoutError(f"the service did not start within {self._start_timeout_s:g}s")
        if self.error is not None:
            raise self.error
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.SchedulerServiceStub(self.channel)
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if not self.loop.is_running():
            self.loop.close()
        if self.error is not None:
            raise self.error
