"""Beat faults: beats as separate processes on one MongoDB, killed mid-dispatch, frozen past their
lease and resumed, or all down for several intervals. No fire time runs twice; none is missed
silently (DESIGN §4.1, §4.3)."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.scheduling import LEASE_NAME
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.fakes.servers import SCRAPER, fake_target_in_thread
from tests.faults import harness
from tests.faults.ledger import check, fire_times, read_executions, settle
from tests.faults.test_workers import execution_keys, scraping_job

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

LEASE_S = 2.0


def every_second(stub, name: str, **policies) -> pb.ScheduledJob:
    return scraping_job(
        stub,
        name,
        schedule_config=pb.ScheduleConfig(
            type="interval", config={"every": "1", "period": "seconds"}
        ),
        policies=pb.JobPolicies(overlap="ALLOW", retry_backoff_s=0.1, **policies),
    )


class Beats:
    """Beat processes (`omnisched run --parts beat`) on the test's database, short leases."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[harness.Part] = []

    def start(self) -> harness.Part:
        beat = harness.Part(self.env, "--parts", "beat")
        self.started.append(beat)
        return beat

    def stop_all(self) -> None:
        for beat in self.started:
            beat.stop()

    def holder(self, api: AppThread) -> harness.Part | None:
        """The beat holding the lease (its owner id is host:pid:random)."""
        held = api.call(api.services.store.lease_holder(LEASE_NAME))
        if held is None:
            return None
        pid = int(held[0].split(":")[1])
        return next((b for b in self.started if b.pid == pid), None)


def beat_env(mongo_url: str, database: str, scraper_address: str) -> dict[str, str]:
    return harness.part_env(
        mongo_url,
        database,
        SCRAPER_SERVICE_URL=scraper_address,
        OMNISCHED_BEAT_LEASE_S=str(LEASE_S),
        OMNISCHED_BEAT_MAX_INTERVAL_S="0.25",
    )


def app_settings(mongo_url: str, database: str, scraper_address: str) -> Settings:
    return Settings(
        MONGODB_URL=mongo_url,
        OMNISCHED_MONGODB_DATABASE=database,
        CELERY_BROKER_URL=harness.BROKER,
        CELERY_RESULT_BACKEND=harness.RESULTS,
        SCRAPER_SERVICE_URL=scraper_address,
    )


def wait_for_holder(beats: Beats, api: AppThread, timeout_s: float = 60) -> harness.Part:
    found: list[harness.Part] = []

    def held() -> bool:
        holder = beats.holder(api)
        if holder is not None and holder.process.poll() is None:
            found.append(holder)
            return True
        return False

    harness.wait_until(held, timeout_s, "a beat holding the lease")
    return found[-1]


@pytest.mark.faults
def test_two_beats_one_killed_one_frozen_past_its_lease_no_fire_time_runs_twice(
    fault_services, mongo_wire_url, fault_table
):
    database = f"fault-beats-{uuid.uuid4().hex[:6]}"
    with fake_target_in_thread(SCRAPER) as scraper:
        beats = Beats(beat_env(mongo_wire_url, database, scraper.address))
        settings = app_settings(mongo_wire_url, database, scraper.address)
        try:
            with AppThread(settings, parts=(Part.GRPC, Part.WORKER), concurrency=4) as api:
                jobs = [every_second(api.stub, f"beat fault {i}") for i in range(3)]
                began = datetime.now(UTC)
                beats.start()
                beats.start()
                first = wait_for_holder(beats, api)
                time.sleep(3)
                first.signal(signal.SIGKILL)  # mid-dispatch: it ticks every 0.25 s
                killed = time.monotonic()
                beats.start()
                second = wait_for_holder(beats, api)  # a live beat, not the dead one's lease
                takeover_s = time.monotonic() - killed
                time.sleep(2)
                second.signal(signal.SIGSTOP)  # frozen mid-tick, past its lease
                time.sleep(LEASE_S + 2.5)
                second.signal(signal.SIGCONT)  # resumes with a stale view of the world
                time.sleep(4)
                beats.stop_all()
                ended = datetime.now(UTC)
                ids = [job.id for job in jobs]
                executions = api.call(
                    settle(lambda: read_executions(api.services.store, ids), 60), 70
                )
                stored = [api.call(api.services.store.get_job(job_id)) for job_id in ids]
                expected = {
                    job.id: fire_times(
                        job, began + timedelta(seconds=1), ended - timedelta(seconds=2)
                    )
                    for job in stored
                }
                report = check(
                    executions, expected_fire_times=expected, target_calls=execution_keys(scraper)
                )
                fault_table.record(
                    "2 beats: holder SIGKILL, then SIGSTOP > lease", report, takeover_s
                )
                assert report.lost == [] and report.duplicates == [], str(report)
                assert report.missed == [], str(report)
                assert report.statuses.get("SUCCESS", 0) >= 20, str(report)
        finally:
            beats.stop_all()


@pytest.mark.faults
def test_beat_down_for_several_intervals_catches_up_per_policy(
    fault_services, mongo_wire_url, fault_table
):
    database = f"fault-beat-down-{uuid.uuid4().hex[:6]}"
    with fake_target_in_thread(SCRAPER) as scraper:
        beats = Beats(beat_env(mongo_wire_url, database, scraper.address))
        settings = app_settings(mongo_wire_url, database, scraper.address)
        try:
            with AppThread(settings, parts=(Part.GRPC, Part.WORKER)) as api:
                job = every_second(api.stub, "beat down", catchup_window_s=0)
                began = datetime.now(UTC)
                beat = beats.start()
                wait_for_holder(beats, api)
                time.sleep(2)
                beat.signal(signal.SIGKILL)
                down_at = datetime.now(UTC)
                time.sleep(6)  # six fire times with no beat at all
                restarted = time.monotonic()
                beats.start()
                wait_for_holder(beats, api)
                caught_up_s = time.monotonic() - restarted
                time.sleep(3)
                beats.stop_all()
                ended = datetime.now(UTC)
                executions = api.call(
                    settle(lambda: read_executions(api.services.store, [job.id]), 60), 70
                )
                stored = api.call(api.services.store.get_job(job.id))
                expected = {
                    job.id: fire_times(
                        stored, began + timedelta(seconds=1), ended - timedelta(seconds=2)
                    )
                }
                report = check(
                    executions, expected_fire_times=expected, target_calls=execution_keys(scraper)
                )
                fault_table.record("beat down 6 intervals (catch-up window 0)", report, caught_up_s)
                assert report.lost == [] and report.duplicates == [], str(report)
                assert report.missed == [], str(report)  # every fire time has a record
                gap = [
                    e
                    for e in executions
                    if e.scheduled_for
                    and down_at + timedelta(seconds=1) < e.scheduled_for
                    and e.scheduled_for < down_at + timedelta(seconds=5)
                ]
                # Fire times missed while no beat ran are recorded MISSED (the latest of them
                # may still run: a fire time a tick late is within the scheduler's grace).
                assert report.recorded_missed >= 3, str(report)
                assert all(e.status in {"MISSED", "SUCCESS"} for e in gap), str(report)
                assert any(e.status == "MISSED" for e in gap), str(report)
        finally:
            beats.stop_all()
