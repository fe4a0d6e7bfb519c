"""The Prometheus endpoint: API requests by method and code, runs dispatched and finished, dispatch
lag, jobs by status; and WatchJobExecutions still streams through the metrics interceptor."""

from __future__ import annotations

import re
import threading
import urllib.request

import grpc
import pytest

from omnisched_allinone import metrics
from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.ops.conftest import free_port, unique, wait_for

API = "/omnisched.v1.SchedulerService"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_recording_is_a_no_op_until_the_endpoint_is_served():
    assert not metrics.enabled()
    before = metrics.RUNS_DISPATCHED.labels("TASK")._value.get()
    metrics.run_dispatched("TASK", 0.1)
    assert metrics.RUNS_DISPATCHED.labels("TASK")._value.get() == before


@pytest.mark.slow
def test_counters_move_after_a_run(tmp_path):
    # Given: the all-in-one in memory, with metrics on a free port
    port = free_port()
    settings = Settings(
        MONGODB_URL="memory://",
        CELERY_BROKER_URL="memory://",
        CELERY_RESULT_BACKEND="cache+memory://",
        OMNISCHED_METRICS_PORT=port,
    ).model_copy(update={"grpc_host": "127.0.0.1"})
    with AppThread(settings, (Part.GRPC, Part.WORKER, Part.BEAT)) as app:
        before = _scrape(port)
        # When: a job runs every second, and a missing job is asked for
        job = app.stub.CreateScheduledJob(
            pb.CreateScheduledJobRequest(
                name=unique("metrics-"),
                job_type="MAINTENANCE",
                schedule_config=pb.ScheduleConfig(
                    type="interval", config={"every": "1", "period": "seconds"}
                ),
            )
        )
        events = app.stub.WatchJobExecutions(
            pb.WatchJobExecutionsRequest(job_id=job.id), timeout=20
        )
        first_event: list[pb.ExecutionEvent] = []
        reader = threading.Thread(target=lambda: first_event.append(next(iter(events))))
        reader.start()
        with pytest.raises(grpc.RpcError) as missing:
            app.stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id="job-none"))
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND

        def finished() -> str | None:
            text = _scrape(port)
            done = _value(text, "omnisched_runs_finished_total", job_type="MAINTENANCE")
            return text if done >= 1 else None

        after = wait_for("a run to finish", finished, 30)
        reader.join(10)
        events.cancel()

    # Then: the counters moved
    assert first_event, "WatchJobExecutions sent nothing through the interceptor"
    assert _value(after, "omnisched_runs_dispatched_total", job_type="MAINTENANCE") >= 1
    assert _value(after, "omnisched_dispatch_lag_seconds_count", job_type="MAINTENANCE") >= 1
    assert (
        _value(
            after, "omnisched_run_duration_seconds_count", job_type="MAINTENANCE", status="SUCCESS"
        )
        >= 1
    )
    create = {"method": f"{API}/CreateScheduledJob", "code": "OK"}
    assert _value(after, "omnisched_api_requests_total", **create) == 1 + _value(
        before, "omnisched_api_requests_total", **create
    )
    assert (
        _value(
            after, "omnisched_api_requests_total", method=f"{API}/GetScheduledJob", code="NOT_FOUND"
        )
        >= 1
    )
    assert (
        _value(
            after,
            "omnisched_api_request_duration_seconds_count",
            method=f"{API}/CreateScheduledJob",
        )
        >= 1
    )
    assert 'omnisched_jobs{status="ACTIVE"}' in after
    # And: recording stops with the endpoint
    assert not metrics.enabled()
