"""Broker and result-store faults: RabbitMQ stopped and restarted under ExecuteJobNow load and
across fire times; Redis stopped and restarted empty mid-run. The service (API, worker, beat in
one process) is never restarted; run state lives in MongoDB (DESIGN §4.2, §10)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.fakes.servers import SCRAPER, Behaviour, fake_target_in_thread
from tests.faults import harness
from tests.faults.ledger import check, fire_times, read_executions, settle
from tests.faults.test_workers import execution_keys, scraping_job

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]


def service_settings(scraper_address: str) -> Settings:
    return Settings(
        MONGODB_URL="memory://",
        CELERY_BROKER_URL=harness.BROKER,
        CELERY_RESULT_BACKEND=harness.RESULTS,
        SCRAPER_SERVICE_URL=scraper_address,
        OMNISCHED_PUBLISH_TIMEOUT_S=3,
        OMNISCHED_BEAT_MAX_INTERVAL_S=0.5,
    )


@dataclass
class Answer:
    at: float
    code: grpc.StatusCode
    execution_id: str = ""


class Load(threading.Thread):
    """ExecuteJobNow in a loop on its own channel, every answer recorded with its time."""

    def __init__(self, port: int, job_id: str, pause_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.SchedulerServiceStub(self.channel)
        self.job_id = job_id
        self.pause_s = pause_s
        self.answers: list[Answer] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                reply = self.stub.ExecuteJobNow(
                    pb.ExecuteJobRequest(job_id=self.job_id), timeout=15
                )
                self.answers.append(
                    Answer(time.monotonic(), grpc.StatusCode.OK, reply.execution_id)
                )
            except grpc.RpcError as error:
                self.answers.append(Answer(time.monotonic(), error.code()))
            time.sleep(self.pause_s)

    def stop(self) -> None:
        self.done.set()
        self.join(30)
        self.channel.close()


@pytest.mark.faults
def test_rabbitmq_restarted_under_load_and_across_fire_times(fault_services, fault_table):
    with (
        fake_target_in_thread(SCRAPER, behaviour=Behaviour(delay_s=0.05)) as scraper,
        AppThread(
            service_settings(scraper.address), parts=(Part.GRPC, Part.WORKER, Part.BEAT)
        ) as api,
    ):
        manual = scraping_job(api.stub, "manual under outage")
        scheduled = scraping_job(
            api.stub,
            "every 2 s across outage",
            schedule_config=pb.ScheduleConfig(
                type="interval", config={"every": "2", "period": "seconds"}
            ),
            policies=pb.JobPolicies(overlap="ALLOW", retry_backoff_s=0.1),
        )
        began = datetime.now(UTC)
        load = Load(api.port, manual.id)
        load.start()
        with harness.rabbitmq_restored():
            try:
                time.sleep(2)
                harness.rabbitmq_stop_app()
                down_at, down_wall = time.monotonic(), datetime.now(UTC)
                time.sleep(5)  # at least two fire times of the scheduled job fall in here
                restart_at, restart_wall = time.monotonic(), datetime.now(UTC)
                harness.rabbitmq_start_app()
                up_at = time.monotonic()
                harness.wait_until(
                    lambda: any(
                        a.code == grpc.StatusCode.OK and a.at > up_at for a in list(load.answers)
                    ),
                    60,
                    "an ExecuteJobNow answered OK after the restart",
                )
                time.sleep(2)
            finally:
                load.stop()

        def outage_runs_settled() -> bool:
            runs = api.call(read_executions(api.services.store, [scheduled.id]))
            return all(
                e.status.is_terminal for e in runs if e.scheduled_for and e.scheduled_for < ended
            )

        ended = datetime.now(UTC)
        # The sweep publishes runs claimed during the outage once they are `sweep_delay_s` old.
        harness.wait_until(outage_runs_settled, 60, "the outage's fire times ran")
        api.stub.PauseJob(pb.PauseJobRequest(job_id=scheduled.id), timeout=10)
        ended = datetime.now(UTC)
        first_ok_after = min(
            a.at for a in load.answers if a.code == grpc.StatusCode.OK and a.at > up_at
        )
        executions = api.call(
            settle(lambda: read_executions(api.services.store, [manual.id, scheduled.id]), 90),
            100,
        )
        job = api.call(api.services.store.get_job(scheduled.id))
        accepted = [a.execution_id for a in load.answers if a.code == grpc.StatusCode.OK]
        report = check(
            executions,
            accepted=accepted,
            # The last fire times may still be due when we stop looking.
            expected_fire_times={job.id: fire_times(job, began, ended - timedelta(seconds=3))},
            target_calls=execution_keys(scraper),
        )
        fault_table.record(
            f"RabbitMQ stop_app/start_app under load ({len(load.answers)} calls)",
            report,
            first_ok_after - restart_at,
        )
        codes = {a.code for a in load.answers}
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
        outage = [a for a in load.answers if down_at + 1 < a.at < restart_at]
        assert outage and all(a.code == grpc.StatusCode.UNAVAILABLE for a in outage)
        assert report.lost == [] and report.duplicates == [] and report.missed == [], str(report)
        by_id = {e.id: e for e in executions}
        assert all(by_id[i].status == "SUCCESS" for i in accepted), report
        # Fire times during the outage were claimed, then published after recovery and run
        # (a run claimed as the test paused the job at the end is REVOKED, rightly).
        during = [
            e
            for e in executions
            if e.job_id == job.id and e.scheduled_for and down_wall < e.scheduled_for < restart_wall
        ]
        assert during and all(e.status == "SUCCESS" for e in during), report
        fault_table.record(
            "RabbitMQ down at fire times",
            check(
                [e for e in executions if e.job_id == job.id],
                expected_fire_times={job.id: fire_times(job, began, ended - timedelta(seconds=3))},
            ),
            note=f"{len(during)} fire times during/after outage ran",
        )


def test_redis_restarted_empty_mid_run_keeps_execution_states(fault_services, fault_table):
    with (
        fake_target_in_thread(SCRAPER, behaviour=Behaviour(delay_s=1.0)) as scraper,
        AppThread(service_settings(scraper.address), parts=(Part.GRPC, Part.WORKER)) as api,
    ):
        job = scraping_job(api.stub, "redis restarted mid-run")
        accepted = [
            api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id), timeout=10).execution_id
            for _ in range(6)
        ]
        harness.wait_until(lambda: bool(scraper.calls), 30, "a run in flight")
        with harness.redis_restored():
            harness.redis_shutdown()
            time.sleep(2)
            harness.redis_start()
        restarted = time.monotonic()
        scraper.behaviour.delay_s = 0.05
        accepted += [
            api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id), timeout=10).execution_id
            for _ in range(3)
        ]
        executions = api.call(
            settle(lambda: read_executions(api.services.store, [job.id]), 90), 100
        )
        report = check(executions, accepted=accepted, target_calls=execution_keys(scraper))
        fault_table.record(
            "Redis shutdown nosave + restart mid-run", report, time.monotonic() - restarted
        )
        assert report.lost == [] and report.duplicates == [], report
        assert {e.status for e in executions} == {"SUCCESS"}, report
        status = api.stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id), timeout=10)
        assert status.counters.runs == len(accepted) == status.counters.successes
