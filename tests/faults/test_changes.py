"""Pause and delete racing a fire time: once the RPC returned, no run of the job starts
(DESIGN §4.4). A run claimed just before may be recorded, but it ends REVOKED, never run."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.fakes.servers import SCRAPER, fake_target_in_thread
from tests.faults import harness
from tests.faults.ledger import check, read_executions, settle
from tests.faults.test_workers import execution_keys, scraping_job

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]
RAN = {"SUCCESS", "FAILURE", "TIMED_OUT", "RETRY"}


def test_pause_and_delete_just_before_a_fire_time_start_no_run_after_they_return(
    fault_services, fault_table
):
    rng = random.Random(5)
    with fake_target_in_thread(SCRAPER) as scraper:
        settings = Settings(
            MONGODB_URL="memory://",
            CELERY_BROKER_URL=harness.BROKER,
            CELERY_RESULT_BACKEND=harness.RESULTS,
            SCRAPER_SERVICE_URL=scraper.address,
            OMNISCHED_BEAT_MAX_INTERVAL_S=0.2,
        )
        with AppThread(settings, parts=(Part.GRPC, Part.WORKER, Part.BEAT)) as api:
            jobs = [
                scraping_job(
                    api.stub,
                    f"race {i}",
                    schedule_config=pb.ScheduleConfig(
                        type="interval", config={"every": "1", "period": "seconds"}
                    ),
                    policies=pb.JobPolicies(overlap="ALLOW"),
                )
                for i in range(8)
            ]
            time.sleep(2.5)  # every job has run a few times
            returned: dict[str, datetime] = {}
            for index, job in enumerate(jobs):
                current = api.call(api.services.store.get_job(job.id))
                assert current.next_run_at is not None
                lead_s = rng.uniform(0.0, 0.15)
                wait_s = (current.next_run_at - datetime.now(UTC)).total_seconds() - lead_s
                time.sleep(max(wait_s, 0))
                if index % 2:
                    api.stub.DeleteJob(pb.DeleteJobRequest(job_id=job.id), timeout=10)
                else:
                    api.stub.PauseJob(pb.PauseJobRequest(job_id=job.id), timeout=10)
                returned[job.id] = datetime.now(UTC)
            time.sleep(2.5)  # fire times after the changes come and go
            executions = api.call(
                settle(lambda: read_executions(api.services.store, list(returned)), 30), 40
            )
            report = check(executions, target_calls=execution_keys(scraper))
            late = [
                f"{e.job_id} {e.id} {e.status} started {e.started_at} > {returned[e.job_id]}"
                for e in executions
                if e.status in RAN and e.started_at and e.started_at > returned[e.job_id]
            ]
            revoked = sum(e.status == "REVOKED" for e in executions)
            fault_table.record(
                "pause/delete 0-150 ms before a fire time (8 jobs)",
                report,
                note=f"{len(late)} runs started after the RPC; {revoked} claimed runs REVOKED",
            )
            assert report.lost == [] and report.duplicates == [], str(report)
            assert late == []
