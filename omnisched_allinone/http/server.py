"""Uvicorn on the process's own asyncio loop, started and stopped by the launcher.

The socket is bound here (so a port in use is an `OSError` from `start`, not uvicorn's
`sys.exit`), and uvicorn's signal capture is turned off: `run_parts` owns SIGTERM and SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """One uvicorn server for an ASGI app; `start` returns the bound port (port 0 allowed)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool = False,
        ssl_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.ssl_options = dict(ssl_options or {})  # uvicorn's ssl_certfile, ssl_keyfile, …
        self.port = 0
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=2048)
        sock.setblocking(False)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=self.access_log,
            server_header=False,
            **self.ssl_options,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()  # raises what stopped it
                raise RuntimeError("the HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        self.port = sock.getsockname()[1]
        log.info("http api listening", extra={"host": host, "port": self.port})
        return self.port

    async def stop(self, grace_s: float) -> None:
        """End watch streams, let in-flight requests finish within `grace_s`, then cancel."""
        if self._server is None or self._task is None:
            return
        api = getattr(getattr(self.app, "state", None), "api", None)
        if api is not None:
            api.shutting_down.set()
        self._server.config.timeout_graceful_shutdown = max(1, math.ceil(grace_s))
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_s + 2.0)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None
        log.info("http api stopped")
