"""The store contract: what the API, the scheduler and the workers need from persistence.

One implementation (`MongoStore`) serves both PyMongo's `AsyncMongoClient` and mongomock-motor;
`tests/store/test_contract.py` holds every backend to this contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from omnisched_allinone.core.executions import Execution, ExecutionStatus, Trigger
from omnisched_allinone.core.jobs import Job, JobStatus, JobType


@dataclass(frozen=True)
class JobFilter:
    job_type: JobType | None = None
    status: JobStatus | None = None
    queue: str | None = None
    label: str | None = None  # "key" or "key=value"
    built_in: bool | None = None


@dataclass(frozen=True)
class ExecutionFilter:
    job_id: str | None = None
    status: ExecutionStatus | None = None
    trigger: Trigger | None = None


@dataclass(frozen=True)
class ExecutionEventRecord:
    """One state change of an execution, in the order the store recorded it."""

    seq: int
    at: datetime
    execution: Execution


class Store(Protocol):
    async def start(self) -> None:
        """Connect and create indexes; idempotent."""

    async def ping(self) -> None:
        """Raise `Unavailable` when the store cannot answer."""

    async def close(self) -> None: ...

    # Jobs.
    async def insert_job(self, job: Job) -> None:
        """`AlreadyExists` when the name (or id) is taken."""

    async def get_job(self, job_id: str) -> Job:
        """`NotFound` when absent."""

    async def find_job_by_name(self, name: str) -> Job | None: ...

    async def list_jobs(self, flt: JobFilter, limit: int, after_id: str | None) -> list[Job]:
        """Jobs ordered by id, strictly after `after_id`."""

    async def replace_job(self, job: Job, expected_version: int) -> Job:
        """Write `job` if the stored version is still `expected_version` (else `Conflict`)."""

    async def delete_job(self, job_id: str) -> bool: ...

    async def increment_counters(
        self, job_id: str, counters: Mapping[str, int], last_run_at: datetime | None = None
    ) -> None: ...

    # Scheduling.
    async def due_jobs(self, now: datetime, limit: int) -> list[Job]:
        """Active jobs with next_run_at <= now, earliest first, through the next_run_at index."""

    async def next_due_at(self) -> datetime | None:
        """The earliest next_run_at of any active job (one document read)."""

    async def advance_job(
        self,
        job_id: str,
        expected_version: int,
        expected_next_run_at: datetime,
        changes: Mapping[str, Any],
    ) -> bool:
        """Set `changes` only if the job is still at the version and next_run_at the caller read.

        The version check is what makes a pause win against a beat that read the job before it.
        """

    async def acquire_lease(self, name: str, owner: str, now: datetime, lease_s: float) -> bool:
        """Take or renew the named lease for `owner`; False while another owner holds it."""

    async def release_lease(self, name: str, owner: str) -> None: ...

    async def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """The owner of the named lease and its expiry, without taking it (health checks)."""

    async def count_jobs_by_status(self) -> dict[str, int]:
        """Jobs per status, every `JobStatus` present (the metrics gauge)."""

    async def has_marker(self, key: str) -> bool: ...

    async def set_marker(self, key: str) -> None: ...

    # Executions.
    async def insert_execution(self, execution: Execution) -> bool:
        """False (and nothing written) when an execution with the same run key exists."""

    async def get_execution(self, execution_id: str) -> Execution:
        """`NotFound` when absent."""

    async def find_execution_by_run_key(self, run_key: str) -> Execution | None: ...

    async def update_execution(
        self,
        execution_id: str,
        changes: Mapping[str, Any],
        *,
        only_if_status_in: frozenset[ExecutionStatus] | None = None,
    ) -> Execution | None:
        """Apply `changes`; None when absent or its status is not in `only_if_status_in`."""

    async def list_executions(
        self, flt: ExecutionFilter, limit: int, before_id: str | None
    ) -> list[Execution]:
        """Newest first, strictly before `before_id`."""

    async def count_executions(
        self, flt: ExecutionFilter, statuses: frozenset[ExecutionStatus]
    ) -> int: ...

    async def unpublished_executions(self, older_than: datetime, limit: int) -> list[Execution]:
        """PENDING executions never confirmed by the broker, queued before `older_than`."""

    async def delete_executions_before(self, cutoff: datetime) -> int: ...

    async def events_after(
        self, seq: int | None, job_id: str | None, limit: int
    ) -> list[ExecutionEventRecord]:
        """Execution state changes recorded after `seq` (all retained ones when None)."""

    async def last_event_seq(self) -> int: ...
