"""The job service: every rule of the job API, shared by the gRPC and HTTP faces.

Handlers unpack a request into plain values, call one method here and pack the answer; all
validation happens here, before anything is written, so a rejected request changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from omnisched_allinone.core.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from omnisched_allinone.core.executions import (
    ACTIVE_STATUSES,
    Execution,
    ExecutionStatus,
    Trigger,
    manual_run_key,
    new_execution_id,
    parse_execution_status,
    parse_trigger,
    validate_request_id,
)
from omnisched_allinone.core.jobs import (
    DEFAULT_QUEUE,
    MANUAL_QUEUE,
    TARGETED_TYPES,
    Job,
    JobStatus,
    JobType,
    new_job_id,
    parse_job_status,
    parse_job_type,
    validate_description,
    validate_labels,
    validate_name,
    validate_queue,
    validate_task_name,
)
from omnisched_allinone.core.parameters import merge_overrides, validate_parameters
from omnisched_allinone.core.policies import JobPolicies, merge_policies
from omnisched_allinone.core.schedules import (
    ScheduleSpec,
    describe_schedule,
    next_fire_times,
    normalize_schedule,
)
from omnisched_allinone.feed import ExecutionFeed
from omnisched_allinone.store.base import ExecutionFilter, JobFilter, Store
from omnisched_allinone.targets import validate_method_name, validate_target_name

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
NOT_ENQUEUED_REASON = "not enqueued: the broker did not confirm the publish"
NOT_ENQUEUED = frozenset({ExecutionStatus.PENDING, ExecutionStatus.REVOKED})
MAX_PAGE_SIZE = 500
MAX_PREVIEW = 100


class Dispatcher(Protocol):
    """Publishes a run to the broker; returns once the broker confirmed it."""

    async def publish(self, execution: Execution, job: Job, *, countdown_s: float = 0.0) -> str:
        """The task id; raises `Unavailable` when the broker did not confirm."""


@dataclass(frozen=True)
class ServiceLimits:
    max_parameters_bytes: int = 64 * 1024
    max_parameters_depth: int = 16
    min_interval_s: float = 1.0


@dataclass(frozen=True)
class JobDraft:
    """A create request as plain values (the API edge fills it from proto or JSON)."""

    name: str
    job_type: str
    schedule: ScheduleSpec | None
    target_service: str = ""
    target_method: str = ""
    task_name: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    queue: str = ""
    policies: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    paused: bool = False
    built_in: bool = False


@dataclass(frozen=True)
class JobChanges:
    """An update request: None means "leave as is"."""

    name: str | None = None
    description: str | None = None
    target_service: str | None = None
    target_method: str | None = None
    task_name: str | None = None
    schedule: ScheduleSpec | None = None
    parameters: Mapping[str, Any] | None = None
    queue: str | None = None
    policies: Mapping[str, Any] | None = None
    labels: Mapping[str, str] | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class JobStatusView:
    job: Job
    next_run_times: list[datetime]
    last_execution: Execution | None
    active_executions: int


@dataclass(frozen=True)
class SchedulePreview:
    fire_times: list[datetime]
    description: str
    schedule: ScheduleSpec


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _to_ms(value: datetime) -> datetime:
    """The store keeps milliseconds; answers should equal what a later read returns."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class JobService:
    def __init__(
        self,
        store: Store,
        *,
        target_names: Collection[str],
        default_policies: JobPolicies,
        limits: ServiceLimits,
        dispatcher: Dispatcher | None = None,
        feed: ExecutionFeed | None = None,
        task_exists: Callable[[str], bool] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.target_names = frozenset(target_names)
        self.default_policies = default_policies
        self.limits = limits
        self.dispatcher = dispatcher
        self.feed = feed or ExecutionFeed(store)
        self.task_exists = task_exists
        self.clock = clock

    # Jobs.
    async def create_job(self, draft: JobDraft) -> Job:
        now = self._now()
        job_type = parse_job_type(draft.job_type)
        name = validate_name(draft.name)
        if draft.schedule is None:
            raise InvalidArgument("schedule_config", "is required")
        what = self._what_to_run(
            job_type, draft.target_service, draft.target_method, draft.task_name
        )
        job = Job(
            id=new_job_id(name, built_in=draft.built_in),
            name=name,
            description=validate_description(draft.description),
            job_type=job_type,
            queue=validate_queue(draft.queue) if draft.queue else DEFAULT_QUEUE[job_type],
            schedule=self._schedule(draft.schedule, now),
            policies=merge_policies(self.default_policies, dict(draft.policies)),
            parameters=self._parameters(draft.parameters),
            labels=validate_labels(draft.labels),
            created_at=now,
            updated_at=now,
            status=JobStatus.PAUSED if draft.paused else JobStatus.ACTIVE,
            built_in=draft.built_in,
            target_service=what["target_service"],
            target_method=what["target_method"],
            task_name=what["task_name"],
        )
        job = replace(job, next_run_at=job.compute_next_run(now))
        await self.store.insert_job(job)  # AlreadyExists from the unique index on the name
        log.info("job created", extra={"job_id": job.id, "job_name": job.name})
        return job

    async def get_job(self, job_id: str) -> Job:
        return await self.store.get_job(self._job_id(job_id))

    async def list_jobs(
        self,
        *,
        job_type: str = "",
        status: str = "",
        queue: str = "",
        label: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Job], str]:
        flt = JobFilter(
            job_type=parse_job_type(job_type) if job_type else None,
            status=parse_job_status(status) if status else None,
            queue=validate_queue(queue) if queue else None,
            label=self._label_filter(label) if label else None,
        )
        size = self._page_size(page_size)
        after = _decode_token(page_token, flt) if page_token else None
        jobs = await self.store.list_jobs(flt, size + 1, after)
        token = _encode_token(jobs[size - 1].id, flt) if len(jobs) > size else ""
        return jobs[:size], token

    async def update_job(self, job_id: str, changes: JobChanges) -> Job:
        job = await self.get_job(job_id)
        if changes.expected_version is not None and changes.expected_version != job.version:
            raise Conflict(
                f"job {job.id!r} is at version {job.version}, not {changes.expected_version}"
            )
        now = self._now()
        values: dict[str, Any] = {}
        if changes.name is not None:
            values["name"] = validate_name(changes.name)
        if changes.description is not None:
            values["description"] = validate_description(changes.description)
        if changes.schedule is not None:
            values["schedule"] = self._schedule(changes.schedule, now)
        if changes.parameters is not None:
            values["parameters"] = self._parameters(changes.parameters)
        if changes.queue is not None:
            values["queue"] = (
                validate_queue(changes.queue) if changes.queue else DEFAULT_QUEUE[job.job_type]
            )
        if changes.policies is not None:
            values["policies"] = merge_policies(job.policies, dict(changes.policies))
        if changes.labels is not None:
            values["labels"] = validate_labels(changes.labels)
        if any(
            v is not None
            for v in (changes.target_service, changes.target_method, changes.task_name)
        ):
            values.update(
                self._what_to_run(
                    job.job_type,
                    job.target_service
                    if changes.target_service is None
                    else changes.target_service,
                    job.target_method if changes.target_method is None else changes.target_method,
                    job.task_name if changes.task_name is None else changes.task_name,
                )
            )
        if not values:
            return job
        if job.status is JobStatus.COMPLETED and "schedule" in values:
            values["status"] = (
                JobStatus.ACTIVE
            )  # a finished once-job given a new schedule runs again
        updated = await self.store.replace_job(job.changed(now, **values), job.version)
        log.info("job updated", extra={"job_id": job.id, "fields": sorted(values)})
        return updated

    async def pause_job(self, job_id: str, note: str = "") -> Job:
        if len(note) > 500:
            raise InvalidArgument("note", "must be at most 500 characters")
        job = await self.get_job(job_id)
        if job.status is JobStatus.COMPLETED:
            raise FailedPrecondition(f"job {job.id!r} has completed; update its schedule first")
        if job.status is JobStatus.PAUSED and job.pause_note == note:
            return job
        now = self._now()
        paused = await self.store.replace_job(
            job.changed(now, status=JobStatus.PAUSED, pause_note=note), job.version
        )
        log.info("job paused", extra={"job_id": job.id})
        return paused

    async def resume_job(self, job_id: str) -> Job:
        job = await self.get_job(job_id)
        if job.status is JobStatus.COMPLETED:
            raise FailedPrecondition(f"job {job.id!r} has completed; update its schedule first")
        if job.status is JobStatus.ACTIVE:
            return job
        now = self._now()
        resumed = await self.store.replace_job(
            job.changed(now, status=JobStatus.ACTIVE, pause_note=""), job.version
        )
        log.info("job resumed", extra={"job_id": job.id})
        return resumed

    async def delete_job(self, job_id: str) -> bool:
        job_id = self._job_id(job_id)
        if not await self.store.delete_job(job_id):
            raise NotFound(f"job {job_id!r} not found")
        log.info("job deleted", extra={"job_id": job_id})
        return True

    # Runs.
    async def execute_now(
        self, job_id: str, overrides: Mapping[str, Any] | None = None, request_id: str = ""
    ) -> Execution:
        """Record a MANUAL run and publish it; OK only once the broker confirmed the publish."""
        job_id = self._job_id(job_id)
        request_id = validate_request_id(request_id)
        params = self._parameters(overrides or {})
        job = await self.store.get_job(job_id)
        if self.dispatcher is None:
            raise FailedPrecondition("no worker engine configured: ExecuteJobNow needs the engine")
        now = self._now()
        execution_id = new_execution_id()
        execution = Execution(
            id=execution_id,
            job_id=job.id,
            job_name=job.name,
            trigger=Trigger.MANUAL,
            run_key=manual_run_key(job.id, request_id, execution_id),
            status=ExecutionStatus.PENDING,
            queue=MANUAL_QUEUE,
            queued_at=now,
            parameters=merge_overrides(job.parameters, params),
            request_id=request_id,
            updated_at=now,
        )
        if not await self.store.insert_execution(execution):
            existing = await self.store.find_execution_by_run_key(execution.run_key)
            if existing is None:  # deleted by retention between the two calls
                raise FailedPrecondition("request_id was used by a run that no longer exists")
            if existing.enqueued or existing.status not in NOT_ENQUEUED:
                return existing
            # The first attempt's publish failed: this retry of the same request publishes it.
            reopened = await self.store.update_execution(
                existing.id,
                {"status": ExecutionStatus.PENDING, "reason": "", "finished_at": None},
                only_if_status_in=NOT_ENQUEUED,
            )
            if reopened is None:
                return await self.store.get_execution(existing.id)
            execution = reopened
        try:
            task_id = await self.dispatcher.publish(execution, job)
        except Unavailable:
            # Answered UNAVAILABLE: the run must not happen later behind the client's back
            # (nor count as active for the overlap policy). A retry with the same request_id
            # reopens it.
            await self.store.update_execution(
                execution.id,
                {
                    "status": ExecutionStatus.REVOKED,
                    "reason": NOT_ENQUEUED_REASON,
                    "finished_at": self._now(),
                    "updated_at": self._now(),
                },
                only_if_status_in=frozenset({ExecutionStatus.PENDING}),
            )
            raise
        confirmed = await self.store.update_execution(
            execution.id,
            {"enqueued": True, "task_id": task_id, "updated_at": self._now()},
        )
        return confirmed or execution

    async def job_status(self, job_id: str, next_runs: int = 0) -> JobStatusView:
        job = await self.get_job(job_id)
        count = self._preview_count(next_runs, "next_runs")
        upcoming = (
            next_fire_times(job.schedule, max(self._now(), job.next_run_at), count - 1)
            if job.next_run_at is not None
            else []
        )
        if job.next_run_at is not None:
            upcoming = [job.next_run_at, *upcoming][:count]
        flt = ExecutionFilter(job_id=job.id)
        latest = await self.store.list_executions(flt, 1, None)
        active = await self.store.count_executions(flt, ACTIVE_STATUSES)
        return JobStatusView(job, upcoming, latest[0] if latest else None, active)

    async def list_executions(
        self,
        *,
        job_id: str = "",
        status: str = "",
        trigger: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Execution], str]:
        if job_id:
            await self.get_job(job_id)
        flt = ExecutionFilter(
            job_id=job_id or None,
            status=parse_execution_status(status) if status else None,
            trigger=parse_trigger(trigger) if trigger else None,
        )
        size = self._page_size(page_size)
        before = _decode_token(page_token, flt) if page_token else None
        executions = await self.store.list_executions(flt, size + 1, before)
        token = _encode_token(executions[size - 1].id, flt) if len(executions) > size else ""
        return executions[:size], token

    async def get_execution(self, execution_id: str) -> Execution:
        if not execution_id:
            raise InvalidArgument("execution_id", "is required")
        if len(execution_id) > 128:
            raise NotFound(f"execution {execution_id[:40]!r}… not found")
        return await self.store.get_execution(execution_id)

    async def watch(
        self, job_id: str = "", on_ready: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[Execution]:
        if job_id:
            await self.get_job(job_id)
        async for execution in self.feed.follow(job_id or None, on_ready):
            yield execution

    def preview(
        self, spec: ScheduleSpec | None, count: int = 0, after: datetime | None = None
    ) -> SchedulePreview:
        if spec is None:
            raise InvalidArgument("schedule_config", "is required")
        now = self._now()
        normal = self._schedule(spec, now)
        n = self._preview_count(count, "count")
        return SchedulePreview(
            next_fire_times(normal, after or now, n), describe_schedule(normal), normal
        )

    def _now(self) -> datetime:
        return _to_ms(self.clock())

    # Validation helpers.
    def _schedule(self, spec: ScheduleSpec, now: datetime) -> ScheduleSpec:
        return normalize_schedule(spec, now, min_interval_s=self.limits.min_interval_s)

    def _parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        return validate_parameters(
            parameters,
            max_bytes=self.limits.max_parameters_bytes,
            max_depth=self.limits.max_parameters_depth,
        )

    def _what_to_run(
        self, job_type: JobType, target_service: str, target_method: str, task_name: str
    ) -> dict[str, str]:
        """Check the target (a registry name, never a host) or the task a job of this type runs."""
        if job_type is JobType.TASK:
            validate_task_name(task_name)
            if self.task_exists is not None and not self.task_exists(task_name):
                raise InvalidArgument("task_name", f"no registered task named {task_name!r}")
            return {"task_name": task_name, "target_service": "", "target_method": ""}
        if task_name:
            raise InvalidArgument("task_name", "is only for job_type TASK")
        if job_type in TARGETED_TYPES or target_service or target_method:
            if not target_service:
                raise InvalidArgument("target_service", f"is required for job_type {job_type}")
            validate_target_name(target_service)
            if target_service not in self.target_names:
                known = ", ".join(sorted(self.target_names)) or "none configured"
                raise InvalidArgument(
                    "target_service", f"unknown target service {target_service!r}; known: {known}"
                )
            if not target_method:
                raise InvalidArgument("target_method", f"is required for job_type {job_type}")
            validate_method_name(target_method)
        return {"target_service": target_service, "target_method": target_method, "task_name": ""}

    @staticmethod
    def _job_id(job_id: str) -> str:
        if not job_id:
            raise InvalidArgument("job_id", "is required")
        if len(job_id) > 128:
            raise NotFound(f"job {job_id[:40]!r}… not found")
        return job_id

    @staticmethod
    def _label_filter(label: str) -> str:
        key, sep, value = label.partition("=")
        validate_labels({key: value}, "label")
        return label if sep else key

    @staticmethod
    def _page_size(page_size: int) -> int:
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        return page_size or DEFAULT_PAGE_SIZE

    @staticmethod
    def _preview_count(count: int, field_name: str) -> int:
        if count < 0 or count > MAX_PREVIEW:
            raise InvalidArgument(field_name, f"must be between 0 and {MAX_PREVIEW}")
        return count or 5


def _filter_digest(flt: object) -> str:
    return hashlib.sha256(repr(flt).encode()).hexdigest()[:12]


def _encode_token(key: str, flt: object) -> str:
    raw = json.dumps({"k": key, "f": _filter_digest(flt)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str, flt: object) -> str:
    """The key a page token carries; a token from another query or a forged one is refused."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        key, digest = data["k"], data["f"]
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise InvalidArgument("page_token", "is not a token this server issued") from None
    if not isinstance(key, str) or digest != _filter_digest(flt):
        raise InvalidArgument("page_token", "belongs to a different query")
    return key
