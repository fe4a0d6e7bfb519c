import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScheduleConfig(_message.Message):
    __slots__ = ("type", "config", "timezone")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    type: str
    config: _containers.ScalarMap[str, str]
    timezone: str
    def __init__(self, type: _Optional[str] = ..., config: _Optional[_Mapping[str, str]] = ..., timezone: _Optional[str] = ...) -> None: ...

class JobPolicies(_message.Message):
    __slots__ = ("max_retries", "retry_backoff_s", "retry_backoff_max_s", "time_limit_s", "soft_time_limit_s", "overlap", "catchup_window_s", "jitter_s")
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_S_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_MAX_S_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    SOFT_TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    CATCHUP_WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    JITTER_S_FIELD_NUMBER: _ClassVar[int]
    max_retries: int
    retry_backoff_s: float
    retry_backoff_max_s: float
    time_limit_s: int
    soft_time_limit_s: int
    overlap: str
    catchup_window_s: int
    jitter_s: int
    def __init__(self, max_retries: _Optional[int] = ..., retry_backoff_s: _Optional[float] = ..., retry_backoff_max_s: _Optional[float] = ..., time_limit_s: _Optional[int] = ..., soft_time_limit_s: _Optional[int] = ..., overlap: _Optional[str] = ..., catchup_window_s: _Optional[int] = ..., jitter_s: _Optional[int] = ...) -> None: ...

class JobCounters(_message.Message):
    __slots__ = ("runs", "successes", "failures", "skipped", "missed")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    runs: int
    successes: int
    failures: int
    skipped: int
    missed: int
    def __init__(self, runs: _Optional[int] = ..., successes: _Optional[int] = ..., failures: _Optional[int] = ..., skipped: _Optional[int] = ..., missed: _Optional[int] = ...) -> None: ...

