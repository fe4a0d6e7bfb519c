"""A real HTTP API on loopback (uvicorn, port 0) over in-memory services, and a client for it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from omnisched_allinone.app import Services, build_services, prepare_store
from omnisched_allinone.core.executions import Execution
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.http import HttpServer, create_http_app
from omnisched_allinone.settings import Settings

_names = itertools.count()


def dev_settings(**overrides: Any) -> Settings:
    return Settings().as_dev().model_copy(update={"seed_builtin_jobs": False, **overrides})


class FakeDispatcher:
    """Stands in for the worker engine: every publish is confirmed at once."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, execution: Execution, job: Job, *, countdown_s: float = 0.0) -> str:
        self.published.append(execution.id)
        return f"task-{execution.id}"


@dataclass
class RunningApi:
    services: Services
    server: HttpServer
    client: httpx.AsyncClient

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


async def start_api(settings: Settings | None = None, **app_options: Any) -> RunningApi:
    settings = settings or dev_settings()
    services = build_services(settings)
    await prepare_store(services)
    server = HttpServer(create_http_app(services.service, settings=settings, **app_options))
    port = await server.start("127.0.0.1", 0)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10.0)
    return RunningApi(services, server, client)


async def stop_api(api: RunningApi) -> None:
    await api.client.aclose()
    await api.server.stop(1.0)
    await api.services.store.close()


@pytest.fixture
async def api() -> AsyncIterator[RunningApi]:
    running = await start_api(heartbeat_s=0.2)
    try:
        yield running
    finally:
        await stop_api(running)


@pytest.fixture
def client(api: RunningApi) -> httpx.AsyncClient:
    return api.client


def unique(prefix: str = "job") -> str:
    return f"{prefix}-{next(_names)}"


def job_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique(),
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": {"type": "cron", "config": {"minute": "*/5"}},
        "parameters": {"competitor_ids": ["amazon"]},
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_job(client: httpx.AsyncClient):
    async def make(**overrides: Any) -> dict[str, Any]:
        response = await client.post("/v1/jobs", json=job_body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    return make


class ThreadedApi:
    """The API on its own loop in a thread, for synchronous clients (schemathesis, chromium)."""

    def __init__(self, **app_options: Any) -> None:
        self._app_options = app_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.api: RunningApi

    def __enter__(self) -> ThreadedApi:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_api(**self._app_options), self._loop)
        self.api = future.result(30.0)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(stop_api(self.api), self._loop).result(30.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10.0)
        self._loop.close()

    @property
    def base_url(self) -> str:
        return self.api.base_url
