"""Run throughput: N no-op runs through ExecuteJobNow from concurrent clients, beside bare Celery.

omnisched: the service (API + worker, threads pool) in a thread of this process; `--clients`
threads call ExecuteJobNow as fast as it answers (each answer means recorded + publish confirmed);
done when the store records every run SUCCESS. Baseline: the same number of client threads call
`apply_async()` on a bare Celery app with the same settings and the same worker (threads pool, same
concurrency), done when Redis holds every result SUCCESS. Optional: the bare baseline again on a
prefork worker in a subprocess (`--prefork`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from bench.bare import BARE_QUEUE, NOOP, make_bare_app
from bench.common import (
    HOST,
    STORE_NOTE,
    Report,
    ServiceThread,
    Target,
    broker_url,
    finish,
    need_services,
    parser,
    purge_queues,
    service_settings,
    sized,
)
from bench.latency import noop_job_request
from omnisched_allinone.core.executions import ExecutionStatus
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.settings import Settings
from omnisched_allinone.store.base import ExecutionFilter
from omnisched_allinone.worker import start_worker_thread

NAME = "throughput"
POLL_S = 0.2
TERMINAL_FAILURES = frozenset(
    {ExecutionStatus.FAILURE, ExecutionStatus.REVOKED, ExecutionStatus.TIMED_OUT}
)


def _clients(total: int, clients: int, work: Callable[[int, int], None]) -> float:
    """Run `work(client, count)` in `clients` threads; seconds until all returned."""
    counts = [total // clients + (1 if c < total % clients else 0) for c in range(clients)]
    errors: list[BaseException] = []

    def guarded(client: int) -> None:
        try:
            work(client, counts[client])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(c,)) for c in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began


def omnisched_throughput(
    settings: Settings, runs: int, clients: int, cap_s: float
) -> dict[str, Any]:
    with ServiceThread(settings, task_modules=("bench.tasks",)) as service:
        jobs = [
            service.stub.CreateScheduledJob(noop_job_request(f"bench-tput-{os.getpid()}-{c}")).id
            for c in range(clients)
        ]
        store = service.services.store
        success = frozenset({ExecutionStatus.SUCCESS})

        def count(statuses: frozenset[ExecutionStatus]) -> int:
            return service.call(store.count_executions(ExecutionFilter(), statuses))

        began = time.perf_counter()

        def work(client: int, n: int) -> None:
            with grpc.insecure_channel(service.address) as channel:
                stub = pb_grpc.SchedulerServiceStub(channel)
                request = pb.ExecuteJobRequest(job_id=jobs[client])
                for _ in range(n):
                    if time.perf_counter() - began > cap_s:
                        return  # bounded: the runs accepted by then are still waited for
                    stub.ExecuteJobNow(request, timeout=30)

        marks: list[tuple[float, int]] = []
        accepted_s = _clients(runs, clients, work)
        accepted = count(frozenset(ExecutionStatus))
        done = count(success)
        while done < accepted and time.perf_counter() - began < cap_s + 60:
            if count(TERMINAL_FAILURES):
                raise RuntimeError("a no-op run failed")
            marks.append((time.perf_counter() - began, done))
            time.sleep(POLL_S)
            done = count(success)
        elapsed = time.perf_counter() - began
    return {
        "completed": done,
        "accepted": accepted,
        "elapsed_s": elapsed,
        "accepted_s": accepted_s,
        "marks": marks,
    }


def _wait_results(app: Any, ids: list[str], cap_s: float, began: float) -> int:
    """How many of `ids` Redis holds as SUCCESS, polled until all or `cap_s` after `began`."""
    backend = app.backend
    pending = list(ids)
    while pending and time.perf_counter() - began < cap_s:
        still: list[str] = []
        for start in range(0, len(pending), 1000):
            chunk = pending[start : start + 1000]
            values = backend.client.mget([backend.get_key_for_task(i) for i in chunk])
            for task_id, raw in zip(chunk, values, strict=True):
                if raw is None or json.loads(raw)["status"] != "SUCCESS":
                    still.append(task_id)
        pending = still
        if pending:
            time.sleep(POLL_S / 4)
    return len(ids) - len(pending)


def bare_throughput(settings: Settings, runs: int, clients: int, cap_s: float) -> dict[str, Any]:
    app = make_bare_app(settings)
    worker = start_worker_thread(
        app,
        queues=[BARE_QUEUE],
        concurrency=settings.worker_concurrency,
        loglevel="WARNING",
        hostname=f"bench-bare-{os.getpid()}@localhost",
    )
    try:
        return _bare_publish_and_wait(app, runs, clients, cap_s)
    finally:
        worker.stop(10)


def _bare_publish_and_wait(app: Any, runs: int, clients: int, cap_s: float) -> dict[str, Any]:
    noop = app.tasks[NOOP]
    ids: list[list[str]] = [[] for _ in range(clients)]

    began = time.perf_counter()

    def work(client: int, n: int) -> None:
        for _ in range(n):
            if time.perf_counter() - began > cap_s:
                return
            ids[client].append(noop.apply_async().id)

    accepted_s = _clients(runs, clients, work)
    accepted = [i for chunk in ids for i in chunk]
    completed = _wait_results(app, accepted, cap_s + 60, began)
    return {
        "completed": completed,
        "accepted": len(accepted),
        "elapsed_s": time.perf_counter() - began,
        "accepted_s": accepted_s,
    }


def bare_prefork_throughput(
    settings: Settings, runs: int, clients: int, cap_s: float, concurrency: int
) -> dict[str, Any]:
    """The bare baseline on `celery worker --pool prefork` in a subprocess (seed settings)."""
    env = {
        **os.environ,
        "CELERY_BROKER_URL": settings.celery_broker_url,
        "CELERY_RESULT_BACKEND": settings.celery_result_backend,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.bare",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={BARE_QUEUE}",
            "--loglevel=WARNING",
            f"--hostname=bench-prefork-{os.getpid()}@localhost",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app = make_bare_app(settings)
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the prefork worker did not start")
        return _bare_publish_and_wait(app, runs, clients, cap_s)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()


def run(args: argparse.Namespace) -> Report:
    need_services()
    runs = args.runs or sized(args, 5000, 1000, 20)
    clients = args.clients
    broker, where = broker_url()
    settings = service_settings(broker)
    purge_queues(broker, [BARE_QUEUE, "manual"])
    report = Report(NAME)
    bare = bare_throughput(settings, runs, clients, args.cap_s)
    ours = omnisched_throughput(settings, runs, clients, args.cap_s)
    prefork = None
    if args.prefork and not args.smoke:
        prefork = bare_prefork_throughput(settings, runs, clients, args.cap_s, 2)

    def rate(result: dict[str, Any]) -> float:
        return result["completed"] / result["elapsed_s"]

    base = f"bare celery threads c{settings.worker_concurrency}"
    report.add(
        f"runs completed and recorded ({clients} clients)",
        rate(ours),
        "runs/s",
        baseline=rate(bare),
        baseline_name=base,
        target=Target("ratio >= 0.7x", "ratio", ">=", 0.7),
        note=f"{ours['completed']}/{runs} omnisched, {bare['completed']}/{runs} bare",
    )
    report.add(
        "runs accepted (ExecuteJobNow answered)",
        ours["accepted"] / ours["accepted_s"],
        "runs/s",
        baseline=bare["accepted"] / bare["accepted_s"],
        baseline_name="apply_async() confirmed",
    )
    if prefork is not None:
        report.add(
            "bare celery prefork c2, completed with results",
            rate(prefork),
            "tasks/s",
            note="worker_max_tasks_per_child=50 (seed default)",
        )
    if ours["completed"] < runs:
        report.notes.append(
            f"omnisched stopped at the {args.cap_s:.0f}s cap with {ours['completed']}/{runs} runs"
        )
    marks = ours["marks"]
    if len(marks) > 2:
        # The in-memory store scans every collection per query: the rate falls as runs pile up.
        first = next(((t, n) for t, n in marks if n >= runs // 5), None)
        if first is not None and first[0] > 0:
            report.add(
                f"omnisched rate over the first {first[1]} runs",
                first[1] / first[0],
                "runs/s",
                note="mongomock scans grow with each run recorded",
            )
    report.notes.append(
        f"{runs} no-op runs, {clients} concurrent client threads in this process; {where}, "
        f"Redis results; worker threads pool c{settings.worker_concurrency} (both); {STORE_NOTE}: "
        "every store query scans its collection, so the rate falls as executions accumulate"
    )
    report.extra = {"omnisched": ours, "bare": bare, "bare_prefork": prefork, "host": HOST}
    purge_queues(broker, [BARE_QUEUE, "manual"])
    return report


def build_parser() -> argparse.ArgumentParser:
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=0, help="runs per side (default 5000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    p.add_argument("--cap-s", type=float, default=120.0, help="time cap per side (publishing)")
    p.add_argument(
        "--no-prefork",
        dest="prefork",
        action="store_false",
        help="skip the bare prefork c2 measurement",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    finish(run(args), args)


if __name__ == "__main__":
    main()
