"""A small typed client of the job API: one method per RPC, gRPC errors turned into `ApiError`.

Blocking (grpc's synchronous channel), because its callers are a CLI and scripts. It knows nothing
about Click or terminals; `jobs_cli` renders what it returns.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from omnisched_allinone.core.executions import TERMINAL_STATUSES
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc

DEFAULT_SERVER = "localhost:50054"
FIELD_METADATA_KEY = "omnisched-field"

T = TypeVar("T")


class ApiError(Exception):
    """A failed call: the gRPC status code, the server's message and, for INVALID_ARGUMENT, the
    request field the server named in its trailing metadata."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ApiError:
        code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = (error.details() if isinstance(error, grpc.Call) else "") or ""
        field = ""
        if isinstance(error, grpc.Call):
            for key, value in error.trailing_metadata() or ():
                if key == FIELD_METADATA_KEY:
                    field = value if isinstance(value, str) else value.decode()
        return cls(code, details, field)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS channel: the CA to trust and, for mutual TLS, our certificate and key."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca),
            private_key=read(self.key),
            certificate_chain=read(self.cert),
        )


class SchedulerClient:
    def __init__(
        self,
        server: str = DEFAULT_SERVER,
        *,
        timeout_s: float = 10.0,
        token: str = "",
        tls: TlsFiles | None = None,
    ) -> None:
        self.server = server
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self._channel = (
            grpc.secure_channel(server, tls.credentials())
            if tls is not None
            else grpc.insecure_channel(server)
        )
        self._stub = pb_grpc.SchedulerServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SchedulerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any) -> T:
        try:
            return method(request, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as error:
            raise ApiError.from_rpc_error(error) from None

    # Jobs.
    def create_job(self, request: pb.CreateScheduledJobRequest) -> pb.ScheduledJob:
        return self._call(self._stub.CreateScheduledJob, request)

    def get_job(self, job_id: str) -> pb.ScheduledJob:
        return self._call(self._stub.GetScheduledJob, pb.GetScheduledJobRequest(job_id=job_id))

    def list_jobs(self, request: pb.ListScheduledJobsRequest) -> pb.ListScheduledJobsResponse:
        return self._call(self._stub.ListScheduledJobs, request)

    def list_all_jobs(self, request: pb.ListScheduledJobsRequest) -> pb.ListScheduledJobsResponse:
        """Every page of `request`'s query, as one response with no next page."""
        merged = pb.ListScheduledJobsResponse()
        page_request = pb.ListScheduledJobsRequest()
        page_request.CopyFrom(request)
        while True:
            page = self.list_jobs(page_request)
            merged.jobs.extend(page.jobs)
            if not page.next_page_token:
                return merged
            page_request.page_token = page.next_page_token

    def update_job(self, request: pb.UpdateScheduledJobRequest) -> pb.ScheduledJob:
        return self._call(self._stub.UpdateScheduledJob, request)

    def pause_job(self, job_id: str, note: str = "") -> pb.ScheduledJob:
        return self._call(self._stub.PauseJob, pb.PauseJobRequest(job_id=job_id, note=note))

    def resume_job(self, job_id: str) -> pb.ScheduledJob:
        return self._call(self._stub.ResumeJob, pb.ResumeJobRequest(job_id=job_id))

    def delete_job(self, job_id: str) -> pb.DeleteJobResponse:
        return self._call(self._stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id))

    def job_status(self, job_id: str, next_runs: int = 0) -> pb.JobStatusResponse:
        return self._call(
            self._stub.GetJobStatus, pb.GetJobStatusRequest(job_id=job_id, next_runs=next_runs)
        )

    def preview(self, request: pb.PreviewScheduleRequest) -> pb.PreviewScheduleResponse:
        return self._call(self._stub.PreviewSchedule, request)

    # Executions.
    def execute_now(self, request: pb.ExecuteJobRequest) -> pb.ExecuteJobResponse:
        return self._call(self._stub.ExecuteJobNow, request)

    def get_execution(self, execution_id: str) -> pb.JobExecution:
        return self._call(
            self._stub.GetExecution, pb.GetExecutionRequest(execution_id=execution_id)
        )

    def list_executions(
        self, request: pb.ListJobExecutionsRequest, limit: int
    ) -> pb.ListJobExecutionsResponse:
        """The newest `limit` executions matching `request`, following pages as needed; the
        answer's next_page_token continues after the last one returned."""
        merged = pb.ListJobExecutionsResponse()
        page_request = pb.ListJobExecutionsRequest()
        page_request.CopyFrom(request)
        while len(merged.executions) < limit:
            page_request.page_size = min(limit - len(merged.executions), 500)
            page = self._call(self._stub.ListJobExecutions, page_request)
            merged.executions.extend(page.executions)
            merged.next_page_token = page.next_page_token
            if not page.next_page_token:
                break
            page_request.page_token = page.next_page_token
        return merged

    def watch(self, job_id: str = "") -> Generator[pb.ExecutionEvent, None, None]:
        """Execution events from now on, until the caller stops iterating (the stream is then
        cancelled). No deadline: a watch lasts as long as its caller wants."""
        call = self._stub.WatchJobExecutions(
            pb.WatchJobExecutionsRequest(job_id=job_id), metadata=self._metadata
        )
        try:
            yield from call
        except grpc.RpcError as error:
            raise ApiError.from_rpc_error(error) from None
        finally:
            call.cancel()

    def wait_for_execution(
        self,
        execution: pb.JobExecution,
        *,
        on_change: Callable[[pb.JobExecution], None] | None = None,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> pb.JobExecution:
        """Follow `execution` until it is terminal; `on_change` sees each new status.

        Events come from WatchJobExecutions. A watch only sees changes recorded after it started,
        and there is no signal for "started", so while no event arrives the execution is also
        read directly every `poll_s`: a change made before the watch began is not waited for
        forever. Raises TimeoutError after `timeout_s`.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        events: queue.Queue[pb.ExecutionEvent | ApiError | None] = queue.Queue()
        call = self._stub.WatchJobExecutions(
            pb.WatchJobExecutionsRequest(job_id=execution.job_id), metadata=self._metadata
        )
        reader = threading.Thread(target=_drain, args=(call, events), daemon=True)
        reader.start()
        last_status = execution.status
        latest = execution
        try:
            latest = self.get_execution(execution.id)
            while True:
                if latest.status != last_status:
                    last_status = latest.status
                    if on_change is not None:
                        on_change(latest)
                if latest.status in TERMINAL_STATUSES:
                    return latest
                wait_s = poll_s
                if deadline is not None:
                    wait_s = min(wait_s, deadline - time.monotonic())
                    if wait_s <= 0:
                        raise TimeoutError(
                            f"execution {execution.id} still {latest.status} after {timeout_s}s"
                        )
                try:
                    item = events.get(timeout=wait_s)
                except queue.Empty:
                    latest = self.get_execution(execution.id)
                    continue
                if isinstance(item, pb.ExecutionEvent):
                    if item.execution.id == execution.id:
                        latest = item.execution
                elif item is None or isinstance(item, ApiError):
                    # The stream ended; polling alone still gets us there.
                    latest = self.get_execution(execution.id)
        finally:
            call.cancel()
            reader.join(1.0)


def _drain(call: Any, events: queue.Queue[pb.ExecutionEvent | ApiError | None]) -> None:
    try:
        for event in call:
            events.put(event)
        events.put(None)
    except grpc.RpcError as error:
        events.put(ApiError.from_rpc_error(error))
