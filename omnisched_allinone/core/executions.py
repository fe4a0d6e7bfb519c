"""Executions: the record each run of a job leaves.

The run key makes "once per fire time" checkable: the store holds a unique index on it, so a
second scheduler (or a retried publish) that tries to record the same fire time is refused by the
store rather than by a lock that might expire.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from omnisched_allinone.core.errors import InvalidArgument


class Trigger(StrEnum):
    SCHEDULED = "SCHEDULED"
    MANUAL = "MANUAL"
    BACKFILL = "BACKFILL"


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"
    MISSED = "MISSED"
    REVOKED = "REVOKED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.SUCCESS,
        ExecutionStatus.FAILURE,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.MISSED,
        ExecutionStatus.REVOKED,
        ExecutionStatus.TIMED_OUT,
    }
)
ACTIVE_STATUSES = frozenset(
    {ExecutionStatus.PENDING, ExecutionStatus.STARTED, ExecutionStatus.RETRY}
)
RESULT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class ExecutionError:
    type: str
    message: str
    code: str = ""


@dataclass(frozen=True)
class Execution:
    id: str
    job_id: str
    job_name: str
    trigger: Trigger
    run_key: str
    status: ExecutionStatus
    queue: str
    queued_at: datetime
    scheduled_for: datetime | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    request_id: str = ""
    attempts: int = 0
    deliveries: int = 0
    task_id: str = ""
    worker: str = ""
    enqueued: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    result: Mapping[str, Any] | None = None
    error: ExecutionError | None = None
    reason: str = ""
    updated_at: datetime | None = None


_sequence = itertools.count()


def new_execution_id() -> str:
    """Time-ordered ids (`exe-<ms><seq><random>`): sorting by id is sorting by creation.

    The per-process sequence orders ids made in the same millisecond by one process.
    """
    seq = next(_sequence) % 0x10000
    return f"exe-{int(time.time() * 1000):012x}{seq:04x}{os.urandom(3).hex()}"


def scheduled_run_key(job_id: str, fire_time: datetime) -> str:
    return f"{job_id}@{fire_time.isoformat()}"


def manual_run_key(job_id: str, request_id: str, execution_id: str) -> str:
    """A manual run with a request_id is keyed by it (idempotent); without one it is unique."""
    return f"{job_id}!{request_id}" if request_id else f"{job_id}!{execution_id}"


def validate_request_id(request_id: str, field_name: str = "request_id") -> str:
    if len(request_id) > 128 or any(not (c.isascii() and c.isprintable()) for c in request_id):
        raise InvalidArgument(field_name, "must be at most 128 printable ASCII characters")
    return request_id


def parse_execution_status(value: str, field_name: str = "status") -> ExecutionStatus:
    try:
        return ExecutionStatus(value.strip().upper())
    except ValueError:
        raise InvalidArgument(
            field_name, f"unknown status {value!r}; one of {', '.join(ExecutionStatus)}"
        ) from None


def parse_trigger(value: str, field_name: str = "trigger") -> Trigger:
    try:
        return Trigger(value.strip().upper())
    except ValueError:
        raise InvalidArgument(
            field_name, f"unknown trigger {value!r}; one of {', '.join(Trigger)}"
        ) from None
