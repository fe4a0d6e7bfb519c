"""Footprint: start-up time to health SERVING and resident memory of `omnisched run` (all parts),
idle and after N runs, in dev mode and with the real RabbitMQ and Redis.

Each mode starts `python -m omnisched_allinone run` as a subprocess (API on a free loopback port),
polls `grpc.health.v1.Health/Check` until SERVING, and reads VmRSS from /proc/PID/status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import (
    HOST,
    RESULTS_URL,
    STORE_NOTE,
    Report,
    Target,
    broker_url,
    finish,
    free_port,
    need_services,
    parser,
    sized,
)
from bench.latency import noop_job_request
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc

NAME = "footprint"
REPO = Path(__file__).resolve().parent.parent
SETTLE_S = 2.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start(dev: bool, broker: str) -> tuple[subprocess.Popen[bytes], int, float]:
    """Start `omnisched run`; return it, its API port and the seconds until SERVING."""
    port = free_port()
    env = {
        **os.environ,
        "GRPC_PORT": str(port),
        "OMNISCHED_HTTP_PORT": str(free_port()),
        "OMNISCHED_GRPC_HOST": HOST,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "omnisched_allinone", "run", "--tasks", "bench.tasks"]
    if dev:
        command.append("--dev")
    else:
        env.update(
            MONGODB_URL="memory://", CELERY_BROKER_URL=broker, CELERY_RESULT_BACKEND=RESULTS_URL
        )
    began = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"omnisched run exited with {process.returncode}")
            if time.perf_counter() - began > 60:
                process.kill()
                raise TimeoutError("omnisched run not SERVING within 60s")
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            time.sleep(0.01)
    return process, port, time.perf_counter() - began


def run_many(port: int, runs: int, clients: int, cap_s: float) -> tuple[int, float]:
    """ExecuteJobNow `runs` times from `clients` threads; wait for them to finish (capped)."""
    began = time.perf_counter()
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        stub = pb_grpc.SchedulerServiceStub(channel)
        job = stub.CreateScheduledJob(noop_job_request(f"bench-footprint-{os.getpid()}"))
        request = pb.ExecuteJobRequest(job_id=job.id)
        sent = [0]
        lock = threading.Lock()

        def client() -> None:
            while time.perf_counter() - began < cap_s:
                with lock:
                    if sent[0] >= runs:
                        return
                    sent[0] += 1
                stub.ExecuteJobNow(request, timeout=30)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        status = pb.GetJobStatusRequest(job_id=job.id)
        finished = stub.GetJobStatus(status).counters.runs
        while finished < sent[0] and time.perf_counter() - began < cap_s + 30:
            time.sleep(0.2)
            finished = stub.GetJobStatus(status).counters.runs
    return finished, time.perf_counter() - began


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def run(args: argparse.Namespace) -> Report:
    need_services()
    runs = args.runs or sized(args, 10_000, 1_000, 20)
    broker, where = broker_url()
    report = Report(NAME)
    for dev in (True, False):
        mode = "dev mode" if dev else "real RabbitMQ + Redis"
        process, port, startup_s = start(dev, broker)
        try:
            time.sleep(SETTLE_S)
            idle = rss_mb(process.pid)
            finished, took_s = run_many(port, runs, 8, args.cap_s)
            after = rss_mb(process.pid)
        finally:
            stop(process)
        report.add(
            f"start to SERVING, {mode}",
            startup_s,
            "s",
            target=Target("< 3 s in dev mode", "value", "<=", 3.0) if dev else None,
        )
        report.add(
            f"idle RSS, {mode}",
            idle,
            "MB",
            target=Target("< 200 MB", "value", "<=", 200.0),
        )
        report.add(
            f"RSS after {finished:,} runs, {mode}",
            after,
            "MB",
            note=f"{finished}/{runs} runs in {took_s:.0f}s (cap {args.cap_s:.0f}s)",
        )
        if finished < runs:
            report.notes.append(
                f"{mode}: {finished:,} of {runs:,} runs finished within the {args.cap_s:.0f}s "
                "cap (the in-memory store slows as records accumulate)"
            )
    report.notes.append(
        f"`python -m omnisched_allinone run --tasks bench.tasks` (all parts); {where}; "
        f"{STORE_NOTE}; executions and events stay in memory, so RSS after runs includes them"
    )
    return report


def build_parser() -> argparse.ArgumentParser:
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=0, help="runs before the second RSS reading")
    p.add_argument("--cap-s", type=float, default=90.0, help="time cap for the runs, per mode")
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    finish(run(args), args)


if __name__ == "__main__":
    main()
