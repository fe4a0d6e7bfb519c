"""Worker faults: prefork children SIGKILLed mid-run under load, a poison job that kills its worker
every time, and a hanging target. Every accepted run ends, once (DESIGN §4.1, §4.2)."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid

import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.fakes.servers import PRICING, SCRAPER, Behaviour, fake_target_in_thread
from tests.faults import harness
from tests.faults.ledger import check, read_executions, settle
from tests.faults.poison_tasks import ARMED_ENV, POISON_TASK

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]


def api_settings(mongo_url: str, database: str, **extra) -> Settings:
    return Settings(
        MONGODB_URL=mongo_url,
        OMNISCHED_MONGODB_DATABASE=database,
        CELERY_BROKER_URL=harness.BROKER,
        CELERY_RESULT_BACKEND=harness.RESULTS,
        OMNISCHED_PUBLISH_TIMEOUT_S=3,
        **extra,
    )


def scraping_job(stub, name: str, **fields) -> pb.ScheduledJob:
    values = {
        "name": name,
        "job_type": "SCRAPING",
        "target_service": "scraper-service",
        "target_method": "ScrapeCompetitorPrices",
        "schedule_config": pb.ScheduleConfig(type="cron", config={"expression": "0 0 1 1 *"}),
        "parameters": {"competitor_ids": ["amazon"]},
        "policies": pb.JobPolicies(retry_backoff_s=0.1, retry_backoff_max_s=0.2),
    }
    values.update(fields)
    return stub.CreateScheduledJob(pb.CreateScheduledJobRequest(**values), timeout=10)


def execution_keys(target) -> list[str]:
    return [call.metadata.get("omnisched-execution-id", "?") for call in list(target.calls)]


@pytest.mark.faults
def test_prefork_children_killed_repeatedly_under_load_every_run_ends_once(
    client_app, mongo_wire_url, fault_table
):
    database = f"fault-kill-{uuid.uuid4().hex[:6]}"
    rng = random.Random(11)
    with fake_target_in_thread(SCRAPER, behaviour=Behaviour(delay_s=0.6)) as scraper:
        env = harness.part_env(mongo_wire_url, database, SCRAPER_SERVICE_URL=scraper.address)
        worker = harness.Part(env, *harness.worker_args("prefork", 2))
        settings = api_settings(mongo_wire_url, database, SCRAPER_SERVICE_URL=scraper.address)
        try:
            harness.wait_until(
                lambda: bool(client_app.control.ping(timeout=0.5)), 60, "worker ready"
            )
            with AppThread(settings, parts=(Part.GRPC,)) as api:
                job = scraping_job(api.stub, "killed worker load")
                accepted = [
                    api.stub.ExecuteJobNow(
                        pb.ExecuteJobRequest(job_id=job.id), timeout=10
                    ).execution_id
                    for _ in range(12)
                ]
                kills = 0
                for _ in range(4):  # kill a child while it is calling the target
                    calls_before = len(scraper.calls)
                    harness.wait_until(
                        lambda n=calls_before: len(scraper.calls) > n, 30, "a run in flight"
                    )
                    children = worker.children()
                    if children:
                        os.kill(rng.choice(children), signal.SIGKILL)
                        kills += 1
                    time.sleep(0.3)
                killed_at = time.monotonic()
                scraper.behaviour.delay_s = 0.05
                executions = api.call(
                    settle(lambda: read_executions(api.services.store, [job.id]), 90), 100
                )
                recovery_s = time.monotonic() - killed_at
                report = check(executions, accepted=accepted, target_calls=execution_keys(scraper))
                fault_table.record(f"worker child SIGKILL x{kills} (12 runs)", report, recovery_s)
                assert kills >= 3
                assert report.lost == [] and report.duplicates == [], (report, worker.output())
                redelivered = [e for e in executions if e.deliveries > 1]
                assert redelivered, report
                keys = execution_keys(scraper)
                for execution in redelivered:
                    # The redelivered run carried the same idempotency key to the target.
                    assert keys.count(execution.id) >= 2 or execution.status != "SUCCESS"
        finally:
            worker.stop()


@pytest.mark.faults
def test_a_poison_job_fails_after_bounded_redeliveries_and_others_keep_flowing(
    client_app, mongo_wire_url, fault_table
):
    database = f"fault-poison-{uuid.uuid4().hex[:6]}"
    with fake_target_in_thread(SCRAPER) as scraper:
        env = harness.part_env(
            mongo_wire_url,
            database,
            SCRAPER_SERVICE_URL=scraper.address,
            OMNISCHED_MAX_REDELIVERIES="2",
            **{ARMED_ENV: "1"},
        )
        worker = harness.Part(
            env, *harness.worker_args("prefork", 2, "--tasks", "tests.faults.poison_tasks")
        )
        settings = api_settings(mongo_wire_url, database, SCRAPER_SERVICE_URL=scraper.address)
        try:
            harness.wait_until(
                lambda: bool(client_app.control.ping(timeout=0.5)), 60, "worker ready"
            )
            with AppThread(
                settings, parts=(Part.GRPC,), task_modules=("tests.faults.poison_tasks",)
            ) as api:
                poison = api.stub.CreateScheduledJob(
                    pb.CreateScheduledJobRequest(
                        name="poison",
                        job_type="TASK",
                        task_name=POISON_TASK,
                        schedule_config=pb.ScheduleConfig(
                            type="cron", config={"expression": "0 0 1 1 *"}
                        ),
                        policies=pb.JobPolicies(max_retries=0),
                    ),
                    timeout=10,
                )
                healthy = scraping_job(api.stub, "healthy next to poison")
                started = time.monotonic()
                poisoned = api.stub.ExecuteJobNow(
                    pb.ExecuteJobRequest(job_id=poison.id), timeout=10
                ).execution_id
                accepted = [
                    api.stub.ExecuteJobNow(
                        pb.ExecuteJobRequest(job_id=healthy.id), timeout=10
                    ).execution_id
                    for _ in range(6)
                ]
                executions = api.call(
                    settle(
                        lambda: read_executions(api.services.store, [poison.id, healthy.id]), 90
                    ),
                    100,
                )
                recovery_s = time.monotonic() - started
                report = check(
                    executions, accepted=[poisoned, *accepted], target_calls=execution_keys(scraper)
                )
                fault_table.record("poison job kills its worker", report, recovery_s)
                assert report.lost == [] and report.duplicates == [], (report, worker.output())
                by_id = {e.id: e for e in executions}
                assert by_id[poisoned].status == "FAILURE", by_id[poisoned]
                assert by_id[poisoned].error.type == "WorkerLost"
                assert by_id[poisoned].deliveries == 3  # the first delivery and 2 redeliveries
                assert all(by_id[i].status == "SUCCESS" for i in accepted), report
        finally:
            worker.stop()


def test_a_hanging_target_times_out_and_frees_the_worker(fault_services, fault_table):
    with (
        fake_target_in_thread(SCRAPER) as scraper,
        fake_target_in_thread(PRICING, behaviour=Behaviour(delay_s=60)) as pricing,
    ):
        settings = Settings(
            MONGODB_URL="memory://",
            CELERY_BROKER_URL=harness.BROKER,
            CELERY_RESULT_BACKEND=harness.RESULTS,
            SCRAPER_SERVICE_URL=scraper.address,
            PRICING_SERVICE_URL=pricing.address,
        )
        with AppThread(settings, parts=(Part.GRPC, Part.WORKER), concurrency=1) as api:
            hanging = api.stub.CreateScheduledJob(
                pb.CreateScheduledJobRequest(
                    name="hanging analysis",
                    job_type="ANALYSIS",
                    target_service="pricing-service",
                    target_method="AnalyzePrices",
                    schedule_config=pb.ScheduleConfig(
                        type="cron", config={"expression": "0 0 1 1 *"}
                    ),
                    policies=pb.JobPolicies(time_limit_s=1, max_retries=0),
                ),
                timeout=10,
            )
            quick = scraping_job(api.stub, "quick after hang")
            started = time.monotonic()
            hung = api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=hanging.id), timeout=10)
            after = api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=quick.id), timeout=10)
            executions = api.call(
                settle(lambda: read_executions(api.services.store, [hanging.id, quick.id]), 30),
                40,
            )
            freed_s = time.monotonic() - started
            report = check(
                executions,
                accepted=[hung.execution_id, after.execution_id],
                target_calls=execution_keys(scraper) + execution_keys(pricing),
            )
            fault_table.record("hanging target (1 s limit, 1 worker)", report, freed_s)
            assert report.lost == [] and report.duplicates == [], report
            by_id = {e.id: e for e in executions}
            assert by_id[hung.execution_id].status == "TIMED_OUT"
            assert by_id[after.execution_id].status == "SUCCESS"
            assert freed_s < 15
            # The target saw the run's idempotency key.
            assert execution_keys(pricing) == [hung.execution_id]
