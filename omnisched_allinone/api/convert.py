"""Proto ↔ domain, in one place.

Requests become plain values for `JobService`; domain objects become response messages. Nothing
here validates business rules: that is the service's job, so the HTTP face gets the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from omnisched_allinone.core.executions import Execution
from omnisched_allinone.core.jobs import Job
from omnisched_allinone.core.policies import JobPolicies
from omnisched_allinone.core.schedules import ScheduleSpec, describe_schedule
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.service import JobChanges, JobDraft, JobStatusView, SchedulePreview

_POLICY_OPTIONALS = (
    "max_retries",
    "retry_backoff_s",
    "retry_backoff_max_s",
    "time_limit_s",
    "soft_time_limit_s",
    "catchup_window_s",
    "jitter_s",
)


# Requests → plain values.
def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as Python values, NaN and infinities kept so the service can name them.

    (json_format would raise on them, which would surface as INTERNAL.)
    """
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)


def schedule_from_proto(config: pb.ScheduleConfig) -> ScheduleSpec:
    return ScheduleSpec(
        type=config.type.strip().lower(),
        config=dict(config.config),
        timezone=config.timezone or "UTC",
    )


def policies_from_proto(policies: pb.JobPolicies) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(policies, name) for name in _POLICY_OPTIONALS if policies.HasField(name)
    }
    if policies.overlap:
        values["overlap"] = policies.overlap
    return values


def draft_from_create(request: pb.CreateScheduledJobRequest) -> JobDraft:
    return JobDraft(
        name=request.name,
        job_type=request.job_type,
        schedule=schedule_from_proto(request.schedule_config)
        if request.HasField("schedule_config")
        else None,
        target_service=request.target_service,
        target_method=request.target_method,
        task_name=request.task_name,
        parameters=struct_to_dict(request.parameters),
        description=request.description,
        queue=request.queue,
        policies=policies_from_proto(request.policies),
        labels=dict(request.labels),
        paused=request.paused,
    )


def changes_from_update(request: pb.UpdateScheduledJobRequest) -> JobChanges:
    def optional(name: str) -> Any:
        return getattr(request, name) if request.HasField(name) else None

    return JobChanges(
        name=optional("name"),
        description=optional("description"),
        target_service=optional("target_service"),
        target_method=optional("target_method"),
        task_name=optional("task_name"),
        schedule=schedule_from_proto(request.schedule_config)
        if request.HasField("schedule_config")
        else None,
        parameters=struct_to_dict(request.parameters) if request.HasField("parameters") else None,
        queue=optional("queue"),
        policies=policies_from_proto(request.policies) if request.HasField("policies") else None,
        labels=dict(request.labels.values) if request.HasField("labels") else None,
        expected_version=optional("expected_version"),
    )


def datetime_from_proto(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


# Domain → responses.
def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def _struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


def schedule_to_proto(spec: ScheduleSpec) -> pb.ScheduleConfig:
    return pb.ScheduleConfig(type=spec.type, config=dict(spec.config), timezone=spec.timezone)


def policies_to_proto(policies: JobPolicies) -> pb.JobPolicies:
    values = policies.to_dict()
    values["overlap"] = str(values["overlap"])
    return pb.JobPolicies(**values)


def job_to_proto(job: Job) -> pb.ScheduledJob:
    return pb.ScheduledJob(
        id=job.id,
        name=job.name,
        description=job.description,
        job_type=str(job.job_type),
        target_service=job.target_service,
        target_method=job.target_method,
        task_name=job.task_name,
        parameters=_struct(job.parameters),
        queue=job.queue,
        schedule_config=schedule_to_proto(job.schedule),
        policies=policies_to_proto(job.policies),
        labels=dict(job.labels),
        status=str(job.status),
        pause_note=job.pause_note,
        built_in=job.built_in,
        created_at=_ts(job.created_at),
        updated_at=_ts(job.updated_at),
        version=job.version,
        next_run_at=_ts(job.next_run_at),
        last_run_at=_ts(job.last_run_at),
        counters=pb.JobCounters(
            runs=job.counters.runs,
            successes=job.counters.successes,
            failures=job.counters.failures,
            skipped=job.counters.skipped,
            missed=job.counters.missed,
        ),
        schedule_description=describe_schedule(job.schedule),
    )


def execution_to_proto(execution: Execution) -> pb.JobExecution:
    error = execution.error
    return pb.JobExecution(
        id=execution.id,
        job_id=execution.job_id,
        job_name=execution.job_name,
        trigger=str(execution.trigger),
        scheduled_for=_ts(execution.scheduled_for),
        status=str(execution.status),
        attempts=execution.attempts,
        task_id=execution.task_id,
        worker=execution.worker,
        queue=execution.queue,
        queued_at=_ts(execution.queued_at),
        started_at=_ts(execution.started_at),
        finished_at=_ts(execution.finished_at),
        duration_s=execution.duration_s,
        result=_struct(execution.result),
        error=pb.ExecutionError(type=error.type, message=error.message, code=error.code)
        if error
        else None,
        enqueued=execution.enqueued,
        reason=execution.reason,
        parameters=_struct(execution.parameters),
        request_id=execution.request_id,
    )


def status_to_proto(view: JobStatusView) -> pb.JobStatusResponse:
    job = view.job
    return pb.JobStatusResponse(
        job_id=job.id,
        name=job.name,
        status=str(job.status),
        pause_note=job.pause_note,
        next_run_at=_ts(job.next_run_at),
        next_run_times=[_ts(t) for t in view.next_run_times],
        last_run_at=_ts(job.last_run_at),
        last_execution=execution_to_proto(view.last_execution) if view.last_execution else None,
        counters=job_to_proto(job).counters,
        active_executions=view.active_executions,
        schedule_description=describe_schedule(job.schedule),
    )


def preview_to_proto(preview: SchedulePreview) -> pb.PreviewScheduleResponse:
    return pb.PreviewScheduleResponse(
        fire_times=[_ts(t) for t in preview.fire_times],
        description=preview.description,
        schedule_config=schedule_to_proto(preview.schedule),
    )


def event_to_proto(execution: Execution) -> pb.ExecutionEvent:
    return pb.ExecutionEvent(
        execution=execution_to_proto(execution),
        at=_ts(execution.updated_at or datetime.now(UTC)),
    )
