"""Given a schedule, when the real scheduler ticks across a period, then it dispatches exactly
the expected fire times: none twice, none skipped, DST change days included (DESIGN §3)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from omnisched_allinone.core.executions import ExecutionStatus
from omnisched_allinone.core.jobs import JobStatus
from omnisched_allinone.core.schedules import ScheduleSpec
from tests.beat.conftest import CreateJob, MakeScheduler, executions_of, run_beat
from tests.beat.fakes import Clock, FakeDispatcher


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron(expression: str, timezone: str = "UTC") -> ScheduleSpec:
    return ScheduleSpec("cron", {"expression": expression}, timezone)


def halfhours(start: str, count: int) -> list[str]:
    first = utc(start).timestamp()
    return [datetime.fromtimestamp(first + 1800 * i, UTC).isoformat()[:16] for i in range(count)]


# (case, schedule, created at, run until, expected fire times in UTC)
TABLE = [
    (
        "berlin 02:30 across spring-forward: the skipped time fires at 03:00 CEST",
        cron("30 2 * * *", "Europe/Berlin"),
        "2026-03-27T12:00",
        "2026-03-31T00:00",
        ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
    ),
    (
        "berlin 02:30 across fall-back: the repeated time fires once, at its first copy",
        cron("30 2 * * *", "Europe/Berlin"),
        "2026-10-23T12:00",
        "2026-10-27T00:00",
        ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
    ),
    (
        "new york 02:30 across spring-forward",
        cron("30 2 * * *", "America/New_York"),
        "2026-03-06T12:00",
        "2026-03-10T00:00",
        ["2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"],
    ),
    (
        "new york 01:30 across fall-back: first copy only",
        cron("30 1 * * *", "America/New_York"),
        "2026-10-30T12:00",
        "2026-11-03T00:00",
        ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"],
    ),
    (
        "new york 02:30 across fall-back: after the repeated hour",
        cron("30 2 * * *", "America/New_York"),
        "2026-10-30T12:00",
        "2026-11-03T00:00",
        ["2026-10-31T06:30", "2026-11-01T07:30", "2026-11-02T07:30"],
    ),
    (
        "berlin every 30 minutes through fall-back: both copies of the repeated hour",
        cron("*/30 * * * *", "Europe/Berlin"),
        "2026-10-24T23:10",
        "2026-10-25T03:10",
        halfhours("2026-10-24T23:30", 8),
    ),
    (
        "berlin every 30 minutes through spring-forward: the skipped hour does not fire",
        cron("*/30 * * * *", "Europe/Berlin"),
        "2026-03-28T23:10",
        "2026-03-29T03:10",
        halfhours("2026-03-28T23:30", 8),
    ),
    (
        "every 90 minutes from start_at",
        ScheduleSpec(
            "interval", {"every": "90", "period": "minutes", "start_at": "2026-03-29T00:00:00Z"}
        ),
        "2026-03-28T23:00",
        "2026-03-29T06:30",
        ["2026-03-29T01:30", "2026-03-29T03:00", "2026-03-29T04:30", "2026-03-29T06:00"],
    ),
    (
        "every day in berlin keeps the wall-clock time across spring-forward",
        ScheduleSpec(
            "interval",
            {"every": "1", "period": "days", "start_at": "2026-03-27T02:30:00"},
            "Europe/Berlin",
        ),
        "2026-03-27T00:00",
        "2026-03-31T00:00",
        ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
    ),
    (
        "once",
        ScheduleSpec("once", {"run_at": "2026-05-01T10:00:00Z"}),
        "2026-04-30T00:00",
        "2026-05-03T00:00",
        ["2026-05-01T10:00"],
    ),
]


@pytest.mark.parametrize(
    ("schedule", "created", "until", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
@pytest.mark.parametrize("lag", ["on-time", "late"])
async def test_the_scheduler_dispatches_each_expected_fire_time_once(
    clock: Clock,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
    store,
    schedule: ScheduleSpec,
    created: str,
    until: str,
    expected: list[str],
    lag: str,
) -> None:
    # Given a job created at `created`, and a beat that sleeps until the next due time (plus,
    # when "late", up to 20 s of scheduling lag).
    clock.set(utc(created))
    job = await create_job(schedule, policies={"overlap": "ALLOW"})
    scheduler = make_scheduler(max_interval_s=86400.0)
    rng = random.Random(3)

    # When it runs until `until`.
    await run_beat(
        scheduler, clock, utc(until), lag_s=(lambda: rng.uniform(0, 20)) if lag == "late" else float
    )

    # Then exactly the expected fire times were dispatched, and recorded, once each.
    assert [t.isoformat()[:16] for t in dispatcher.fire_times(job.id)] == expected
    assert set(dispatcher.run_keys().values()) == {1}
    records = await executions_of(store, job.id)
    assert [e.scheduled_for.isoformat()[:16] for e in records] == expected
    assert all(e.status is ExecutionStatus.PENDING and e.enqueued for e in records)


@pytest.mark.parametrize("expression", ["*/30 * * * *", "30 2 * * *", "*/7 1-3 * * *"])
async def test_minute_ticks_through_berlin_fall_back_match_the_schedule_math(
    clock: Clock,
    create_job: CreateJob,
    make_scheduler: MakeScheduler,
    dispatcher: FakeDispatcher,
    expression: str,
) -> None:
    """Ticking every minute (Celery's loop with a 60 s cap) gives the same times as preview."""
    from omnisched_allinone.core.schedules import fire_times_between

    clock.set(utc("2026-10-24T22:00"))
    job = await create_job(expression, timezone="Europe/Berlin", policies={"overlap": "ALLOW"})
    scheduler = make_scheduler(max_interval_s=60.0)
    end = utc("2026-10-25T04:00")

    await run_beat(scheduler, clock, end + timedelta(seconds=1), lag_s=float)

    expected = fire_times_between(job.schedule, utc("2026-10-24T22:00"), end, 1000)
    assert dispatcher.fire_times(job.id) == expected
    assert set(dispatcher.run_keys().values()) == {1}


async def test_a_once_job_is_dispatched_once_then_completed(
    clock: Clock, create_job: CreateJob, make_scheduler: MakeScheduler, dispatcher, store
) -> None:
    job = await create_job(ScheduleSpec("once", {"run_at": "2026-03-01T12:05:00Z"}))
    scheduler = make_scheduler()

    clock.set(utc("2026-03-01T12:05"))
    await scheduler.tick()
    for _ in range(5):
        clock.advance(60)
        await scheduler.tick()

    assert [p.job_id for p in dispatcher.published] == [job.id]
    done = await store.get_job(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.next_run_at is None
