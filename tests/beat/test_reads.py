"""A tick reads only what is due through the index, plus one job to size its sleep (STYLE 4)."""

from __future__ import annotations

import pytest

from omnisched_allinone.store.base import JobFilter
from tests.beat.conftest import CreateJob, MakeScheduler
from tests.beat.fakes import Clock, CountingStore

IDLE_TICK_CALLS = {"acquire_lease": 1, "due_jobs": 1, "unpublished_executions": 1, "next_due_at": 1}


@pytest.mark.parametrize("jobs", [10, 1000])
async def test_an_idle_tick_makes_the_same_few_store_calls_whatever_the_job_count(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, jobs: int
) -> None:
    # Given many active jobs, none due.
    for _ in range(jobs):
        await create_job("0 0 1 1 *")
    assert len(await store.list_jobs(JobFilter(), 2000, None)) == jobs
    counting = CountingStore(store)
    scheduler = make_scheduler(store=counting)

    # When a tick runs.
    sleep_s = await scheduler.tick()

    # Then it made a fixed set of indexed calls (no listing) and sleeps the max interval.
    assert dict(counting.calls) == IDLE_TICK_CALLS
    assert sleep_s == scheduler.max_interval_s


async def test_the_sleep_is_sized_by_the_earliest_future_job(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler
) -> None:
    await create_job("* * * * *")
    clock.advance(59.7)

    sleep_s = await make_scheduler(max_interval_s=1.0).tick()

    assert sleep_s == pytest.approx(0.3)


async def test_a_full_batch_asks_for_an_immediate_next_tick(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    for _ in range(5):
        await create_job("* * * * *")
    clock.advance(60)
    scheduler = make_scheduler(batch_size=3)

    assert await scheduler.tick() == 0.0
    assert len(dispatcher.published) == 3
    await scheduler.tick()
    assert len(dispatcher.published) == 5


async def test_a_standby_beat_reads_nothing_but_the_lease(
    store, make_scheduler: MakeScheduler
) -> None:
    await make_scheduler().tick()
    counting = CountingStore(store)

    await make_scheduler(store=counting).tick()

    assert dict(counting.calls) == {"acquire_lease": 1}
