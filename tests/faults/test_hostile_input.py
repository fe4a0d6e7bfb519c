"""Hostile input, RPC by RPC: edge-case messages and metadata never get INTERNAL (or UNKNOWN),
never crash the server, write nothing when rejected, and health stays SERVING (DESIGN §4.5).
Random messages are fuzzed with hypothesis in tests/api/test_fuzz.py; this is the table of the
edges a fuzzer rarely finds."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from omnisched_allinone.proto import scheduler_service_pb2 as pb
from tests.api.server_thread import ServerThread
from tests.api.test_security import snapshot

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
HUGE = "x" * 1_000_000


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


def cron(expression: str, timezone: str = "UTC") -> pb.ScheduleConfig:
    return pb.ScheduleConfig(type="cron", config={"expression": expression}, timezone=timezone)


def create(**fields) -> pb.CreateScheduledJobRequest:
    values = {
        "name": "hostile",
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": cron("0 8 * * *"),
    }
    values.update(fields)
    request = pb.CreateScheduledJobRequest()
    for key, value in values.items():
        if key == "parameters":
            request.parameters.update(value)
        elif isinstance(value, pb.ScheduleConfig | pb.JobPolicies):
            getattr(request, key).CopyFrom(value)
        elif isinstance(value, dict):
            getattr(request, key).update(value)
        else:
            setattr(request, key, value)
    return request


def struct(values: dict) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(values)
    return result


CREATES = {
    "huge name": create(name=HUGE),
    "huge description": create(description=HUGE),
    "over the message limit": create(description="y" * (5 * 1024 * 1024)),
    "deep parameters": create(parameters=nested(40)),
    "wide parameters": create(parameters={f"k{i}": i for i in range(20_000)}),
    "NaN parameter": create(parameters={"x": math.nan}),
    "infinite parameter": create(parameters={"x": -math.inf}),
    "integer past 2^53": create(parameters={"x": float(2**53 + 2)}),
    "bad timezone": create(schedule_config=cron("0 8 * * *", "Mars/Olympus_Mons")),
    "path timezone": create(schedule_config=cron("0 8 * * *", "../../../etc/localtime")),
    "NUL timezone": create(schedule_config=cron("0 8 * * *", "UTC\x00")),
    "cron 60th minute": create(schedule_config=cron("60 * * * *")),
    "cron step 0": create(schedule_config=cron("*/0 * * * *")),
    "cron never fires (31 Feb)": create(schedule_config=cron("0 0 31 2 *")),
    "cron @reboot": create(schedule_config=cron("@reboot")),
    "cron six fields": create(schedule_config=cron("0 0 0 * * *")),
    "cron huge range": create(schedule_config=cron("0-99999999999 * * * *")),
    "interval of zero": create(
        schedule_config=pb.ScheduleConfig(type="interval", config={"every": "0"})
    ),
    "interval of 1e308 days": create(
        schedule_config=pb.ScheduleConfig(
            type="interval", config={"every": "1e308", "period": "days"}
        )
    ),
    "once in year 9999": create(
        schedule_config=pb.ScheduleConfig(type="once", config={"run_at": "9999-12-31T23:59:59"})
    ),
    "once in year 0": create(
        schedule_config=pb.ScheduleConfig(type="once", config={"run_at": "0000-01-01T00:00:00"})
    ),
    "huge policies": create(
        policies=pb.JobPolicies(
            max_retries=2**31 - 1, time_limit_s=2**31 - 1, catchup_window_s=2**31 - 1
        )
    ),
    "negative policies": create(
        policies=pb.JobPolicies(max_retries=-1, time_limit_s=-1, retry_backoff_s=-math.inf)
    ),
    "NaN backoff": create(policies=pb.JobPolicies(retry_backoff_s=math.nan)),
    "label flood": create(labels={f"k{i}": "v" for i in range(1000)}),
    "control characters in name": create(name="\x00\x1b[31mred\u202e"),
    "lone surrogate-free odd unicode": create(name="\U0010ffff" * 10),
    "task name for a targeted job": create(task_name="os.system"),
    "task job with a dunder task": create(job_type="TASK", task_name="__import__"),
}

RANDOM_IDS = ["", " ", "job-" + "9" * 200, "../../etc/passwd", "\x00", "job-1\n", "*", "$ne"]


@pytest.fixture(scope="module")
def server():
    with ServerThread() as running:
        yield running


def call(server, method, request, metadata=()) -> grpc.StatusCode:
    try:
        reply = method(request, timeout=15, metadata=metadata)
        if hasattr(reply, "__next__"):  # a stream: read until it ends or the deadline
            for _ in reply:
                pass
    except grpc.RpcError as error:
        assert error.code() not in NEVER, (error.code(), error.details())
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("case", list(CREATES), ids=list(CREATES))
def test_edge_case_creates_are_refused_cleanly_and_write_nothing(server, case):
    before = snapshot(server)
    code = call(server, server.stub.CreateScheduledJob, CREATES[case])
    if code != grpc.StatusCode.OK:
        assert snapshot(server) == before
        assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    else:  # a legal edge (a once-job in 9999, say): clean it up for the next case
        jobs = server.stub.ListScheduledJobs(pb.ListScheduledJobsRequest(), timeout=10).jobs
        for job in jobs:
            server.stub.DeleteJob(pb.DeleteJobRequest(job_id=job.id), timeout=10)


@pytest.mark.parametrize("job_id", RANDOM_IDS)
def test_every_rpc_with_random_ids_and_edge_fields(server, job_id):
    stub = server.stub
    before = snapshot(server)
    requests = [
        (stub.GetScheduledJob, pb.GetScheduledJobRequest(job_id=job_id)),
        (stub.UpdateScheduledJob, pb.UpdateScheduledJobRequest(job_id=job_id, description="d")),
        (stub.PauseJob, pb.PauseJobRequest(job_id=job_id, note=HUGE[:10_000])),
        (stub.ResumeJob, pb.ResumeJobRequest(job_id=job_id)),
        (stub.DeleteJob, pb.DeleteJobRequest(job_id=job_id)),
        (
            stub.ExecuteJobNow,
            pb.ExecuteJobRequest(
                job_id=job_id, request_id=HUGE[:5000], parameters=struct({"x": math.inf})
            ),
        ),
        (stub.GetJobStatus, pb.GetJobStatusRequest(job_id=job_id, next_runs=2**31 - 1)),
        (stub.ListJobExecutions, pb.ListJobExecutionsRequest(job_id=job_id, page_size=-1)),
        (stub.GetExecution, pb.GetExecutionRequest(execution_id=job_id)),
        (stub.WatchJobExecutions, pb.WatchJobExecutionsRequest(job_id=job_id or "job-none")),
        (stub.ListScheduledJobs, pb.ListScheduledJobsRequest(page_token=job_id, label=job_id)),
        (stub.PreviewSchedule, pb.PreviewScheduleRequest(schedule_config=cron(job_id))),
    ]
    for method, request in requests:
        call(server, method, request)
    assert snapshot(server) == before


def test_page_tokens_from_elsewhere_and_forged_are_invalid_argument(server):
    stub = server.stub
    for i in range(3):
        stub.CreateScheduledJob(create(name=f"paged {i}"), timeout=10)
    page = stub.ListScheduledJobs(pb.ListScheduledJobsRequest(page_size=1), timeout=10)
    assert page.next_page_token
    foreign = [
        (
            stub.ListScheduledJobs,
            pb.ListScheduledJobsRequest(page_token=page.next_page_token, job_type="ANALYSIS"),
        ),
        (stub.ListJobExecutions, pb.ListJobExecutionsRequest(page_token=page.next_page_token)),
        (stub.ListScheduledJobs, pb.ListScheduledJobsRequest(page_token="eyJrIjoxfQ")),
        (stub.ListScheduledJobs, pb.ListScheduledJobsRequest(page_token="%%%not-base64")),
    ]
    for method, request in foreign:
        assert call(server, method, request) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "metadata",
    [
        (("omnisched-junk-bin", b"\xff\xfe\x00\x80"),),
        (("authorization-bin", b"\xc3\x28"),),
        (("authorization", "Bearer " + "z" * 4000),),
        (("x-many", "v"),) * 100,
        (("grpc-timeout-bogus", "1S"),),
    ],
    ids=["invalid-utf8-bin", "invalid-utf8-auth-bin", "long-auth", "many-headers", "odd-key"],
)
def test_odd_metadata_is_ignored_or_refused_never_internal(server, metadata):
    before = snapshot(server)
    call(server, server.stub.ListScheduledJobs, pb.ListScheduledJobsRequest(), metadata)
    call(server, server.stub.CreateScheduledJob, create(name=HUGE[:300]), metadata)
    assert snapshot(server) == before


def test_health_is_serving_after_the_hostile_input(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    answer = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
