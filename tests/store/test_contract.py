"""The store contract (`store/base.py`), held against every backend.

Every spec runs on mongomock-motor and, when `OMNISCHED_TEST_MONGODB_URL` is set, on a real
MongoDB; the query-plan specs at the end run on the real server only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine

from omnisched_allinone.core.errors import AlreadyExists, Conflict, NotFound, Unavailable
from omnisched_allinone.core.executions import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ExecutionError,
    ExecutionStatus,
    Trigger,
)
from omnisched_allinone.core.jobs import JobCounters, JobStatus, JobType
from omnisched_allinone.store.base import ExecutionFilter, JobFilter
from omnisched_allinone.store.mongo import EPOCH, JOBS, MongoStore, open_store
from tests.store.conftest import NOW, AddExecution, AddJob, MakeExecution, MakeJob

S = ExecutionStatus
MINUTE = timedelta(minutes=1)
ODD_PARAMETERS: dict[str, Any] = {
    "a.b": 1,
    "$set": {"x.y": [1, "two"]},
    "$": None,
    "nested": {"$where": "1", "k.": {"..": True}},
    "ünïcødé ✓": "价格 🚀",
}


def ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# -- jobs ----------------------------------------------------------------------------------------


async def test_an_inserted_job_reads_back_equal(store: MongoStore, make_job: MakeJob) -> None:
    job = make_job(
        description="checks prices",
        job_type=JobType.SCRAPING,
        queue="scraping",
        target_service="scraper-service",
        target_method="Scrape",
        parameters={"retailers": ["amazon", "walmart"], "depth": 2},
        labels={"team": "pricing", "tier": "gold"},
        built_in=True,
        last_run_at=NOW - MINUTE,
        counters=JobCounters(runs=3, failures=1),
    )

    await store.insert_job(job)

    assert await store.get_job(job.id) == job
    assert await store.find_job_by_name(job.name) == job


async def test_an_absent_job_is_not_found(store: MongoStore) -> None:
    with pytest.raises(NotFound):
        await store.get_job("job-missing")
    assert await store.find_job_by_name("missing") is None


@pytest.mark.parametrize("clash", ["same name", "same id"])
async def test_a_job_cannot_take_a_name_or_id_already_taken(
    store: MongoStore, add_job: AddJob, make_job: MakeJob, clash: str
) -> None:
    first = await add_job(name="nightly")
    second = make_job(name="nightly") if clash == "same name" else make_job(id=first.id)

    with pytest.raises(AlreadyExists):
        await store.insert_job(second)

    assert await store.list_jobs(JobFilter(), 10, None) == [first]


LIST_FILTERS = [
    (JobFilter(), ["a", "b", "c", "d"]),
    (JobFilter(job_type=JobType.SCRAPING), ["a", "d"]),
    (JobFilter(status=JobStatus.PAUSED), ["b"]),
    (JobFilter(queue="maintenance"), ["c"]),
    (JobFilter(label="team"), ["a", "b", "d"]),
    (JobFilter(label="team=pricing"), ["a", "d"]),
    (JobFilter(label="team=ops"), ["b"]),
    (JobFilter(label="tier=gold"), ["a"]),
    (JobFilter(label="gold"), []),
    (JobFilter(built_in=True), ["c"]),
    (JobFilter(built_in=False), ["a", "b", "d"]),
    (JobFilter(job_type=JobType.SCRAPING, label="tier"), ["a"]),
]


@pytest.mark.parametrize(("flt", "expected"), LIST_FILTERS, ids=[repr(f) for f, _ in LIST_FILTERS])
async def test_list_jobs_filters(
    store: MongoStore, add_job: AddJob, flt: JobFilter, expected: list[str]
) -> None:
    scraping = {"job_type": JobType.SCRAPING, "queue": "scraping"}
    await add_job(name="a", **scraping, labels={"team": "pricing", "tier": "gold"})
    await add_job(name="b", status=JobStatus.PAUSED, next_run_at=None, labels={"team": "ops"})
    await add_job(name="c", job_type=JobType.MAINTENANCE, queue="maintenance", built_in=True)
    await add_job(name="d", **scraping, labels={"team": "pricing"})

    jobs = await store.list_jobs(flt, 10, None)

    assert [job.name for job in jobs] == expected


async def test_list_jobs_pages_in_id_order(store: MongoStore, add_job: AddJob) -> None:
    ids = ["job-c", "job-a", "job-e", "job-b", "job-d"]
    for job_id in ids:
        await add_job(id=job_id, name=job_id)

    pages: list[list[str]] = []
    after_id: str | None = None
    while page := await store.list_jobs(JobFilter(), 2, after_id):
        pages.append([job.id for job in page])
        after_id = page[-1].id

    assert pages == [["job-a", "job-b"], ["job-c", "job-d"], ["job-e"]]


async def test_replace_job_writes_the_next_version(store: MongoStore, add_job: AddJob) -> None:
    job = await add_job()
    changed = job.changed(NOW + MINUTE, description="new", labels={"k": "v"})

    written = await store.replace_job(changed, expected_version=job.version)

    assert written == changed
    assert await store.get_job(job.id) == changed
    assert written.version == job.version + 1


async def test_replace_job_refuses_a_stale_version(store: MongoStore, add_job: AddJob) -> None:
    job = await add_job()
    current = await store.replace_job(job.changed(NOW, description="first"), job.version)

    with pytest.raises(Conflict):
        await store.replace_job(job.changed(NOW, description="second"), job.version)

    assert await store.get_job(job.id) == current


async def test_replace_job_of_a_deleted_job_is_not_found(
    store: MongoStore, add_job: AddJob
) -> None:
    job = await add_job()
    await store.delete_job(job.id)

    with pytest.raises(NotFound):
        await store.replace_job(job.changed(NOW, description="late"), job.version)


async def test_replace_job_cannot_rename_onto_another_jobs_name(
    store: MongoStore, add_job: AddJob
) -> None:
    await add_job(name="taken")
    job = await add_job(name="mine")

    with pytest.raises(AlreadyExists):
        await store.replace_job(job.changed(NOW, name="taken"), job.version)

    assert await store.get_job(job.id) == job


async def test_replace_job_keeps_counters_and_last_run_at(
    store: MongoStore, add_job: AddJob
) -> None:
    # Given a job read before a run was recorded
    job = await add_job()
    await store.increment_counters(job.id, {"runs": 1, "successes": 1}, last_run_at=NOW)

    # When the stale read is changed and written back
    written = await store.replace_job(job.changed(NOW, description="x"), job.version)

    # Then the run it did not know about is still counted
    assert written.counters == JobCounters(runs=1, successes=1)
    assert written.last_run_at == NOW
    assert written.created_at == job.created_at


async def test_delete_job(store: MongoStore, add_job: AddJob) -> None:
    job = await add_job()

    assert await store.delete_job(job.id) is True
    assert await store.delete_job(job.id) is False
    with pytest.raises(NotFound):
        await store.get_job(job.id)


async def test_increment_counters_adds_up(store: MongoStore, add_job: AddJob) -> None:
    job = await add_job(counters=JobCounters(runs=1))

    await store.increment_counters(job.id, {"runs": 1, "failures": 1})
    await store.increment_counters(job.id, {"runs": 1, "skipped": 0, "missed": 2})

    stored = await store.get_job(job.id)
    assert stored.counters == JobCounters(runs=3, failures=1, missed=2)
    assert stored.version == job.version  # counters are not a user change


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ([NOW], NOW),
        ([NOW, NOW + MINUTE], NOW + MINUTE),
        ([NOW + MINUTE, NOW], NOW + MINUTE),  # a late report never moves it back
    ],
)
async def test_last_run_at_only_moves_forward(
    store: MongoStore, add_job: AddJob, recorded: list[datetime], expected: datetime
) -> None:
    job = await add_job(last_run_at=None)

    for at in recorded:
        await store.increment_counters(job.id, {"runs": 1}, last_run_at=at)

    stored = await store.get_job(job.id)
    assert stored.last_run_at == expected
    assert stored.counters.runs == len(recorded)


async def test_increment_counters_of_an_absent_job_creates_nothing(store: MongoStore) -> None:
    await store.increment_counters("job-missing", {"runs": 1}, last_run_at=NOW)

    assert await store.list_jobs(JobFilter(), 10, None) == []


# -- scheduling ----------------------------------------------------------------------------------


async def test_due_jobs_are_the_active_ones_at_or_before_now_earliest_first(
    store: MongoStore, add_job: AddJob
) -> None:
    await add_job(name="later", next_run_at=NOW + MINUTE)
    await add_job(name="exactly now", next_run_at=NOW)
    await add_job(name="two ago", next_run_at=NOW - 2 * MINUTE)
    await add_job(name="paused", status=JobStatus.PAUSED, next_run_at=None)
    await add_job(name="completed", status=JobStatus.COMPLETED, next_run_at=None)
    await add_job(name="one ago", next_run_at=NOW - MINUTE)

    assert [j.name for j in await store.due_jobs(NOW, 10)] == ["two ago", "one ago", "exactly now"]
    assert [j.name for j in await store.due_jobs(NOW, 2)] == ["two ago", "one ago"]
    assert await store.due_jobs(NOW - 3 * MINUTE, 10) == []


async def test_a_job_not_active_is_never_scheduled_whatever_next_run_at_it_carries(
    store: MongoStore, add_job: AddJob
) -> None:
    # Given an inactive job written with a next_run_at before an active one's
    paused = await add_job(status=JobStatus.PAUSED, next_run_at=NOW - 2 * MINUTE)
    await add_job(status=JobStatus.COMPLETED, next_run_at=NOW - MINUTE)
    active = await add_job(next_run_at=NOW)

    # Then it neither takes the active job's place under the limit nor sets the next wake-up
    assert await store.due_jobs(NOW, 1) == [active]
    assert await store.next_due_at() == NOW
    assert (await store.get_job(paused.id)).next_run_at is None


async def test_next_due_at_is_the_earliest_next_run_at(store: MongoStore, add_job: AddJob) -> None:
    assert await store.next_due_at() is None
    await add_job(status=JobStatus.PAUSED, next_run_at=None)
    assert await store.next_due_at() is None

    await add_job(next_run_at=NOW + 2 * MINUTE)
    await add_job(next_run_at=NOW + MINUTE)
    await add_job(next_run_at=NOW + 3 * MINUTE)

    assert await store.next_due_at() == NOW + MINUTE


async def test_advance_job_succeeds_once(store: MongoStore, add_job: AddJob) -> None:
    job = await add_job(next_run_at=NOW)
    assert job.next_run_at is not None
    changes = {"next_run_at": NOW + 5 * MINUTE, "last_run_at": NOW}

    first = await store.advance_job(job.id, job.version, job.next_run_at, changes)
    second = await store.advance_job(job.id, job.version, job.next_run_at, changes)

    assert (first, second) == (True, False)
    stored = await store.get_job(job.id)
    assert (stored.next_run_at, stored.last_run_at) == (NOW + 5 * MINUTE, NOW)
    assert await store.due_jobs(NOW, 10) == []


async def test_advance_job_loses_to_a_pause(store: MongoStore, add_job: AddJob) -> None:
    # Given a beat that read the job, then a pause written before the beat advanced it
    read = await add_job(next_run_at=NOW)
    assert read.next_run_at is not None
    await store.replace_job(read.changed(NOW, status=JobStatus.PAUSED), read.version)

    # When the beat advances from what it read
    advanced = await store.advance_job(
        read.id, read.version, read.next_run_at, {"next_run_at": NOW + 5 * MINUTE}
    )

    # Then the pause stands
    assert advanced is False
    stored = await store.get_job(read.id)
    assert (stored.status, stored.next_run_at) == (JobStatus.PAUSED, None)


@pytest.mark.parametrize(
    ("version_delta", "next_run_at_delta"),
    [(1, timedelta(0)), (0, MINUTE), (0, -MINUTE)],
    ids=["version changed", "next_run_at later", "next_run_at earlier"],
)
async def test_advance_job_needs_the_version_and_next_run_at_read(
    store: MongoStore, add_job: AddJob, version_delta: int, next_run_at_delta: timedelta
) -> None:
    job = await add_job(next_run_at=NOW)

    advanced = await store.advance_job(
        job.id, job.version + version_delta, NOW + next_run_at_delta, {"next_run_at": NOW + MINUTE}
    )

    assert advanced is False
    assert (await store.get_job(job.id)).next_run_at == NOW


async def test_a_job_advanced_to_completed_is_no_longer_scheduled(
    store: MongoStore, add_job: AddJob
) -> None:
    job = await add_job(next_run_at=NOW)

    assert await store.advance_job(job.id, job.version, NOW, {"status": JobStatus.COMPLETED})

    stored = await store.get_job(job.id)
    assert (stored.status, stored.next_run_at) == (JobStatus.COMPLETED, None)
    assert await store.due_jobs(NOW, 10) == []
    assert await store.next_due_at() is None


async def test_advance_job_of_an_absent_job_fails(store: MongoStore) -> None:
    assert await store.advance_job("job-missing", 1, NOW, {"next_run_at": NOW}) is False


# -- leases and markers --------------------------------------------------------------------------


async def test_a_lease_is_held_renewed_taken_over_and_released(store: MongoStore) -> None:
    lease_s = 10.0
    later = NOW + timedelta(seconds=lease_s / 2)
    expired = NOW + timedelta(seconds=lease_s * 2)

    assert await store.acquire_lease("beat", "a", NOW, lease_s) is True
    assert await store.acquire_lease("beat", "b", NOW, lease_s) is False
    assert await store.acquire_lease("beat", "a", later, lease_s) is True  # renewed to later + 10s
    assert await store.acquire_lease("beat", "b", later + timedelta(seconds=6), lease_s) is False
    assert await store.acquire_lease("other", "b", NOW, lease_s) is True  # leases are by name

    assert await store.acquire_lease("beat", "b", expired, lease_s) is True
    assert await store.acquire_lease("beat", "a", expired, lease_s) is False

    await store.release_lease("beat", "a")  # not the holder: nothing happens
    assert await store.acquire_lease("beat", "a", expired, lease_s) is False
    await store.release_lease("beat", "b")
    assert await store.acquire_lease("beat", "a", expired, lease_s) is True


@pytest.mark.parametrize("lease", ["free", "expired"])
async def test_two_owners_racing_for_a_lease_one_wins(store: MongoStore, lease: str) -> None:
    if lease == "expired":
        assert await store.acquire_lease("beat", "old", NOW - timedelta(hours=1), 10.0)

    results = await asyncio.gather(
        *(store.acquire_lease("beat", owner, NOW, 10.0) for owner in ("a", "b", "c", "d"))
    )

    assert sorted(results) == [False, False, False, True]


async def test_markers_are_set_once_and_stay(store: MongoStore) -> None:
    assert await store.has_marker("seeded:health-check") is False

    await store.set_marker("seeded:health-check")
    await store.set_marker("seeded:health-check")

    assert await store.has_marker("seeded:health-check") is True
    assert await store.has_marker("seeded:cleanup") is False


# -- executions ----------------------------------------------------------------------------------


async def test_an_inserted_execution_reads_back_equal(
    store: MongoStore, make_job: MakeJob, make_execution: MakeExecution
) -> None:
    execution = make_execution(
        make_job(),
        status=S.FAILURE,
        parameters={"depth": 2},
        request_id="req-1",
        attempts=2,
        task_id="task-1",
        worker="w@host",
        enqueued=True,
        started_at=NOW + MINUTE,
        finished_at=NOW + 2 * MINUTE,
        duration_s=60.5,
        result={"items": [1, 2]},
        error=ExecutionError(type="Timeout", message="slow", code="DEADLINE_EXCEEDED"),
        reason="because",
        updated_at=NOW + 2 * MINUTE,
    )

    assert await store.insert_execution(execution) is True

    assert await store.get_execution(execution.id) == execution
    assert await store.find_execution_by_run_key(execution.run_key) == execution


async def test_an_absent_execution_is_not_found(store: MongoStore) -> None:
    with pytest.raises(NotFound):
        await store.get_execution("exe-missing")
    assert await store.find_execution_by_run_key("job-x@never") is None


async def test_a_second_execution_with_the_same_run_key_is_refused_and_not_written(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution, make_execution: MakeExecution
) -> None:
    job = make_job()
    first = await add_execution(job)
    seq = await store.last_event_seq()
    twin = make_execution(job, run_key=first.run_key, trigger=Trigger.BACKFILL)

    assert await store.insert_execution(twin) is False

    with pytest.raises(NotFound):
        await store.get_execution(twin.id)
    assert await store.find_execution_by_run_key(first.run_key) == first
    assert await store.last_event_seq() == seq


@pytest.mark.parametrize(
    ("current", "only_if", "applies"),
    [
        (S.PENDING, None, True),
        (S.PENDING, frozenset({S.PENDING}), True),
        (S.STARTED, ACTIVE_STATUSES, True),
        (S.SUCCESS, ACTIVE_STATUSES, False),
        (S.REVOKED, frozenset({S.PENDING, S.STARTED}), False),
        (S.PENDING, frozenset(), False),
    ],
)
async def test_update_execution_only_if_status_in(
    store: MongoStore,
    make_job: MakeJob,
    add_execution: AddExecution,
    current: ExecutionStatus,
    only_if: frozenset[ExecutionStatus] | None,
    applies: bool,
) -> None:
    execution = await add_execution(make_job(), status=current)

    updated = await store.update_execution(
        execution.id, {"status": S.FAILURE}, only_if_status_in=only_if
    )

    expected = replace(execution, status=S.FAILURE) if applies else execution
    assert updated == (expected if applies else None)
    assert await store.get_execution(execution.id) == expected


async def test_update_execution_marshals_every_kind_of_field(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    execution = await add_execution(make_job())
    changes: dict[str, Any] = {
        "status": S.FAILURE,
        "started_at": NOW + MINUTE,
        "finished_at": NOW + 2 * MINUTE,
        "duration_s": 60.0,
        "attempts": 1,
        "worker": "w@host",
        "enqueued": True,
        "result": {"partial": ODD_PARAMETERS},
        "error": ExecutionError(type="ValueError", message="bad ✗"),
    }

    updated = await store.update_execution(execution.id, changes)

    assert updated == replace(execution, **changes)
    assert await store.get_execution(execution.id) == updated


async def test_update_execution_of_an_absent_execution_is_none(store: MongoStore) -> None:
    assert await store.update_execution("exe-missing", {"status": S.STARTED}) is None


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (ExecutionFilter(), ["a3", "b2", "a2", "b1", "a1"]),
        (ExecutionFilter(job_id="job-a"), ["a3", "a2", "a1"]),
        (ExecutionFilter(status=S.SUCCESS), ["b2", "a1"]),
        (ExecutionFilter(trigger=Trigger.MANUAL), ["a3", "b1"]),
        (ExecutionFilter(job_id="job-a", status=S.SUCCESS), ["a1"]),
        (ExecutionFilter(job_id="job-none"), []),
    ],
)
async def test_list_executions_newest_first(
    store: MongoStore,
    make_job: MakeJob,
    add_execution: AddExecution,
    flt: ExecutionFilter,
    expected: list[str],
) -> None:
    a, b = make_job(id="job-a"), make_job(id="job-b")
    rows = [
        (a, "a1", S.SUCCESS, Trigger.SCHEDULED),
        (b, "b1", S.FAILURE, Trigger.MANUAL),
        (a, "a2", S.PENDING, Trigger.SCHEDULED),
        (b, "b2", S.SUCCESS, Trigger.BACKFILL),
        (a, "a3", S.STARTED, Trigger.MANUAL),
    ]
    for job, reason, status, trigger in rows:  # inserted oldest first
        await add_execution(job, reason=reason, status=status, trigger=trigger)

    listed = await store.list_executions(flt, 10, None)

    assert [e.reason for e in listed] == expected


async def test_list_executions_pages_by_before_id(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    job = make_job()
    inserted = [await add_execution(job) for _ in range(5)]

    pages: list[list[str]] = []
    before_id: str | None = None
    while page := await store.list_executions(ExecutionFilter(), 2, before_id):
        pages.append([e.id for e in page])
        before_id = page[-1].id

    newest_first = [e.id for e in reversed(inserted)]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]


@pytest.mark.parametrize(
    ("flt", "statuses", "expected"),
    [
        (ExecutionFilter(), ACTIVE_STATUSES, 3),
        (ExecutionFilter(), TERMINAL_STATUSES, 2),
        (ExecutionFilter(job_id="job-a"), ACTIVE_STATUSES, 2),
        (ExecutionFilter(job_id="job-a"), frozenset({S.SUCCESS}), 1),
        (ExecutionFilter(trigger=Trigger.MANUAL), frozenset(S), 1),
        (ExecutionFilter(), frozenset(), 0),
    ],
)
async def test_count_executions(
    store: MongoStore,
    make_job: MakeJob,
    add_execution: AddExecution,
    flt: ExecutionFilter,
    statuses: frozenset[ExecutionStatus],
    expected: int,
) -> None:
    a, b = make_job(id="job-a"), make_job(id="job-b")
    for job, status in [(a, S.PENDING), (a, S.STARTED), (a, S.SUCCESS), (b, S.RETRY)]:
        await add_execution(job, status=status)
    await add_execution(b, status=S.FAILURE, trigger=Trigger.MANUAL)

    assert await store.count_executions(flt, statuses) == expected


async def test_unpublished_executions_are_pending_unconfirmed_and_old_enough(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    job = make_job()
    rows = [
        ("old, unconfirmed", S.PENDING, False, NOW - 2 * MINUTE),
        ("oldest, unconfirmed", S.PENDING, False, NOW - 3 * MINUTE),
        ("confirmed", S.PENDING, True, NOW - 3 * MINUTE),
        ("started", S.STARTED, False, NOW - 3 * MINUTE),
        ("just queued", S.PENDING, False, NOW),
    ]
    for reason, status, enqueued, queued_at in rows:
        await add_execution(
            job, reason=reason, status=status, enqueued=enqueued, queued_at=queued_at
        )

    found = await store.unpublished_executions(older_than=NOW - MINUTE, limit=10)
    first = await store.unpublished_executions(older_than=NOW - MINUTE, limit=1)

    assert [e.reason for e in found] == ["oldest, unconfirmed", "old, unconfirmed"]
    assert [e.reason for e in first] == ["oldest, unconfirmed"]


async def test_delete_executions_before_keeps_active_and_recent_ones(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    job = make_job()
    old, recent = NOW - timedelta(days=30), NOW
    kept = [await add_execution(job, status=s, queued_at=old) for s in sorted(ACTIVE_STATUSES)]
    kept += [await add_execution(job, status=S.SUCCESS, queued_at=recent)]
    gone = [await add_execution(job, status=s, queued_at=old) for s in sorted(TERMINAL_STATUSES)]

    deleted = await store.delete_executions_before(NOW - timedelta(days=7))

    assert deleted == len(gone)
    remaining = await store.list_executions(ExecutionFilter(), 100, None)
    assert sorted(e.id for e in remaining) == sorted(e.id for e in kept)


# -- execution events ----------------------------------------------------------------------------


async def test_each_insert_and_status_change_records_one_event_in_a_dense_sequence(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    a, b = make_job(id="job-a"), make_job(id="job-b")
    assert await store.last_event_seq() == 0
    assert await store.events_after(None, None, 10) == []

    ea = await add_execution(a)
    eb = await add_execution(b)
    await store.update_execution(ea.id, {"worker": "w1"})  # no status change: no event
    await store.update_execution(ea.id, {"status": S.STARTED})
    await store.update_execution(eb.id, {"status": S.STARTED}, only_if_status_in=TERMINAL_STATUSES)
    await store.update_execution(ea.id, {"status": S.SUCCESS, "result": {"ok": True}})

    events = await store.events_after(None, None, 10)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert await store.last_event_seq() == 4
    assert [(e.execution.id, e.execution.status) for e in events] == [
        (ea.id, S.PENDING),
        (eb.id, S.PENDING),
        (ea.id, S.STARTED),
        (ea.id, S.SUCCESS),
    ]
    assert events[3].execution == replace(ea, status=S.SUCCESS, worker="w1", result={"ok": True})
    assert all(e.at.tzinfo == UTC for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)

    assert [e.seq for e in await store.events_after(2, None, 10)] == [3, 4]
    assert [e.seq for e in await store.events_after(1, None, 2)] == [2, 3]
    assert [e.seq for e in await store.events_after(None, "job-a", 10)] == [1, 3, 4]
    assert [e.seq for e in await store.events_after(1, "job-b", 10)] == [2]
    assert await store.events_after(4, None, 10) == []


async def test_old_events_are_pruned_with_old_executions_and_the_sequence_goes_on(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    job = make_job()
    with time_machine.travel(NOW - timedelta(days=30), tick=False):
        await add_execution(job, status=S.SUCCESS, queued_at=NOW - timedelta(days=30))
    with time_machine.travel(NOW, tick=False):
        await add_execution(job, queued_at=NOW)

    assert await store.delete_executions_before(NOW - timedelta(days=7)) == 1
    assert [e.seq for e in await store.events_after(None, None, 10)] == [2]
    assert await store.last_event_seq() == 2

    await add_execution(job)
    assert [e.seq for e in await store.events_after(2, None, 10)] == [3]


# -- marshalling ---------------------------------------------------------------------------------


async def test_datetimes_read_back_as_utc_at_millisecond_precision(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    plus_two = timezone(timedelta(hours=2))
    written = datetime(2026, 3, 1, 14, 0, 1, 123_456, tzinfo=plus_two)
    job = make_job(created_at=written, updated_at=written, next_run_at=written, last_run_at=written)
    await store.insert_job(job)
    execution = await add_execution(job, queued_at=written, scheduled_for=written)
    await store.update_execution(execution.id, {"started_at": written})

    stored_job = await store.get_job(job.id)
    stored_execution = await store.get_execution(execution.id)
    read = [
        stored_job.created_at,
        stored_job.updated_at,
        stored_job.next_run_at,
        stored_job.last_run_at,
        stored_execution.queued_at,
        stored_execution.scheduled_for,
        stored_execution.started_at,
    ]

    assert read == [ms(written)] * len(read)
    assert all(value is not None and value.tzinfo is UTC for value in read)
    assert await store.next_due_at() == ms(written)


async def test_parameters_and_text_round_trip_whatever_their_keys(
    store: MongoStore, make_job: MakeJob, add_execution: AddExecution
) -> None:
    job = make_job(
        name="Preise prüfen — 价格 🚀",
        description="naïve café ✓\n\ttabs",
        parameters=ODD_PARAMETERS,
        labels={"team.name/x": "équipe ✓"},
        pause_note="パウズ",
    )
    await store.insert_job(job)
    execution = await add_execution(job, parameters=ODD_PARAMETERS, result=ODD_PARAMETERS)

    assert await store.get_job(job.id) == job
    assert await store.find_job_by_name("Preise prüfen — 价格 🚀") == job
    assert [j.id for j in await store.list_jobs(JobFilter(label="team.name/x"), 10, None)] == [
        job.id
    ]
    assert await store.get_execution(execution.id) == execution


# -- outage --------------------------------------------------------------------------------------


async def test_an_unreachable_store_is_unavailable_quickly() -> None:
    store = open_store("mongodb://127.0.0.1:1", "x", timeout_ms=200)
    started = time.monotonic()
    try:
        with pytest.raises(Unavailable):
            await store.ping()
        with pytest.raises(Unavailable):
            await store.get_job("job-x")
    finally:
        await store.close()

    assert time.monotonic() - started < 5.0


# -- query shape (real MongoDB only) -------------------------------------------------------------


def plan_stages(node: Any) -> list[dict[str, Any]]:
    """Every stage of a query plan, through classic and SBE (`queryPlan`) layouts and shards."""
    if isinstance(node, list):
        return [stage for item in node for stage in plan_stages(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if "stage" in node else []
    for key, value in node.items():
        if key != "slotBasedPlan":
            found += plan_stages(value)
    return found


def assert_uses_next_run_at_index(explained: dict[str, Any]) -> None:
    stages = plan_stages(explained["queryPlanner"]["winningPlan"])
    names = {stage["stage"] for stage in stages}
    assert "COLLSCAN" not in names, names
    assert "SORT" not in names, names  # the index gives the order: no in-memory sort
    scans = [stage for stage in stages if stage["stage"] == "IXSCAN"]
    assert [scan["keyPattern"] for scan in scans] == [{"next_run_at": 1}], scans


async def test_the_due_query_reads_only_due_jobs_through_the_index(
    mongodb_store: MongoStore, make_job: MakeJob
) -> None:
    jobs = mongodb_store.database[JOBS]
    for i in range(1000):
        await mongodb_store.insert_job(make_job(next_run_at=NOW + (i + 1) * MINUTE))

    explained = (
        await jobs.find({"next_run_at": {"$gte": EPOCH, "$lte": NOW}})
        .sort("next_run_at", 1)
        .limit(100)
        .explain()
    )

    assert_uses_next_run_at_index(explained)
    assert explained["executionStats"]["totalDocsExamined"] == 0
    assert await mongodb_store.due_jobs(NOW, 100) == []


async def test_next_due_at_reads_one_document_through_the_index(
    mongodb_store: MongoStore, make_job: MakeJob
) -> None:
    jobs = mongodb_store.database[JOBS]
    for i in range(1000):
        await mongodb_store.insert_job(make_job(next_run_at=NOW + (i + 1) * MINUTE))

    explained = (
        await jobs.find({"next_run_at": {"$gte": EPOCH}}, {"next_run_at": 1})
        .sort("next_run_at", 1)
        .limit(1)
        .explain()
    )

    assert_uses_next_run_at_index(explained)
    assert explained["executionStats"]["totalDocsExamined"] == 1
    assert await mongodb_store.next_due_at() == NOW + MINUTE
