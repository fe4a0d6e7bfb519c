"""Running one execution: the body of the `run_job` task.

Loads the execution and its job, claims the start (so a duplicate message runs nothing), runs the
job's work under its time limit, and records the outcome. Retrying is decided here (transient vs
permanent failure, attempts left, backoff) and carried out by the Celery task, which republishes
itself with the delay this returns.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omnisched_allinone import metrics
from omnisched_allinone.core.errors import NotFound
from omnisched_allinone.core.executions import (
    RESULT_MAX_BYTES,
    Execution,
    ExecutionError,
    ExecutionStatus,
    Trigger,
)
from omnisched_allinone.core.jobs import Job, JobStatus, JobType
from omnisched_allinone.core.policies import retry_delay_s
from omnisched_allinone.store.mongo import MongoStore
from omnisched_allinone.targets import TargetCallError, TargetClient

log = logging.getLogger(__name__)

STARTABLE = frozenset({ExecutionStatus.PENDING, ExecutionStatus.RETRY})
# How far ahead of the job's time limit the target call's deadline ends, so that our own clean
# TIMED_OUT is recorded before Celery's hard limit would kill the process.
DEADLINE_MARGIN_S = 0.05


class JobFailed(Exception):
    """A run failed; `transient` says whether another attempt may succeed."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        code: str = "",
        error_type: str = "JobFailed",
        result: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.code = code
        self.error_type = error_type
        self.result = result


@dataclass(frozen=True)
class Delivery:
    """What the broker told the worker about this message."""

    task_id: str
    worker: str
    redelivered: bool = False


@dataclass(frozen=True)
class RunOutcome:
    execution_id: str
    status: ExecutionStatus | None  # None: nothing was run (duplicate or finished message)
    retry_in_s: float | None = None
    note: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "status": str(self.status) if self.status else None,
            "note": self.note,
        }


# The work a job type does, given the job, the execution (its parameters, its id as the
# idempotency key) and the deadline in seconds.
Work = Callable[[Job, Execution, float], Awaitable[Any]]


