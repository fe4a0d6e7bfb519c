"""Jobs: what to run, with what, when, and under which policies.

A `Job` is an immutable value. Changes produce a new value with a bumped version, which the store
writes with a compare-and-set on that version; nothing here performs I/O.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from omnisched_allinone.core.errors import InvalidArgument
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec, ScheduleType, next_fire_time


class JobType(StrEnum):
    SCRAPING = "SCRAPING"
    ANALYSIS = "ANALYSIS"
    MONITORING = "MONITORING"
    MAINTENANCE = "MAINTENANCE"
    MANUAL = "MANUAL"
    GRPC = "GRPC"
    TASK = "TASK"


class JobStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"


QUEUES: tuple[str, ...] = (
    "scraping",
    "analysis",
    "monitoring",
    "maintenance",
    "manual",
    "default_queue",
)
MANUAL_QUEUE = "manual"

DEFAULT_QUEUE: Mapping[JobType, str] = {
    JobType.SCRAPING: "scraping",
    JobType.ANALYSIS: "analysis",
    JobType.MONITORING: "monitoring",
    JobType.MAINTENANCE: "maintenance",
    JobType.MANUAL: "manual",
    JobType.GRPC: "default_queue",
    JobType.TASK: "default_queue",
}

# The Celery task each job type runs (seed task names). GRPC and MANUAL jobs call their target
# through the generic runner; TASK jobs name their own task.
TASK_FOR_TYPE: Mapping[JobType, str] = {
    JobType.SCRAPING: "scrape_competitor_prices",
    JobType.ANALYSIS: "comprehensive_price_analysis",
    JobType.MONITORING: "health_check_services",
    JobType.MAINTENANCE: "cleanup_old_execution_records",
    JobType.MANUAL: "call_target_service",
    JobType.GRPC: "call_target_service",
}

# Job types that need a target service and method to do anything.
TARGETED_TYPES = frozenset({JobType.SCRAPING, JobType.ANALYSIS, JobType.MANUAL, JobType.GRPC})

NAME_MAX = 200
DESCRIPTION_MAX = 2000
LABELS_MAX = 32
_LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class JobCounters:
    runs: int = 0
    successes: int = 0
    failures: int = 0
    skipped: int = 0
    missed: int = 0


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    job_type: JobType
    queue: str
    schedule: ScheduleSpec
    policies: JobPolicies
    created_at: datetime
    updated_at: datetime
    description: str = ""
    target_service: str = ""
    target_method: str = ""
    task_name: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    status: JobStatus = JobStatus.ACTIVE
    pause_note: str = ""
    built_in: bool = False
    version: int = 1
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    counters: JobCounters = field(default_factory=JobCounters)

    @property
    def task(self) -> str:
        """The Celery task that runs this job."""
        return self.task_name if self.job_type is JobType.TASK else TASK_FOR_TYPE[self.job_type]

    def changed(self, now: datetime, **changes: Any) -> Job:
        """A new version of this job with `changes` applied and `next_run_at` recomputed."""
        job = replace(self, **changes, updated_at=now, version=self.version + 1)
        return replace(job, next_run_at=job.compute_next_run(now))

    def compute_next_run(self, now: datetime) -> datetime | None:
        """When the scheduler should next fire this job; None while paused or finished."""
        if self.status is not JobStatus.ACTIVE:
            return None
        return next_fire_time(self.schedule, now)


def new_job_id(name: str, built_in: bool = False) -> str:
    """Readable, stable ids: `job-<slug>` for built-ins, `job-<slug>-<6 hex>` for the rest.

    The random suffix keeps a deleted job's id from being reused by a new job of the same name,
    so old execution records never point at the wrong job.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "job"
    return f"job-{slug}" if built_in else f"job-{slug}-{secrets.token_hex(3)}"


def validate_name(name: str, field_name: str = "name") -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument(field_name, "must not be empty")
    if len(name) > NAME_MAX:
        raise InvalidArgument(field_name, f"must be at most {NAME_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidArgument(field_name, "must not contain control characters")
    return name


def validate_description(text: str, field_name: str = "description") -> str:
    if len(text) > DESCRIPTION_MAX:
        raise InvalidArgument(field_name, f"must be at most {DESCRIPTION_MAX} characters")
    return text


def parse_job_type(value: str, field_name: str = "job_type") -> JobType:
    try:
        return JobType(value.strip().upper())
    except ValueError:
        raise InvalidArgument(
            field_name, f"unknown job type {value!r}; one of {', '.join(JobType)}"
        ) from None


def parse_job_status(value: str, field_name: str = "status") -> JobStatus:
    try:
        return JobStatus(value.strip().upper())
    except ValueError:
        raise InvalidArgument(
            field_name, f"unknown status {value!r}; one of {', '.join(JobStatus)}"
        ) from None


def validate_queue(queue: str, field_name: str = "queue") -> str:
    if queue not in QUEUES:
        raise InvalidArgument(field_name, f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
    return queue


def validate_task_name(task_name: str, field_name: str = "task_name") -> str:
    if not task_name:
        raise InvalidArgument(field_name, "is required for job_type TASK")
    if len(task_name) > 200 or not _TASK_NAME.match(task_name):
        raise InvalidArgument(field_name, "must be a dotted Python name")
    return task_name


def validate_labels(labels: Mapping[str, str], field_name: str = "labels") -> dict[str, str]:
    if len(labels) > LABELS_MAX:
        raise InvalidArgument(field_name, f"at most {LABELS_MAX} labels")
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise InvalidArgument(
                f"{field_name}.{key[:40]}", "label keys are lowercase [a-z0-9._/-], 1-63 chars"
            )
        if len(value) > 200 or any(ord(c) < 32 for c in value):
            raise InvalidArgument(f"{field_name}.{key}", "label values are at most 200 characters")
    return dict(labels)


def schedule_is_once(job: Job) -> bool:
    return job.schedule.type == ScheduleType.ONCE