class ScheduledJob(_message.Message):
    __slots__ = ("id", "name", "description", "job_type", "target_service", "target_method", "task_name", "parameters", "queue", "schedule_config", "policies", "labels", "status", "pause_note", "built_in", "created_at", "updated_at", "version", "next_run_at", "last_run_at", "counters", "schedule_description")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    TARGET_METHOD_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAUSE_NOTE_FIELD_NUMBER: _ClassVar[int]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    job_type: str
    target_service: str
    target_method: str
    task_name: str
    parameters: _struct_pb2.Struct
    queue: str
    schedule_config: ScheduleConfig
    policies: JobPolicies
    labels: _containers.ScalarMap[str, str]
    status: str
    pause_note: str
    built_in: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: int
    next_run_at: _timestamp_pb2.Timestamp
    last_run_at: _timestamp_pb2.Timestamp
    counters: JobCounters
    schedule_description: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., job_type: _Optional[str] = ..., target_service: _Optional[str] = ..., target_method: _Optional[str] = ..., task_name: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., queue: _Optional[str] = ..., schedule_config: _Optional[_Union[ScheduleConfig, _Mapping]] = ..., policies: _Optional[_Union[JobPolicies, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[str] = ..., pause_note: _Optional[str] = ..., built_in: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., next_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counters: _Optional[_Union[JobCounters, _Mapping]] = ..., schedule_description: _Optional[str] = ...) -> None: ...

class CreateScheduledJobRequest(_message.Message):
    __slots__ = ("name", "job_type", "target_service", "target_method", "schedule_config", "parameters", "description", "queue", "policies", "labels", "task_name", "paused")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    TARGET_METHOD_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    job_type: str
    target_service: str
    target_method: str
    schedule_config: ScheduleConfig
    parameters: _struct_pb2.Struct
    description: str
    queue: str
    policies: JobPolicies
    labels: _containers.ScalarMap[str, str]
    task_name: str
    paused: bool
    def __init__(self, name: _Optional[str] = ..., job_type: _Optional[str] = ..., target_service: _Optional[str] = ..., target_method: _Optional[str] = ..., schedule_config: _Optional[_Union[ScheduleConfig, _Mapping]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., description: _Optional[str] = ..., queue: _Optional[str] = ..., policies: _Optional[_Union[JobPolicies, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., task_name: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class GetScheduledJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListScheduledJobsRequest(_message.Message):
    __slots__ = ("job_type", "status", "queue", "label", "page_size", "page_token")
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_type: str
    status: str
    queue: str
    label: str
    page_size: int
    page_token: str
    def __init__(self, job_type: _Optional[str] = ..., status: _Optional[str] = ..., queue: _Optional[str] = ..., label: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListScheduledJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[ScheduledJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[ScheduledJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Labels(_message.Message):
    __slots__ = ("values",)
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.ScalarMap[str, str]
    def __init__(self, values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateScheduledJobRequest(_message.Message):
    __slots__ = ("job_id", "name", "description", "target_service", "target_method", "schedule_config", "parameters", "queue", "policies", "labels", "task_name", "expected_version")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_SERVICE_FIELD_NUMBER: _ClassVar[int]
    TARGET_METHOD_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    description: str
    target_service: str
    target_method: str
    schedule_config: ScheduleConfig
    parameters: _struct_pb2.Struct
    queue: str
    policies: JobPolicies
    labels: Labels
    task_name: str
    expected_version: int
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., target_service: _Optional[str] = ..., target_method: _Optional[str] = ..., schedule_config: _Optional[_Union[ScheduleConfig, _Mapping]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., queue: _Optional[str] = ..., policies: _Optional[_Union[JobPolicies, _Mapping]] = ..., labels: _Optional[_Union[Labels, _Mapping]] = ..., task_name: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class PauseJobRequest(_message.Message):
    __slots__ = ("job_id", "note")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    note: str
    def __init__(self, job_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ResumeJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("job_id", "deleted")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    deleted: bool
    def __init__(self, job_id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class ExecuteJobRequest(_message.Message):
    __slots__ = ("job_id", "parameters", "request_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    parameters: _struct_pb2.Struct
    request_id: str
    def __init__(self, job_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExecuteJobResponse(_message.Message):
    __slots__ = ("success", "message", "job_id", "execution_id", "task_id", "execution")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    job_id: str
    execution_id: str
    task_id: str
    execution: JobExecution
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., job_id: _Optional[str] = ..., execution_id: _Optional[str] = ..., task_id: _Optional[str] = ..., execution: _Optional[_Union[JobExecution, _Mapping]] = ...) -> None: ...

class GetJobStatusRequest(_message.Message):
    __slots__ = ("job_id", "next_runs")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUNS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    next_runs: int
    def __init__(self, job_id: _Optional[str] = ..., next_runs: _Optional[int] = ...) -> None: ...

class JobStatusResponse(_message.Message):
    __slots__ = ("job_id", "name", "status", "pause_note", "next_run_at", "next_run_times", "last_run_at", "last_execution", "counters", "active_executions", "schedule_description")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAUSE_NOTE_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_TIMES_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    status: str
    pause_note: str
    next_run_at: _timestamp_pb2.Timestamp
    next_run_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    last_run_at: _timestamp_pb2.Timestamp
    last_execution: JobExecution
    counters: JobCounters
    active_executions: int
    schedule_description: str
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., pause_note: _Optional[str] = ..., next_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., last_run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_execution: _Optional[_Union[JobExecution, _Mapping]] = ..., counters: _Optional[_Union[JobCounters, _Mapping]] = ..., active_executions: _Optional[int] = ..., schedule_description: _Optional[str] = ...) -> None: ...

class ExecutionError(_message.Message):
    __slots__ = ("type", "message", "code")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    code: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class JobExecution(_message.Message):
    __slots__ = ("id", "job_id", "job_name", "trigger", "scheduled_for", "status", "attempts", "task_id", "worker", "queue", "queued_at", "started_at", "finished_at", "duration_s", "result", "error", "enqueued", "reason", "parameters", "request_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    job_id: str
    job_name: str
    trigger: str
    scheduled_for: _timestamp_pb2.Timestamp
    status: str
    attempts: int
    task_id: str
    worker: str
    queue: str
    queued_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_s: float
    result: _struct_pb2.Struct
    error: ExecutionError
    enqueued: bool
    reason: str
    parameters: _struct_pb2.Struct
    request_id: str
    def __init__(self, id: _Optional[str] = ..., job_id: _Optional[str] = ..., job_name: _Optional[str] = ..., trigger: _Optional[str] = ..., scheduled_for: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., attempts: _Optional[int] = ..., task_id: _Optional[str] = ..., worker: _Optional[str] = ..., queue: _Optional[str] = ..., queued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_s: _Optional[float] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[_Union[ExecutionError, _Mapping]] = ..., enqueued: _Optional[bool] = ..., reason: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListJobExecutionsRequest(_message.Message):
    __slots__ = ("job_id", "status", "trigger", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: str
    trigger: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[str] = ..., trigger: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[JobExecution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[JobExecution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ("execution_id",)
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    def __init__(self, execution_id: _Optional[str] = ...) -> None: ...

class WatchJobExecutionsRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ExecutionEvent(_message.Message):
    __slots__ = ("execution", "at")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    execution: JobExecution
    at: _timestamp_pb2.Timestamp
    def __init__(self, execution: _Optional[_Union[JobExecution, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewScheduleRequest(_message.Message):
    __slots__ = ("schedule_config", "count", "after")
    SCHEDULE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    schedule_config: ScheduleConfig
    count: int
    after: _timestamp_pb2.Timestamp
    def __init__(self, schedule_config: _Optional[_Union[ScheduleConfig, _Mapping]] = ..., count: _Optional[int] = ..., after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewScheduleResponse(_message.Message):
    __slots__ = ("fire_times", "description", "schedule_config")
    FIRE_TIMES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    fire_times: _containers.RepeatedCompositeFieldContainer[_timestamp_pb2.Timestamp]
    description: str
    schedule_config: ScheduleConfig
    def __init__(self, fire_times: _Optional[_Iterable[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]]] = ..., description: _Optional[str] = ..., schedule_config: _Optional[_Union[ScheduleConfig, _Mapping]] = ...) -> None: ...
