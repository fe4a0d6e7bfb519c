"""The run scheduler: the store-driven core of Beat, async and free of Celery.

Each tick reads only what is due (through the `next_run_at` index) plus the earliest future job to
size its sleep, as celery-redbeat does, instead of comparing the whole schedule like Celery's stock
beat (DESIGN §10). For every due job it follows the order DESIGN §4.1 relies on:

1. **claim**: insert the execution under its run key (job id + nominal fire time); the store's
   unique index refuses a second beat's insert;
2. **advance**: move `next_run_at` with a compare-and-set on the version and the `next_run_at` it
   read, so a pause/update/delete that lands in between wins (the claim is then REVOKED);
3. **publish**: hand the execution to the broker through the `Dispatcher`.

A beat that dies between the steps leaves a PENDING, unpublished execution: the lease holder's
sweep publishes it later, and a duplicate claim still advances the job, so nothing stalls.
Correctness rests on the run key and the conditional advance; the lease only spares standby beats
the work.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from omnisched_allinone import metrics
from omnisched_allinone.core.errors import NotFound, Unavailable
from omnisched_allinone.core.executions import (
    ACTIVE_STATUSES,
    Execution,
    ExecutionStatus,
    Trigger,
    new_execution_id,
    scheduled_run_key,
)
from omnisched_allinone.core.jobs import Job, JobStatus
from omnisched_allinone.core.policies import OverlapPolicy
from omnisched_allinone.core.schedules import ScheduleSpec, fire_times_between, next_fire_time
from omnisched_allinone.service import Dispatcher
from omnisched_allinone.store.base import ExecutionFilter, Store

log = logging.getLogger(__name__)

LEASE_NAME = "beat"
# MISSED executions written one by one per job and tick; the rest become one summary record, so a
# minutely job back from a month offline cannot stall the tick (or flood the store).
MISSED_RECORDS_MAX = 1000
# Fire times counted for a summary record before it says "at least": counting is pure CPU (about
# 13 µs a fire time), and this bounds it near one second for a job back from a very long outage.
MISSED_COUNT_MAX = 100_000
_PAGE = 1000  # fire_times_between's largest page

REASON_JOB_CHANGED = "job changed before dispatch"
REASON_JOB_DELETED = "job deleted before dispatch"
REASON_JOB_PAUSED = "job paused before dispatch"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ms(value: datetime) -> datetime:
    """The store keeps milliseconds: run keys must be built from what a re-read returns."""
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class FirePlan:
    """What one due job needs at `now`: the fire time to run (if any) and the missed ones."""

    run_at: datetime | None
    missed: list[datetime]  # recorded one by one
    summarised: int  # further missed fire times, recorded as one summary execution
    summary_from: datetime | None
    summary_to: datetime | None
    summary_exact: bool
    next_run_at: datetime | None


def plan_fires(schedule: ScheduleSpec, first: datetime, now: datetime, window_s: float) -> FirePlan:
    """Split the due fire times `first`..now into the one to run and the missed ones (pure).

    The latest fire time runs when it is within `window_s` of now; every earlier one (and the
    latest too, when it is older than the window) is missed.
    """
    latest = _latest_fire_time(schedule, first, now)
    run_at = latest if (now - latest).total_seconds() <= window_s else None
    missed: list[datetime] = []
    summarised, summary_from, summary_to, exact = 0, None, None, True
    for fire_time in _fire_times_from(schedule, first, latest):
        if fire_time == run_at:
            break
        if len(missed) < MISSED_RECORDS_MAX:
            missed.append(fire_time)
            continue
        if summarised >= MISSED_COUNT_MAX:
            exact = False
            break
        summary_from = summary_from or fire_time
        summary_to = fire_time
        summarised += 1
    return FirePlan(
        run_at=run_at,
        missed=missed,
        summarised=summarised,
        summary_from=summary_from,
        summary_to=summary_to,
        summary_exact=exact,
        next_run_at=next_fire_time(schedule, max(now, latest)),
    )


def _fire_times_from(schedule: ScheduleSpec, first: datetime, end: datetime) -> Iterator[datetime]:
    """`first`, then each fire time after it up to `end` (inclusive), a page at a time."""
    yield first
    cursor = first
    while batch := fire_times_between(schedule, cursor, end, _PAGE):
        yield from (_ms(t) for t in batch)
        cursor = batch[-1]
        if len(batch) < _PAGE:
            return


def _latest_fire_time(schedule: ScheduleSpec, first: datetime, now: datetime) -> datetime:
    """The last fire time <= now, knowing `first` (<= now) is one.

    Looks back from now over a growing window instead of walking forward from `first`, so a job
    whose `first` is a month old costs a few pages of schedule math, not 43,200 steps.
    """
    lookback = timedelta(minutes=1)
    while True:
        start = now - lookback
        if start <= first:
            return _last_between(schedule, first, now) or first
        last = _last_between(schedule, start, now)
        if last is not None:
            return last
        lookback *= 8


def _last_between(schedule: ScheduleSpec, start: datetime, end: datetime) -> datetime | None:
    last: datetime | None = None
    while batch := fire_times_between(schedule, last or start, end, _PAGE):
        last = batch[-1]
        if len(batch) < _PAGE:
            break
    return None if last is None else _ms(last)


class RunScheduler:
    """One beat's scheduling loop body: `tick()` does one pass and says how long to sleep."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        *,
        owner: str,
        lease_s: float = 10,
        max_interval_s: float = 1.0,
        batch_size: int = 500,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        sweep_delay_s: float = 10.0,
        grace_s: float = 30.0,
        dispatch_concurrency: int = 16,
        lease_name: str = LEASE_NAME,
    ) -> None:
        """
        `sweep_delay_s`: how old an unpublished PENDING execution must be before the sweep
        publishes it, so a run that another beat (or an ExecuteJobNow call) is publishing right
        now is not published twice. `grace_s`: a fire time this late still runs even when the
        job's `catchup_window_s` is smaller (0 means "never catch up", not "never run a run that
        is a tick late").
        """
        self.store = store
        self.dispatcher = dispatcher
        self.owner = owner
        self.lease_s = lease_s
        self.max_interval_s = max_interval_s
        self.batch_size = batch_size
        self.clock = clock
        self.rng = rng or random.Random()
        self.sweep_delay_s = sweep_delay_s
        self.grace_s = grace_s
        self.lease_name = lease_name
        self._limit = asyncio.Semaphore(dispatch_concurrency)
        self.holds_lease = False

    async def tick(self) -> float:
        """Do one pass if this beat holds the lease; return the seconds to sleep."""
        now = self.clock()
        held = await self.store.acquire_lease(self.lease_name, self.owner, now, self.lease_s)
        if held != self.holds_lease:
            log.info(
                "beat lease acquired" if held else "beat lease lost; standing by",
                extra={"owner": self.owner},
            )
            self.holds_lease = held
        if not held:
            return self.max_interval_s
        due = await self.store.due_jobs(now, self.batch_size)
        if due:
            await asyncio.gather(*(self._guarded(job, now) for job in due))
        await self._sweep(now)
        if len(due) >= self.batch_size:
            return 0.0  # more are due: go again at once
        next_at = await self.store.next_due_at()
        if next_at is None:
            return self.max_interval_s
        wait_s = (next_at - self.clock()).total_seconds()
        return min(max(wait_s, 0.0), self.max_interval_s)

    async def close(self) -> None:
        """Release the lease so a standby beat takes over at once instead of after `lease_s`."""
        if self.holds_lease:
            await self.store.release_lease(self.lease_name, self.owner)
            self.holds_lease = False

    # One due job.
    async def _guarded(self, job: Job, now: datetime) -> None:
        """One job's failure (store blip, bad schedule) must not stop the others' runs."""
        async with self._limit:
            try:
                await self._fire(job, now)
            except Exception:
                log.exception(
                    "due job not handled; retrying next tick",
                    extra={"job_id": job.id, "fire_time": job.next_run_at},
                )

    async def _fire(self, job: Job, now: datetime) -> None:
        assert job.next_run_at is not None  # due_jobs returns only scheduled jobs
        window_s = max(float(job.policies.catchup_window_s), self.grace_s)
        plan = plan_fires(job.schedule, _ms(job.next_run_at), now, window_s)
        await self._record_missed(job, plan, now)
        claimed: Execution | None = None
        if plan.run_at is not None:
            claimed = await self._claim(job, plan.run_at, now)
        changes: dict[str, Any] = (
            {"next_run_at": plan.next_run_at}
            if plan.next_run_at is not None
            else {"status": JobStatus.COMPLETED, "next_run_at": None}
        )
        if not await self.store.advance_job(job.id, job.version, job.next_run_at, changes):
            reason = await self._changed_reason(job)
            if reason is not None:
                if claimed is not None:
                    await self._revoke(claimed, reason, now)
                return
            # Same version, other next_run_at: another beat advanced it; our claim still stands.
        if claimed is not None and claimed.status is ExecutionStatus.PENDING:
            countdown_s = self.rng.random() * job.policies.jitter_s if job.policies.jitter_s else 0
            await self._publish(claimed, job, countdown_s)

    async def _changed_reason(self, job: Job) -> str | None:
        """Why the conditional advance failed: the job changed (or went), or None (a peer beat)."""
        try:
            current = await self.store.get_job(job.id)
        except NotFound:
            return REASON_JOB_DELETED
        return REASON_JOB_CHANGED if current.version != job.version else None

    async def _claim(self, job: Job, fire_time: datetime, now: datetime) -> Execution | None:
        """Insert the execution for `fire_time`: PENDING, or SKIPPED by the overlap policy.

        Returns the execution this beat inserted, or None when another beat holds the run key.
        """
        execution = self._execution(job, fire_time, now, ExecutionStatus.PENDING)
        if job.policies.overlap is OverlapPolicy.SKIP:
            running = await self.store.count_executions(
                ExecutionFilter(job_id=job.id), ACTIVE_STATUSES
            )
            if running:
                skipped = self._execution(
                    job,
                    fire_time,
                    now,
                    ExecutionStatus.SKIPPED,
                    reason=f"overlap policy SKIP: {running} earlier run(s) of the job still "
                    "PENDING, STARTED or RETRY",
                )
                if await self.store.insert_execution(skipped):
                    await self.store.increment_counters(job.id, {"skipped": 1})
                    metrics.run_skipped(job.job_type)
                    log.info(
                        "run skipped",
                        extra={"job_id": job.id, "fire_time": fire_time, "running": running},
                    )
                return None
        return execution if await self.store.insert_execution(execution) else None

    async def _record_missed(self, job: Job, plan: FirePlan, now: datetime) -> None:
        recorded = 0
        for fire_time in plan.missed:
            missed = self._execution(
                job,
                fire_time,
                now,
                ExecutionStatus.MISSED,
                reason=f"beat was not running at the fire time; outside the catch-up window "
                f"of {job.policies.catchup_window_s}s or superseded by a later fire time",
            )
            recorded += await self.store.insert_execution(missed)
        if plan.summarised and plan.summary_from is not None and plan.summary_to is not None:
            span = f"from {plan.summary_from.isoformat()} to {plan.summary_to.isoformat()}"
            count = (
                f"{plan.summarised} more fire times missed {span}"
                if plan.summary_exact
                else f"at least {plan.summarised} more fire times missed {span} (counting stopped)"
            )
            summary = self._execution(
                job,
                plan.summary_from,
                now,
                ExecutionStatus.MISSED,
                reason=f"{count}; beyond the {MISSED_RECORDS_MAX} recorded one by one",
            )
            if await self.store.insert_execution(summary):
                recorded += plan.summarised
        if recorded:
            await self.store.increment_counters(job.id, {"missed": recorded})
            metrics.runs_missed(job.job_type, recorded)
            log.warning(
                "runs missed",
                extra={
                    "job_id": job.id,
                    "missed": recorded,
                    "first": plan.missed[0] if plan.missed else plan.summary_from,
                },
            )

    def _execution(
        self,
        job: Job,
        fire_time: datetime,
        now: datetime,
        status: ExecutionStatus,
        reason: str = "",
    ) -> Execution:
        finished = now if status.is_terminal else None
        return Execution(
            id=new_execution_id(),
            job_id=job.id,
            job_name=job.name,
            trigger=Trigger.SCHEDULED,
            run_key=scheduled_run_key(job.id, fire_time),
            status=status,
            queue=job.queue,
            queued_at=now,
            scheduled_for=fire_time,
            parameters=dict(job.parameters),
            finished_at=finished,
            reason=reason,
            updated_at=now,
        )

    # Publishing.
    async def _publish(self, execution: Execution, job: Job, countdown_s: float) -> bool:
        """Publish; on `Unavailable` the execution stays PENDING for the sweep to retry."""
        try:
            task_id = await self.dispatcher.publish(execution, job, countdown_s=countdown_s)
        except Unavailable as error:
            log.warning(
                "run not dispatched: broker unavailable; the sweep retries it",
                extra={"job_id": job.id, "execution_id": execution.id, "error": error.message},
            )
            return False
        now = self.clock()
        await self.store.update_execution(
            execution.id, {"enqueued": True, "task_id": task_id, "updated_at": now}
        )
        fire_time = execution.scheduled_for
        metrics.run_dispatched(
            job.job_type, (now - fire_time).total_seconds() if fire_time else None
        )
        log.info(
            "run dispatched",
            extra={
                "job_id": job.id,
                "execution_id": execution.id,
                "fire_time": fire_time.isoformat() if fire_time else None,
                "lag_s": round((now - fire_time).total_seconds(), 3) if fire_time else None,
                "countdown_s": round(countdown_s, 3),
                "queue": execution.queue,
            },
        )
        return True

    async def _revoke(self, execution: Execution, reason: str, now: datetime) -> None:
        revoked = await self.store.update_execution(
            execution.id,
            {
                "status": ExecutionStatus.REVOKED,
                "reason": reason,
                "finished_at": now,
                "updated_at": now,
            },
            only_if_status_in=frozenset({ExecutionStatus.PENDING}),
        )
        if revoked is not None:
            log.info(
                "run revoked",
                extra={"job_id": execution.job_id, "execution_id": execution.id, "reason": reason},
            )

    async def _sweep(self, now: datetime) -> None:
        """Publish runs whose beat (or API call) died between claim and publish."""
        older_than = now - timedelta(seconds=self.sweep_delay_s)
        for execution in await self.store.unpublished_executions(older_than, self.batch_size):
            try:
                job = await self.store.get_job(execution.job_id)
            except NotFound:
                await self._revoke(execution, REASON_JOB_DELETED, now)
                continue
            if execution.trigger is Trigger.SCHEDULED and job.status is JobStatus.PAUSED:
                await self._revoke(execution, REASON_JOB_PAUSED, now)
                continue
            if not await self._publish(execution, job, 0.0):
                return  # the broker is down: the rest would fail the same way
