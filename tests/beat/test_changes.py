"""Changes made through the API take effect at the next tick; a paused or deleted job starts no
run after its RPC returned (DESIGN §4.4)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from omnisched_allinone.core.executions import ExecutionStatus
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.scheduling import REASON_JOB_CHANGED, REASON_JOB_DELETED
from omnisched_allinone.service import JobChanges, JobService
from tests.beat.conftest import START, CreateJob, MakeScheduler, executions_of
from tests.beat.fakes import Clock, FakeDispatcher, HookStore

# Where the pause lands relative to the scheduler's steps for one fire time.
INTERLEAVINGS = ["before-tick", "after-read", "before-claim", "before-advance"]
HOOK_ON = {
    "after-read": "count_executions",
    "before-claim": "insert_execution",
    "before-advance": "advance_job",
}


async def test_pause_or_delete_at_any_step_before_the_advance_starts_no_run(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
) -> None:
    # Given a minutely job and a beat whose store lets the test act between its steps.
    dispatcher.finish_in = store
    job = await create_job("* * * * *")
    hooked = HookStore(store)
    scheduler = make_scheduler(store=hooked)
    rng = random.Random(11)
    paused_at: dict[str, int] = {}  # run key -> publishes seen when the pause returned
    state = {"paused": False}

    async def pause() -> None:
        await service.pause_job(job.id)
        state["paused"] = True

    async def check_not_paused(execution, _job) -> None:
        assert not state["paused"], f"{execution.run_key} published after the pause returned"

    dispatcher.before_publish = check_not_paused

    # When, fire time after fire time, the job is paused at a random step, then resumed.
    for _ in range(30):
        clock.advance(60)
        where = rng.choice(INTERLEAVINGS)
        if where == "before-tick":
            await pause()
        else:
            hooked.hooks = {HOOK_ON[where]: pause}
        await scheduler.tick()
        hooked.hooks = {}
        paused_at[where] = paused_at.get(where, 0) + 1
        await service.resume_job(job.id)
        state["paused"] = False

    # Then no run was published, each claimed execution was revoked with the reason, and the
    # resumed job never replayed a paused fire time as a run.
    assert dispatcher.published == []
    records = await executions_of(store, job.id)
    assert records, "claims were made at the later steps"
    assert {e.status for e in records} == {ExecutionStatus.REVOKED}
    assert {e.reason for e in records} == {REASON_JOB_CHANGED}
    assert set(paused_at) == set(INTERLEAVINGS)


@pytest.mark.parametrize("where", ["before-claim", "before-advance"])
async def test_a_job_deleted_between_read_and_advance_is_revoked_not_published(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
    where: str,
) -> None:
    job = await create_job("* * * * *")

    async def delete() -> None:
        await service.delete_job(job.id)

    scheduler = make_scheduler(store=HookStore(store, hooks={HOOK_ON[where]: delete}))
    clock.advance(60)
    await scheduler.tick()
    clock.advance(60)
    await scheduler.tick()  # the sweep finds nothing to publish either

    assert dispatcher.published == []
    [execution] = await executions_of(store, job.id)
    assert execution.status is ExecutionStatus.REVOKED
    assert execution.reason == REASON_JOB_DELETED


async def test_a_sweep_does_not_publish_a_stranded_run_of_a_job_paused_since(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
) -> None:
    job = await create_job("* * * * *")
    scheduler = make_scheduler()
    dispatcher.fail_next(RuntimeError("beat killed mid-publish"))
    clock.advance(60)
    await scheduler.tick()

    await service.pause_job(job.id)
    clock.advance(30)
    await scheduler.tick()

    assert dispatcher.published == []
    [execution] = await executions_of(store, job.id)
    assert execution.status is ExecutionStatus.REVOKED


async def test_a_job_created_while_beat_runs_fires_at_its_first_time_without_restart(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher
) -> None:
    scheduler = make_scheduler()
    await scheduler.tick()

    job = await create_job("* * * * *")
    clock.advance(60)
    await scheduler.tick()

    assert [p.job_id for p in dispatcher.published] == [job.id]


async def test_an_updated_schedule_is_used_from_the_next_tick(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher,
) -> None:
    job = await create_job("0 * * * *")  # hourly
    scheduler = make_scheduler()
    await scheduler.tick()

    await service.update_job(
        job.id, JobChanges(schedule=ScheduleSpec("cron", {"expression": "*/10 * * * *"}))
    )
    clock.advance(600)
    await scheduler.tick()

    assert dispatcher.fire_times(job.id) == [START + timedelta(minutes=10)]


async def test_a_resumed_job_fires_at_its_next_future_time_and_does_not_replay_the_pause(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher,
) -> None:
    job = await create_job("* * * * *")
    scheduler = make_scheduler()
    await service.pause_job(job.id)
    for _ in range(10):
        clock.advance(60)
        await scheduler.tick()

    await service.resume_job(job.id)
    await scheduler.tick()
    clock.advance(60)
    await scheduler.tick()

    assert dispatcher.fire_times(job.id) == [START + timedelta(minutes=11)]
    assert [e.status for e in await executions_of(store, job.id)] == [ExecutionStatus.PENDING]
    assert (await store.get_job(job.id)).counters.missed == 0


async def test_a_deleted_job_is_not_fired(
    store,
    clock: Clock,
    service: JobService,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher,
) -> None:
    job = await create_job("* * * * *")
    scheduler = make_scheduler()
    await service.delete_job(job.id)
    clock.advance(60)
    await scheduler.tick()

    assert dispatcher.published == []
    assert await executions_of(store, job.id) == []
    assert (await store.due_jobs(clock.now, 10)) == []
