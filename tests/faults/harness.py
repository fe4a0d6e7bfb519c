"""What the fault tests drive: this machine's RabbitMQ and Redis (stopped and restored), and
omnisched parts as child processes (workers, beats) on the session's MongoDB wire server.

Fault tests publish on their own RabbitMQ vhost and Redis database, so a worker of another test
run on this machine (a benchmark, say) never takes their messages, and they never take its.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.processes import process_env

ROOT = Path(__file__).resolve().parents[2]
VHOST = "omnisched-faults"
BROKER = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
RESULTS = "redis://127.0.0.1:6379/14"
RABBITMQ_PORT, REDIS_PORT = 5672, 6379
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "--port",
    str(REDIS_PORT),
    "--save",
    "",
    "--appendonly",
    "no",
]


def answers(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll `predicate`; return the seconds it took, or fail saying `what` did not happen."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} did not happen within {timeout_s}s")
        time.sleep(0.05)
    return time.monotonic() - started


def _run(*command: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


# -- RabbitMQ -----------------------------------------------------------------------------------


def rabbitmq_app_running() -> bool:
    """The AMQP listener answers (rabbitmqctl stop_app closes it while the node stays up)."""
    return answers(RABBITMQ_PORT)


def ensure_vhost() -> None:
    if VHOST not in _run("rabbitmqctl", "list_vhosts", "-q").stdout.split():
        _run("rabbitmqctl", "add_vhost", VHOST)
    _run("rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")


def rabbitmq_stop_app() -> None:
    result = _run("rabbitmqctl", "stop_app")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: not rabbitmq_app_running(), 30, "RabbitMQ stopping")


def rabbitmq_start_app() -> None:
    """Start the RabbitMQ application, or the whole node when it is not running at all."""
    result = _run("rabbitmqctl", "start_app")
    if result.returncode != 0:
        _run("rabbitmq-server", "-detached")
        time.sleep(3)
        _run("rabbitmqctl", "start_app")
    wait_until(rabbitmq_app_running, 90, "RabbitMQ answering")


@contextlib.contextmanager
def rabbitmq_restored() -> Iterator[None]:
    """Whatever the test does to RabbitMQ, it answers again afterwards."""
    try:
        yield
    finally:
        if not rabbitmq_app_running():
            rabbitmq_start_app()


# -- Redis --------------------------------------------------------------------------------------


def redis_shutdown() -> None:
    _run("redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave")
    wait_until(lambda: not answers(REDIS_PORT), 30, "Redis stopping")


def redis_start() -> None:
    result = _run(*REDIS_START)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until(lambda: answers(REDIS_PORT), 30, "Redis answering")


@contextlib.contextmanager
def redis_restored() -> Iterator[None]:
    try:
        yield
    finally:
        if not answers(REDIS_PORT):
            redis_start()


# -- omnisched parts as processes ---------------------------------------------------------------


def part_env(mongo_url: str, database: str, **extra: str) -> dict[str, str]:
    return process_env(mongo_url, database, BROKER, RESULTS, **extra)


class Part:
    """`omnisched run --parts …` as a child process, its output in a file (never a full pipe)."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.args = args
        self.log = Path(tempfile.mkstemp(prefix="omnisched-fault-", suffix=".log")[1])
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "omnisched_allinone", "run", *args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a SIGSTOP/SIGKILL of ours reaches only this tree
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def output(self, tail_chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail_chars:]
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM (after SIGCONT, in case a test froze it), then SIGKILL the whole group."""
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def worker_args(pool: str, concurrency: int, *extra: str) -> tuple[str, ...]:
    name = f"fault-{pool}-{uuid.uuid4().hex[:6]}@localhost"
    return (
        "--parts",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--hostname",
        name,
        *extra,
    )