class JobRunner:
    def __init__(
        self,
        store: MongoStore,
        targets: TargetClient,
        *,
        max_redeliveries: int,
        work_for_type: Mapping[JobType, Work],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._targets = targets
        self._max_redeliveries = max_redeliveries
        self._work_for_type = work_for_type
        self._clock = clock

    async def run(self, execution_id: str, delivery: Delivery) -> RunOutcome:
        try:
            execution = await self._store.get_execution(execution_id)
        except NotFound:
            log.warning("run skipped: execution not found", extra={"execution_id": execution_id})
            return RunOutcome(execution_id, None, note="execution not found")
        if execution.status.is_terminal:
            return RunOutcome(execution_id, None, note=f"already {execution.status}")

        started = await self._claim_start(execution, delivery)
        if started is None:
            return RunOutcome(execution_id, None, note="already started elsewhere")
        if started.status is not ExecutionStatus.STARTED:
            return RunOutcome(execution_id, started.status, note=started.reason)

        try:
            job = await self._store.get_job(execution.job_id)
        except NotFound:
            return await self._finish_revoked(started, "job deleted before the run started")
        if started.trigger is Trigger.SCHEDULED and job.status is JobStatus.PAUSED:
            return await self._finish_revoked(started, "job paused before the run started")

        log.info(
            "run started",
            extra={
                "job_id": job.id,
                "execution_id": started.id,
                "task_id": delivery.task_id,
                "attempt": started.attempts,
            },
        )
        began = time.monotonic()
        limit_s = float(job.policies.time_limit_s)
        try:
            result = await asyncio.wait_for(
                self._work(job, started, limit_s - DEADLINE_MARGIN_S), limit_s
            )
        except TimeoutError:
            return await self._finish_failed(
                started,
                job,
                began,
                ExecutionStatus.TIMED_OUT,
                JobFailed(
                    f"time limit of {limit_s:g}s hit",
                    transient=False,
                    code="DEADLINE_EXCEEDED",
                    error_type="TimeLimitExceeded",
                ),
            )
        except JobFailed as failure:
            if failure.code == "DEADLINE_EXCEEDED" and time.monotonic() - began >= limit_s - 1:
                return await self._finish_failed(
                    started, job, began, ExecutionStatus.TIMED_OUT, failure
                )
            if failure.transient and started.attempts <= job.policies.max_retries:
                return await self._schedule_retry(started, job, failure)
            return await self._finish_failed(started, job, began, ExecutionStatus.FAILURE, failure)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug in a task body: record it, never lose the run
            log.exception("run raised", extra={"execution_id": started.id})
            crash = JobFailed(
                str(error) or type(error).__name__, transient=False, error_type=type(error).__name__
            )
            if started.attempts <= job.policies.max_retries and job.job_type is JobType.TASK:
                return await self._schedule_retry(started, job, crash)
            return await self._finish_failed(started, job, began, ExecutionStatus.FAILURE, crash)
        return await self._finish_success(started, job, began, result)

    async def _claim_start(self, execution: Execution, delivery: Delivery) -> Execution | None:
        """STARTED once per attempt: a duplicate message finds it taken and runs nothing.

        A message the broker redelivers after its worker died finds the execution STARTED; it
        may take it over, up to `max_redeliveries` times (then the run fails: a poison job).
        """
        now = self._clock()
        changes = {
            "status": ExecutionStatus.STARTED,
            "started_at": now,
            "updated_at": now,
            "worker": delivery.worker,
            "task_id": delivery.task_id,
            "attempts": execution.attempts + 1,
            "deliveries": execution.deliveries + 1,
            "enqueued": True,
        }
        claimed = await self._store.update_execution(
            execution.id, changes, only_if_status_in=STARTABLE
        )
        if claimed is not None or not delivery.redelivered:
            return claimed
        if execution.status is not ExecutionStatus.STARTED:
            return None
        if execution.deliveries > self._max_redeliveries:
            failed = await self._store.update_execution(
                execution.id,
                {
                    "status": ExecutionStatus.FAILURE,
                    "finished_at": now,
                    "updated_at": now,
                    "error": ExecutionError(
                        "WorkerLost",
                        f"the worker running this job died {execution.deliveries} times; "
                        "not retried again (poison job?)",
                    ),
                },
                only_if_status_in=frozenset({ExecutionStatus.STARTED}),
            )
            if failed is not None:
                await self._store.increment_counters(failed.job_id, {"runs": 1, "failures": 1})
            return failed
        log.warning("run redelivered after its worker died", extra={"execution_id": execution.id})
        return await self._store.update_execution(
            execution.id,
            {**changes, "attempts": execution.attempts},
            only_if_status_in=frozenset({ExecutionStatus.STARTED}),
        )

    async def _work(self, job: Job, execution: Execution, deadline_s: float) -> Any:
        work = self._work_for_type.get(job.job_type)
        if work is None:
            raise JobFailed(f"no work registered for job type {job.job_type}", transient=False)
        return await work(job, execution, deadline_s)

    async def _schedule_retry(
        self, execution: Execution, job: Job, failure: JobFailed
    ) -> RunOutcome:
        delay = retry_delay_s(job.policies, execution.attempts)
        await self._store.update_execution(
            execution.id,
            {
                "status": ExecutionStatus.RETRY,
                "updated_at": self._clock(),
                "error": _error(failure),
                "reason": f"attempt {execution.attempts} failed; retrying in {delay:.1f}s",
            },
        )
        log.info(
            "run retry scheduled",
            extra={"execution_id": execution.id, "delay_s": round(delay, 2), "code": failure.code},
        )
        return RunOutcome(execution.id, ExecutionStatus.RETRY, retry_in_s=delay)

    async def _finish_success(
        self, execution: Execution, job: Job, began: float, result: Any
    ) -> RunOutcome:
        await self._finish(
            execution, job, began, ExecutionStatus.SUCCESS, bound_result(result), None
        )
        return RunOutcome(execution.id, ExecutionStatus.SUCCESS)

    async def _finish_failed(
        self,
        execution: Execution,
        job: Job,
        began: float,
        status: ExecutionStatus,
        failure: JobFailed,
    ) -> RunOutcome:
        result = bound_result(failure.result) if failure.result is not None else None
        await self._finish(execution, job, began, status, result, _error(failure))
        return RunOutcome(execution.id, status, note=failure.message)

    async def _finish(
        self,
        execution: Execution,
        job: Job,
        began: float,
        status: ExecutionStatus,
        result: Mapping[str, Any] | None,
        error: ExecutionError | None,
    ) -> None:
        now = self._clock()
        duration_s = time.monotonic() - began
        await self._store.update_execution(
            execution.id,
            {
                "status": status,
                "finished_at": now,
                "updated_at": now,
                "duration_s": round(duration_s, 6),
                "result": result,
                "error": error,
                "reason": "",
            },
        )
        success = status is ExecutionStatus.SUCCESS
        await self._store.increment_counters(
            job.id,
            {"runs": 1, "successes": int(success), "failures": int(not success)},
            last_run_at=execution.started_at,
        )
        metrics.run_finished(job.job_type, status, duration_s)
        log.info(
            "run finished",
            extra={
                "job_id": job.id,
                "execution_id": execution.id,
                "task_id": execution.task_id,
                "status": str(status),
                "duration_s": round(duration_s, 3),
            },
        )

    async def _finish_revoked(self, execution: Execution, reason: str) -> RunOutcome:
        now = self._clock()
        await self._store.update_execution(
            execution.id,
            {
                "status": ExecutionStatus.REVOKED,
                "finished_at": now,
                "updated_at": now,
                "reason": reason,
            },
        )
        log.info("run revoked", extra={"execution_id": execution.id, "reason": reason})
        return RunOutcome(execution.id, ExecutionStatus.REVOKED, note=reason)


def _error(failure: JobFailed) -> ExecutionError:
    return ExecutionError(
        type=failure.error_type, message=failure.message[:2000], code=failure.code
    )


def bound_result(result: Any) -> dict[str, Any] | None:
    """Results are stored as JSON objects of bounded size (a preview when too large)."""
    if result is None:
        return None
    value = result if isinstance(result, Mapping) else {"value": result}
    text = json.dumps(value, default=str)
    if len(text.encode()) <= RESULT_MAX_BYTES:
        return json.loads(text)
    return {"truncated": True, "size_bytes": len(text.encode()), "preview": text[:4096]}


async def call_target(
    targets: TargetClient,
    target_service: str,
    target_method: str,
    parameters: Mapping[str, Any],
    deadline_s: float,
    metadata: list[tuple[str, str]],
) -> dict[str, Any]:
    """One target call, its failures classified transient or permanent."""
    try:
        return await targets.call(
            target_service, target_method, parameters, timeout_s=deadline_s, metadata=metadata
        )
    except TargetCallError as error:
        raise JobFailed(
            f"{target_service}/{target_method}: {error.message}",
            transient=error.transient,
            code=error.code,
            error_type="TargetCallError",
        ) from error


async def run_callable(function: Callable[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Call a task body: coroutines are awaited, blocking functions run in a thread."""
    kwargs = dict(parameters)
    args = kwargs.pop("_args", [])
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    result = await asyncio.to_thread(function, *args, **kwargs)
    return await result if inspect.isawaitable(result) else result
