"""Property: random requests never get INTERNAL or crash the server, and rejected ones write nothing."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.store.base import ExecutionFilter, JobFilter
from tests.api.server_thread import ServerThread

CLIENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}

text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "job-1", "x" * 300, "\x00", "naïve", "../../etc", "a.b:80"]),
)
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
schedule_keys = st.sampled_from(
    [
        "minute",
        "hour",
        "day_of_week",
        "day_of_month",
        "month_of_year",
        "expression",
        "every",
        "period",
        "start_at",
        "run_at",
        "bogus",
    ]
)
schedule_values = st.one_of(
    text,
    st.sampled_from(
        [
            "*",
            "*/5",
            "0",
            "25",
            "mon-fri",
            "0 8 * * *",
            "@daily",
            "4",
            "hours",
            "2030-01-01T00:00:00Z",
            "2001-01-01T00:00:00",
            "-1",
            "99999999999",
        ]
    ),
)
schedules = st.builds(
    pb.ScheduleConfig,
    type=st.one_of(st.sampled_from(["cron", "interval", "once", "CRON", ""]), text),
    config=st.dictionaries(schedule_keys, schedule_values, max_size=4),
    timezone=st.one_of(st.sampled_from(["", "UTC", "Europe/Berlin", "America/New_York"]), text),
)
policies = st.builds(
    pb.JobPolicies,
    max_retries=st.integers(-5, 200),
    retry_backoff_s=st.floats(allow_nan=True),
    time_limit_s=st.integers(-5, 100_000),
    soft_time_limit_s=st.integers(-5, 100_000),
    overlap=st.sampled_from(["", "SKIP", "ALLOW", "skip", "NEVER"]),
    catchup_window_s=st.integers(-5, 10**9),
    jitter_s=st.integers(-5, 10_000),
)
job_types = st.one_of(
    st.sampled_from(
        ["SCRAPING", "ANALYSIS", "MONITORING", "MAINTENANCE", "MANUAL", "GRPC", "TASK", "scraping"]
    ),
    text,
)
targets = st.one_of(
    st.sampled_from(
        [
            "scraper-service",
            "pricing-service",
            "localhost",
            "127.0.0.1",
            "http://x",
            "169.254.169.254",
            "",
        ]
    ),
    text,
)


def _parameters(value: dict) -> dict:
    return value


create_requests = st.builds(
    pb.CreateScheduledJobRequest,
    name=text,
    job_type=job_types,
    target_service=targets,
    target_method=st.one_of(st.sampled_from(["ScrapeCompetitorPrices", "a.B/C", ""]), text),
    schedule_config=schedules,
    parameters=st.dictionaries(st.text(max_size=8), json_value, max_size=5),
    description=text,
    queue=st.one_of(st.sampled_from(["", "scraping", "manual", "nowhere"]), text),
    policies=st.one_of(st.none(), policies),
    labels=st.dictionaries(text, text, max_size=3),
    task_name=st.one_of(st.just(""), text),
)


@pytest.fixture(scope="module")
def server():
    with ServerThread() as running:
        yield running


def snapshot(server: ServerThread) -> tuple:
    async def read() -> tuple:
        store = server.services.store
        jobs = await store.list_jobs(JobFilter(), 10_000, None)
        executions = await store.list_executions(ExecutionFilter(), 10_000, None)
        return tuple((j.id, j.version) for j in jobs), len(executions)

    return server.call(read())


def call(stub_method, request) -> grpc.RpcError | None:
    try:
        stub_method(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in CLIENT_CODES, (error.code(), error.details())
        return error
    return None


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(request=create_requests)
def test_random_creates_never_internal_and_rejections_write_nothing(server, request):
    before = snapshot(server)
    error = call(server.stub.CreateScheduledJob, request)
    after = snapshot(server)
    if error is not None:
        assert after == before
    else:
        assert len(after[0]) == len(before[0]) + 1


@FUZZ
@given(
    job_id=text,
    schedule=st.one_of(st.none(), schedules),
    description=st.one_of(st.none(), text),
    note=text,
    policy=st.one_of(st.none(), policies),
)
def test_random_changes_to_random_ids_never_internal(
    server, job_id, schedule, description, note, policy
):
    stub = server.stub
    before = snapshot(server)
    update = pb.UpdateScheduledJobRequest(job_id=job_id, schedule_config=schedule, policies=policy)
    if description is not None:
        update.description = description
    errors = [
        call(stub.UpdateScheduledJob, update),
        call(stub.PauseJob, pb.PauseJobRequest(job_id=job_id, note=note)),
        call(stub.ResumeJob, pb.ResumeJobRequest(job_id=job_id)),
        call(stub.GetJobStatus, pb.GetJobStatusRequest(job_id=job_id)),
        call(stub.ExecuteJobNow, pb.ExecuteJobRequest(job_id=job_id, request_id=note)),
        call(stub.ListJobExecutions, pb.ListJobExecutionsRequest(job_id=job_id, page_token=note)),
        call(stub.GetExecution, pb.GetExecutionRequest(execution_id=job_id)),
        call(stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id)),
    ]
    if all(error is not None for error in errors):
        assert snapshot(server) == before


@FUZZ
@given(schedule=schedules, count=st.integers(-10, 2000))
def test_random_previews_never_internal(server, schedule, count):
    call(
        server.stub.PreviewSchedule,
        pb.PreviewScheduleRequest(schedule_config=schedule, count=count),
    )


@FUZZ
@given(
    job_type=text,
    status=text,
    queue=text,
    label=text,
    page_size=st.integers(-10, 10_000),
    page_token=text,
)
def test_random_lists_never_internal(server, job_type, status, queue, label, page_size, page_token):
    call(
        server.stub.ListScheduledJobs,
        pb.ListScheduledJobsRequest(
            job_type=job_type,
            status=status,
            queue=queue,
            label=label,
            page_size=page_size,
            page_token=page_token,
        ),
    )


def test_health_is_still_serving_after_the_fuzzing(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == (
        health_pb2.HealthCheckResponse.SERVING
    )
