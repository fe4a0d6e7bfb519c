"""End to end: ExecuteJobNow → RabbitMQ → a real Celery worker → a fake target → MongoDB records.

The service runs in the test process (threads pool, in-memory store) against the real RabbitMQ and
Redis of this machine; the fake scraper-service is a real gRPC server with reflection on loopback.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import grpc
import pytest

from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.fakes.servers import SCRAPER, Behaviour, fake_target_in_thread, unused_port

TERMINAL = {"SUCCESS", "FAILURE", "SKIPPED", "MISSED", "REVOKED", "TIMED_OUT"}
_names = itertools.count()


@pytest.fixture(scope="module")
def scraper() -> Iterator:
    with fake_target_in_thread(SCRAPER) as target:
        yield target


@pytest.fixture
def behaviour(scraper):
    scraper.behaviour = Behaviour()
    scraper.calls.clear()
    return scraper.behaviour


def service_settings(broker: str, results: str, scraper_address: str, **extra) -> Settings:
    return Settings(
        MONGODB_URL="memory://",
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=results,
        SCRAPER_SERVICE_URL=scraper_address,
        OMNISCHED_TARGETS=f"down-service=127.0.0.1:{unused_port()}",
        **extra,
    )


@pytest.fixture(scope="module")
def service(scraper, request) -> Iterator[AppThread]:
    from tests.conftest import need_service

    need_service("RabbitMQ", "127.0.0.1", 5672)
    need_service("Redis", "127.0.0.1", 6379)
    settings = service_settings(
        "amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:6379/15", scraper.address
    )
    with AppThread(settings) as running:
        yield running


def create_job(stub, **overrides) -> pb.ScheduledJob:
    fields = {
        "name": f"engine-{next(_names)}",
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": pb.ScheduleConfig(type="cron", config={"expression": "0 0 1 1 *"}),
        "parameters": {"competitor_ids": ["amazon", "walmart"], "max_products": 5},
        "policies": pb.JobPolicies(retry_backoff_s=0.1, retry_backoff_max_s=0.2),
    }
    fields.update(overrides)
    return stub.CreateScheduledJob(pb.CreateScheduledJobRequest(**fields))


def wait_terminal(stub, execution_id: str, timeout_s: float = 30.0) -> pb.JobExecution:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        execution = stub.GetExecution(pb.GetExecutionRequest(execution_id=execution_id))
        if execution.status in TERMINAL:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} still {execution.status} after {timeout_s}s")


def test_execute_now_calls_the_target_and_records_success(service, scraper, behaviour):
    job = create_job(service.stub)
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    assert answer.success and answer.execution_id and answer.task_id == answer.execution_id
    assert answer.execution.enqueued and answer.execution.queue == "manual"

    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "SUCCESS", execution.error
    assert execution.attempts == 1 and execution.worker
    assert dict(execution.result)["products_scraped"] == 3
    (call,) = scraper.calls
    assert call.request["competitor_ids"] == ["amazon", "walmart"]
    assert call.request["max_products"] == 5
    assert call.metadata["omnisched-execution-id"] == answer.execution_id

    status = service.stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id))
    assert status.last_execution.id == answer.execution_id
    assert status.counters.runs == 1 and status.counters.successes == 1


def test_parameter_overrides_and_request_id_idempotency(service, scraper, behaviour):
    job = create_job(service.stub)
    request = pb.ExecuteJobRequest(
        job_id=job.id, parameters={"competitor_ids": ["target"]}, request_id="req-1"
    )
    first = service.stub.ExecuteJobNow(request)
    again = service.stub.ExecuteJobNow(request)
    assert again.execution_id == first.execution_id
    wait_terminal(service.stub, first.execution_id)
    assert [c.request["competitor_ids"] for c in scraper.calls] == [["target"]]


def test_transient_failures_are_retried_with_backoff_until_success(service, scraper, behaviour):
    behaviour.transient_failures = 2
    job = create_job(service.stub, policies=pb.JobPolicies(max_retries=3, retry_backoff_s=0.1))
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "SUCCESS"
    assert execution.attempts == 3
    assert len(scraper.calls) == 3


def test_permanent_failure_fails_at_once_with_the_targets_message(service, scraper, behaviour):
    behaviour.permanent_error = "competitor 'nobody' is not known"
    job = create_job(service.stub)
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "FAILURE"
    assert execution.attempts == 1
    assert execution.error.code == "INVALID_ARGUMENT"
    assert "competitor 'nobody' is not known" in execution.error.message
    status = service.stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id))
    assert status.counters.failures == 1


def test_target_down_fails_after_max_retries_with_a_clear_error(service):
    job = create_job(
        service.stub,
        target_service="down-service",
        policies=pb.JobPolicies(max_retries=2, retry_backoff_s=0.1, time_limit_s=5),
    )
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "FAILURE"
    assert execution.attempts == 3
    assert execution.error.code == "UNAVAILABLE"
    assert "down-service" in execution.error.message


def test_a_time_limit_hit_is_timed_out(service, scraper, behaviour):
    behaviour.delay_s = 10
    job = create_job(
        service.stub,
        policies=pb.JobPolicies(time_limit_s=1, soft_time_limit_s=1, max_retries=3),
    )
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "TIMED_OUT"
    assert execution.attempts == 1
    assert execution.duration_s < 5


def test_watch_delivers_pending_started_success_in_order(service, scraper, behaviour):
    job = create_job(service.stub)
    stream = service.stub.WatchJobExecutions(
        pb.WatchJobExecutionsRequest(job_id=job.id), timeout=30
    )
    seen: list[str] = []
    try:
        stream.initial_metadata()  # the server sends it once the watch is registered
        answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
        for event in stream:
            assert event.execution.id == answer.execution_id
            seen.append(event.execution.status)
            if event.execution.status in TERMINAL:
                break
    finally:
        stream.cancel()
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
        "PENDING",
        "STARTED",
        "SUCCESS",
    ]


def test_execute_now_on_a_paused_job_runs_and_on_a_deleted_one_is_not_found(
    service, scraper, behaviour
):
    job = create_job(service.stub)
    service.stub.PauseJob(pb.PauseJobRequest(job_id=job.id))
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    assert wait_terminal(service.stub, answer.execution_id).status == "SUCCESS"
    service.stub.DeleteJob(pb.DeleteJobRequest(job_id=job.id))
    with pytest.raises(grpc.RpcError) as raised:
        service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_monitoring_and_maintenance_jobs_run_their_tasks(service, scraper, behaviour):
    cleanup = create_job(service.stub, job_type="MAINTENANCE", target_service="", target_method="")
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=cleanup.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    assert execution.status == "SUCCESS"
    assert dict(execution.result)["retention_days"] == 30

    health = create_job(service.stub, job_type="MONITORING", target_service="", target_method="")
    answer = service.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=health.id))
    execution = wait_terminal(service.stub, answer.execution_id)
    checks = dict(execution.result)["checks"]
    assert checks["rabbitmq"]["status"] == "up"
    assert checks["redis"]["status"] == "up"
    assert checks["mongodb"]["status"] == "up"
    assert checks["scraper-service"]["status"] == "up"
    assert checks["down-service"]["status"] == "down"
    assert execution.status == "FAILURE" and "down-service" in execution.error.message


def test_broker_down_answers_unavailable_and_records_nothing_as_enqueued(scraper):
    settings = service_settings(
        f"amqp://guest:guest@127.0.0.1:{unused_port()}//",
        "cache+memory://",
        scraper.address,
        OMNISCHED_PUBLISH_TIMEOUT_S=5,
    )
    with AppThread(settings, parts=_api_only()) as api:
        job = create_job(api.stub)
        with pytest.raises(grpc.RpcError) as raised:
            api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id, request_id="r"))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        (execution,) = api.stub.ListJobExecutions(
            pb.ListJobExecutionsRequest(job_id=job.id)
        ).executions
        assert not execution.enqueued
        assert execution.status == "REVOKED" and "not enqueued" in execution.reason


def _api_only():
    from omnisched_allinone.app import Part

    return (Part.GRPC,)


def test_dev_mode_runs_a_job_end_to_end_with_no_servers(scraper):
    settings = Settings(SCRAPER_SERVICE_URL=scraper.address).as_dev()
    scraper.behaviour = Behaviour()
    with AppThread(settings) as dev:
        job = create_job(dev.stub)
        answer = dev.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
        execution = wait_terminal(dev.stub, answer.execution_id)
        assert execution.status == "SUCCESS"
        assert dict(execution.result)["products_scraped"] == 3
