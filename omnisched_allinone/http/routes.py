"""The HTTP binding of each RPC: method, path and which request fields the path carries.

This is the one table both the router and the OpenAPI document are built from (what
`google.api.http` annotations would say in the .proto). Request and response types come from the
proto service descriptor, never from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, MethodDescriptor

from omnisched_allinone.proto import scheduler_service_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["SchedulerService"]

# Ids are never empty and carry no "/" or ":" (so `/v1/jobs/{id}:pause` routes unambiguously).
ID_PATTERN = r"[^/:]+"


@dataclass(frozen=True)
class Route:
    rpc: str
    method: str
    path: str
    summary: str
    operation_id: str = ""
    status: int = 200
    # HTTP statuses (besides `status`) this operation may answer; each body is an `Error`.
    errors: tuple[int, ...] = (400, 503)
    stream: bool = False
    # A request body that works (the OpenAPI example: /docs pre-fills it, schemathesis sends it).
    example: Mapping[str, Any] | None = None

    @property
    def rpc_method(self) -> MethodDescriptor:
        return SERVICE.methods_by_name[self.rpc]

    @property
    def request_type(self) -> Descriptor:
        return self.rpc_method.input_type

    @property
    def response_type(self) -> Descriptor:
        return self.rpc_method.output_type

    @property
    def path_fields(self) -> tuple[str, ...]:
        """Request fields bound by the path, in order (`{job_id}` → ``job_id``)."""
        names = []
        for segment in self.path.split("{")[1:]:
            names.append(segment.split("}")[0])
        return tuple(names)

    @property
    def has_body(self) -> bool:
        return self.method in {"POST", "PATCH", "PUT"}

    @property
    def op_id(self) -> str:
        return self.operation_id or self.rpc

    @property
    def starlette_path(self) -> str:
        """The path with the id convertor on each parameter (`{job_id:omnisched_id}`)."""
        path = self.path
        for name in self.path_fields:
            path = path.replace("{" + name + "}", "{" + name + ":omnisched_id}")
        return path


_ID_ERRORS = (400, 404, 503)
_WRITE_ERRORS = (400, 404, 409, 412, 413, 503)

ROUTES: tuple[Route, ...] = (
    Route("ListScheduledJobs", "GET", "/v1/jobs", "List jobs (filters combine with AND; paged)"),
    Route(
        "CreateScheduledJob",
        "POST",
        "/v1/jobs",
        "Create a job",
        status=201,
        errors=(400, 409, 413, 503),
        example={
            "name": "Custom Scraping Job",
            "job_type": "SCRAPING",
            "target_service": "scraper-service",
            "target_method": "ScrapeCompetitorPrices",
            "schedule_config": {"type": "cron", "config": {"hour": "10", "minute": "0"}},
            "parameters": {"competitor_ids": ["amazon"]},
            "description": "Custom job description",
        },
    ),
    Route("GetScheduledJob", "GET", "/v1/jobs/{job_id}", "Get a job", errors=_ID_ERRORS),
    Route(
        "UpdateScheduledJob",
        "PATCH",
        "/v1/jobs/{job_id}",
        "Change the fields that are set",
        errors=_WRITE_ERRORS,
        example={
            "description": "Competitor prices every morning",
            "schedule_config": {
                "type": "cron",
                "config": {"hour": "9", "minute": "30"},
                "timezone": "Europe/Berlin",
            },
        },
    ),
    Route("DeleteJob", "DELETE", "/v1/jobs/{job_id}", "Delete a job", errors=_ID_ERRORS),
    Route(
        "PauseJob",
        "POST",
        "/v1/jobs/{job_id}:pause",
        "Pause a job",
        errors=_WRITE_ERRORS,
        example={"note": "supplier maintenance"},
    ),
    Route(
        "ResumeJob",
        "POST",
        "/v1/jobs/{job_id}:resume",
        "Resume a job (the paused period is not replayed)",
        errors=_WRITE_ERRORS,
    ),
    Route(
        "ExecuteJobNow",
        "POST",
        "/v1/jobs/{job_id}:run",
        "Run a job once now (OK once the broker confirmed the publish)",
        errors=_WRITE_ERRORS,
        example={"parameters": {"competitor_ids": ["amazon"]}, "request_id": "backfill-42"},
    ),
    Route(
        "GetJobStatus",
        "GET",
        "/v1/jobs/{job_id}/status",
        "A job's state, next run times, last execution and counters",
        errors=_ID_ERRORS,
    ),
    Route(
        "ListJobExecutions",
        "GET",
        "/v1/jobs/{job_id}/executions",
        "A job's executions, newest first",
        errors=_ID_ERRORS,
    ),
    Route(
        "ListJobExecutions",
        "GET",
        "/v1/executions",
        "Executions of every job (or of `job_id`), newest first",
        operation_id="ListExecutions",
        errors=_ID_ERRORS,
    ),
    Route(
        "GetExecution",
        "GET",
        "/v1/executions/{execution_id}",
        "Get an execution",
        errors=_ID_ERRORS,
    ),
    Route(
        "WatchJobExecutions",
        "GET",
        "/v1/executions:watch",
        "Server-sent events: one `execution` event per execution state change",
        errors=(400, 404, 429, 503),
        stream=True,
    ),
    Route(
        "PreviewSchedule",
        "POST",
        "/v1/schedules:preview",
        "The next fire times of a schedule",
        errors=(400, 413),
        example={
            "schedule_config": {"type": "cron", "config": {"hour": "10", "minute": "0"}},
            "count": 5,
        },
    ),
)
