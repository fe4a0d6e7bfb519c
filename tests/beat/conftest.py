"""Fixtures for the beat specs: an in-memory store, a JobService and schedulers on one clock."""

from __future__ import annotations

import itertools
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from omnisched_allinone.core.executions import Execution
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.scheduling import RunScheduler
from omnisched_allinone.service import JobDraft, JobService, ServiceLimits
from omnisched_allinone.store.base import ExecutionFilter, Store
from omnisched_allinone.store.mongo import MongoStore, open_store
from tests.beat.fakes import Clock, FakeDispatcher

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CreateJob = Callable[..., Awaitable[Job]]
MakeScheduler = Callable[..., RunScheduler]
_names = itertools.count(1)


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    """Every log call of the beat runs (a bad `extra` key only fails when the record is made)."""
    caplog.set_level(logging.DEBUG, "omnisched_allinone")


@pytest.fixture
async def store() -> AsyncIterator[MongoStore]:
    fresh = open_store("memory://", f"test-{uuid.uuid4().hex[:12]}")
    await fresh.start()
    try:
        yield fresh
    finally:
        await fresh.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def service(store: MongoStore, clock: Clock) -> JobService:
    return JobService(
        store,
        target_names=["scraper-service"],
        default_policies=JobPolicies(),
        limits=ServiceLimits(),
        clock=clock,
    )


@pytest.fixture
def dispatcher(clock: Clock) -> FakeDispatcher:
    return FakeDispatcher(clock)


@pytest.fixture
def create_job(service: JobService) -> CreateJob:
    """Given: a job created through the API's service (validation, next_run_at and all)."""

    async def create(
        schedule: ScheduleSpec | str = "* * * * *",
        *,
        timezone: str = "UTC",
        **fields: Any,
    ) -> Job:
        if isinstance(schedule, str):
            schedule = ScheduleSpec("cron", {"expression": schedule}, timezone)
        draft = JobDraft(
            name=fields.pop("name", f"job {next(_names)}"),
            job_type=fields.pop("job_type", "MONITORING"),
            schedule=schedule,
            **fields,
        )
        return await service.create_job(draft)

    return create


@pytest.fixture
def make_scheduler(store: MongoStore, dispatcher: FakeDispatcher, clock: Clock) -> MakeScheduler:
    owners = itertools.count(1)

    def make(**overrides: Any) -> RunScheduler:
        options: dict[str, Any] = {
            "owner": f"beat-{next(owners)}",
            "clock": clock,
            "rng": random.Random(7),
        }
        options.update(overrides)
        return RunScheduler(
            options.pop("store", store), options.pop("dispatcher", dispatcher), **options
        )

    return make


async def executions_of(store: Store, job_id: str) -> list[Execution]:
    """All executions of a job, oldest fire time first."""
    found = await store.list_executions(ExecutionFilter(job_id=job_id), 100_000, None)
    return sorted(found, key=lambda e: (e.scheduled_for or e.queued_at, e.id))


async def run_beat(
    scheduler: RunScheduler, clock: Clock, until: datetime, *, lag_s: Callable[[], float]
) -> int:
    """Drive `scheduler` as Celery's Service would: tick, sleep what it asked (plus a lag)."""
    ticks = 0
    while clock.now < until:
        sleep_s = await scheduler.tick()
        ticks += 1
        assert ticks < 100_000, "the scheduler never got past `until`"
        clock.advance(sleep_s + lag_s() if sleep_s > 0 else 0.001)
    return ticks
