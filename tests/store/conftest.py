"""Fixtures for the store contract suite: one fresh store per test, on every backend.

`memory` (mongomock-motor) always runs; `wire` always runs too: real PyMongo (`AsyncMongoClient`)
over the MongoDB wire protocol against the test wire server (mongomock behind a socket), which
checks everything between our code and the bytes a server sees; `mongodb` runs when
`OMNISCHED_TEST_MONGODB_URL` names a real server. Each test gets its own database, dropped after.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnisched_allinone.core.executions import (
    Execution,
    ExecutionStatus,
    Trigger,
    scheduled_run_key,
)
from omnisched_allinone.core.jobs import Job, JobType
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec, normalize_schedule
from omnisched_allinone.store.mongo import MongoStore, open_store

MONGODB_URL_ENV = "OMNISCHED_TEST_MONGODB_URL"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

MakeJob = Callable[..., Job]
AddJob = Callable[..., Awaitable[Job]]
MakeExecution = Callable[..., Execution]
AddExecution = Callable[..., Awaitable[Execution]]


def mongodb_url() -> str:
    url = os.environ.get(MONGODB_URL_ENV, "")
    if not url:
        pytest.skip(f"no real MongoDB: set {MONGODB_URL_ENV} (e.g. mongodb://127.0.0.1:27017)")
    return url


async def _fresh_store(url: str) -> AsyncIterator[MongoStore]:
    database = f"omnisched_test_{uuid.uuid4().hex[:12]}"
    store = open_store(url, database, timeout_ms=5000)
    await store.start()
    try:
        yield store
    finally:
        if not url.startswith("memory://"):
            await store.database.client.drop_database(database)
        await store.close()


@pytest.fixture(params=["memory", "wire", "mongodb"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MongoStore]:
    """A started, empty store on each backend."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "wire":
        url = request.getfixturevalue("mongo_wire_url")
    else:
        url = mongodb_url()
    async for fresh in _fresh_store(url):
        yield fresh


@pytest.fixture
async def mongodb_store() -> AsyncIterator[MongoStore]:
    """A started, empty store on the real MongoDB only (for query-plan checks)."""
    url = mongodb_url()
    if not await _has_query_planner(url):
        pytest.skip("query plans need a real MongoDB, not the mongomock wire test server")
    async for fresh in _fresh_store(url):
        yield fresh


async def _has_query_planner(url: str) -> bool:
    """False on tests/support/mongo_wire.py (mongomock over the wire), which cannot `explain`."""
    probe = open_store(url, "admin", timeout_ms=5000)
    try:
        return not (await probe.database.command("buildInfo")).get("omnisched_wire")
    finally:
        await probe.close()


@pytest.fixture
def make_job() -> MakeJob:
    """A valid job value, not stored; each call gets the next id and name (ids sort by call)."""
    numbers = itertools.count(1)
    schedule = normalize_schedule(ScheduleSpec("cron", {"expression": "*/5 * * * *"}), NOW)

    def make(**overrides: Any) -> Job:
        n = next(numbers)
        job = Job(
            id=f"job-{n:04d}",
            name=f"job {n}",
            job_type=JobType.MONITORING,
            queue="monitoring",
            schedule=schedule,
            policies=JobPolicies(),
            created_at=NOW,
            updated_at=NOW,
            next_run_at=NOW + timedelta(minutes=5),
        )
        return replace(job, **overrides)

    return make


@pytest.fixture
def add_job(store: MongoStore, make_job: MakeJob) -> AddJob:
    """Given: a job in the store (returns the value written)."""

    async def add(**overrides: Any) -> Job:
        job = make_job(**overrides)
        await store.insert_job(job)
        return job

    return add


@pytest.fixture
def make_execution() -> MakeExecution:
    """A PENDING scheduled execution of `job`, not stored.

    Ids are deterministic and increase with each call: `new_execution_id` is ordered only to the
    millisecond, and "newest first" specs need a strict order.
    """
    numbers = itertools.count(1)

    def make(job: Job, **overrides: Any) -> Execution:
        n = next(numbers)
        fire_time = NOW + timedelta(minutes=n)
        execution = Execution(
            id=f"exe-{n:016x}",
            job_id=job.id,
            job_name=job.name,
            trigger=Trigger.SCHEDULED,
            run_key=scheduled_run_key(job.id, fire_time),
            status=ExecutionStatus.PENDING,
            queue=job.queue,
            queued_at=NOW,
            scheduled_for=fire_time,
        )
        return replace(execution, **overrides)

    return make


@pytest.fixture
def add_execution(store: MongoStore, make_execution: MakeExecution) -> AddExecution:
    """Given: an execution in the store (returns the value written)."""

    async def add(job: Job, **overrides: Any) -> Execution:
        execution = make_execution(job, **overrides)
        assert await store.insert_execution(execution)
        return execution

    return add
