"""Every RPC of the job API: the happy path and each error path, over real gRPC on loopback."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from omnisched_allinone.proto import scheduler_service_pb2 as pb
from tests.api.server_thread import ServerThread

_names = itertools.count()


@pytest.fixture(scope="module")
def server():
    with ServerThread() as running:
        yield running


@pytest.fixture
def stub(server):
    return server.stub


def unique(prefix: str = "job") -> str:
    return f"{prefix}-{next(_names)}"


def create_request(**overrides) -> pb.CreateScheduledJobRequest:
    fields = {
        "name": unique(),
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": pb.ScheduleConfig(type="cron", config={"minute": "*/5"}),
        "parameters": {"competitor_ids": ["amazon"]},
    }
    fields.update(overrides)
    return pb.CreateScheduledJobRequest(**fields)


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(*args)
    return raised.value


def count_jobs(stub) -> int:
    total, token = 0, ""
    while True:
        page = stub.ListScheduledJobs(pb.ListScheduledJobsRequest(page_size=500, page_token=token))
        total += len(page.jobs)
        token = page.next_page_token
        if not token:
            return total


# Create.
def test_create_returns_the_stored_job_with_defaults_filled(stub):
    job = stub.CreateScheduledJob(create_request(description="prices"))
    assert job.id.startswith("job-")
    assert job.status == "ACTIVE"
    assert job.queue == "scraping"
    assert job.version == 1
    assert job.policies.max_retries == 3 and job.policies.overlap == "SKIP"
    assert job.schedule_config.config["expression"] == "*/5 * * * *"
    assert job.schedule_config.timezone == "UTC"
    assert dict(job.parameters) == {"competitor_ids": ["amazon"]}
    assert stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id=job.id)) == job


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"job_type": "MINING"}, "job_type"),
        ({"queue": "nowhere"}, "queue"),
        ({"target_service": "evil.example.com"}, "target_service"),
        ({"target_service": "127.0.0.1:50053"}, "target_service"),
        ({"target_service": "unknown-service"}, "target_service"),
        ({"target_service": ""}, "target_service"),
        ({"target_method": ""}, "target_method"),
        ({"target_method": "Scrape Prices"}, "target_method"),
        ({"schedule_config": pb.ScheduleConfig(type="weekly")}, "schedule_config.type"),
        (
            {"schedule_config": pb.ScheduleConfig(type="cron", config={"hour": "25"})},
            "schedule_config.config.hour",
        ),
        (
            {"schedule_config": pb.ScheduleConfig(type="cron", config={"expression": "bad"})},
            "schedule_config.config.expression",
        ),
        (
            {"schedule_config": pb.ScheduleConfig(type="cron", timezone="Mars/Olympus")},
            "schedule_config.timezone",
        ),
        (
            {"schedule_config": pb.ScheduleConfig(type="interval", config={"every": "0"})},
            "schedule_config.config.every",
        ),
        (
            {
                "schedule_config": pb.ScheduleConfig(
                    type="once", config={"run_at": "2001-01-01T00:00:00Z"}
                )
            },
            "schedule_config.config.run_at",
        ),
        ({"parameters": {"blob": "x" * 70_000}}, "parameters"),
        ({"parameters": {"n": float("nan")}}, "parameters.n"),
        ({"parameters": {"n": 2.0**60}}, "parameters.n"),
        ({"policies": pb.JobPolicies(max_retries=-1)}, "policies.max_retries"),
        ({"policies": pb.JobPolicies(overlap="SOMETIMES")}, "policies.overlap"),
        (
            {"policies": pb.JobPolicies(time_limit_s=10, soft_time_limit_s=20)},
            "policies.soft_time_limit_s",
        ),
        ({"labels": {"Bad Key": "x"}}, "labels.Bad Key"),
        ({"job_type": "TASK", "target_service": "", "target_method": ""}, "task_name"),
    ],
)
def test_create_rejects_each_bad_field_by_name_and_writes_nothing(stub, overrides, field):
    before = count_jobs(stub)
    error = rpc_error(stub.CreateScheduledJob, create_request(**overrides))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:"), error.details()
    assert ("omnisched-field", field) in error.trailing_metadata()
    assert count_jobs(stub) == before


def test_create_without_schedule_is_invalid(stub):
    request = create_request()
    request.ClearField("schedule_config")
    error = rpc_error(stub.CreateScheduledJob, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("schedule_config:")


def test_duplicate_name_is_already_exists(stub):
    name = unique()
    stub.CreateScheduledJob(create_request(name=name))
    error = rpc_error(stub.CreateScheduledJob, create_request(name=name))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("job_type", "queue"),
    [
        ("SCRAPING", "scraping"),
        ("ANALYSIS", "analysis"),
        ("MONITORING", "monitoring"),
        ("MAINTENANCE", "maintenance"),
        ("MANUAL", "manual"),
        ("GRPC", "default_queue"),
    ],
)
def test_job_types_map_to_the_seed_queues(stub, job_type, queue):
    targeted = job_type not in ("MONITORING", "MAINTENANCE")
    request = create_request(
        job_type=job_type.lower(),
        target_service="scraper-service" if targeted else "",
        target_method="ScrapeCompetitorPrices" if targeted else "",
    )
    assert stub.CreateScheduledJob(request).queue == queue


def test_explicit_queue_and_time_zone_are_kept(stub):
    job = stub.CreateScheduledJob(
        create_request(
            queue="manual",
            schedule_config=pb.ScheduleConfig(
                type="cron", config={"hour": "9", "minute": "0"}, timezone="Europe/Berlin"
            ),
        )
    )
    assert job.queue == "manual"
    next_run = job.next_run_at.ToDatetime(tzinfo=UTC)
    assert next_run.hour in (7, 8)  # 09:00 Berlin is 07:00 or 08:00 UTC


def test_create_paused_has_no_next_run(stub):
    job = stub.CreateScheduledJob(create_request(paused=True))
    assert job.status == "PAUSED"
    assert not job.HasField("next_run_at")


# Get / list.
@pytest.mark.parametrize("job_id", ["job-does-not-exist", "x" * 500])
def test_get_unknown_job_is_not_found(stub, job_id):
    error = rpc_error(stub.GetScheduledJob, pb.GetScheduledJobRequest(job_id=job_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_get_without_id_is_invalid(stub):
    error = rpc_error(stub.GetScheduledJob, pb.GetScheduledJobRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("job_id:")


def test_list_filters_and_pages(stub):
    label = unique("team")
    created = [
        stub.CreateScheduledJob(create_request(labels={"team": label}, job_type=kind, **extra))
        for kind, extra in [
            ("SCRAPING", {}),
            ("SCRAPING", {"paused": True}),
            ("MONITORING", {"target_service": "", "target_method": ""}),
        ]
    ]
    by_label = stub.ListScheduledJobs(pb.ListScheduledJobsRequest(label=f"team={label}"))
    assert {job.id for job in by_label.jobs} == {job.id for job in created}
    paused = stub.ListScheduledJobs(
        pb.ListScheduledJobsRequest(label=f"team={label}", status="PAUSED")
    )
    assert [job.id for job in paused.jobs] == [created[1].id]
    monitoring = stub.ListScheduledJobs(
        pb.ListScheduledJobsRequest(
            label=f"team={label}", job_type="MONITORING", queue="monitoring"
        )
    )
    assert [job.id for job in monitoring.jobs] == [created[2].id]

    seen, token = [], ""
    while True:
        page = stub.ListScheduledJobs(
            pb.ListScheduledJobsRequest(label=f"team={label}", page_size=1, page_token=token)
        )
        seen += [job.id for job in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(job.id for job in created)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_token": "garbage!"}, "page_token"),
        ({"status": "SLEEPING"}, "status"),
        ({"job_type": "MINING"}, "job_type"),
        ({"queue": "nowhere"}, "queue"),
    ],
)
def test_list_rejects_bad_filters(stub, request_fields, field):
    error = rpc_error(stub.ListScheduledJobs, pb.ListScheduledJobsRequest(**request_fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}:")


def test_page_token_from_another_query_is_refused(stub):
    for _ in range(3):
        stub.CreateScheduledJob(create_request())
    token = stub.ListScheduledJobs(pb.ListScheduledJobsRequest(page_size=1)).next_page_token
    assert token
    error = rpc_error(
        stub.ListScheduledJobs,
        pb.ListScheduledJobsRequest(page_size=1, page_token=token, status="PAUSED"),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# Update / pause / resume / delete.
def test_update_changes_only_the_fields_set(stub):
    job = stub.CreateScheduledJob(create_request(description="before"))
    updated = stub.UpdateScheduledJob(
        pb.UpdateScheduledJobRequest(
            job_id=job.id,
            description="after",
            schedule_config=pb.ScheduleConfig(
                type="interval", config={"every": "2", "period": "hours"}
            ),
            policies=pb.JobPolicies(max_retries=7),
            labels=pb.Labels(values={"tier": "gold"}),
        )
    )
    assert updated.description == "after"
    assert updated.version == job.version + 1
    assert updated.schedule_config.config["period"] == "hours"
    assert updated.policies.max_retries == 7
    assert updated.policies.time_limit_s == job.policies.time_limit_s
    assert dict(updated.labels) == {"tier": "gold"}
    assert updated.name == job.name and dict(updated.parameters) == dict(job.parameters)


def test_update_with_a_stale_version_is_aborted_and_changes_nothing(stub):
    job = stub.CreateScheduledJob(create_request())
    error = rpc_error(
        stub.UpdateScheduledJob,
        pb.UpdateScheduledJobRequest(job_id=job.id, description="x", expected_version=99),
    )
    assert error.code() == grpc.StatusCode.ABORTED
    assert stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id=job.id)) == job


def test_update_with_a_bad_field_changes_nothing(stub):
    job = stub.CreateScheduledJob(create_request())
    error = rpc_error(
        stub.UpdateScheduledJob,
        pb.UpdateScheduledJobRequest(
            job_id=job.id,
            description="changed",
            schedule_config=pb.ScheduleConfig(type="cron", config={"minute": "61"}),
        ),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id=job.id)) == job


def test_update_onto_another_name_is_already_exists(stub):
    first = stub.CreateScheduledJob(create_request())
    second = stub.CreateScheduledJob(create_request())
    error = rpc_error(
        stub.UpdateScheduledJob, pb.UpdateScheduledJobRequest(job_id=second.id, name=first.name)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


def test_pause_and_resume(stub):
    job = stub.CreateScheduledJob(create_request())
    paused = stub.PauseJob(pb.PauseJobRequest(job_id=job.id, note="maintenance window"))
    assert paused.status == "PAUSED" and paused.pause_note == "maintenance window"
    assert not paused.HasField("next_run_at")
    assert stub.PauseJob(pb.PauseJobRequest(job_id=job.id, note="maintenance window")) == paused
    resumed = stub.ResumeJob(pb.ResumeJobRequest(job_id=job.id))
    assert resumed.status == "ACTIVE" and resumed.pause_note == ""
    assert resumed.next_run_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC) - timedelta(seconds=1)


@pytest.mark.parametrize("method", ["PauseJob", "ResumeJob", "DeleteJob", "GetJobStatus"])
def test_unknown_job_is_not_found_everywhere(stub, method):
    request_type = {
        "PauseJob": pb.PauseJobRequest,
        "ResumeJob": pb.ResumeJobRequest,
        "DeleteJob": pb.DeleteJobRequest,
        "GetJobStatus": pb.GetJobStatusRequest,
    }[method]
    error = rpc_error(getattr(stub, method), request_type(job_id="job-missing"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_delete_removes_the_job(stub):
    job = stub.CreateScheduledJob(create_request())
    assert stub.DeleteJob(pb.DeleteJobRequest(job_id=job.id)).deleted
    error = rpc_error(stub.GetScheduledJob, pb.GetScheduledJobRequest(job_id=job.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND


# Status, executions, preview.
def test_status_of_a_new_job(stub):
    job = stub.CreateScheduledJob(create_request())
    status = stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id, next_runs=3))
    assert status.job_id == job.id and status.status == "ACTIVE"
    assert len(status.next_run_times) == 3
    times = [t.ToDatetime() for t in status.next_run_times]
    assert times == sorted(times) and all(t.minute % 5 == 0 for t in times)
    assert not status.HasField("last_execution")
    assert status.counters.runs == 0


def test_executions_of_a_new_job_are_empty(stub):
    job = stub.CreateScheduledJob(create_request())
    page = stub.ListJobExecutions(pb.ListJobExecutionsRequest(job_id=job.id))
    assert list(page.executions) == [] and page.next_page_token == ""


def test_unknown_execution_is_not_found(stub):
    error = rpc_error(stub.GetExecution, pb.GetExecutionRequest(execution_id="exe-nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_execute_now_without_an_engine_is_failed_precondition(stub):
    job = stub.CreateScheduledJob(create_request())
    error = rpc_error(stub.ExecuteJobNow, pb.ExecuteJobRequest(job_id=job.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no worker engine configured" in error.details()


def test_preview_schedule(stub):
    preview = stub.PreviewSchedule(
        pb.PreviewScheduleRequest(
            schedule_config=pb.ScheduleConfig(type="cron", config={"expression": "0 8 * * 1-5"}),
            count=4,
        )
    )
    times = [t.ToDatetime() for t in preview.fire_times]
    assert len(times) == 4 and all(t.hour == 8 and t.weekday() < 5 for t in times)
    assert preview.schedule_config.config["expression"] == "0 8 * * 1-5"
    assert preview.description


def test_preview_rejects_bad_counts(stub):
    error = rpc_error(
        stub.PreviewSchedule,
        pb.PreviewScheduleRequest(schedule_config=pb.ScheduleConfig(type="cron"), count=1000),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("count:")


# Health and reflection.
def test_health_is_serving(server):
    health = health_pb2_grpc.HealthStub(server.channel)
    for service in ("", "omnisched.v1.SchedulerService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_scheduler_service(server):
    reflection = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    answers = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for answer in answers for s in answer.list_services_response.service}
    assert {"omnisched.v1.SchedulerService", "grpc.health.v1.Health"} <= names


def test_oversized_messages_are_refused_without_harm(server):
    with ServerThread(max_message_bytes=64 * 1024) as small:
        error = rpc_error(small.stub.CreateScheduledJob, create_request(description="x" * 100_000))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert count_jobs(small.stub) == 0
