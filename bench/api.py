"""API: GetScheduledJob, ListScheduledJobs (page of 100), CreateScheduledJob requests/s with 16
concurrent grpc.aio clients, beside a minimal grpc.aio echo server (the floor of Python gRPC here).

Each server runs in its own process (`--serve omnisched|echo`, used by this benchmark); the
clients run in this one. omnisched's server is the product's `create_server` over the job service
on the in-memory store seeded with `--jobs` jobs (10,000 by default): what `omnisched run --parts
grpc` serves, with MONGODB_URL=memory://.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from bench.beat import RARE, template_job
from bench.common import (
    HOST,
    STORE_NOTE,
    Report,
    Target,
    finish,
    parser,
    service_settings,
    sized,
)
from omnisched_allinone.api.server import create_server
from omnisched_allinone.app import build_services, prepare_store
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.proto import scheduler_service_pb2_grpc as pb_grpc
from omnisched_allinone.store.mongo import JOBS, job_to_doc

NAME = "api"
ECHO_METHOD = "/bench.Echo/Echo"


# -- servers --------------------------------------------------------------------------------------


async def serve_omnisched(jobs: int, port_file: Path) -> None:
    settings = service_settings("memory://", "cache+memory://")
    services = build_services(settings)
    template = await template_job(settings)
    base = job_to_doc(template)
    docs = [dict(base, _id=f"job-bench-{i:06d}", name=f"bench-{i:06d}") for i in range(jobs)]
    if docs:  # before the indexes: mongomock scans the collection per insert under a unique index
        await services.store.database[JOBS].insert_many(docs)
    await prepare_store(services)
    api = create_server(services.service, host=HOST, port=0)
    await api.server.start()
    await api.set_serving(True)
    await _until_terminated(port_file, api.port)
    await api.stop(1)


async def serve_echo(port_file: Path) -> None:
    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    await _until_terminated(port_file, port)
    await server.stop(1)


async def _until_terminated(port_file: Path, port: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await asyncio.to_thread(port_file.write_text, str(port))
    await stop.wait()


class Server:
    """A server subprocess of this module; `port` once it listens."""

    def __init__(self, kind: str, jobs: int, workdir: Path) -> None:
        self.port_file = workdir / f"{kind}.port"
        self.port_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.api", "--serve", kind, "--jobs", str(jobs),
             "--port-file", str(self.port_file)],
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not self.port_file.exists() or not self.port_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text())

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# -- clients --------------------------------------------------------------------------------------


Call = Callable[[Any, int, int], Awaitable[Any]]


async def rate(port: int, call: Call, clients: int, duration_s: float) -> tuple[float, int]:
    """Requests/s of `clients` concurrent callers, each on its own channel, for `duration_s`."""
    channels = [grpc.aio.insecure_channel(f"{HOST}:{port}") for _ in range(clients)]
    counts = [0] * clients
    errors = [0]
    try:
        for channel in channels:  # connected and warm before the clock starts
            await call(channel, 0, 0)
        deadline = time.perf_counter() + duration_s

        async def caller(n: int) -> None:
            while time.perf_counter() < deadline:
                try:
                    await call(channels[n], n, counts[n])
                    counts[n] += 1
                except grpc.aio.AioRpcError:
                    errors[0] += 1

        began = time.perf_counter()
        await asyncio.gather(*(caller(n) for n in range(clients)))
        elapsed = time.perf_counter() - began
    finally:
        for channel in channels:
            await channel.close()
    return sum(counts) / elapsed, errors[0]


def calls(jobs: int) -> dict[str, Call]:
    run_id = f"{os.getpid()}-{random.randrange(1 << 30)}"
    sequence = itertools.count()

    async def get(channel: Any, client: int, n: int) -> Any:
        stub = pb_grpc.SchedulerServiceStub(channel)
        job_id = f"job-bench-{random.randrange(max(jobs, 1)):06d}"
        return await stub.GetScheduledJob(pb.GetScheduledJobRequest(job_id=job_id))

    async def list_page(channel: Any, client: int, n: int) -> Any:
        stub = pb_grpc.SchedulerServiceStub(channel)
        return await stub.ListScheduledJobs(pb.ListScheduledJobsRequest(page_size=100))

    async def create(channel: Any, client: int, n: int) -> Any:
        stub = pb_grpc.SchedulerServiceStub(channel)
        return await stub.CreateScheduledJob(
            pb.CreateScheduledJobRequest(
                name=f"bench-create-{run_id}-{next(sequence)}",
                job_type="TASK",
                task_name="bench_noop",
                schedule_config=pb.ScheduleConfig(type="cron", config={"expression": RARE}),
            )
        )

    return {
        "GetScheduledJob": get,
        "ListScheduledJobs(100)": list_page,
        "CreateScheduledJob": create,
    }


async def echo_call(channel: Any, client: int, n: int) -> Any:
    payload = pb.GetScheduledJobRequest(job_id="job-bench-000001").SerializeToString()
    return await channel.unary_unary(ECHO_METHOD)(payload)


# -- the benchmark --------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> Report:
    jobs = args.jobs if args.jobs >= 0 else sized(args, 10_000, 10_000, 200)
    duration_s = sized(args, 5.0, 2.0, 0.5)
    workdir = Path(__file__).resolve().parent / "results"
    workdir.mkdir(exist_ok=True)
    report = Report(NAME)
    echo = Server("echo", 0, workdir)
    try:
        floor, _ = asyncio.run(rate(echo.port, echo_call, args.clients, duration_s))
    finally:
        echo.close()
    ours = Server("omnisched", jobs, workdir)
    try:
        for method, call in calls(jobs).items():
            value, errors = asyncio.run(rate(ours.port, call, args.clients, duration_s))
            create = method.startswith("Create")
            target = (
                Target("ratio >= 0.3x", "ratio", ">=", 0.3)
                if create
                else Target("ratio >= 0.5x", "ratio", ">=", 0.5)
            )
            report.add(
                f"{method}, {jobs:,} jobs, {args.clients} clients",
                value,
                "req/s",
                baseline=floor,
                baseline_name="grpc.aio echo",
                target=target,
                note=f"{errors} errors" if errors else "",
            )
    finally:
        ours.close()
    report.notes.append(
        f"{args.clients} grpc.aio callers (one channel each) in one process, {duration_s:g}s per "
        f"method; each server in its own process; {STORE_NOTE}: a List (sort by _id) or a "
        f"Create (name check, unique index) scans all {jobs:,} jobs here, a Get scans for its _id"
    )
    return report


def build_parser() -> argparse.ArgumentParser:
    p = parser(NAME, __doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=-1, help="jobs in the store (default 10000)")
    p.add_argument("--clients", type=int, default=16, help="concurrent callers")
    p.add_argument("--serve", choices=["omnisched", "echo"], help=argparse.SUPPRESS)
    p.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.serve == "echo":
        asyncio.run(serve_echo(args.port_file))
    elif args.serve == "omnisched":
        asyncio.run(serve_omnisched(max(args.jobs, 0), args.port_file))
    else:
        finish(run(args), args)


if __name__ == "__main__":
    main()
