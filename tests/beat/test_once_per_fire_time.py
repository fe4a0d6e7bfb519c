"""Any number of beats against one store: exactly one execution per fire time, none missing,
none published twice; a beat dying between claim and publish loses nothing (DESIGN §4.1)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import pytest

from omnisched_allinone.core.errors import Unavailable
from omnisched_allinone.core.executions import ExecutionStatus
from omnisched_allinone.core.schedules import ScheduleSpec, fire_times_between
from omnisched_allinone.scheduling import RunScheduler
from omnisched_allinone.store.base import ExecutionFilter
from tests.beat.conftest import START, CreateJob, MakeScheduler, executions_of
from tests.beat.fakes import Clock, FakeDispatcher, HookStore, ShufflingStore

ROUNDS = 40


async def _jobs(create_job: CreateJob) -> list:
    return [
        await create_job("* * * * *"),
        await create_job("*/2 * * * *"),
        await create_job(ScheduleSpec("interval", {"every": "45", "period": "seconds"})),
        await create_job(ScheduleSpec("interval", {"every": "3", "period": "minutes"})),
        await create_job("*/5 * * * *", timezone="Asia/Kolkata"),
    ]


@pytest.mark.parametrize("beats", [2, 3])
@pytest.mark.parametrize("mode", ["no-lease", "lease-handover"])
async def test_concurrent_beats_dispatch_each_fire_time_exactly_once(
    store,
    clock: Clock,
    dispatcher: FakeDispatcher,
    create_job: CreateJob,
    beats: int,
    mode: str,
) -> None:
    # Given several beats on one store, interleaving at every store call; with "no-lease" each
    # has its own lease (all work at once: correctness without the lease), with
    # "lease-handover" they share a lease that expires between rounds.
    dispatcher.finish_in = store
    jobs = await _jobs(create_job)
    rng = random.Random(beats * 10 + len(mode))
    schedulers = [
        RunScheduler(
            ShufflingStore(store, random.Random(i)),
            dispatcher,
            owner=f"beat-{i}",
            clock=clock,
            lease_s=20 if mode == "lease-handover" else 10,
            lease_name=f"beat-{i}" if mode == "no-lease" else "beat",
            rng=random.Random(i),
        )
        for i in range(beats)
    ]

    # When they tick together over many fire times (sometimes a beat sits a round out).
    for _ in range(ROUNDS):
        clock.advance(rng.choice([15, 30, 30, 45]))
        active = [s for s in schedulers if rng.random() < 0.85] or schedulers[:1]
        rng.shuffle(active)
        await asyncio.gather(*(s.tick() for s in active))
    clock.advance(60)  # leases expire; a last pass publishes anything left unpublished
    await asyncio.gather(*(s.tick() for s in schedulers))

    # Then every fire time of every job has exactly one execution, published exactly once.
    assert set(dispatcher.run_keys().values()) == {1}
    for job in jobs:
        expected = fire_times_between(job.schedule, START, clock.now - timedelta(seconds=60), 1000)
        records = await executions_of(store, job.id)
        assert [e.scheduled_for for e in records][: len(expected)] == expected, job.name
        assert Counter(e.run_key for e in records).most_common(1)[0][1] == 1
        assert all(e.status is not ExecutionStatus.PENDING or e.enqueued for e in records)
    published = {p.run_key for p in dispatcher.published}
    runs = await store.list_executions(ExecutionFilter(), 100_000, None)
    assert published == {e.run_key for e in runs if e.status is ExecutionStatus.SUCCESS}


async def test_a_standby_beat_takes_over_when_the_lease_expires(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job("* * * * *")
    dispatcher.finish_in = store
    first, standby = make_scheduler(lease_s=10), make_scheduler(lease_s=10)

    clock.advance(60)
    await first.tick()
    await standby.tick()
    assert (first.holds_lease, standby.holds_lease) == (True, False)
    assert len(dispatcher.published) == 1

    # When the first beat dies (stops ticking) and its lease runs out.
    clock.advance(60)
    await standby.tick()

    # Then the standby holds the lease and dispatched the next fire time.
    assert standby.holds_lease
    assert [p.job_id for p in dispatcher.published] == [job.id, job.id]


async def test_close_releases_the_lease_for_a_standby_at_once(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler
) -> None:
    first, standby = make_scheduler(), make_scheduler()
    await first.tick()
    await standby.tick()
    assert not standby.holds_lease

    await first.close()
    await standby.tick()

    assert standby.holds_lease


@pytest.mark.parametrize(
    "death", [Unavailable("broker did not confirm"), RuntimeError("beat killed mid-publish")]
)
async def test_a_run_whose_publish_failed_is_published_by_the_next_beat_once(
    store,
    clock: Clock,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
    death: BaseException,
) -> None:
    # Given a beat whose first publish fails after it claimed the run and advanced the job.
    job = await create_job("* * * * *")
    first, second = make_scheduler(lease_s=5), make_scheduler(lease_s=5)
    dispatcher.fail_next(death)
    clock.advance(60)
    await first.tick()
    [claimed] = await executions_of(store, job.id)
    assert claimed.status is ExecutionStatus.PENDING and not claimed.enqueued
    assert (await store.get_job(job.id)).next_run_at == START + timedelta(minutes=2)

    # When that beat is gone and another one ticks past the sweep delay.
    clock.advance(11)
    await second.tick()
    await second.tick()

    # Then the run was published exactly once, by the second beat.
    assert [p.run_key for p in dispatcher.published] == [claimed.run_key]
    assert (await store.get_execution(claimed.id)).enqueued


async def test_a_beat_dying_between_claim_and_advance_leaves_work_the_next_tick_finishes(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    # Given a beat that inserted the execution, then died before advancing the job.
    job = await create_job("* * * * *")
    dying = HookStore(store, raise_on={"advance_job": RuntimeError("beat killed")})
    clock.advance(60)
    await make_scheduler(store=dying, lease_name="a").tick()
    assert dispatcher.published == []

    # When another beat ticks (still within the same minute), then past the sweep delay.
    survivor = make_scheduler(lease_name="b")
    await survivor.tick()
    assert (await store.get_job(job.id)).next_run_at == START + timedelta(minutes=2)
    clock.advance(11)
    await survivor.tick()

    # Then the fire time has one execution, published once.
    [execution] = await executions_of(store, job.id)
    assert [p.execution_id for p in dispatcher.published] == [execution.id]


async def test_the_sweep_waits_so_a_run_being_published_elsewhere_is_not_published_twice(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job("* * * * *")
    dispatcher.fail_next(Unavailable("no confirm"))
    scheduler = make_scheduler()
    clock.advance(60)
    await scheduler.tick()

    clock.advance(5)  # younger than the sweep delay: perhaps still being published
    await scheduler.tick()
    assert dispatcher.published == []

    clock.advance(6)
    await scheduler.tick()
    assert [p.job_id for p in dispatcher.published] == [job.id]


async def test_a_broker_outage_keeps_every_fire_time_pending_until_it_is_back(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job("* * * * *", policies={"overlap": "ALLOW"})
    scheduler = make_scheduler()
    dispatcher.fail_always = Unavailable("broker down")
    for _ in range(3):
        clock.advance(60)
        await scheduler.tick()
    assert len(await executions_of(store, job.id)) == 3

    dispatcher.fail_always = None
    clock.advance(11)
    await scheduler.tick()

    assert sorted(dispatcher.run_keys()) == sorted(
        e.run_key for e in await executions_of(store, job.id)
    )
    assert set(dispatcher.run_keys().values()) == {1}
