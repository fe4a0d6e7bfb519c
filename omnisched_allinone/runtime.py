"""The process's one asyncio loop, and the bridge sync code uses to reach it.

The store client, target channels and coroutine tasks all live on one loop per process (DESIGN
§8): Celery's worker threads, its signal handlers and Beat's `tick` are synchronous and call into
that loop through `LoopBridge.run`. In the all-in-one process the loop is the launcher's own; a
worker run alone (or a prefork child, after the fork) starts a loop in a daemon thread on first use.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopBridge:
    """Runs coroutines on one loop from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread | None = None):
        self.loop = loop
        self._thread = thread  # set when the bridge owns the loop's thread
        self.pid = os.getpid()

    @classmethod
    def in_thread(cls) -> LoopBridge:
        """A new loop running in a daemon thread (worker processes that have no loop of their own)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=serve, name="omnisched-loop", daemon=True)
        thread.start()
        ready.wait()
        return cls(loop, thread)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result, from a thread other than the loop's."""
        if self.on_loop_thread():
            coro.close()
            raise RuntimeError("LoopBridge.run called on the loop's own thread: await instead")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def close(self) -> None:
        if self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()


_bridge: LoopBridge | None = None
_lock = threading.Lock()


def install_bridge(bridge: LoopBridge | None) -> None:
    """Make `bridge` the process's loop (the all-in-one launcher installs its own)."""
    global _bridge
    with _lock:
        _bridge = bridge


def bridge() -> LoopBridge:
    """The process's bridge; made on first use, and made anew in a forked child."""
    global _bridge
    with _lock:
        if _bridge is None or _bridge.pid != os.getpid():
            _bridge = LoopBridge.in_thread()
        return _bridge
