"""Per-job policies: catch-up after downtime, overlap, jitter (DESIGN §4.3: never silent)."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from omnisched_allinone.core.executions import ExecutionStatus
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.scheduling import MISSED_RECORDS_MAX
from tests.beat.conftest import START, CreateJob, MakeScheduler, executions_of
from tests.beat.fakes import Clock, FakeDispatcher

S = ExecutionStatus


def every_minute() -> ScheduleSpec:
    return ScheduleSpec("interval", {"every": "60", "period": "seconds"})


@pytest.mark.parametrize("down_intervals", [1, 2, 10, 60])
async def test_after_downtime_the_latest_fire_time_runs_and_the_rest_are_missed(
    store,
    clock: Clock,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
    down_intervals: int,
) -> None:
    # Given a minutely job whose beat was down for N intervals (back 20 s after the last one).
    job = await create_job(every_minute(), policies={"catchup_window_s": 300})
    clock.advance(60 * down_intervals + 20)

    await make_scheduler().tick()

    # Then the latest missed fire time ran, and each earlier one is a MISSED record.
    latest = START + timedelta(minutes=down_intervals)
    assert dispatcher.fire_times(job.id) == [latest]
    records = await executions_of(store, job.id)
    assert [e.status for e in records] == [S.MISSED] * (down_intervals - 1) + [S.PENDING]
    assert [e.scheduled_for for e in records] == [
        START + timedelta(minutes=k) for k in range(1, down_intervals + 1)
    ]
    assert all(e.reason for e in records[:-1])
    after = await store.get_job(job.id)
    assert after.counters.missed == down_intervals - 1
    assert after.next_run_at == latest + timedelta(minutes=1)


async def test_a_fire_time_older_than_the_catchup_window_is_missed_too(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job(every_minute(), policies={"catchup_window_s": 0})
    clock.advance(5 * 60 + 45)  # 45 s late: beyond the window and the 30 s on-time grace

    await make_scheduler().tick()

    assert dispatcher.published == []
    records = await executions_of(store, job.id)
    assert [e.status for e in records] == [S.MISSED] * 5
    assert (await store.get_job(job.id)).counters.missed == 5


async def test_a_run_a_tick_late_still_runs_with_a_zero_catchup_window(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job(every_minute(), policies={"catchup_window_s": 0})
    clock.advance(61)

    await make_scheduler().tick()

    assert dispatcher.fire_times(job.id) == [START + timedelta(minutes=1)]


async def test_a_month_offline_writes_bounded_missed_records_and_one_summary(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    # Given a minutely job and a beat that was down for 30 days.
    job = await create_job("* * * * *", policies={"catchup_window_s": 300})
    clock.advance(30 * 86400 + 10)

    started = time.perf_counter()
    await make_scheduler().tick()
    elapsed_s = time.perf_counter() - started

    # Then: the latest ran, 1,000 MISSED records plus one summary carry the rest, and the
    # counters hold the true number of missed fire times.
    total_missed = 30 * 24 * 60 - 1
    records = await executions_of(store, job.id)
    assert len(records) == MISSED_RECORDS_MAX + 2
    summary = [e for e in records if "more fire times missed" in e.reason]
    assert len(summary) == 1
    assert f"{total_missed - MISSED_RECORDS_MAX} more fire times" in summary[0].reason
    assert len(dispatcher.published) == 1
    assert (await store.get_job(job.id)).counters.missed == total_missed
    assert elapsed_s < 20, elapsed_s  # bounded: does not scale with the records it summarises


async def test_a_once_job_past_its_window_is_missed_and_completed(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job(ScheduleSpec("once", {"run_at": "2026-03-01T13:00:00Z"}))
    clock.advance(86400)

    await make_scheduler().tick()

    assert dispatcher.published == []
    assert [e.status for e in await executions_of(store, job.id)] == [S.MISSED]
    done = await store.get_job(job.id)
    assert (done.status.value, done.next_run_at) == ("COMPLETED", None)


async def test_overlap_skip_records_a_skipped_run_while_the_previous_one_is_running(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    # Given a slow job whose previous run is still STARTED.
    job = await create_job("* * * * *")
    scheduler = make_scheduler()
    clock.advance(60)
    await scheduler.tick()
    [first] = await executions_of(store, job.id)
    await store.update_execution(first.id, {"status": S.STARTED})

    # When its next fire time comes.
    clock.advance(60)
    await scheduler.tick()

    # Then that fire time is recorded SKIPPED with the reason, and counted.
    records = await executions_of(store, job.id)
    assert [e.status for e in records] == [S.STARTED, S.SKIPPED]
    assert "overlap policy SKIP" in records[1].reason
    assert len(dispatcher.published) == 1
    assert (await store.get_job(job.id)).counters.skipped == 1


async def test_overlap_allow_dispatches_alongside_a_running_one(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    job = await create_job("* * * * *", policies={"overlap": "ALLOW"})
    scheduler = make_scheduler()
    clock.advance(60)
    await scheduler.tick()
    [first] = await executions_of(store, job.id)
    await store.update_execution(first.id, {"status": S.STARTED})

    clock.advance(60)
    await scheduler.tick()

    assert len(dispatcher.fire_times(job.id)) == 2


async def test_jitter_spreads_dispatch_by_a_countdown_within_bounds(
    store, clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    dispatcher.finish_in = store
    jobs = [await create_job("* * * * *", policies={"jitter_s": 30}) for _ in range(20)]
    plain = await create_job("* * * * *")
    scheduler = make_scheduler(rng=random.Random(5))
    for _ in range(10):
        clock.advance(60)
        await scheduler.tick()

    countdowns = [p.countdown_s for p in dispatcher.published if p.job_id != plain.id]
    assert len(countdowns) == len(jobs) * 10
    assert all(0 <= c < 30 for c in countdowns)
    assert max(countdowns) - min(countdowns) > 20  # actually spread
    assert {p.countdown_s for p in dispatcher.published if p.job_id == plain.id} == {0}


async def test_jitter_never_reaches_its_upper_bound(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    class Highest(random.Random):
        def random(self) -> float:
            return 1 - 2**-53

    await create_job("* * * * *", policies={"jitter_s": 30})
    clock.advance(60)
    await make_scheduler(rng=Highest()).tick()

    [published] = dispatcher.published
    assert 29.99 < published.countdown_s < 30


def test_the_missed_plan_bounds_records_and_counting(monkeypatch) -> None:
    from omnisched_allinone import scheduling

    monkeypatch.setattr(scheduling, "MISSED_RECORDS_MAX", 3)
    monkeypatch.setattr(scheduling, "MISSED_COUNT_MAX", 5)
    schedule = ScheduleSpec(
        "interval", {"every": "60", "period": "seconds", "start_at": START.isoformat()}
    )
    first = START + timedelta(minutes=1)

    exact = scheduling.plan_fires(schedule, first, START + timedelta(minutes=8, seconds=5), 300)
    capped = scheduling.plan_fires(schedule, first, START + timedelta(minutes=20, seconds=5), 300)

    assert (len(exact.missed), exact.summarised, exact.summary_exact) == (3, 4, True)
    assert exact.run_at == START + timedelta(minutes=8)
    assert (len(capped.missed), capped.summarised, capped.summary_exact) == (3, 5, False)
    assert capped.run_at == START + timedelta(minutes=20)
    assert capped.next_run_at == START + timedelta(minutes=21)
