"""The run ledger: after a fault, what the execution records say about DESIGN §4's promises.

`check()` reads every execution of the given jobs (after a settle time) and reports:

- **lost**: runs that were accepted (ExecuteJobNow answered OK) or claimed for a fire time and
  never reached a terminal state, plus accepted runs with no record at all;
- **duplicates**: run keys recorded more than once (the unique index should make this
  impossible), and target calls no recorded start explains: more calls carrying one execution id
  (the idempotency key) than the execution has deliveries, or calls for a run that never started
  (SKIPPED, MISSED, REVOKED before start) or that no record knows;
- **missed**: expected fire times with no record at all, a silent miss (a fire time missed by the
  catch-up policy is fine when it is *recorded* MISSED; those are counted apart).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from omnisched_allinone.core.executions import Execution, ExecutionStatus
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.core.schedules import fire_times_between
from omnisched_allinone.store.base import ExecutionFilter, Store

NEVER_STARTED = frozenset({ExecutionStatus.SKIPPED, ExecutionStatus.MISSED})


@dataclass
class LedgerReport:
    runs: int
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    recorded_missed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        return (
            f"runs={self.runs} lost={self.lost} duplicates={self.duplicates} "
            f"missed={self.missed} recorded_missed={self.recorded_missed} "
            f"statuses={dict(self.statuses)}"
        )


async def read_executions(store: Store, job_ids: Iterable[str]) -> list[Execution]:
    found: list[Execution] = []
    for job_id in job_ids:
        found += await store.list_executions(ExecutionFilter(job_id=job_id), 100_000, None)
    return found


def _ms(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def check(
    executions: Collection[Execution],
    *,
    accepted: Iterable[str] = (),
    expected_fire_times: Mapping[str, Iterable[datetime]] | None = None,
    target_calls: Iterable[str] | None = None,
) -> LedgerReport:
    """`target_calls`: the `omnisched-execution-id` of every call the fake target received."""
    report = LedgerReport(runs=len(executions))
    by_id = {execution.id: execution for execution in executions}
    report.statuses = Counter(str(execution.status) for execution in executions)
    report.recorded_missed = report.statuses.get(str(ExecutionStatus.MISSED), 0)

    for execution in executions:
        if not execution.status.is_terminal:
            report.lost.append(f"{execution.id} still {execution.status}")
    for execution_id in accepted:
        if execution_id not in by_id:
            report.lost.append(f"{execution_id} accepted but never recorded")

    for run_key, count in Counter(e.run_key for e in executions).items():
        if count > 1:
            report.duplicates.append(f"run key {run_key} recorded {count} times")
    if target_calls is not None:
        for execution_id, calls in Counter(target_calls).items():
            execution = by_id.get(execution_id)
            if execution is None:
                report.duplicates.append(f"target called for unknown run {execution_id}")
            elif execution.status in NEVER_STARTED:
                report.duplicates.append(f"target called for {execution.status} {execution_id}")
            elif calls > max(execution.deliveries, 1):
                report.duplicates.append(
                    f"target called {calls}x for {execution_id} "
                    f"({execution.deliveries} deliveries recorded)"
                )

    if expected_fire_times:
        recorded = {
            (e.job_id, _ms(e.scheduled_for)) for e in executions if e.scheduled_for is not None
        }
        for job_id, fire_times in expected_fire_times.items():
            for fire_time in fire_times:
                if (job_id, _ms(fire_time)) not in recorded:
                    report.missed.append(f"{job_id} @ {fire_time.isoformat()}")
    return report


async def settle(
    read: Callable[[], object], timeout_s: float, *, poll_s: float = 0.2
) -> list[Execution]:
    """Poll `read()` (a coroutine function) until no execution is left non-terminal."""
    deadline = time.monotonic() + timeout_s
    while True:
        executions: list[Execution] = await read()  # type: ignore[misc]
        if all(e.status.is_terminal for e in executions) or time.monotonic() > deadline:
            return executions
        await asyncio.sleep(poll_s)


def fire_times(job: Job, start: datetime, end: datetime) -> list[datetime]:
    """The job's nominal fire times in (start, end]: what the ledger expects a record for."""
    return fire_times_between(job.schedule, start, end, 1000)
