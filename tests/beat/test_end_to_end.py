"""End to end with the real RabbitMQ and Redis: a job created over gRPC fires at its times."""

from __future__ import annotations

import itertools
import time

import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread


def runs(stub, job_id: str) -> list[pb.JobExecution]:
    return list(
        stub.ListJobExecutions(pb.ListJobExecutionsRequest(job_id=job_id, page_size=500)).executions
    )


def wait_for(predicate, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message)


@pytest.mark.slow
def test_an_interval_job_runs_repeatedly_stops_when_paused_and_runs_again_when_resumed(
    rabbitmq, redis_url
):
    settings = Settings(
        MONGODB_URL="memory://", CELERY_BROKER_URL=rabbitmq, CELERY_RESULT_BACKEND=redis_url
    )
    with AppThread(settings, parts=(Part.GRPC, Part.WORKER, Part.BEAT)) as service:
        stub = service.stub
        job = stub.CreateScheduledJob(
            pb.CreateScheduledJobRequest(
                name="every-two-seconds",
                job_type="MAINTENANCE",
                schedule_config=pb.ScheduleConfig(
                    type="interval", config={"every": "2", "period": "seconds"}
                ),
            )
        )
        wait_for(
            lambda: sum(r.status == "SUCCESS" for r in runs(stub, job.id)) >= 2,
            15,
            "the job did not run twice",
        )
        executions = runs(stub, job.id)
        assert all(r.trigger == "SCHEDULED" for r in executions)
        fire_times = sorted(r.scheduled_for.ToDatetime() for r in executions)
        assert len(set(fire_times)) == len(fire_times)  # once per fire time
        assert all((b - a).total_seconds() == 2 for a, b in itertools.pairwise(fire_times))

        stub.PauseJob(pb.PauseJobRequest(job_id=job.id))
        paused_at = time.monotonic()
        count = len(runs(stub, job.id))
        time.sleep(5)
        after_pause = runs(stub, job.id)
        assert len(after_pause) == count, "a run started after the pause returned"
        assert time.monotonic() - paused_at >= 5

        stub.ResumeJob(pb.ResumeJobRequest(job_id=job.id))
        wait_for(
            lambda: len(runs(stub, job.id)) >= count + 2, 15, "the job did not run after resume"
        )
        status = stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id))
        assert status.counters.runs >= count + 1
        assert status.counters.missed == 0
