"""The server-sent-events stream of execution changes (`GET /v1/executions:watch`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.executions import (
    Execution,
    ExecutionStatus,
    Trigger,
    new_execution_id,
)
from tests.http.conftest import RunningApi, dev_settings, start_api, stop_api


def an_execution(job: dict[str, Any]) -> Execution:
    now = datetime.now(UTC)
    execution_id = new_execution_id()
    return Execution(
        id=execution_id,
        job_id=job["id"],
        job_name=job["name"],
        trigger=Trigger.SCHEDULED,
        run_key=f"{job['id']}:{execution_id}",
        status=ExecutionStatus.PENDING,
        queue="scraping",
        queued_at=now,
        updated_at=now,
    )


async def frames(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """SSE frames as {field: value}; comment lines come as {"comment": text}."""
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            frame[name] = value.removeprefix(" ")
        elif frame:
            yield frame
            frame = {}


async def next_event(stream: AsyncIterator[dict[str, str]], timeout_s: float) -> dict[str, str]:
    """The next frame that is an event (heartbeats skipped)."""
    async with asyncio.timeout(timeout_s):
        async for frame in stream:
            if "event" in frame:
                return frame
    raise AssertionError("the stream ended")


async def wait_until(condition, timeout_s: float = 5.0) -> None:
    """Poll server-side state that has no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_an_execution_change_is_delivered_as_an_event(api: RunningApi, client, make_job):
    job = await make_job()
    other = await make_job()
    store = api.services.store
    async with client.stream(
        "GET", "/v1/executions:watch", params={"job_id": job["id"]}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = frames(response)
        assert "comment" in await anext(stream)  # the stream is open
        # The feed starts reading right after the opening; change until it has seen one.
        execution = an_execution(job)
        await store.insert_execution(an_execution(other))  # another job's: not delivered
        await store.insert_execution(execution)
        while True:
            try:
                first = await next_event(stream, 0.5)
                break
            except TimeoutError:
                await store.update_execution(execution.id, {"attempts": 1})
        assert first["event"] == "execution" and first["id"] == execution.id
        await store.update_execution(
            execution.id, {"status": ExecutionStatus.STARTED, "worker": "w1"}
        )
        changed = await next_event(stream, 5.0)
        event = json.loads(changed["data"])
        assert event["execution"]["id"] == execution.id
        assert event["execution"]["job_id"] == job["id"]
        assert event["execution"]["status"] == "STARTED"
        assert event["execution"]["worker"] == "w1"
        assert event["at"].endswith("Z")


async def test_the_stream_ends_cleanly_when_the_client_disconnects(api: RunningApi, client):
    http_api = api.server.app.state.api
    async with client.stream("GET", "/v1/executions:watch") as response:
        stream = frames(response)
        assert "comment" in await anext(stream)
        assert http_api.watch_streams == 1
        assert "comment" in await anext(stream)  # a heartbeat (every 0.2 s here)
    await wait_until(lambda: http_api.watch_streams == 0)
    # The feed's follower is gone too (it registers a wake-up per watcher).
    await wait_until(lambda: not api.services.feed._wakeups)


async def test_the_stream_ends_when_the_server_stops():
    api = await start_api(heartbeat_s=30.0)
    try:
        async with api.client.stream("GET", "/v1/executions:watch") as response:
            stream = frames(response)
            assert "comment" in await anext(stream)
            stopping = asyncio.create_task(api.server.stop(5.0))
            async with asyncio.timeout(3.0):
                rest = [frame async for frame in stream]
            assert rest == []
        async with asyncio.timeout(3.0):
            await stopping
    finally:
        await stop_api(api)


async def test_a_feed_failure_ends_the_stream_with_an_error_event(api: RunningApi, client):
    async def down(*args: Any) -> Any:
        raise Unavailable("MongoDB did not answer")

    api.services.store.events_after = down  # type: ignore[method-assign]
    async with client.stream("GET", "/v1/executions:watch") as response:
        event = await next_event(frames(response), 5.0)
    assert event["event"] == "error"
    assert json.loads(event["data"])["code"] == "UNAVAILABLE"


async def test_watch_errors_are_answered_before_the_stream_starts(client):
    missing = await client.get("/v1/executions:watch", params={"job_id": "job-missing"})
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    unknown = await client.get("/v1/executions:watch", params={"since": "now"})
    assert unknown.status_code == 400 and unknown.json()["details"] == {"field": "since"}


async def test_watch_streams_are_limited():
    api = await start_api(dev_settings(max_watch_streams=1), heartbeat_s=0.2)
    try:
        async with api.client.stream("GET", "/v1/executions:watch") as response:
            assert "comment" in await anext(frames(response))
            refused = await api.client.get("/v1/executions:watch")
            assert refused.status_code == 429
            assert refused.json()["code"] == "RESOURCE_EXHAUSTED"
    finally:
        await stop_api(api)
