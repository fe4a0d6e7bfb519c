"""The two store reads operations need: the beat lease's holder, and jobs per status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from omnisched_allinone.core.jobs import Job, JobStatus, JobType
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec
from omnisched_allinone.store.mongo import open_store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _job(n: int, status: JobStatus) -> Job:
    job = Job(
        id=f"job-{n}",
        name=f"job {n}",
        job_type=JobType.MONITORING,
        queue="monitoring",
        schedule=ScheduleSpec("interval", {"every": "60", "period": "seconds"}),
        policies=JobPolicies(),
        created_at=NOW,
        updated_at=NOW,
        next_run_at=NOW + timedelta(minutes=1),
    )
    return replace(job, status=status)


async def test_lease_holder_reads_without_taking_the_lease():
    store = open_store("memory://", "ops")
    await store.start()
    assert await store.lease_holder("beat") is None
    assert await store.acquire_lease("beat", "beat-a", NOW, 10)
    assert await store.lease_holder("beat") == ("beat-a", NOW + timedelta(seconds=10))
    assert not await store.acquire_lease("beat", "beat-b", NOW, 10)  # still beat-a's
    await store.release_lease("beat", "beat-a")
    assert await store.lease_holder("beat") is None
    await store.close()


async def test_jobs_are_counted_per_status():
    store = open_store("memory://", "ops")
    await store.start()
    for n, status in enumerate([JobStatus.ACTIVE, JobStatus.ACTIVE, JobStatus.PAUSED]):
        await store.insert_job(_job(n, status))
    counts = await store.count_jobs_by_status()
    assert counts[str(JobStatus.ACTIVE)] == 2
    assert counts[str(JobStatus.PAUSED)] == 1
    assert set(counts) == {str(s) for s in JobStatus}
    await store.close()
