"""The gRPC servicer: unpack, call `JobService`, pack. Errors map to status codes in one place."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from omnisched_allinone.api import convert
from omnisched_allinone.api.errors import grpc_code
from omnisched_allinone.core.errors import InvalidArgument, OmnischedError, ResourceExhausted
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.service import JobService

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


async def _abort(context: grpc.aio.ServicerContext, error: OmnischedError) -> None:
    metadata: tuple[tuple[str, str], ...] = ()
    if isinstance(error, InvalidArgument):
        # Metadata values must be printable ASCII; a field path may carry a client's key.
        field = "".join(c if c.isascii() and c.isprintable() else "?" for c in error.field)
        metadata = (("omnisched-field", field[:200]),)
    await context.abort(grpc_code(error), error.message, metadata)


def _unary(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await handler(self, request, context)
        except OmnischedError as error:
            await _abort(context, error)
            raise  # unreachable: abort raises

    return wrapper


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    def __init__(self, service: JobService, *, max_watch_streams: int = 64) -> None:
        self._service = service
        self._max_watch_streams = max_watch_streams
        self._watch_streams = 0

    @_unary
    async def CreateScheduledJob(self, request: pb.CreateScheduledJobRequest, context: Any) -> Any:
        job = await self._service.create_job(convert.draft_from_create(request))
        return convert.job_to_proto(job)

    @_unary
    async def GetScheduledJob(self, request: pb.GetScheduledJobRequest, context: Any) -> Any:
        return convert.job_to_proto(await self._service.get_job(request.job_id))

    @_unary
    async def ListScheduledJobs(self, request: pb.ListScheduledJobsRequest, context: Any) -> Any:
        jobs, token = await self._service.list_jobs(
            job_type=request.job_type,
            status=request.status,
            queue=request.queue,
            label=request.label,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListScheduledJobsResponse(
            jobs=[convert.job_to_proto(job) for job in jobs], next_page_token=token
        )

    @_unary
    async def UpdateScheduledJob(self, request: pb.UpdateScheduledJobRequest, context: Any) -> Any:
        job = await self._service.update_job(request.job_id, convert.changes_from_update(request))
        return convert.job_to_proto(job)

    @_unary
    async def PauseJob(self, request: pb.PauseJobRequest, context: Any) -> Any:
        return convert.job_to_proto(await self._service.pause_job(request.job_id, request.note))

    @_unary
    async def ResumeJob(self, request: pb.ResumeJobRequest, context: Any) -> Any:
        return convert.job_to_proto(await self._service.resume_job(request.job_id))

    @_unary
    async def DeleteJob(self, request: pb.DeleteJobRequest, context: Any) -> Any:
        deleted = await self._service.delete_job(request.job_id)
        return pb.DeleteJobResponse(job_id=request.job_id, deleted=deleted)

    @_unary
    async def ExecuteJobNow(self, request: pb.ExecuteJobRequest, context: Any) -> Any:
        execution = await self._service.execute_now(
            request.job_id,
            convert.struct_to_dict(request.parameters) if request.HasField("parameters") else None,
            request.request_id,
        )
        return pb.ExecuteJobResponse(
            success=True,
            message="run enqueued",
            job_id=execution.job_id,
            execution_id=execution.id,
            task_id=execution.task_id,
            execution=convert.execution_to_proto(execution),
        )

    @_unary
    async def GetJobStatus(self, request: pb.GetJobStatusRequest, context: Any) -> Any:
        view = await self._service.job_status(request.job_id, request.next_runs)
        return convert.status_to_proto(view)

    @_unary
    async def ListJobExecutions(self, request: pb.ListJobExecutionsRequest, context: Any) -> Any:
        executions, token = await self._service.list_executions(
            job_id=request.job_id,
            status=request.status,
            trigger=request.trigger,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListJobExecutionsResponse(
            executions=[convert.execution_to_proto(e) for e in executions],
            next_page_token=token,
        )

    @_unary
    async def GetExecution(self, request: pb.GetExecutionRequest, context: Any) -> Any:
        execution = await self._service.get_execution(request.execution_id)
        return convert.execution_to_proto(execution)

    @_unary
    async def PreviewSchedule(self, request: pb.PreviewScheduleRequest, context: Any) -> Any:
        preview = self._service.preview(
            convert.schedule_from_proto(request.schedule_config)
            if request.HasField("schedule_config")
            else None,
            request.count,
            convert.datetime_from_proto(request.after) if request.HasField("after") else None,
        )
        return convert.preview_to_proto(preview)

    async def WatchJobExecutions(
        self, request: pb.WatchJobExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ExecutionEvent]:
        try:
            if self._watch_streams >= self._max_watch_streams:
                raise ResourceExhausted(
                    f"at most {self._max_watch_streams} watch streams at once; try again later"
                )
            self._watch_streams += 1
            try:

                async def ready() -> None:
                    # Headers go out once the stream is registered and its starting point fixed:
                    # a client that waits for them misses no later change.
                    await context.send_initial_metadata((("omnisched-watch", "ready"),))

                async for execution in self._service.watch(request.job_id, ready):
                    yield convert.event_to_proto(execution)
            finally:
                self._watch_streams -= 1
        except OmnischedError as error:
            await _abort(context, error)
