"""Workers as separate processes: prefork and threads pools, `celery inspect`, redelivery.

All processes share one MongoDB (the test's mongomock-backed wire server) and the real RabbitMQ
and Redis of this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.result import allow_join_result

from omnisched_allinone.app import Part
from omnisched_allinone.proto import scheduler_service_pb2 as pb
from omnisched_allinone.settings import Settings
from tests.app_thread import AppThread
from tests.engine.test_run_job import create_job, wait_terminal
from tests.fakes.servers import SCRAPER, Behaviour, fake_target_in_thread
from tests.support.processes import process_env

ROOT = Path(__file__).resolve().parents[2]
BROKER = "amqp://guest:guest@127.0.0.1:5672//"
RESULTS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def services(rabbitmq, redis_url) -> None:
    """RabbitMQ and Redis must answer (skipped locally, required in CI)."""


def worker_env(mongo_url: str, database: str, **extra: str) -> dict[str, str]:
    return process_env(mongo_url, database, BROKER, RESULTS, **extra)


class Worker:
    """`omnisched run --parts worker` as a child process."""

    def __init__(self, env: dict[str, str], pool: str, *args: str) -> None:
        self.name = f"test-{pool}-{uuid.uuid4().hex[:6]}@localhost"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "omnisched_allinone",
                "run",
                "--parts",
                "worker",
                "--pool",
                pool,
                "--concurrency",
                "1",
                "--hostname",
                self.name,
                *args,
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, app, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.output())
            replies = app.control.ping(destination=[self.name], timeout=0.5) or []
            if replies:
                return
        raise AssertionError(f"worker {self.name} not ready:\n{self.output()}")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def output(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out or ""

    def stop(self) -> str:
        return self.output()


@pytest.fixture
def client_app(services):
    """The test's own Celery app pointed at the real broker and results."""
    from omnisched_allinone.celery_app import celery_app, configure_celery_app

    configure_celery_app(
        celery_app, Settings(CELERY_BROKER_URL=BROKER, CELERY_RESULT_BACKEND=RESULTS)
    )
    return celery_app


@pytest.fixture
def worker_factory(mongo_wire_url) -> Iterator:
    started: list[Worker] = []

    def start(pool: str, *args: str, database: str = "", **env: str) -> Worker:
        worker = Worker(
            worker_env(mongo_wire_url, database or f"w{uuid.uuid4().hex[:8]}", **env), pool, *args
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_the_seed_asynctask_example_retries_and_succeeds(pool, client_app, worker_factory):
    worker = worker_factory(pool, "--tasks", "tests.engine.seed_tasks")
    worker.wait_ready(client_app)
    result = client_app.send_task(
        "tests.engine.seed_tasks.my_custom_task", args=("param_value", 42), queue="default_queue"
    )
    # An in-process worker started by an earlier test leaves Celery's process-wide "inside a
    # worker" flag set (DESIGN §10): this test is a client, so say so.
    with allow_join_result():
        value = result.get(timeout=30)
    assert value == {
        "success": True,
        "data": "processed",
        "retries": 1,
        "param1": "param_value",
        "param2": 42,
    }


def test_celery_inspect_ping_answers_from_a_running_worker(client_app, worker_factory):
    worker = worker_factory("prefork")
    worker.wait_ready(client_app)
    env = worker_env("mongodb://127.0.0.1:1", "unused")
    for command in ("ping", "registered", "active", "active_queues"):
        answer = subprocess.run(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "omnisched_allinone.celery_app",
                "inspect",
                command,
                "-d",
                worker.name,
                "-t",
                "5",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert answer.returncode == 0, answer.stdout + answer.stderr
        if command == "ping":
            assert "pong" in answer.stdout
        if command == "registered":
            assert "run_job" in answer.stdout and "scrape_competitor_prices" in answer.stdout
        if command == "active_queues":
            assert "scraping" in answer.stdout and "manual" in answer.stdout


def test_a_killed_worker_process_reruns_the_job_which_finishes_once(
    client_app, worker_factory, mongo_wire_url
):
    database = f"redeliver{uuid.uuid4().hex[:6]}"
    with fake_target_in_thread(SCRAPER, behaviour=Behaviour(delay_s=3)) as scraper:
        settings = Settings(
            MONGODB_URL=mongo_wire_url,
            OMNISCHED_MONGODB_DATABASE=database,
            CELERY_BROKER_URL=BROKER,
            CELERY_RESULT_BACKEND=RESULTS,
            SCRAPER_SERVICE_URL=scraper.address,
        )
        worker = worker_factory("prefork", database=database, SCRAPER_SERVICE_URL=scraper.address)
        worker.wait_ready(client_app)
        with AppThread(settings, parts=(Part.GRPC,)) as api:
            job = create_job(api.stub)
            answer = api.stub.ExecuteJobNow(pb.ExecuteJobRequest(job_id=job.id))
            deadline = time.monotonic() + 20
            while not scraper.calls and time.monotonic() < deadline:
                time.sleep(0.05)
            assert scraper.calls, worker.output()
            (child,) = worker.children()
            os.kill(child, signal.SIGKILL)  # mid-run: the target is still answering
            scraper.behaviour.delay_s = 0
            execution = wait_terminal(api.stub, answer.execution_id, timeout_s=60)
            assert execution.status == "SUCCESS", (execution, worker.output())
            assert execution.attempts == 1
            assert len(scraper.calls) == 2
            keys = {call.metadata["omnisched-execution-id"] for call in scraper.calls}
            assert keys == {answer.execution_id}
            status = api.stub.GetJobStatus(pb.GetJobStatusRequest(job_id=job.id))
            assert status.counters.runs == 1 and status.counters.successes == 1
