"""Run latency: ExecuteJobNow → SUCCESS, beside a bare Celery `apply_async().get()`.

omnisched: the service (gRPC API + Celery worker, threads pool) runs in a thread of this process
on the real RabbitMQ and Redis, store in memory; a TASK job runs the no-op `bench_noop`. Seen two
ways: through a WatchJobExecutions stream (the time the SUCCESS event reached the client), and by
polling GetExecution every 1 ms. Baseline: a bare Celery app on the same broker, result backend
and worker options (bench/bare.py), worker in a thread of this process too, calling a no-op task
with `apply_async().get()` one at a time.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import grpc
from celery.result import allow_join_result

from bench.bare import BARE_QUEUE, NOOP, make_bare_app
from bench.common import (
    STORE_NOTE,
    Report,
    ServiceThread,
    Target,
    broker_url,
    finish,
    need_services,
    parser,
    percentile,
    service_settings,
    sized,
)
from bench.tasks import NOOP_TASK
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from omnisched_allinone.worker import start_worker_thread

NAME = "latency"
POLL_INTERVAL_S = 0.001
RUN_TIMEOUT_S = 30.0


def noop_job_request(name: str) -> pb.CreateScheduledJobRequest:
    """A TASK job running `bench_noop`, scheduled once a year (so only manual runs happen)."""
    return pb.CreateScheduledJobRequest(
        name=name,
        job_type="TASK",
        task_name=NOOP_TASK,
        schedule_config=pb.ScheduleConfig(type="cron", config={"expression": "0 0 1 1 *"}),
        policies=pb.JobPolicies(max_retries=0, overlap="ALLOW"),
    )


def bare_latency(settings: Settings, runs: int, warmup: int) -> dict[str, list[float]]:
    app = make_bare_app(settings)
    worker = start_worker_thread(
        app,
        queues=[BARE_QUEUE],
        concurrency=settings.worker_concurrency,
        loglevel="WARNING",
        hostname=f"bench-bare-{os.getpid()}@localhost",
    )
    noop = app.tasks[NOOP]
    publish: list[float] = []
    round_trip: list[float] = []
    try:
        with allow_join_result():  # the in-process worker marks this process "inside a task"
            for _ in range(warmup):
                noop.apply_async().get(timeout=RUN_TIMEOUT_S)
            for _ in range(runs):
                began = time.perf_counter()
                result = noop.apply_async()
                published = time.perf_counter()
                result.get(timeout=RUN_TIMEOUT_S)
                ended = time.perf_counter()
                publish.append(published - began)
                round_trip.append(ended - began)
    finally:
        worker.stop(10)
    return {"publish": publish, "round_trip": round_trip}


class Watcher:
    """Reads a WatchJobExecutions stream in a thread; notes when each execution succeeded."""

    def __init__(self, service: ServiceThread, job_id: str) -> None:
        self._call = service.stub.WatchJobExecutions(pb.WatchJobExecutionsRequest(job_id=job_id))
        self._done: dict[str, float] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True, name="bench-watch")
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._call:
                if event.execution.status == "SUCCESS":
                    with self._changed:
                        self._done[event.execution.id] = time.perf_counter()
                        self._changed.notify_all()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise

    def wait(self, execution_id: str, timeout_s: float = RUN_TIMEOUT_S) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: execution_id in self._done, timeout_s):
                raise TimeoutError(f"no SUCCESS event for {execution_id} in {timeout_s}s")
            return self._done.pop(execution_id)

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)


def poll_until_success(service: ServiceThread, execution_id: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    request = pb.GetExecutionRequest(execution_id=execution_id)
    while time.monotonic() < deadline:
        status = service.stub.GetExecution(request).status
        if status == "SUCCESS":
            return
        if status in ("FAILURE", "REVOKED", "TIMED_OUT"):
            raise RuntimeError(f"run {execution_id} ended {status}")
        time.sleep(POLL_INTERVAL_S)
    raise TimeoutError(f"run {execution_id} not SUCCESS in {RUN_TIMEOUT_S}s")


def omnisched_latency(settings: Settings, runs: int, warmup: int) -> dict[str, list[float]]:
    accept: list[float] = []
    watched: list[float] = []
    polled: list[float] = []
    with ServiceThread(settings, task_modules=("bench.tasks",)) as service:
        job = service.stub.CreateScheduledJob(noop_job_request(f"bench-latency-{os.getpid()}"))
        execute = pb.ExecuteJobRequest(job_id=job.id)
        for _ in range(warmup):
            poll_until_success(service, service.stub.ExecuteJobNow(execute).execution_id)
        watcher = Watcher(service, job.id)
        try:
            time.sleep(0.3)  # the stream starts at the event log's end: let it open first
            for n in range(warmup + runs):
                began = time.perf_counter()
                answer = service.stub.ExecuteJobNow(execute)
                accepted = time.perf_counter()
                done = watcher.wait(answer.execution_id)
                if n >= warmup:
                    accept.append(accepted - began)
                    watched.append(done - began)
        finally:
            watcher.close()
        for _ in range(runs):
            began = time.perf_counter()
            poll_until_success(service, service.stub.ExecuteJobNow(execute).execution_id)
            polled.append(time.perf_counter() - began)
    return {"accept": accept, "watch": watched, "poll": polled}


def run(args: argparse.Namespace) -> Report:
    need_services()
    runs = args.runs or sized(args, 500, 100, 5)
    warmup = sized(args, 30, 10, 2)
    broker, where = broker_url()
    settings = service_settings(broker)
    report = Report(NAME)
    report.notes.append(
        f"{runs} sequential runs after {warmup} warm-up; {where}, Redis results; "
        f"threads pool c{settings.worker_concurrency}; client, API and worker in one process; "
        f"{STORE_NOTE}"
    )
    bare = bare_latency(settings, runs, warmup)
    ours = omnisched_latency(settings, runs, warmup)
    ms = 1000.0
    base = "celery apply_async().get()"
    for q in (50, 90, 99):
        target = Target("ratio <= 2x", "ratio", "<=", 2.0) if q == 50 else None
        report.add(
            f"p{q} ExecuteJobNow→SUCCESS (watch stream)",
            percentile(ours["watch"], q) * ms,
            "ms",
            baseline=percentile(bare["round_trip"], q) * ms,
            baseline_name=base,
            target=target,
        )
    for q in (50, 90, 99):
        report.add(
            f"p{q} ExecuteJobNow→SUCCESS (GetExecution poll 1ms)",
            percentile(ours["poll"], q) * ms,
            "ms",
            baseline=percentile(bare["round_trip"], q) * ms,
            baseline_name=base,
        )
    report.add(
        "p50 ExecuteJobNow answered (recorded + confirmed publish)",
        percentile(ours["accept"], 50) * ms,
        "ms",
        baseline=percentile(bare["publish"], 50) * ms,
        baseline_name="celery apply_async() (confirmed)",
    )
    report.extra = {
        "runs": runs,
        "samples_ms": {
            k: [round(v * ms, 3) for v in values]
            for k, values in {**ours, **{f"bare_{k}": v for k, v in bare.items()}}.items()
        },
    }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=0, help="measured runs (default 500)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    finish(run(args), args)


if __name__ == "__main__":
    main()
